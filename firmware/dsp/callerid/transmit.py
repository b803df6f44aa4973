"""Caller ID as an exchange sends it to a telephone: on-hook bursts, VMWI and type II.

One renderer for both places that play the exchange: the appliance's FXS ports (towards the
phones plugged into them) and the simulator's central office (towards the appliance's FXO
ports).  Sans-IO: an identity, the time and a country's :class:`CallerIdSpec` in; the audio
and where it goes relative to ringing out (:class:`OnHookBurst`).  Who plays it, and who
reverses the line or rings the bell at the right moments, is the caller's business.

Layout of an on-hook transmission, from the *alerting event* on (EN 300 659-1 §6.1,
GR-30-CORE §3, BT SIN 227):

============================  =================================================================
``ring`` (Bell, DE, AU...)    first ring, ``delay_ms`` of silence, data; ringing continues
``pr_dtas`` (GB, ITU, ZA)     line reversal, ``pr_to_alert_ms``, DT-AS, ``delay_ms``, data,
                              ``data_to_ring_ms``, then the line back to normal and ringing
``dtas``                      DT-AS, ``delay_ms``, data, ``data_to_ring_ms``, ringing
``rpas`` (FR), ``ntt_car``    a ring pulse of ``ring_pulse_ms``, ``delay_ms``, data, ...
``pr`` (DTMF countries)       line reversal, ``delay_ms``, digits, ``data_to_ring_ms``, ...
``none`` (VMWI, Bell)         the data alone, no ringing (GR-30-CORE: VMWI on hook)
============================  =================================================================
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from firmware.dsp.callerid import fsk
from firmware.dsp.callerid.dtmf_clip import NUMBER_MAX as DTMF_NUMBER_MAX
from firmware.dsp.callerid.dtmf_clip import DtmfClip, dtmf_clip_signal
from firmware.dsp.callerid.messages import (
    NAME_MAX,
    NUMBER_MAX,
    Absence,
    CallerIdMessage,
    CallSetup,
    DateTime,
    InvalidMessage,
    MessageWaiting,
    SdmfVmwi,
    encode_message,
)
from firmware.dsp.callerid.type2 import CallWaitingSender, CasStandard, cas_tone
from firmware.dsp.pcm import SAMPLE_RATE, Pcm, ms_to_samples
from firmware.dsp.profiles import CallerIdSpec

# Where inside the profile's data-delay window the data starts: near its start, but not on
# the edge a receiver may treat as too early, and late enough that the ring command the
# alerting event is timed from may reach the card some tens of ms late (engineering choice).
DATA_DELAY_MARGIN_MS: Final = 100
# NTT's CAR is repeated 0.5 s on / 0.5 s off until the terminal answers (NTT "Telephone
# Service Interface", caller ID); we send one pulse and no off-hook handshake.
NTT_CAR_MS: Final = 500
# GR-30-CORE MDMF: the calling name is at most 15 characters on Telcordia lines (ETSI: 50).
TELCORDIA_NAME_MAX: Final = 15
# DTMF caller ID on a line whose country sends FSK: ETSI EN 300 659-1 Annex B's A...C is
# the format most DTMF telephones read.
DEFAULT_DTMF_FORMAT: Final = "A...C"
# FSK on a line whose country sends DTMF: the bit counts of EN 300 659-1 §4.1.
DEFAULT_SEIZURE_BITS: Final = fsk.ETSI_SEIZURE_BITS
DEFAULT_MARK_BITS: Final = fsk.ETSI_MARK_BITS
MAX_TRANSMISSION_MS: Final = 10_000  # cap on one on-hook transmission (the longest is ~4 s)
NUMBER_CHARS: Final = frozenset("0123456789*#+")

# What a line's ``caller_id`` setting may say (firmware.store.schema.CallerIdStandard).
LineSetting = Literal["country", "none", "bell202", "v23", "dtmf"]
LINE_SETTINGS: Final = ("country", "none", "bell202", "v23", "dtmf")


class Alerting(enum.Enum):
    """What announces the data, named as the country profiles name it."""

    AFTER_FIRST_RING = "ring"
    POLARITY_REVERSAL_DTAS = "pr_dtas"
    DTAS = "dtas"
    RING_PULSE = "rpas"
    POLARITY_REVERSAL = "pr"
    NTT_CAR = "ntt_car"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class OnHookBurst:
    """One rendered on-hook transmission and where it goes on the line.

    ``data`` is the FSK burst or the DTMF digits alone; ``alert`` the DT-AS (None without
    one).  ``delay_ms`` runs from the end of the alerting event (first ring, DT-AS, ring
    pulse or reversal) to the first sample of ``data``; ringing may follow
    ``data_to_ring_ms`` after the data ends.
    """

    data: Pcm
    alerting: Alerting
    delay_ms: int
    data_to_ring_ms: int
    alert: Pcm | None = None
    pr_to_alert_ms: int = 0  # reversal to DT-AS
    ring_pulse_ms: int = 0  # RP-AS / CAR length
    rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if len(self.data) == 0:
            raise InvalidMessage("an on-hook transmission needs data")
        if min(self.delay_ms, self.data_to_ring_ms, self.pr_to_alert_ms, self.ring_pulse_ms) < 0:
            raise InvalidMessage("caller ID timing must not be negative")
        if self.ring_pulse and self.ring_pulse_ms <= 0:
            raise InvalidMessage(f"{self.alerting.value} alerting needs ring_pulse_ms")
        if self.duration_ms > MAX_TRANSMISSION_MS:
            raise InvalidMessage(
                f"caller ID transmission of {self.duration_ms} ms, over {MAX_TRANSMISSION_MS}"
            )

    @property
    def reverses_polarity(self) -> bool:
        """The line is reversed for the transmission (and back to normal before ringing)."""
        return self.alerting in (Alerting.POLARITY_REVERSAL_DTAS, Alerting.POLARITY_REVERSAL)

    @property
    def ring_pulse(self) -> bool:
        """A short burst of ringing voltage announces the data."""
        return self.alerting in (Alerting.RING_PULSE, Alerting.NTT_CAR)

    @property
    def before_ring(self) -> bool:
        """The whole transmission comes before ringing starts."""
        return self.alerting is not Alerting.AFTER_FIRST_RING

    @property
    def lead_ms(self) -> int:
        """From the alerting event's start to the DT-AS or the data delay."""
        if self.alerting is Alerting.POLARITY_REVERSAL_DTAS:
            return self.pr_to_alert_ms
        return self.ring_pulse_ms if self.ring_pulse else 0

    @property
    def duration_ms(self) -> int:
        """Length of :meth:`line_audio` (without any ``already_ms``)."""
        return round(len(self.line_audio()) * 1000 / self.rate)

    def line_audio(self, *, already_ms: int = 0) -> Pcm:
        """What the port plays from the start of the alerting event until ringing may start.

        For ``ring`` alerting that is the silence after the first ring and the data (the
        ringing goes on by its cadence); ``already_ms`` of that silence has passed already
        (the line machine's own wait after the first ring).  Every other alerting ends with
        ``data_to_ring_ms`` of silence, so the end of the audio is when ringing may start.
        """
        parts: list[Pcm] = []
        if self.alerting is Alerting.AFTER_FIRST_RING:
            parts.append(self._silence(max(0, self.delay_ms - already_ms)))
            parts.append(self.data)
        else:
            parts.append(self._silence(self.lead_ms))
            if self.alert is not None:
                parts.append(self.alert)
            parts += [self._silence(self.delay_ms), self.data]
            if self.alerting is not Alerting.NONE:
                parts.append(self._silence(self.data_to_ring_ms))
        return np.concatenate(parts)

    def _silence(self, ms: int) -> Pcm:
        return np.zeros(ms_to_samples(ms, self.rate), dtype=np.int16)


def line_spec(spec: CallerIdSpec, setting: str = "country") -> CallerIdSpec | None:
    """The caller ID a line sends: its country's, with the modulation the line asks for.

    ``setting`` is a line's ``caller_id`` configuration: ``country`` keeps the profile's
    scheme, ``none`` sends nothing (None), and a standard replaces the modulation only: the
    alerting and timing stay the country's.
    """
    if setting not in LINE_SETTINGS:
        raise InvalidMessage(f"caller ID setting {setting!r} is not one of {LINE_SETTINGS}")
    if setting == "none":
        return None
    if setting == "country" or setting == spec.standard:
        return spec
    if setting == "dtmf":
        return dataclasses.replace(
            spec, standard="dtmf", protocol="dtmf", dtmf_format=DEFAULT_DTMF_FORMAT
        )
    seizure = spec.seizure_bits if spec.mark_bits > 0 else DEFAULT_SEIZURE_BITS
    marks = spec.mark_bits if spec.mark_bits > 0 else DEFAULT_MARK_BITS
    protocol = "etsi" if spec.protocol == "dtmf" else spec.protocol
    return dataclasses.replace(
        spec,
        standard="bell202" if setting == "bell202" else "v23",
        protocol=protocol,
        dtmf_format=None,
        seizure_bits=seizure,
        mark_bits=marks,
    )


def _fsk_standard(spec: CallerIdSpec) -> fsk.FskStandard:
    return "bell202" if spec.standard == "bell202" else "v23"


def _number(number: str | None, chars: frozenset[str], limit: int) -> str | None:
    """What of ``number`` the signalling can carry: its allowed characters, at most ``limit``."""
    if not number:
        return None
    kept = "".join(c for c in number if c in chars)[:limit]
    return kept or None


def _name(name: str | None, limit: int) -> str | None:
    """The name as ISO 8859-1 printable text of at most ``limit`` characters."""
    if not name:
        return None
    kept = "".join(
        c if c.isprintable() and ord(c) < 0x100 and not 0x7F <= ord(c) < 0xA0 else "?" for c in name
    )
    return kept[:limit] or None


def identity_message(
    spec: CallerIdSpec,
    *,
    number: str | None,
    name: str | None,
    when: DateTime | None,
) -> CallerIdMessage | DtmfClip:
    """The call set-up message (MDMF / ETSI 0x80) or DTMF digits for an identity.

    What the signalling cannot carry is dropped, not refused: DTMF takes digits only and no
    name, a Telcordia name is cut to 15 characters, characters outside ISO 8859-1 become
    ``?``.  Without a number the message says it is unavailable (where the format can).
    """
    if spec.standard == "dtmf":
        fmt = spec.dtmf_format or DEFAULT_DTMF_FORMAT
        digits = _number(number, frozenset("0123456789"), DTMF_NUMBER_MAX)
        if digits is not None:
            return DtmfClip(fmt, number=digits)
        return DtmfClip.withheld(fmt, Absence.UNAVAILABLE)  # raises if the format cannot say
    limit = TELCORDIA_NAME_MAX if spec.protocol == "telcordia" else NAME_MAX
    kept = _number(number, NUMBER_CHARS, NUMBER_MAX)
    return CallSetup(
        date_time=when,
        number=kept,
        number_absence=None if kept is not None else Absence.UNAVAILABLE,
        name=_name(name, limit),
    )


def _data(spec: CallerIdSpec, message: CallerIdMessage | DtmfClip, rate: int) -> Pcm:
    if isinstance(message, DtmfClip):
        return dtmf_clip_signal(message, rate=rate)
    return fsk.fsk_modulate(
        encode_message(message),
        standard=_fsk_standard(spec),
        seizure_bits=spec.seizure_bits,
        mark_bits=spec.mark_bits,
        rate=rate,
    )


def _layout(
    spec: CallerIdSpec, data: Pcm, alerting: Alerting, rate: int, *, delay_ms: int | None = None
) -> OnHookBurst:
    lo, hi = spec.data_delay_ms
    alert = None
    if alerting in (Alerting.POLARITY_REVERSAL_DTAS, Alerting.DTAS):
        alert = cas_tone(standard="etsi", duration_ms=spec.alert_ms, rate=rate)
    pulse = 0
    if alerting is Alerting.NTT_CAR:
        pulse = NTT_CAR_MS
    elif alerting is Alerting.RING_PULSE:
        pulse = spec.alert_ms or 0
    return OnHookBurst(
        data=data,
        alerting=alerting,
        delay_ms=min(hi, lo + DATA_DELAY_MARGIN_MS) if delay_ms is None else delay_ms,
        data_to_ring_ms=spec.data_to_ring_ms,
        alert=alert,
        pr_to_alert_ms=(spec.pr_to_alert_ms or 0)
        if alerting is Alerting.POLARITY_REVERSAL_DTAS
        else 0,
        ring_pulse_ms=pulse,
        rate=rate,
    )


def render_on_hook(
    spec: CallerIdSpec,
    *,
    number: str | None,
    name: str | None = None,
    when: DateTime | None = None,
    rate: int = SAMPLE_RATE,
) -> OnHookBurst:
    """The caller ID an exchange of ``spec`` sends with an incoming call."""
    message = identity_message(spec, number=number, name=name, when=when)
    return _layout(spec, _data(spec, message, rate), Alerting(spec.alerting), rate)


def render_vmwi(
    spec: CallerIdSpec,
    *,
    active: bool,
    count: int | None = None,
    when: DateTime | None = None,
    sdmf: bool = False,
    rate: int = SAMPLE_RATE,
) -> OnHookBurst:
    """Visual message waiting on or off, sent on hook with no ringing after it.

    MDMF / ETSI message waiting (0x82: indicator, message count, date) by default; ``sdmf``
    sends Bell SDMF 0x06 instead (older Bell 202 telephones read only that).  ETSI
    EN 300 659-1 §6.2 announces data not tied to ringing the way it announces caller ID
    (reversal and DT-AS, or a ring pulse); Bell lines send it with no alerting at all
    (GR-30-CORE).  DTMF signalling has no message waiting indication.
    """
    if spec.standard == "dtmf":
        raise InvalidMessage("DTMF caller ID has no message waiting indication; use an FSK one")
    if count is not None and not 0 <= count <= 0xFF:
        raise InvalidMessage(f"message count must be 0..255, got {count!r}")
    message: CallerIdMessage
    if sdmf:
        if spec.standard != "bell202":
            raise InvalidMessage("SDMF message waiting is Bell 202 only")
        message = SdmfVmwi(active)
    else:
        message = MessageWaiting(
            active=active, date_time=when, message_count=count if active else None
        )
    alerting = Alerting(spec.alerting)
    if alerting is Alerting.AFTER_FIRST_RING:
        return _layout(spec, _data(spec, message, rate), Alerting.NONE, rate, delay_ms=0)
    return _layout(spec, _data(spec, message, rate), alerting, rate)


@dataclass(frozen=True, slots=True)
class CallWaitingBurst:
    """Type II caller ID: the alerting signal to send, then (after the ACK) the burst."""

    cas: CasStandard
    burst: Pcm
    rate: int = SAMPLE_RATE

    def sender(self) -> CallWaitingSender:
        """The handshake that plays it (CAS, wait for 'A'/'D', then the burst)."""
        return CallWaitingSender(self.burst, cas_standard=self.cas, rate=self.rate)


def render_call_waiting(
    spec: CallerIdSpec,
    *,
    number: str | None,
    name: str | None = None,
    when: DateTime | None = None,
    rate: int = SAMPLE_RATE,
    cas: CasStandard | None = None,
) -> CallWaitingBurst:
    """Caller ID on call waiting: FSK with no seizure and a short mark (SR-TSV-002476,
    EN 300 659-2), behind a Bell CAS or an ETSI DT-AS as ``cas`` says (default: as the
    line's protocol has it).

    DTMF caller ID has no off-hook form: a line that sends DTMF gets the V.23 burst (as
    EN 300 659-2 specifies for every ETSI network).
    """
    fsk_spec = line_spec(spec, "v23") if spec.standard == "dtmf" else spec
    assert fsk_spec is not None
    message = identity_message(fsk_spec, number=number, name=name, when=when)
    assert not isinstance(message, DtmfClip)
    standard = _fsk_standard(fsk_spec)
    burst = fsk.fsk_modulate(
        encode_message(message),
        standard=standard,
        seizure_bits=0,
        mark_bits=fsk.params_for(standard).cidcw_mark_bits,
        rate=rate,
    )
    if cas is None:
        cas = "bell" if fsk_spec.protocol == "telcordia" else "etsi"
    return CallWaitingBurst(cas, burst, rate)
