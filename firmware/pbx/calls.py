"""Call control for calls that stay on the box: FXS to FXS, and FXS out on an FXO line.

Sans-IO: reports from the line machines (``OffHook``, ``DigitDialled``, ``Answered``,
``HungUp`` ...) and ``now`` in; commands out: events for the line machines
(:class:`LineEvent`), audio cross-connects (:class:`Join` / :class:`Split`) and DTMF to
send into an exchange line (:class:`SendDtmf`); :meth:`CallControl.next_deadline` says when
to call :meth:`CallControl.handle_timer`.

What a caller hears is the line machine's business (the country's tones and cadence);
this module only decides: ``RemoteRinging`` (ringback), ``Connect``, ``Busy``,
``Congestion``.  SIP trunks answer ``Congestion`` until the SIP core lands.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from firmware.lines import messages as m
from firmware.pbx.digits import DigitCollector, DigitMap, Outcome, Verdict
from firmware.pbx.routing import NoRoute, Routed, Router, ToExtension, ToFxo, ToTrunk
from firmware.store.schema import Config

log = logging.getLogger(__name__)

# How long after seizing an exchange line the digits go out.  ITU-T Q.543's design objective
# for dial-tone delay at reference load A is a mean of 400 ms, 600 ms for 95 % of calls; 1 s
# leaves margin over that.  Listening for the dial tone itself would be better (not yet).
FXO_DIAL_DELAY_MS: Final = 1000
# ITU-T Q.24: DTMF signals of 40 ms and pauses of 40 ms must be accepted;
# 70/70 ms is the usual automatic-dialler timing and passes every receiver we know.
DTMF_ON_MS: Final = 70
DTMF_OFF_MS: Final = 70


class CallControlError(Exception):
    """We broke it: a port call control was not told about."""


@dataclass(frozen=True, slots=True)
class PortInfo:
    port: int  # the card's port number (1-based, FXS and FXO interleaved as the card says)
    kind: Literal["fxs", "fxo"]
    index: int  # 0-based among the configuration's lines of that kind
    release_guard_ms: int = 0  # FXO: on-hook time before the line may be seized again


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineEvent:
    port: int
    event: m.FxsEvent | m.FxoEvent


@dataclass(frozen=True, slots=True)
class Join:
    """Cross-connect the audio of two ports (each hears the other)."""

    a: int
    b: int


@dataclass(frozen=True, slots=True)
class Split:
    a: int
    b: int


@dataclass(frozen=True, slots=True)
class SendDtmf:
    port: int
    digits: str
    on_ms: int = DTMF_ON_MS
    off_ms: int = DTMF_OFF_MS


CallCommand = LineEvent | Join | Split | SendDtmf


# --- calls ------------------------------------------------------------------------------


class CallState(enum.Enum):
    DIALLING = "dialling"
    RINGING = "ringing"  # an FXS extension is being alerted
    SEIZING = "seizing"  # an exchange line is seized; digits go out at ``dial_at``
    TALKING = "talking"
    FAILED = "failed"  # the caller hears busy or congestion until hanging up


@dataclass(slots=True)
class Call:
    caller: int
    state: CallState
    collector: DigitCollector | None = None
    callee: int | None = None
    number: str = ""
    dial_at: int | None = None  # SEIZING: when to send the digits
    decided_at: int | None = None
    reason: str = ""
    history: list[str] = field(default_factory=list)


class CallControl:
    """All the box's local calls.  Drive it from one thread (the event loop)."""

    def __init__(self, config: Config, ports: Sequence[PortInfo]) -> None:
        self._config = config
        self._digit_map = DigitMap.from_config(config.dialplan)
        self._router = Router(config)
        self.ports = {p.port: p for p in ports}
        self._fxs_port = {p.index: p.port for p in ports if p.kind == "fxs"}
        self._fxo_port = {p.index: p.port for p in ports if p.kind == "fxo"}
        self._calls: dict[int, Call] = {}  # port -> the call it takes part in
        self._off_hook: set[int] = set()  # FXS ports whose phone is lifted
        self._fxo_busy_until: dict[int, int] = {}  # FXO port -> end of its release guard
        self._fxo_ringing: set[int] = set()  # incoming exchange calls (not answered here yet)
        self.decisions: list[tuple[int, Verdict, Routed | NoRoute | None]] = []
        self._decisions_cap = 100

    # --- views --------------------------------------------------------------------------

    def call_of(self, port: int) -> Call | None:
        return self._calls.get(port)

    def next_deadline(self) -> int | None:
        deadlines: list[int] = []
        for call in self._active():
            if call.state is CallState.DIALLING and call.collector is not None:
                d = call.collector.next_deadline()
                if d is not None:
                    deadlines.append(d)
            elif call.state is CallState.SEIZING and call.dial_at is not None:
                deadlines.append(call.dial_at)
        return min(deadlines) if deadlines else None

    def _active(self) -> list[Call]:
        return list({id(c): c for c in self._calls.values()}.values())

    # --- input --------------------------------------------------------------------------

    def handle(self, port: int, report: m.Report, now: int) -> list[CallCommand]:
        info = self.ports.get(port)
        if info is None:
            raise CallControlError(f"report {report!r} from port {port}, which is not known")
        if info.kind == "fxs":
            return self._fxs(port, report, now)
        return self._fxo(port, report, now)

    def handle_timer(self, now: int) -> list[CallCommand]:
        out: list[CallCommand] = []
        for call in self._active():
            if call.state is CallState.DIALLING and call.collector is not None:
                verdict = call.collector.handle_timer(now)
                if verdict is not None:
                    out += self._dialled(call, verdict, now)
            elif call.state is CallState.SEIZING and call.dial_at is not None:
                if now >= call.dial_at and call.callee is not None:
                    call.dial_at = None
                    call.state = CallState.TALKING
                    out.append(SendDtmf(call.callee, call.number))
        return out

    # --- FXS ----------------------------------------------------------------------------

    def _fxs(self, port: int, report: m.Report, now: int) -> list[CallCommand]:
        call = self._calls.get(port)
        match report:
            case m.OffHook():
                self._off_hook.add(port)
                if call is not None:  # cannot happen with a sane line machine: start over
                    log.warning("port %d: off-hook while in a call; clearing it", port)
                    out = self._clear(call, port, now)
                else:
                    out = []
                self._calls[port] = Call(port, CallState.DIALLING, self._digit_map.collector())
                return out
            case m.DigitDialled(digit=digit):
                if call is None or call.state is not CallState.DIALLING:
                    return []  # in a call the digits travel in the audio
                assert call.collector is not None
                return self._dialled(call, call.collector.feed(digit, now), now)
            case m.Answered():
                self._off_hook.add(port)
                if call is None or call.state is not CallState.RINGING or call.callee != port:
                    # The caller gave up as the phone was lifted: nobody to talk to.
                    log.info("port %d answered, but the call is gone", port)
                    return [LineEvent(port, m.Busy())]
                call.state = CallState.TALKING
                call.history.append("answered")
                log.info("call %d -> %d answered", call.caller, port)
                return [LineEvent(call.caller, m.Connect()), Join(call.caller, port)]
            case m.HungUp():
                self._off_hook.discard(port)
                return self._clear(call, port, now) if call is not None else []
            case m.PermanentSignal() | m.LockedOut():
                if call is not None and call.state is CallState.DIALLING:
                    del self._calls[port]
                return []
        return []  # flash, rejected pulses: nothing to do for local calls yet

    def _dialled(self, call: Call, verdict: Verdict, now: int) -> list[CallCommand]:
        if verdict.outcome is Outcome.INCOMPLETE:
            return []
        call.collector = None
        call.number = verdict.digits
        call.decided_at = now
        if verdict.outcome is Outcome.INVALID:
            self._note(call.caller, verdict, None)
            return self._fail(call, m.Congestion(), f"{verdict.digits!r}: {verdict.reason}")
        decision = self._router.route(verdict.digits)
        self._note(call.caller, verdict, decision)
        if isinstance(decision, NoRoute):
            tone: m.Busy | m.Congestion = m.Busy() if decision.busy else m.Congestion()
            return self._fail(call, tone, decision.reason)
        log.info(
            "port %d dialled %s (%s): route %r -> %s, number %s",
            call.caller,
            verdict.digits,
            verdict.completion.value if verdict.completion else "",
            decision.route,
            decision.destination,
            decision.number,
        )
        match decision.destination:
            case ToExtension(fxs=fxs):
                return self._ring_extension(call, fxs)
            case ToFxo(fxo=fxo):
                return self._seize_fxo(call, fxo, decision.number, now)
            case ToTrunk(trunk=trunk):
                return self._fail(
                    call, m.Congestion(), f"trunk {trunk!r}: SIP trunks not available yet"
                )
        raise CallControlError(f"unhandled destination {decision.destination!r}")

    def _ring_extension(self, call: Call, fxs: int) -> list[CallCommand]:
        callee = self._fxs_port.get(fxs)
        if callee is None:
            return self._fail(call, m.Congestion(), f"FXS line {fxs} is not on this card")
        if callee == call.caller:
            return self._fail(call, m.Busy(), "called itself")
        if callee in self._calls or callee in self._off_hook:
            return self._fail(call, m.Busy(), f"port {callee} is busy")
        call.callee = callee
        call.state = CallState.RINGING
        self._calls[callee] = call
        return [
            LineEvent(call.caller, m.RemoteRinging()),
            LineEvent(callee, m.Alert(self._caller_id(call.caller))),
        ]

    def _caller_id(self, port: int) -> m.CallerId | None:
        index = self.ports[port].index
        lines = self._config.lines.fxs
        number = lines[index].extension if index < len(lines) else ""
        if not number:
            return None
        names = {e.number: e.name for e in self._config.extensions}
        return m.CallerId(number=number, name=names.get(number) or None)

    def _seize_fxo(self, call: Call, fxo: int, number: str, now: int) -> list[CallCommand]:
        line = self._fxo_port.get(fxo)
        if line is None:
            return self._fail(call, m.Congestion(), f"FXO line {fxo} is not on this card")
        if line in self._calls or line in self._fxo_ringing:
            return self._fail(call, m.Congestion(), f"exchange line {fxo} is in use")
        if now < self._fxo_busy_until.get(line, 0):
            return self._fail(call, m.Congestion(), f"exchange line {fxo} was released just now")
        call.callee = line
        call.number = number
        call.state = CallState.SEIZING
        call.dial_at = now + FXO_DIAL_DELAY_MS
        self._calls[line] = call
        # The caller hears the exchange from now on (its dial tone, ringback, the far end):
        # an analogue line gives no reliable answer signal, so the audio is cut through.
        return [
            LineEvent(line, m.Originate()),
            LineEvent(call.caller, m.Connect()),
            Join(call.caller, line),
        ]

    # --- FXO ----------------------------------------------------------------------------

    def _fxo(self, port: int, report: m.Report, now: int) -> list[CallCommand]:
        call = self._calls.get(port)
        match report:
            case m.Disconnected() | m.NoLoopCurrent():
                if call is None:
                    return []
                why = (
                    "no loop current" if isinstance(report, m.NoLoopCurrent) else "far end cleared"
                )
                log.info("exchange line on port %d: %s", port, why)
                out: list[CallCommand] = []
                if isinstance(report, m.NoLoopCurrent):
                    out.append(LineEvent(port, m.Hangup()))  # still seized: let go of it
                return out + self._clear(call, port, now, released=True)
            case m.IncomingCall():
                # Incoming exchange calls are routed by the bridge (issue 4, not here yet).
                self._fxo_ringing.add(port)
            case m.RingingStopped():
                self._fxo_ringing.discard(port)
            case m.FarEndAnswered():
                log.info("exchange line on port %d: far end answered", port)
        return []

    # --- ending -------------------------------------------------------------------------

    def _fail(self, call: Call, tone: m.Busy | m.Congestion, reason: str) -> list[CallCommand]:
        call.state = CallState.FAILED
        call.reason = reason
        log.info("port %d: %s (%s)", call.caller, type(tone).__name__.lower(), reason)
        return [LineEvent(call.caller, tone)]

    def _clear(
        self, call: Call, gone: int, now: int, *, released: bool = False
    ) -> list[CallCommand]:
        """``gone`` left the call (hung up, or the line dropped); tell the other side."""
        out: list[CallCommand] = []
        others = [p for p in (call.caller, call.callee) if p is not None and p != gone]
        if call.callee is not None and call.state in (CallState.TALKING, CallState.SEIZING):
            out.append(Split(call.caller, call.callee))
        for port in (call.caller, call.callee):
            if port is not None and self._calls.get(port) is call:
                del self._calls[port]
        for other in others:
            info = self.ports[other]
            if info.kind == "fxo":
                out.append(LineEvent(other, m.Hangup()))
                self._fxo_busy_until[other] = now + info.release_guard_ms
            elif call.state is CallState.RINGING:
                out.append(LineEvent(other, m.CancelAlert()))
            else:
                out.append(LineEvent(other, m.Busy()))
        if gone in self.ports and self.ports[gone].kind == "fxo" and released:
            self._fxo_busy_until[gone] = now + self.ports[gone].release_guard_ms
        log.info("call from port %d ended: port %d left (%s)", call.caller, gone, call.state.value)
        call.state = CallState.FAILED
        return out

    def _note(self, port: int, verdict: Verdict, decision: Routed | NoRoute | None) -> None:
        self.decisions.append((port, verdict, decision))
        del self.decisions[: -self._decisions_cap]
