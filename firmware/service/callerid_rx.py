"""On-hook caller-ID reception per country profile: FSK (Bell 202 / V.23) or DTMF.

One receiver for both ends of the simulated world: the appliance's FXO ports decode what the
exchange sends, and the simulated telephones decode what the appliance's FXS ports send.
Results are plain :class:`Heard` values (number, name, date or the reason it failed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from firmware.dsp.callerid import (
    CallerIdError,
    CallerIdMessage,
    CallSetup,
    DtmfClip,
    DtmfClipDecoder,
    DtmfClipError,
    FskDemodulator,
    SdmfCallerId,
)
from firmware.dsp.profiles import CountryProfile


@dataclass(frozen=True, slots=True)
class Heard:
    """One decoded caller ID, or why a burst could not be decoded."""

    number: str | None = None
    name: str | None = None
    date: str | None = None  # MMDDhhmm
    error: str | None = None


def heard(result: CallerIdMessage | CallerIdError | DtmfClip | DtmfClipError) -> Heard | None:
    """A decoder result as :class:`Heard`; None for messages that carry no identity (VMWI)."""
    match result:
        case CallerIdError():
            return Heard(error=str(result))
        case DtmfClip():
            return Heard(number=result.number or result.redirecting_number)
        case CallSetup():
            date = result.date_time.to_bytes().decode() if result.date_time else None
            return Heard(number=result.number, name=result.name, date=date)
        case SdmfCallerId():
            return Heard(number=result.number, date=result.date_time.to_bytes().decode())
    return None


class CallerIdReceiver:
    """Feed 20 ms frames of a line heard on hook; returns what was decoded."""

    def __init__(self, profile: CountryProfile, rate: int = 8000) -> None:
        spec = profile.callerid
        self.standard = spec.standard
        self._fsk: FskDemodulator | None = None
        self._dtmf: DtmfClipDecoder | None = None
        if spec.standard == "dtmf":
            assert spec.dtmf_format is not None  # the profile validates this
            self._dtmf = DtmfClipDecoder(spec.dtmf_format, rate)
        else:
            self._fsk = FskDemodulator("v23" if spec.standard == "v23" else "bell202", rate)

    def reset(self) -> None:
        if self._fsk is not None:
            self._fsk.reset()
        if self._dtmf is not None:
            self._dtmf.reset()

    def feed(self, frame: npt.NDArray[np.int16]) -> list[Heard]:
        results: list[CallerIdMessage | CallerIdError | DtmfClip | DtmfClipError]
        if self._fsk is not None:
            results = list(self._fsk.feed(frame))
        else:
            assert self._dtmf is not None
            results = list(self._dtmf.feed(frame))
        return [h for r in results if (h := heard(r)) is not None]
