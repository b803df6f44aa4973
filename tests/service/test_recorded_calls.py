"""Call recording in the call flow: extension 101 is recorded ``always``; a real
``ponte run``, two handsets talking, the recording read back with ``recordings.list`` and
its WAV file (left: what 101 said, right: what 101 heard)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware.api.client import ApiClient
from firmware.dsp.dtmf import DtmfDetector, DtmfStart
from firmware.store import ConfigStore, default_config
from firmware.store.schema import RecordingPolicy
from tests.service.live import login
from tests.service.test_local_calls import wait_status
from tests.service.test_run import Appliance, dominant_hz

SAID, HEARD = 600.0, 1100.0  # handset 1 and handset 2
NOTICE = 1400.0  # firmware.service.recording.NOTICE_HZ


def recorded_box(tmp_path: Path, extension: str, policy: RecordingPolicy) -> Appliance:
    """A running box whose ``extension`` records by ``policy`` (always, on_demand)."""
    store = ConfigStore.open(tmp_path / "data", defaults=default_config(2, 1))
    try:
        config = store.current().config
        extensions = tuple(
            dataclasses.replace(e, recording=policy) if e.number == extension else e
            for e in config.extensions
        )
        store.apply(
            dataclasses.replace(config, extensions=extensions), author="test", summary="rec"
        )
    finally:
        store.close()
    app = Appliance(tmp_path, "--fxs", "2", "--fxo", "1", "--stderr")
    app.wait_notify("READY=1")
    app.wait_log("control API listening")
    return app


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Appliance]:
    app = recorded_box(tmp_path, "101", "always")
    yield app
    app.close()


async def recordings_of(data: Path, timeout: float = 30) -> list[dict[str, Any]]:
    async with ApiClient(data / "api.sock", client_name="test", timeout=30) as api:
        await login(api)
        deadline = time.monotonic() + timeout
        while True:
            found: list[dict[str, Any]] = (await api.call("recordings.list"))["recordings"]
            if found or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.3)


def test_an_always_recorded_extension_leaves_a_stereo_recording(box: Appliance) -> None:
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="102")
    wait_status(box, 2, "ringing", True)
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("recording 1 started: 101 -> 102 (always)")
    box.sim(target="handset", number=1, action="tone", freqs=[SAID])
    box.sim(target="handset", number=2, action="tone", freqs=[HEARD])
    time.sleep(3.0)
    box.sim(target="handset", number=2, action="on-hook")
    box.wait_log("port 2 left")
    box.sim(target="handset", number=1, action="stop-audio")
    box.sim(target="handset", number=1, action="on-hook")

    (row,) = asyncio.run(recordings_of(box.data))
    assert (row["caller"], row["callee"], row["reason"]) == ("101", "102", "always")
    assert row["channels"] == 2 and row["duration_ms"] >= 2500
    with wave.open(str(box.data / "recordings" / row["path"])) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2).astype(float)
    middle = slice(len(pcm) // 4, len(pcm) // 4 + 8000)
    assert dominant_hz(pcm[middle, 0]) == pytest.approx(SAID, abs=10)
    assert dominant_hz(pcm[middle, 1]) == pytest.approx(HEARD, abs=10)


def on_demand_box(tmp_path: Path) -> Appliance:
    return recorded_box(tmp_path, "102", "on_demand")


def dial_and_wait(box: Appliance, handset: int, digits: str) -> None:
    ends_in = box.sim(target="handset", number=handset, action="dial", digits=digits)
    assert isinstance(ends_in, dict)
    time.sleep(float(ends_in["ends_in"]) + 0.3)


def digits_in(path: Path) -> str:
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return "".join(e.digit for e in DtmfDetector(8000).feed(pcm) if isinstance(e, DtmfStart))


def tone_ms(pcm: np.ndarray, hz: float) -> float:
    """How long ``hz`` dominates ``pcm`` (20 ms blocks above -40 dBm0), ms."""
    blocks = [pcm[i : i + 160].astype(float) for i in range(0, len(pcm) - 159, 160)]
    loud = [b for b in blocks if np.sqrt(np.mean(b**2)) > 100]
    return 20.0 * sum(1 for b in loud if abs(dominant_hz(np.tile(b, 8)) - hz) < 60)


def test_on_demand_the_code_starts_and_stops_recording_with_a_notice(tmp_path: Path) -> None:
    box = on_demand_box(tmp_path)
    try:
        heard_by_2 = tmp_path / "heard2.wav"
        box.sim(target="handset", number=1, action="off-hook")
        box.wait_log("port 1: OffHook")
        box.sim(target="handset", number=1, action="dial", digits="102")
        wait_status(box, 2, "ringing", True)
        box.sim(target="handset", number=2, action="off-hook")
        box.wait_log("audio of ports 1 and 2 connected")
        box.sim(target="handset", number=2, action="record", file=str(heard_by_2))
        time.sleep(0.5)
        dial_and_wait(box, 1, "*1")
        box.wait_log("recording 1 started: 101 -> 102 (on_demand)")
        box.sim(target="handset", number=1, action="tone", freqs=[SAID])
        box.sim(target="handset", number=2, action="tone", freqs=[HEARD])
        time.sleep(3.0)
        box.sim(target="handset", number=2, action="stop-audio")
        box.sim(target="handset", number=1, action="stop-audio")
        dial_and_wait(box, 1, "*1")
        box.wait_log("port 1 stops recording")
        time.sleep(0.5)
        box.sim(target="handset", number=2, action="stop-recording")
        box.sim(target="handset", number=2, action="on-hook")
        box.sim(target="handset", number=1, action="on-hook")

        (row,) = asyncio.run(recordings_of(box.data))
        assert (row["caller"], row["callee"], row["reason"]) == ("101", "102", "on_demand")
        assert 2500 <= row["duration_ms"] <= 10000
        with wave.open(str(box.data / "recordings" / row["path"])) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
        # The notice is in the recording (heard channel), then the two talkers.
        assert tone_ms(pcm[:8000, 1], NOTICE) >= 300
        middle = slice(len(pcm) // 2, len(pcm) // 2 + 8000)
        assert dominant_hz(pcm[middle, 0].astype(float)) == pytest.approx(SAID, abs=10)
        assert dominant_hz(pcm[middle, 1].astype(float)) == pytest.approx(HEARD, abs=10)
        # 102 heard both notices (start 500 ms, stop 2 x 150 ms) and none of the code.
        with wave.open(str(heard_by_2)) as w:
            far = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert tone_ms(far, NOTICE) >= 600
        assert digits_in(heard_by_2) == ""
    finally:
        box.close()
