"""Sample format and frame constants shared by every signal-processing module.

Line audio is 16-bit signed linear PCM at 8 kHz in 20 ms frames (16 kHz where wideband
applies).  Everything in ``firmware.dsp`` takes and returns numpy arrays of that format.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

SAMPLE_RATE: Final = 8000  # ITU-T G.711 narrowband sampling rate, Hz
WIDEBAND_RATE: Final = 16000  # ITU-T G.722 sampling rate, Hz
FRAME_MS: Final = 20  # pjmedia's default ptime; also the line card's PCM frame
FRAME_SAMPLES: Final = SAMPLE_RATE * FRAME_MS // 1000  # 160
INT16_MAX: Final = 32767
INT16_MIN: Final = -32768

Pcm = npt.NDArray[np.int16]
Samples = npt.NDArray[np.float64]


def ms_to_samples(ms: float, rate: int = SAMPLE_RATE) -> int:
    """Whole samples in ``ms`` milliseconds at ``rate`` (rounded to nearest)."""
    return round(ms * rate / 1000)


def to_pcm(x: npt.ArrayLike) -> Pcm:
    """Round and saturate a float signal to int16 (saturation, not wrap-around)."""
    arr = np.asarray(x, dtype=np.float64)
    return np.clip(np.rint(arr), INT16_MIN, INT16_MAX).astype(np.int16)


def to_float(pcm: npt.ArrayLike) -> Samples:
    """int16 PCM (or any numeric array) as float64 on the same scale."""
    return np.asarray(pcm, dtype=np.float64)
