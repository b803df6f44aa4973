"""recordings.list / recordings.export / conference.list on a real ``ponte run``, and the CLI."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from firmware.api.client import ApiClient, ApiError
from firmware.service.recording import MAX_CHUNK, Recordings
from firmware.store.db import DB_FILENAME, Database
from firmware.store.schema import RecordingConfig
from tests.service.live import NEW_PASSWORD, LiveAppliance, login

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def live() -> Iterator[LiveAppliance]:
    appliance = LiveAppliance()
    yield appliance
    appliance.close()


@pytest.fixture
async def api(live: LiveAppliance) -> AsyncIterator[ApiClient]:
    async with live.client() as client:
        yield client


def record_a_call(data: Path, seconds: float) -> tuple[int, bytes]:
    """What the call flow does, from another process on the same data directory."""
    db = Database(data / DB_FILENAME)
    recs = Recordings.for_data_dir(db, data)
    recs.open(RecordingConfig())
    try:
        rec = recs.start("101", "0301234567", "always")
        rng = np.random.default_rng(5)
        for _ in range(round(seconds * 50)):
            # Media threads make 50 frames a second; this burst waits for the writer
            # instead, so that the bounded queue never drops one.
            while recs.queued > 100:
                time.sleep(0.005)
            rec.write(rng.integers(-3000, 3000, 160, dtype="<i2").tobytes(), bytes(320))
        row = rec.stop()
        assert rec.dropped == 0
        return row.id, (recs.directory / row.path).read_bytes()
    finally:
        recs.close()
        db.close()


def cli(live: LiveAppliance, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PONTE_ADMIN_PASSWORD": NEW_PASSWORD, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "firmware", "recordings", "--socket", str(live.socket), *args],
        capture_output=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


async def test_recordings_need_a_login_and_are_listed_and_exported(
    live: LiveAppliance, api: ApiClient, tmp_path: Path
) -> None:
    with pytest.raises(ApiError) as err:
        await api.call("recordings.list")
    assert err.value.code in ("login_required", "password_change_required")
    await login(api)
    assert (await api.call("recordings.list"))["recordings"] == []
    # 20 s of stereo: 640 kB, more than one export chunk.
    rid, wav = await asyncio.to_thread(record_a_call, live.data, 20.0)
    assert len(wav) > MAX_CHUNK
    [item] = (await api.call("recordings.list", {"party": "0301234567"}))["recordings"]
    assert item["id"] == rid and item["size"] == len(wav) and item["duration_ms"] == 20000
    assert (await api.call("recordings.list", {"party": "999"}))["recordings"] == []
    assert (await api.call("recordings.list", {"since": "2999-01-01"}))["recordings"] == []
    first = await api.call("recordings.export", {"id": rid})
    assert base64.b64decode(first["data"]) == wav[:MAX_CHUNK] and not first["eof"]
    with pytest.raises(ApiError) as err:
        await api.call("recordings.export", {"id": rid + 100})
    assert err.value.code == "not_found"
    with pytest.raises(ApiError) as err:
        await api.call("recordings.list", {"since": "yesterday"})
    assert "ISO 8601" in str(err.value)

    out = tmp_path / "call.wav"
    proc = await asyncio.to_thread(cli, live, "export", str(rid), str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == wav
    proc = await asyncio.to_thread(cli, live, "list")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    assert "0301234567" in text and "20.0s" in text and "1 recording(s)" in text
    proc = await asyncio.to_thread(cli, live, "export", "9999", str(tmp_path / "x.wav"))
    assert proc.returncode == 1 and b"no recording 9999" in proc.stderr


async def test_conference_list_shows_the_configured_rooms(api: ApiClient) -> None:
    await login(api)
    assert (await api.call("conference.list"))["rooms"] == []
    current = await api.call("config.get")
    doc = tomllib.loads(current["toml"])
    doc["conference"]["rooms"] = [
        {"number": "800", "name": "Sales", "pin": "2468", "max_participants": 5}
    ]
    await api.call("config.apply", {"toml": tomli_w.dumps(doc), "base_version": current["version"]})
    [room] = (await api.call("conference.list"))["rooms"]
    assert room == {
        "number": "800",
        "name": "Sales",
        "pin": True,
        "max_participants": 5,
        "configured": True,
        "participants": [],
    }
