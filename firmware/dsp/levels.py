"""Signal levels in dBm0 as ITU-T G.711 defines them, and a per-frame level meter.

G.711 puts the largest sine wave a codec can carry at +3.14 dBm0 (A-law; +3.17 dBm0 for
µ-law).  Like spandsp we take the A-law figure for both laws: a 0 dBm0 sine then has a
peak amplitude of 32767 * 10**(-3.14/20) ~= 22 786 in 16-bit linear PCM.  The 0.03 dB
difference between the laws is far below anything a telephony threshold cares about.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from firmware.dsp.pcm import INT16_MAX

DBM0_MAX_SINE: Final = 3.14  # ITU-T G.711 Table 1a/1b: full-scale sine in dBm0 (A-law)
SINE_PEAK_0DBM0: Final = INT16_MAX * 10 ** (-DBM0_MAX_SINE / 20)  # ~22786
RMS_0DBM0: Final = SINE_PEAK_0DBM0 / math.sqrt(2)  # RMS of a 0 dBm0 sine, ~16112
SILENCE_DBM0: Final = -120.0  # reported for digital silence instead of -inf
CLIP_THRESHOLD: Final = INT16_MAX - 1  # |sample| at or above this counts as clipped


def peak_for_dbm0(dbm0: float) -> float:
    """Peak amplitude (16-bit linear) of a sine at ``dbm0``."""
    return SINE_PEAK_0DBM0 * 10 ** (dbm0 / 20)


def rms_for_dbm0(dbm0: float) -> float:
    """RMS (16-bit linear) of any signal whose power is ``dbm0``."""
    return RMS_0DBM0 * 10 ** (dbm0 / 20)


def power_dbm0(samples: npt.ArrayLike) -> float:
    """Mean power of ``samples`` in dBm0 (``SILENCE_DBM0`` for digital silence)."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        return SILENCE_DBM0
    return _dbm0(float(np.dot(arr, arr)) / arr.size)


@dataclass(frozen=True, slots=True)
class Level:
    """One frame's measurement."""

    power_dbm0: float
    peak: int  # largest |sample|
    clipped: int  # samples at full scale


def level_of(x: npt.NDArray[np.float64]) -> tuple[Level, float]:
    """The level of one frame already converted to float64, and its mean square.

    The per-line receive path converts each frame once and shares the mean square with the
    call-progress detector; this is the one place that turns it into a :class:`Level`.
    """
    if x.size == 0:
        return Level(SILENCE_DBM0, 0, 0), 0.0
    mean_square = float(np.dot(x, x)) / x.size
    peak = int(max(x.max(), -x.min()))
    clipped = int(np.count_nonzero(np.abs(x) >= CLIP_THRESHOLD)) if peak >= CLIP_THRESHOLD else 0
    return Level(_dbm0(mean_square), peak, clipped), mean_square


def _dbm0(mean_square: float) -> float:
    if mean_square <= 0.0:
        return SILENCE_DBM0
    return max(10 * math.log10(mean_square / RMS_0DBM0**2), SILENCE_DBM0)


def measure(frame: npt.ArrayLike) -> Level:
    return level_of(np.asarray(frame, dtype=np.float64))[0]


class LevelMeter:
    """Running level with exponential smoothing, for live meters and alarms.

    ``tau_frames`` is the smoothing time constant in frames (1 = no smoothing).
    """

    def __init__(self, tau_frames: float = 5.0) -> None:
        if tau_frames < 1.0:
            raise ValueError(f"tau_frames must be >= 1, got {tau_frames}")
        self._alpha = 1.0 / tau_frames
        self._mean_square = 0.0
        self.peak = 0
        self.clipped = 0
        self.frames = 0

    def feed(self, frame: npt.ArrayLike) -> Level:
        level, mean_square = level_of(np.asarray(frame, dtype=np.float64))
        self._mean_square += self._alpha * (mean_square - self._mean_square)
        self.peak = max(self.peak, level.peak)
        self.clipped += level.clipped
        self.frames += 1
        return level

    @property
    def power_dbm0(self) -> float:
        return _dbm0(self._mean_square)
