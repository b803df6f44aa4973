"""Caller ID for tools: build a message from plain options, render it, analyse a recording.

The ``ponte dsp`` technician's tool and the line code share these, so a burst rendered for a
country is the one its FXS port sends, and a recording is read the way an FXO port reads it.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from firmware.dsp.callerid import dtmf_clip, fsk
from firmware.dsp.callerid.dtmf_clip import DtmfClip, DtmfClipDecoder, DtmfClipError
from firmware.dsp.callerid.messages import (
    Absence,
    CallerIdError,
    CallerIdMessage,
    CallSetup,
    DateTime,
    InvalidMessage,
    MessageWaiting,
    Parameter,
    SdmfCallerId,
    SdmfVmwi,
    encode_message,
    message_type_of,
)
from firmware.dsp.pcm import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from firmware.dsp.profiles import CallerIdSpec

MESSAGE_FORMATS: Final = ("sdmf", "mdmf", "etsi", "vmwi-on", "vmwi-off", "sdmf-vmwi-on", "dtmf")
FSK_DETECT_MIN_RATIO: Final = 2.0  # one standard's tones must carry twice the other's power

Result = CallerIdMessage | CallerIdError | DtmfClip | DtmfClipError


def build_message(
    fmt: str,
    *,
    number: str | None = None,
    name: str | None = None,
    date: str | None = None,
    absence: str | None = None,
    redirecting: str | None = None,
    dtmf_format: str | None = None,
) -> CallerIdMessage | DtmfClip:
    """A message from command-line style options; raises ``InvalidMessage`` naming the fault.

    ``date`` is MMDDhhmm; ``absence`` is ``private`` or ``unavailable``; ``dtmf_format`` (for
    ``fmt="dtmf"``) is one of :data:`dtmf_clip.FORMATS`.
    """
    if fmt not in MESSAGE_FORMATS:
        raise InvalidMessage(f"unknown caller ID format {fmt!r}; use one of {MESSAGE_FORMATS}")
    reason = None
    if absence is not None:
        try:
            reason = {"private": Absence.PRIVATE, "unavailable": Absence.UNAVAILABLE}[absence]
        except KeyError:
            raise InvalidMessage(f"absence must be private or unavailable: {absence!r}") from None
    when = DateTime.from_bytes(date.encode()) if date else None
    number = number or None
    if fmt == "dtmf":
        if dtmf_format is None:
            raise InvalidMessage("DTMF caller ID needs its national format (A...C, A...#, ...)")
        if reason is not None and number is None:
            return DtmfClip.withheld(dtmf_format, reason)
        return DtmfClip(dtmf_format, number=number, redirecting_number=redirecting)
    if fmt in ("vmwi-on", "vmwi-off"):
        return MessageWaiting(active=fmt == "vmwi-on", date_time=when)
    if fmt == "sdmf-vmwi-on":
        return SdmfVmwi(True)
    if fmt == "sdmf":
        if when is None:
            raise InvalidMessage("SDMF always carries the date and time (--date MMDDhhmm)")
        return SdmfCallerId(when, number=number, absence=reason if number is None else None)
    return CallSetup(
        date_time=when,
        number=number,
        number_absence=reason if number is None else None,
        name=name or None,
        name_absence=reason if not name and reason is not None else None,
        redirecting_number=redirecting,
    )


def render(
    msg: CallerIdMessage | DtmfClip,
    *,
    standard: fsk.FskStandard = "bell202",
    spec: CallerIdSpec | None = None,
    level_dbm0: float = fsk.DEFAULT_LEVEL_DBM0,
    call_waiting: bool = False,
    rate: int = SAMPLE_RATE,
) -> Pcm:
    """The audio of ``msg``: FSK (seizure and mark lengths from ``spec`` when given) or DTMF."""
    if isinstance(msg, DtmfClip):
        return dtmf_clip.dtmf_clip_signal(msg, rate=rate)
    if spec is not None and spec.fsk:
        standard = "v23" if spec.standard == "v23" else "bell202"
    p = fsk.params_for(standard)
    seizure, marks = p.seizure_bits, p.mark_bits
    if spec is not None and spec.fsk and spec.mark_bits > 0:
        seizure, marks = spec.seizure_bits, spec.mark_bits
    if call_waiting:
        seizure, marks = 0, p.cidcw_mark_bits
    return fsk.fsk_modulate(
        encode_message(msg),
        standard=standard,
        level_dbm0=level_dbm0,
        seizure_bits=seizure,
        mark_bits=marks,
        rate=rate,
    )


def detect_fsk_standard(pcm: npt.ArrayLike, rate: int = SAMPLE_RATE) -> fsk.FskStandard | None:
    """Which FSK flavour a recording holds, by the power at each standard's two tones."""
    x = np.asarray(pcm, dtype=np.float64)
    if x.size < rate // 50:
        return None
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / rate)

    def power(f: float) -> float:
        band = (freqs > f - 40) & (freqs < f + 40)
        return float(spectrum[band].sum())

    bell = power(fsk.BELL202_MARK_HZ) + power(fsk.BELL202_SPACE_HZ)
    v23 = power(fsk.V23_MARK_HZ) + power(fsk.V23_SPACE_HZ)
    if bell > FSK_DETECT_MIN_RATIO * v23:
        return "bell202"
    if v23 > FSK_DETECT_MIN_RATIO * bell:
        return "v23"
    return None


@dataclass(frozen=True, slots=True)
class Finding:
    """One caller ID result in a recording, reported ``at_ms`` (when it ended)."""

    at_ms: float
    signalling: str  # "bell202", "v23" or "dtmf A...C" etc.
    result: Result


def analyse(
    pcm: npt.ArrayLike,
    *,
    rate: int = SAMPLE_RATE,
    standard: Literal["bell202", "v23", "auto"] = "auto",
    dtmf_format: str | None = None,
) -> list[Finding]:
    """Every FSK message (or error) and, with ``dtmf_format``, every DTMF caller ID."""
    x = np.asarray(pcm)
    chosen = detect_fsk_standard(x, rate) if standard == "auto" else standard
    receivers: list[tuple[str, fsk.FskDemodulator | DtmfClipDecoder]] = []
    if chosen is not None:
        receivers.append((chosen, fsk.FskDemodulator(chosen, rate)))
    if dtmf_format is not None:
        receivers.append((f"dtmf {dtmf_format}", DtmfClipDecoder(dtmf_format, rate)))
    found: list[Finding] = []
    frame = rate * FRAME_SAMPLES // SAMPLE_RATE
    for label, rx in receivers:
        for i in range(0, len(x), frame):
            at_ms = min(i + frame, len(x)) * 1000 / rate
            found += [Finding(at_ms, label, r) for r in rx.feed(x[i : i + frame])]
        found += [Finding(len(x) * 1000 / rate, label, r) for r in rx.flush()]
    return sorted(found, key=lambda f: f.at_ms)


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, DateTime):
        return str(value)
    if isinstance(value, Parameter):
        return {"type": value.type, "value": value.value.hex()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def to_dict(result: Result) -> dict[str, object]:
    """A JSON-ready description: the kind, the fields, and whether the checksum held."""
    if isinstance(result, CallerIdError):
        return {
            "kind": "error",
            "error": type(result).__name__,
            "reason": result.reason,
            "checksum": "bad" if type(result).__name__ == "ChecksumError" else "n/a",
            "data": result.data.hex(),
        }
    fields = {
        f.name: _plain(getattr(result, f.name))
        for f in dataclasses.fields(result)
        if getattr(result, f.name) not in (None, ())
    }
    if isinstance(result, DtmfClip):
        fields["digits"] = result.to_digits()
        if result.absence is not None:
            fields["absence"] = result.absence.name.lower()
        return {"kind": "dtmf", "fields": fields}
    return {
        "kind": type(result).__name__,
        "message_type": f"0x{message_type_of(result):02X}",
        "checksum": "ok",
        "fields": fields,
    }
