"""Everything an analogue line listens for, per 20 ms frame, in one object.

:class:`LineReceiver` runs the DTMF detector, the caller ID FSK demodulator and the
call-progress detector on each received frame and measures its level, converting the frame
and computing its power once for all of them.  It is what the FXO port's receive path (and
the per-line cost in ``bench/bench_dsp.py``) uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from firmware.dsp.callerid import CallerIdError, CallerIdMessage, FskDemodulator, FskStandard
from firmware.dsp.dtmf import DtmfDetector, DtmfEvent
from firmware.dsp.levels import Level, level_of
from firmware.dsp.pcm import SAMPLE_RATE
from firmware.dsp.profiles import CountryProfile
from firmware.dsp.progress import MAX_FRAME, CallProgressDetector, ProgressError, ProgressEvent

DEFAULT_FSK: Final[FskStandard] = "bell202"


@dataclass(frozen=True, slots=True)
class Received:
    """What one frame carried."""

    level: Level
    dtmf: list[DtmfEvent] = field(default_factory=list)
    callerid: list[CallerIdMessage | CallerIdError] = field(default_factory=list)
    progress: list[ProgressEvent] = field(default_factory=list)


class LineReceiver:
    """DTMF + caller ID + call progress + level meter for one line (sans-IO)."""

    def __init__(
        self,
        profile: CountryProfile,
        rate: int = SAMPLE_RATE,
        *,
        callerid: bool = True,
        dtmf: bool = True,
    ) -> None:
        self.profile = profile
        self.progress = CallProgressDetector(profile, rate)
        self.dtmf = DtmfDetector(rate) if dtmf else None
        standard: FskStandard = "v23" if profile.callerid.standard == "v23" else DEFAULT_FSK
        self.fsk = FskDemodulator(standard, rate) if callerid and profile.callerid.fsk else None

    def feed(self, frame: npt.ArrayLike) -> Received:
        arr = np.asarray(frame)
        if arr.ndim != 1 or arr.dtype != np.int16:
            raise ProgressError(f"expected 1-D int16 PCM, got {arr.dtype} shape {arr.shape}")
        if arr.size == 0 or arr.size > MAX_FRAME:
            raise ProgressError(f"frame of {arr.size} samples is not in 1..{MAX_FRAME}")
        x = arr.astype(np.float64)
        level, total = level_of(x)
        return Received(
            level,
            self.dtmf.feed(arr) if self.dtmf is not None else [],
            self.fsk.feed_samples(x, total * x.size) if self.fsk is not None else [],
            self.progress.feed_samples(x, total),
        )

    def reset(self) -> None:
        self.progress.reset()
        if self.dtmf is not None:
            self.dtmf.reset()
        if self.fsk is not None:
            self.fsk.reset()
