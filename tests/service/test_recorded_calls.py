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
from firmware.store import ConfigStore, default_config
from tests.service.live import login
from tests.service.test_local_calls import wait_status
from tests.service.test_run import Appliance, dominant_hz

SAID, HEARD = 600.0, 1100.0  # handset 1 and handset 2


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Appliance]:
    store = ConfigStore.open(tmp_path / "data", defaults=default_config(2, 1))
    try:
        config = store.current().config
        extensions = tuple(
            dataclasses.replace(e, recording="always") if e.number == "101" else e
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
