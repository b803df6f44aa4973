"""Between the line card and the line state machines: one ``PortController`` per port.

Sans-IO like the machines it wraps: card messages and ``now`` in; card commands, tone
changes and reports out.  The service's I/O shell (``appliance.py``) sends the commands,
hands tone changes to the port's media loop and publishes the reports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from drivers.linecard import protocol as card
from firmware.dsp.callerid.type2 import ACK_DIGITS
from firmware.dsp.profiles import CountryProfile
from firmware.dsp.tones import ToneSpec
from firmware.lines import messages as m
from firmware.lines.cardclock import CardClock
from firmware.lines.errors import InvalidValue
from firmware.lines.fxo import FxoPort
from firmware.lines.fxs import FxsPort
from firmware.lines.timing import CallerIdMode, LineTiming

log = logging.getLogger(__name__)

# Receiver off-hook ("howler") tone: 1400+2060+2450+2600 Hz, 0.1 s on / 0.1 s off,
# Telcordia GR-506-CORE §17.2.8.  No national profile in E.180 Suppl. 2 defines one, so
# every country gets this; the level is high on purpose (it must be heard off the ear).
HOWLER: Final = ToneSpec.parse("1400+2060+2450+2600/100,0/100", -3.0, name="howler")

# lines.Tone -> profile tone names, first match wins (recall dial tone is a stutter).
TONE_NAMES: Final[dict[m.Tone, tuple[str, ...]]] = {
    m.Tone.DIAL: ("dial",),
    m.Tone.RECALL_DIAL: ("recall_dial", "stutter_dial"),
    m.Tone.RINGBACK: ("ringback",),
    m.Tone.BUSY: ("busy",),
    m.Tone.CONGESTION: ("congestion", "busy"),
    m.Tone.CALL_WAITING: ("call_waiting",),
}


def tone_spec(profile: CountryProfile, tone: m.Tone) -> ToneSpec:
    if tone is m.Tone.HOWLER:
        return HOWLER
    for name in TONE_NAMES[tone]:
        if name in profile.tones:
            return profile.tones[name]
    raise KeyError(f"{profile.code} has no tone for {tone.value}")


@dataclass(frozen=True, slots=True)
class ToneChange:
    """The port's media loop should play ``spec`` from now on (None: silence)."""

    port: int
    spec: ToneSpec | None


@dataclass(frozen=True, slots=True)
class Report:
    """Something call control and the event stream care about."""

    port: int
    report: m.Report


@dataclass(frozen=True, slots=True)
class CardCommand:
    message: card.Message


@dataclass(frozen=True, slots=True)
class CallerIdStart:
    """FXS: send ``caller_id`` now (``already_ms`` of its data delay passed on the machine's
    timer); the machine waits for ``CallerIdSent`` (``firmware.service.callerid_tx``)."""

    port: int
    caller_id: m.CallerId
    off_hook: bool = False
    already_ms: int = 0


@dataclass(frozen=True, slots=True)
class CallerIdStop:
    """FXS: stop the caller ID transmission in progress at once."""

    port: int


Action = ToneChange | Report | CardCommand | CallerIdStart | CallerIdStop

ACK_GUARD_OPEN: Final = -1  # guard_acknowledgement(): for as long as the handshake runs


class PortController:
    """One port's line machine plus the translation to and from the wire protocol."""

    def __init__(
        self,
        port: int,
        kind: card.PortKind,
        profile: CountryProfile,
        clock: CardClock,
        *,
        caller_id: bool = True,
    ) -> None:
        self.port = port
        self.kind = kind
        self.profile = profile
        self._clock = clock
        # A line configured to send no caller ID rings at once, as if its country had none.
        timing = (
            LineTiming.from_profile(profile)
            if caller_id
            else LineTiming.from_profile(profile, caller_id_mode=CallerIdMode.NONE)
        )
        self.timing = timing
        self.machine: FxsPort | FxoPort = (
            FxsPort(timing) if kind is card.PortKind.FXS else FxoPort(timing)
        )
        self.tone: m.Tone | None = None
        # New voicemail waiting: dial tone becomes the stutter dial tone (firmware.service.apps).
        self.message_waiting = False
        # Type II caller ID: the phone's ACK digit is for us, not for call control (it would
        # go to a SIP far end as a DTMF event).  None: no guard; ACK_GUARD_OPEN: while the
        # handshake runs; else until this host time (ms), for a card that reports late.
        self._ack_guard_until: int | None = None

    @property
    def state(self) -> str:
        state: str = self.machine.state.value
        return state

    def next_deadline(self) -> int | None:
        return self.machine.next_deadline()

    def on_card(self, message: card.Message, now: int) -> list[Action]:
        """A card event for this port; unknown kinds of event are logged, not fatal."""
        event = self._event(message, now)
        if event is None:
            return []
        return self._run(event, now)

    def on_digit(self, digit: str, now: int) -> list[Action]:
        """A DTMF digit from the media loop's detector.

        FXO: a digit heard from the exchange line while seized (the caller at the far end
        pressing keys) goes to call control as ``DigitDialled``; the line machine has no use
        for it.
        """
        if isinstance(self.machine, FxoPort):
            if not self.machine.off_hook:
                return []
            return [Report(self.port, m.DigitDialled(digit, m.DialMethod.DTMF))]
        if self.machine.hook_on or self._swallow_ack(digit, now):
            return []
        return self._run(m.DtmfDigit(digit), now)

    def guard_acknowledgement(self, until: int | None) -> None:
        """Keep type II ACK digits from call control: until ``until`` (host ms), or for as
        long as the handshake runs (``ACK_GUARD_OPEN``)."""
        self._ack_guard_until = until

    @property
    def acknowledgement_guarded(self) -> bool:
        """A type II handshake is running (its ACK digits are kept from call control)."""
        return self._ack_guard_until == ACK_GUARD_OPEN

    def _swallow_ack(self, digit: str, now: int) -> bool:
        until = self._ack_guard_until
        if until is None or digit not in ACK_DIGITS:
            return False
        if until != ACK_GUARD_OPEN and now > until:
            self._ack_guard_until = None
            return False
        log.info("port %d: DTMF %s taken as the type II acknowledgement", self.port, digit)
        return True

    def on_call(self, event: m.FxsEvent | m.FxoEvent, now: int) -> list[Action]:
        """An event from call control (Alert, Connect, Originate ...) for the line machine."""
        return self._run(event, now)

    def on_caller_id(self, number: str | None, name: str | None, now: int) -> list[Action]:
        """FXO: the media loop's caller-ID receiver decoded an identity."""
        if not isinstance(self.machine, FxoPort) or (number is None and name is None):
            return []
        try:
            cid = m.CallerId(number=number, name=name)
        except InvalidValue as exc:  # the far end sent something a CallerId cannot hold
            log.warning("port %d: caller ID not usable: %s", self.port, exc)
            return []
        return self._run(m.CallerIdDetected(cid), now)

    def on_busy(self, now: int) -> list[Action]:
        """FXO: the call-progress detector heard busy or congestion tone."""
        if not isinstance(self.machine, FxoPort) or not self.machine.off_hook:
            return []
        return self._run(m.BusyToneDetected(), now)

    def on_timer(self, now: int) -> list[Action]:
        return self._translate(self.machine.handle_timer(now))

    def _run(self, event: m.FxsEvent | m.FxoEvent, now: int) -> list[Action]:
        # _event only builds events of this port's kind; a wrong one raises in the machine.
        return self._translate(self.machine.handle(event, now))  # type: ignore[arg-type]

    def _event(self, message: card.Message, now: int) -> m.FxsEvent | m.FxoEvent | None:
        match message:
            case card.HookChange(off_hook=off, timestamp_ms=ts) if self.kind is card.PortKind.FXS:
                at = self._clock.to_host(ts, now)
                return m.HookOff(at=at) if off else m.HookOn(at=at)
            case card.Digit() if isinstance(self.machine, FxsPort):
                if self.machine.hook_on or self._swallow_ack(message.char, now):
                    return None
                return m.DtmfDigit(message.char)
            case card.RingDetect(active=on, timestamp_ms=ts) if self.kind is card.PortKind.FXO:
                return m.RingVoltage(on=on, at=self._clock.to_host(ts, now))
            case card.PolarityChange(timestamp_ms=ts) if self.kind is card.PortKind.FXO:
                return m.PolarityReversal(at=self._clock.to_host(ts, now))
            case card.LoopCurrent(present=present, timestamp_ms=ts) if (
                self.kind is card.PortKind.FXO
            ):
                return m.LoopCurrent(present=present, at=self._clock.to_host(ts, now))
        log.debug("port %d: %s not handled by the line machine", self.port, message)
        return None

    def _translate(self, outputs: list[m.Output]) -> list[Action]:
        actions: list[Action] = []
        for out in outputs:
            match out:
                case m.StartTone(tone=tone):
                    if tone is m.Tone.DIAL and self.message_waiting:
                        tone = m.Tone.RECALL_DIAL  # GR-506-CORE: stutter dial tone for MWI
                    self.tone = tone
                    actions.append(ToneChange(self.port, tone_spec(self.profile, tone)))
                case m.StopTone():
                    self.tone = None
                    actions.append(ToneChange(self.port, None))
                case m.StartRinging(cadence=cadence):
                    pairs = tuple(zip(cadence.pattern[::2], cadence.pattern[1::2], strict=True))
                    actions.append(CardCommand(card.Ring(self.port, pairs)))
                case m.StopRinging():
                    actions.append(CardCommand(card.StopRing(self.port)))
                case m.Seize():
                    actions.append(CardCommand(card.Seize(self.port)))
                case m.Release():
                    actions.append(CardCommand(card.Release(self.port)))
                case m.SendCallerId(caller_id=cid, off_hook=off_hook):
                    after_ring = (
                        not off_hook and self.timing.caller_id_mode is CallerIdMode.AFTER_FIRST_RING
                    )
                    already = self.timing.caller_id_delay_ms if after_ring else 0
                    actions.append(CallerIdStart(self.port, cid, off_hook, already))
                case m.StopCallerId():
                    actions.append(CallerIdStop(self.port))
                case _:
                    actions.append(Report(self.port, out))
        return actions
