"""What the simulator needs from signal processing, as small interfaces.

``drivers`` may not import ``firmware``, yet the conformance-grade tone plans, caller ID and
detectors live in ``firmware.dsp``.  So the simulator asks a :class:`SignalKit` for them:

- :meth:`SignalKit.exchange` -- a country's central-office behaviour (tone renderers, ring
  cadence, disconnect method, flash, and the caller-ID burst renderer);
- :meth:`SignalKit.dtmf_detector` -- digits from 20 ms frames (the card's and the exchange's
  DTMF receivers);
- :meth:`SignalKit.caller_id_receiver` -- what a telephone's caller-ID display decodes;
- :meth:`SignalKit.call_waiting_receiver` -- a type II telephone off hook: it hears the CPE
  alerting signal, asks for its ACK digit to be sent, then decodes the burst.

:data:`BUILTIN` keeps ``drivers`` self-contained: the five small tone tables of
:mod:`drivers.sim.country`, the toy Goertzel detector of :mod:`drivers.sim.tones`, and no
caller ID at all.  ``firmware.service.simkit`` builds a kit from ``firmware.dsp`` for every
country profile; ``ponte sim start`` uses that one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from drivers.sim.country import CountryTones
from drivers.sim.country import country as builtin_country
from drivers.sim.endpoint import SimError
from drivers.sim.tones import DtmfDetector, Pcm, ToneSource

MAX_CALLER_ID_DIGITS = 20  # longest number the exchange accepts for --caller-id
MAX_CALLER_ID_NAME = 50  # ETSI EN 300 659-3 and GR-30-CORE cap the name parameter lower still
MAX_BURST_S = 10.0  # a caller-ID burst longer than this is a renderer bug


class ToneRenderer(Protocol):
    """Endless samples of one call-progress tone, phase-continuous across reads."""

    def read(self, n: int) -> Pcm: ...


class DigitDetector(Protocol):
    """DTMF digits from consecutive 20 ms frames: ``(digit, duration_ms)`` as each ends."""

    def feed(self, frame: Pcm) -> list[tuple[str, int]]: ...


@dataclass(frozen=True, slots=True)
class DecodedCallerId:
    """What a caller-ID receiver made of a burst: the identity, or why it failed."""

    number: str | None = None
    name: str | None = None
    date: str | None = None  # MMDDhhmm as sent
    error: str | None = None


class CallerIdReceiver(Protocol):
    """A caller-ID decoder fed the line's audio frame by frame."""

    def feed(self, frame: Pcm) -> list[DecodedCallerId]: ...


ACK_DIGITS = "AD"  # SR-TSV-002476: 'D' from a non-ADSI telephone, 'A' from an ADSI one


@dataclass(frozen=True, slots=True)
class SendAck:
    """A type II telephone heard the alerting signal: it sends ``digit`` now."""

    digit: str


@dataclass(frozen=True, slots=True)
class NoBurst:
    """The telephone acknowledged, but no caller-ID burst followed."""


class CallWaitingReceiver(Protocol):
    """A type II (caller ID on call waiting) decoder fed the off-hook line frame by frame."""

    def feed(self, frame: Pcm) -> list[SendAck | NoBurst | DecodedCallerId]: ...


class Alerting(enum.Enum):
    """Where the exchange puts caller ID relative to ringing (EN 300 659-1, GR-30-CORE)."""

    AFTER_FIRST_RING = "ring"  # in the silence after the first ring (Bell 202 style)
    POLARITY_REVERSAL_DTAS = "pr_dtas"  # line reversal, dual-tone alert, data, ringing
    DTAS = "dtas"  # dual-tone alert, data, ringing
    RING_PULSE = "rpas"  # a short ring pulse, data, ringing
    POLARITY_REVERSAL = "pr"  # line reversal, data, ringing (DTMF caller ID)


@dataclass(frozen=True, slots=True)
class CallerIdBurst:
    """One rendered caller-ID transmission and where it goes on the line.

    ``alert`` is the DT-AS tone (empty if the alerting has none); ``delay_ms`` runs from the
    end of the alerting event (first ring, DT-AS, ring pulse or reversal) to the first
    sample of ``data``; ringing follows ``data_to_ring_ms`` after the data ends.
    """

    data: Pcm
    alerting: Alerting
    delay_ms: int
    data_to_ring_ms: int
    alert: Pcm | None = None
    pr_to_alert_ms: int = 0  # reversal to DT-AS, or reversal to data for POLARITY_REVERSAL
    ring_pulse_ms: int = 0  # RP-AS length

    def __post_init__(self) -> None:
        if len(self.data) == 0 or len(self.data) > MAX_BURST_S * 8000:
            raise SimError(f"caller-ID burst of {len(self.data)} samples")
        if self.delay_ms < 0 or self.data_to_ring_ms < 0 or self.pr_to_alert_ms < 0:
            raise SimError("caller-ID timing must not be negative")
        if self.alerting is Alerting.RING_PULSE and self.ring_pulse_ms <= 0:
            raise SimError("ring-pulse alerting needs ring_pulse_ms")


CallerIdRenderer = Callable[[str | None, str | None, str | None], CallerIdBurst]
"""(number, name, date MMDDhhmm) -> the country's burst; raises ValueError on bad input."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """A country's central office as the simulator plays it."""

    code: str
    dial: Callable[[], ToneRenderer]
    ringback: Callable[[], ToneRenderer]
    busy: Callable[[], ToneRenderer]
    congestion: Callable[[], ToneRenderer]
    ring_cadence: tuple[tuple[int, int], ...]
    flash_ms: int  # the handset's hook flash (timed break recall)
    # How the exchange tells a line the far end hung up: "loop-drop" (calling party
    # control open loop, North America and the UK) or "tone" (busy tone, most of Europe).
    disconnect: str
    caller_id: CallerIdRenderer | None = None  # None: the number is kept, nothing is sent

    def __post_init__(self) -> None:
        if not self.ring_cadence or any(on <= 0 or off < 0 for on, off in self.ring_cadence):
            raise SimError(f"{self.code}: bad ring cadence {self.ring_cadence}")
        if self.disconnect not in ("loop-drop", "tone", "reversal"):
            raise SimError(f"{self.code}: unknown disconnect method {self.disconnect!r}")


class SignalKit(Protocol):
    def exchange(self, country: str) -> Exchange: ...

    def dtmf_detector(self) -> DigitDetector: ...

    def caller_id_receiver(self, country: str) -> CallerIdReceiver | None: ...

    def call_waiting_receiver(self, country: str, ack_digit: str) -> CallWaitingReceiver | None: ...


def exchange_from_tones(tones: CountryTones) -> Exchange:
    return Exchange(
        tones.code,
        dial=lambda: ToneSource(tones.dial),
        ringback=lambda: ToneSource(tones.ringback),
        busy=lambda: ToneSource(tones.busy),
        congestion=lambda: ToneSource(tones.busy),
        ring_cadence=tones.ring_cadence,
        flash_ms=tones.flash_ms,
        disconnect=tones.disconnect,
    )


class BuiltinKit:
    """The simulator's own small tables and toy detector; no caller ID."""

    def exchange(self, country: str) -> Exchange:
        try:
            return exchange_from_tones(builtin_country(country))
        except ValueError as exc:
            raise SimError(str(exc)) from None

    def dtmf_detector(self) -> DigitDetector:
        return DtmfDetector()

    def caller_id_receiver(self, country: str) -> CallerIdReceiver | None:
        return None

    def call_waiting_receiver(self, country: str, ack_digit: str) -> CallWaitingReceiver | None:
        return None


BUILTIN: SignalKit = BuiltinKit()
