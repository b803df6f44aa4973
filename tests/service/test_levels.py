"""``ports.levels``: a line's live audio levels, measured in the port's media loop.

The method is checked against a real ``ponte run --simulate`` whose simulated handset
plays a tone at a known level; the meter class on its own against synthetic frames.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest

from firmware.api.client import ApiError
from firmware.dsp.levels import peak_for_dbm0
from firmware.service.linelevels import FLOOR_DBM0, HOLD_FRAMES, LineLevels
from tests.service.live import LiveAppliance, login

SAMPLES = 160  # 20 ms at 8 kHz


def sine(dbm0: float, hz: float = 1000.0, start: int = 0) -> bytes:
    n = np.arange(start, start + SAMPLES)
    pcm = np.round(peak_for_dbm0(dbm0) * np.sin(2 * np.pi * hz * n / 8000))
    return pcm.astype("<i2").tobytes()


def test_a_steady_tone_reads_its_level_and_silence_the_floor() -> None:
    levels = LineLevels(SAMPLES)
    for i in range(100):  # 2 s: well past the 300 ms average
        levels.heard(sine(-13.0, start=i * SAMPLES))
        levels.played(bytes(2 * SAMPLES))
    now = levels.snapshot()
    assert now["rx_dbm0"] == pytest.approx(-13.0, abs=0.2)
    assert now["rx_peak_dbm0"] == pytest.approx(-13.0, abs=0.2)
    assert now["tx_dbm0"] == FLOOR_DBM0 and now["tx_peak_dbm0"] == FLOOR_DBM0
    assert now["frames"] == 100


def test_the_peak_is_held_then_decays() -> None:
    levels = LineLevels(SAMPLES)
    for i in range(50):
        levels.heard(sine(-6.0, start=i * SAMPLES))
    for _ in range(30):  # 600 ms of silence: the average falls, the peak stays
        levels.heard(bytes(2 * SAMPLES))
    now = levels.snapshot()
    assert now["rx_dbm0"] < -12  # e**-2 of the power: -8.7 dB
    assert now["rx_peak_dbm0"] == pytest.approx(-6.0, abs=0.3)
    for _ in range(HOLD_FRAMES + 200):  # 0.4 dB a frame after the hold
        levels.heard(bytes(2 * SAMPLES))
    assert levels.snapshot()["rx_peak_dbm0"] == FLOOR_DBM0


def test_a_short_frame_is_ignored() -> None:
    levels = LineLevels(SAMPLES)
    levels.heard(b"\x00\x10" * 10)
    assert levels.snapshot()["rx_dbm0"] == FLOOR_DBM0


@pytest.fixture(scope="module")
def live() -> Iterator[LiveAppliance]:
    appliance = LiveAppliance()
    yield appliance
    appliance.close()


async def test_ports_levels_reads_the_handsets_tone(live: LiveAppliance) -> None:
    live.sim(target="handset", number=1, action="off-hook")
    live.sim(target="handset", number=1, action="tone", freqs=[1000], level=-13)
    try:
        # Poll until two readings 300 ms apart agree: the average has settled.
        async with live.client() as api:
            await login(api)
            deadline = time.monotonic() + 30
            previous = await api.call("ports.levels", {"port": 1})
            while True:
                await asyncio.sleep(0.3)
                now = await api.call("ports.levels", {"port": 1})
                if abs(now["rx_dbm0"] - previous["rx_dbm0"]) < 0.2 and now["rx_dbm0"] > -30:
                    break
                previous = now
                assert time.monotonic() < deadline, f"no steady level: {now}"
            assert now["port"] == 1
            assert now["rx_dbm0"] == pytest.approx(-13.0, abs=1.0)
            assert now["rx_peak_dbm0"] >= now["rx_dbm0"] - 0.1
            assert now["tx_dbm0"] > FLOOR_DBM0  # the port plays dial tone to the handset
            # another port hears nothing
            quiet = await api.call("ports.levels", {"port": 2})
            assert quiet["rx_dbm0"] < -60
            with pytest.raises(ApiError, match="no port 99") as info:
                await api.call("ports.levels", {"port": 99})
            assert info.value.code == "invalid_params" and info.value.path == "params.port"
    finally:
        live.sim(target="handset", number=1, action="stop-audio")
        live.sim(target="handset", number=1, action="on-hook")
