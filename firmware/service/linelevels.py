"""Live audio levels of one line, for the console's meters (``ports.levels``).

The port's media loop calls :meth:`LineLevels.heard` and :meth:`LineLevels.played` once
per 20 ms frame from its own thread; the API reads :meth:`LineLevels.snapshot` from the
asyncio side.  Each direction keeps a smoothed mean square and a peak-hold of the smoothed
level, plain floats the loop rebinds once per frame (atomic under the GIL, so no lock).
Nothing is allocated per frame: the samples are copied into a float64 scratch buffer
made once, and the mean square is one dot product.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from firmware.dsp.levels import RMS_0DBM0

# A VU-style meter: 300 ms integration (IEC 60268-17 specifies 300 ms for VU meters),
# i.e. an exponential average with a time constant of 15 frames of 20 ms.
TAU_FRAMES: Final = 15.0
# Peak-hold: the highest smoothed level stays up 1.5 s, then decays at 20 dB/s (the
# IEC 60268-10 type II peak programme meter falls 20 dB in 1.4 to 2.0 s).
HOLD_FRAMES: Final = 75
DECAY_DB_PER_FRAME: Final = 20.0 * 0.020
_DECAY: Final = 10 ** (-DECAY_DB_PER_FRAME / 10)  # the same, as a factor on mean square
# The meter's floor: quieter than any idle line (~-70 dBm0 for A-law idle noise).
FLOOR_DBM0: Final = -80.0
_REF: Final = RMS_0DBM0**2
_PCM: Final = np.dtype("<i2")  # made once: np.frombuffer parses a dtype string each call


class _Direction:
    __slots__ = ("alpha", "held", "held_frames", "mean_square", "scratch")

    def __init__(self, samples: int) -> None:
        self.alpha = 1.0 / TAU_FRAMES
        self.mean_square = 0.0
        self.held = 0.0  # peak-hold, kept as a mean square: no logarithm per frame
        self.held_frames = 0
        self.scratch = np.zeros(samples, dtype=np.float64)

    def feed(self, frame: bytes) -> None:
        pcm = np.frombuffer(frame, dtype=_PCM)
        x = self.scratch
        if len(pcm) != len(x):  # a short frame: not expected from a card, never crash on it
            return
        x[:] = pcm
        ms = float(np.dot(x, x)) / len(x)
        level = self.mean_square = self.mean_square + self.alpha * (ms - self.mean_square)
        if level >= self.held:
            self.held = level
            self.held_frames = 0
        elif self.held_frames < HOLD_FRAMES:
            self.held_frames += 1
        else:
            self.held = max(level, self.held * _DECAY)

    @property
    def dbm0(self) -> float:
        return _dbm0(self.mean_square)

    @property
    def held_dbm0(self) -> float:
        return _dbm0(self.held)


def _dbm0(mean_square: float) -> float:
    if mean_square <= 0.0:
        return FLOOR_DBM0
    return max(10 * math.log10(mean_square / _REF), FLOOR_DBM0)


class LineLevels:
    """Smoothed level and peak-hold of what a line hears (rx) and what it plays (tx)."""

    def __init__(self, samples_per_frame: int) -> None:
        self._rx = _Direction(samples_per_frame)
        self._tx = _Direction(samples_per_frame)
        self.frames = 0

    def heard(self, frame: bytes) -> None:
        """Media thread: one frame the line card read from the line."""
        self._rx.feed(frame)
        self.frames += 1

    def played(self, frame: bytes) -> None:
        """Media thread: one frame written to the line."""
        self._tx.feed(frame)

    def snapshot(self) -> dict[str, float | int]:
        """Any thread: the levels now, in dBm0 rounded to 0.1 dB (floor ``FLOOR_DBM0``)."""
        return {
            "rx_dbm0": round(self._rx.dbm0, 1),
            "rx_peak_dbm0": round(self._rx.held_dbm0, 1),
            "tx_dbm0": round(self._tx.dbm0, 1),
            "tx_peak_dbm0": round(self._tx.held_dbm0, 1),
            "floor_dbm0": FLOOR_DBM0,
            "frames": self.frames,
        }


__all__ = ["FLOOR_DBM0", "LineLevels"]
