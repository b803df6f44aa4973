"""Caller ID sent as DTMF digits (DTMF CLIP) in its national variants.

ETSI EN 300 659-1 leaves DTMF CLIP to national specifications (its Annex B points to them), and
several coexist.  The format names are those of the country profiles
(:data:`firmware.dsp.profiles.DTMF_CID_FORMATS`):

``A...C``
    Sweden (Telia), Finland, Belgium, Brazil, India and others:
    ``A<number> [D<redirecting number>] [B<information code>] C``.  Information codes have two
    digits; ``00`` means the number is not available, ``10`` that it is withheld.
``A...#``
    Denmark (TDC) and the Netherlands (KPN): ``A<number>#``, or ``D<code>#`` without a number:
    ``1`` withheld, ``2`` international (not available), ``3`` not available.
``D...C`` / ``D...#``
    Taiwan, Kuwait and some Indian exchanges: ``D<number>C`` (``#`` as the end digit in some).
``...#``
    The oldest Danish/Dutch form: the number and ``#``, with no start digit.

Digits last 70 ms with 70 ms pauses (Telia "Nummerpresentation" specification; TDC the same),
before the first ring.  This module is the format layer; the signal layer uses
:mod:`firmware.dsp.dtmf` (generation and detection by the DTMF owner).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from firmware.dsp import dtmf
from firmware.dsp.callerid.messages import Absence, CallerIdError, InvalidMessage
from firmware.dsp.pcm import SAMPLE_RATE, Pcm, to_pcm

FORMAT_A_C: Final = "A...C"
FORMAT_A_HASH: Final = "A...#"
FORMAT_D_C: Final = "D...C"
FORMAT_D_HASH: Final = "D...#"
FORMAT_HASH: Final = "...#"
FORMATS: Final = (FORMAT_A_C, FORMAT_A_HASH, FORMAT_D_C, FORMAT_D_HASH, FORMAT_HASH)

DIGIT_ON_MS: Final = 70.0  # Telia nummerpresentation spec: tone 70 ms
DIGIT_OFF_MS: Final = 70.0  # ... followed by 70 ms pause
NUMBER_MAX: Final = 20  # EN 300 659-3 CLI length, also above Telia's 15 digits
INFO_UNAVAILABLE_AC: Final = "00"  # A...C: number not available (spandsp adsi.h, Telia)
INFO_PRIVATE_AC: Final = "10"  # A...C: presentation restricted
INFO_PRIVATE_HASH: Final = "1"  # A...#: D1# the caller withheld the number (TDC)
INFO_INTERNATIONAL_HASH: Final = "2"  # A...#: D2# international call, number not available
INFO_UNAVAILABLE_HASH: Final = "3"  # A...#: D3# not available for technical reasons
MAX_DIGITS: Final = 64  # longest digit string any variant can need (cap for decoders)

_ABSENCE_CODES: Final[dict[str, dict[Absence, str]]] = {
    FORMAT_A_C: {Absence.PRIVATE: INFO_PRIVATE_AC, Absence.UNAVAILABLE: INFO_UNAVAILABLE_AC},
    FORMAT_A_HASH: {Absence.PRIVATE: INFO_PRIVATE_HASH, Absence.UNAVAILABLE: INFO_UNAVAILABLE_HASH},
}
_CODE_ABSENCE: Final[dict[str, dict[str, Absence]]] = {
    FORMAT_A_C: {INFO_PRIVATE_AC: Absence.PRIVATE, INFO_UNAVAILABLE_AC: Absence.UNAVAILABLE},
    FORMAT_A_HASH: {
        INFO_PRIVATE_HASH: Absence.PRIVATE,
        INFO_INTERNATIONAL_HASH: Absence.UNAVAILABLE,
        INFO_UNAVAILABLE_HASH: Absence.UNAVAILABLE,
    },
}


class DtmfClipError(CallerIdError):
    """A received DTMF digit string is not caller ID in the expected format."""


def _check_digits(what: str, value: str | None, max_len: int = NUMBER_MAX) -> None:
    if value is None:
        return
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= max_len
        or not (value.isascii() and value.isdigit())
    ):
        raise InvalidMessage(f"{what} must be 1..{max_len} digits 0-9, got {value!r}")


@dataclass(frozen=True, slots=True)
class DtmfClip:
    """One DTMF caller ID: the number, a redirecting number, or a network information code."""

    format: str
    number: str | None = None
    redirecting_number: str | None = None
    info_code: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InvalidMessage(f"unknown DTMF caller ID format {self.format!r}; use {FORMATS}")
        _check_digits("number", self.number)
        _check_digits("redirecting number", self.redirecting_number)
        if self.format == FORMAT_A_C:
            _check_digits("information code", self.info_code, 2)
            if self.info_code is not None and len(self.info_code) != 2:
                raise InvalidMessage(f"A...C information codes have 2 digits: {self.info_code!r}")
            if self.number is None and self.redirecting_number is None and self.info_code is None:
                raise InvalidMessage("an A...C caller ID needs a number, redirect or code")
            return
        if self.redirecting_number is not None:
            raise InvalidMessage(f"format {self.format} cannot carry a redirecting number")
        if self.format == FORMAT_A_HASH:
            _check_digits("information code", self.info_code, 1)
            if (self.number is None) == (self.info_code is None):
                raise InvalidMessage("an A...# caller ID carries a number or a code, not both")
            return
        if self.info_code is not None or self.number is None:
            raise InvalidMessage(f"format {self.format} carries a number and nothing else")

    @classmethod
    def withheld(cls, format: str, absence: Absence) -> DtmfClip:
        """The caller ID that says why there is no number (where the format can say it)."""
        codes = _ABSENCE_CODES.get(format)
        if codes is None:
            raise InvalidMessage(f"format {format} has no way to send a reason for absence")
        return cls(format, info_code=codes[absence])

    @property
    def absence(self) -> Absence | None:
        if self.info_code is None:
            return None
        return _CODE_ABSENCE.get(self.format, {}).get(self.info_code)

    def to_digits(self) -> str:
        f = self.format
        if f == FORMAT_A_C:
            out = "A" + self.number if self.number is not None else ""
            if self.redirecting_number is not None:
                out += "D" + self.redirecting_number
            if self.info_code is not None:
                out += "B" + self.info_code
            return out + "C"
        if f == FORMAT_A_HASH:
            return (
                "A" + self.number if self.number is not None else "D" + str(self.info_code)
            ) + "#"
        number = str(self.number)
        if f == FORMAT_D_C:
            return "D" + number + "C"
        if f == FORMAT_D_HASH:
            return "D" + number + "#"
        return number + "#"

    @classmethod
    def from_digits(cls, digits: str, format: str) -> DtmfClip:
        """Parse a complete digit string; raises :class:`DtmfClipError` naming the fault."""
        raw = digits.encode("ascii", "replace")
        if format not in FORMATS:
            raise InvalidMessage(f"unknown DTMF caller ID format {format!r}; use {FORMATS}")
        if len(digits) > MAX_DIGITS:
            raise DtmfClipError(f"{len(digits)} digits is longer than any caller ID", raw)
        end = "C" if format in (FORMAT_A_C, FORMAT_D_C) else "#"
        if not digits.endswith(end):
            raise DtmfClipError(f"{format} caller ID must end with {end!r}: {digits!r}", raw)
        body = digits[:-1]
        try:
            if format == FORMAT_A_C:
                return cls._parse_a_c(body, raw)
            if format == FORMAT_A_HASH:
                if body[:1] == "A":
                    return cls(format, number=body[1:])
                if body[:1] == "D":
                    return cls(format, info_code=body[1:])
                raise DtmfClipError(f"A...# caller ID must start with 'A' or 'D': {digits!r}", raw)
            if format in (FORMAT_D_C, FORMAT_D_HASH):
                if body[:1] != "D":
                    raise DtmfClipError(f"{format} caller ID must start with 'D': {digits!r}", raw)
                return cls(format, number=body[1:])
            return cls(format, number=body)
        except InvalidMessage as exc:
            raise DtmfClipError(f"{digits!r}: {exc}", raw) from None

    @classmethod
    def _parse_a_c(cls, body: str, raw: bytes) -> DtmfClip:
        fields: dict[str, str] = {}
        key: str | None = None
        for ch in body:
            if ch in "ADB":
                if ch in fields or (key is not None and "ADB".index(ch) <= "ADB".index(key)):
                    raise DtmfClipError(f"field {ch!r} out of order or repeated in A...C", raw)
                key = ch
                fields[ch] = ""
            elif key is None:
                raise DtmfClipError("A...C caller ID must start with 'A', 'D' or 'B'", raw)
            else:
                fields[key] += ch
        return cls(
            FORMAT_A_C,
            number=fields.get("A"),
            redirecting_number=fields.get("D"),
            info_code=fields.get("B"),
        )


# --- signal layer ---------------------------------------------------------------------------

DIGIT_TIMEOUT_MS: Final = 600.0  # a gap this long ends a digit string (digits come every 140 ms)
_START_DIGITS: Final[dict[str, str]] = {
    FORMAT_A_C: "ADB",
    FORMAT_A_HASH: "AD",
    FORMAT_D_C: "D",
    FORMAT_D_HASH: "D",
    FORMAT_HASH: "0123456789",
}


def dtmf_clip_signal(
    clip: DtmfClip,
    *,
    level_dbm0: float = dtmf.DEFAULT_LEVEL_DBM0,
    on_ms: float = DIGIT_ON_MS,
    off_ms: float = DIGIT_OFF_MS,
    rate: int = SAMPLE_RATE,
) -> Pcm:
    """The DTMF digits of ``clip`` (the exchange sends them before the first ring)."""
    return dtmf.generate_dtmf(
        clip.to_digits(), level_dbm0=level_dbm0, on_ms=on_ms, off_ms=off_ms, rate=rate
    )


def generate_dtmf_clip(
    number: str,
    *,
    variant: str = FORMAT_A_C,
    level_dbm0: float = dtmf.DEFAULT_LEVEL_DBM0,
    rate: int = SAMPLE_RATE,
) -> Pcm:
    """The DTMF caller ID of ``number`` in ``variant`` (the form ``ponte dsp`` asks for)."""
    return dtmf_clip_signal(DtmfClip(variant, number=number), level_dbm0=level_dbm0, rate=rate)


class DtmfClipDecoder:
    """Streaming DTMF caller ID receiver for one national ``format``.

    Digits come from :class:`firmware.dsp.dtmf.DtmfDetector`.  A string begins with a start
    digit of the format, ends with its end digit, and is abandoned (reported as an error with
    the digits so far) after ``DIGIT_TIMEOUT_MS`` of silence or ``MAX_DIGITS`` digits.
    """

    def __init__(self, format: str, rate: int = SAMPLE_RATE) -> None:
        if format not in FORMATS:
            raise ValueError(f"unknown DTMF caller ID format {format!r}; use {FORMATS}")
        self.format = format
        self._end = "C" if format in (FORMAT_A_C, FORMAT_D_C) else "#"
        self._detector = dtmf.DtmfDetector(rate)
        self._rate = rate
        self.reset()

    def reset(self) -> None:
        self._detector.reset()
        self._digits: list[str] = []
        self._last_ms = 0.0
        self._samples = 0

    def feed(self, frame: npt.ArrayLike) -> list[DtmfClip | DtmfClipError]:
        pcm = np.asarray(frame)
        if pcm.dtype != np.int16:  # the DTMF detector takes int16 PCM only
            pcm = to_pcm(pcm)
        out: list[DtmfClip | DtmfClipError] = []
        self._samples += len(pcm)
        for event in self._detector.feed(pcm):
            if isinstance(event, dtmf.DtmfStart):
                self._digit(event.digit, event.at_ms, out)
        now_ms = self._samples * 1000 / self._rate
        if self._digits and now_ms - self._last_ms > DIGIT_TIMEOUT_MS:
            out.append(self._abandon("no end digit"))
        return out

    def flush(self) -> list[DtmfClip | DtmfClipError]:
        """Silence long enough to end a digit in progress and time out a partial string."""
        silence = np.zeros(round(self._rate * (DIGIT_TIMEOUT_MS + 200) / 1000), dtype=np.int16)
        return self.feed(silence)

    def _abandon(self, why: str) -> DtmfClipError:
        digits = "".join(self._digits)
        self._digits = []
        return DtmfClipError(f"{why} after {digits!r}", digits.encode("ascii"))

    def _digit(self, digit: str, at_ms: float, out: list[DtmfClip | DtmfClipError]) -> None:
        if self._digits and at_ms - self._last_ms > DIGIT_TIMEOUT_MS:
            out.append(self._abandon("no end digit"))
        self._last_ms = at_ms
        if not self._digits:
            if digit in _START_DIGITS[self.format]:
                self._digits = [digit]
            return
        self._digits.append(digit)
        if digit == self._end:
            digits = "".join(self._digits)
            self._digits = []
            try:
                out.append(DtmfClip.from_digits(digits, self.format))
            except DtmfClipError as exc:
                out.append(exc)
        elif len(self._digits) >= MAX_DIGITS:
            out.append(self._abandon(f"more than {MAX_DIGITS} digits"))
