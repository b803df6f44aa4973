from __future__ import annotations

import numpy as np
import pytest

from firmware.dsp import levels
from firmware.dsp.pcm import SAMPLE_RATE, to_pcm


def sine(freq: float, dbm0: float, n: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    return to_pcm(levels.peak_for_dbm0(dbm0) * np.sin(2 * np.pi * freq * t))


@pytest.mark.parametrize("dbm0", [-40.0, -20.0, -10.0, 0.0, 3.0])
def test_sine_power_reads_back(dbm0):
    assert levels.power_dbm0(sine(1004, dbm0)) == pytest.approx(dbm0, abs=0.05)


def test_full_scale_sine_is_plus_3_14_dbm0():
    assert levels.peak_for_dbm0(levels.DBM0_MAX_SINE) == pytest.approx(32767)


def test_silence_and_empty_frames():
    assert levels.power_dbm0(np.zeros(160, np.int16)) == levels.SILENCE_DBM0
    assert levels.power_dbm0(np.zeros(0, np.int16)) == levels.SILENCE_DBM0


def test_clipping_and_peak_are_counted():
    frame = np.array([0, 32767, -32768, 1000, -32767], dtype=np.int16)
    level = levels.measure(frame)
    assert level.peak == 32768
    assert level.clipped == 3


def test_meter_smooths_towards_level():
    meter = levels.LevelMeter(tau_frames=2)
    frame = sine(1004, -10.0, 160)
    for _ in range(30):
        meter.feed(frame)
    assert meter.power_dbm0 == pytest.approx(-10.0, abs=0.1)
    assert meter.frames == 30
    with pytest.raises(ValueError, match="tau_frames"):
        levels.LevelMeter(tau_frames=0.5)
