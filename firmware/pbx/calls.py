"""Call control: calls between the box's lines and SIP legs (sans-IO).

Reports from the line machines (``OffHook``, ``DigitDialled``, ``Answered``, ``HungUp``,
``IncomingCall`` ...) come in through :meth:`CallControl.handle`, events from the SIP endpoint
(:mod:`firmware.pbx.legs`: ``SipIncoming``, ``SipRinging``, ``SipAnswered``, ``SipEnded``,
``SipDtmf``) through :meth:`CallControl.handle_sip`, each with ``now``.  Out come commands:
events for the line machines (:class:`LineEvent`), audio cross-connects between ports
(:class:`Join` / :class:`Split`) and between a port and a SIP leg (``ConnectSip`` /
``DisconnectSip``), DTMF into a line (:class:`SendDtmf`) and the SIP leg commands
(``PlaceSipCall``, ``RingSip``, ``AnswerSip``, ``HangupSip``, ``SendSipDtmf``).
:meth:`CallControl.next_deadline` says when to call :meth:`CallControl.handle_timer`.

What a caller hears is the line machine's business (the country's tones and cadence);
this module only decides: ``RemoteRinging`` (ringback), ``EarlyMedia``, ``Connect``,
``Busy``, ``Congestion``.  docs/dialplan.md describes every path.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from firmware.lines import messages as m
from firmware.pbx.apps import (
    App,
    AppCommand,
    AppDigit,
    CheckMailbox,
    JoinConference,
    LeaveMessage,
    RecordCall,
    RunIvr,
    StartApp,
    StopApp,
    mailbox_of,
)
from firmware.pbx.digits import DigitCollector, DigitMap, Outcome, Verdict
from firmware.pbx.legs import (
    AnswerSip,
    ConnectSip,
    DisconnectSip,
    HangupSip,
    PlaceSipCall,
    RingSip,
    SendSipDtmf,
    SipAnswered,
    SipCommand,
    SipDtmf,
    SipEnded,
    SipEvent,
    SipIncoming,
    SipRinging,
)
from firmware.pbx.recording import RecordingPolicyError, recording_policy
from firmware.pbx.routing import NoRoute, Routed, Router, ToExtension, ToFxo, ToTrunk
from firmware.pbx.sipstatus import Tone, failure
from firmware.sip.limits import PJSUA_MAX_CALLS
from firmware.store.ivrconfig import GoDial, GoExtension, GoVoicemail
from firmware.store.schema import Account, Config, Trunk

__all__ = [
    "AnswerSip",
    "ConnectSip",
    "DisconnectSip",
    "HangupSip",
    "PlaceSipCall",
    "RingSip",
    "SendSipDtmf",
    "SipAnswered",
    "SipDtmf",
    "SipEnded",
    "SipEvent",
    "SipIncoming",
    "SipRinging",
]

log = logging.getLogger(__name__)

# How long after seizing an exchange line the digits go out.  ITU-T Q.543's design objective
# for dial-tone delay at reference load A is a mean of 400 ms, 600 ms for 95 % of calls; 1 s
# leaves margin over that.  Listening for the dial tone itself would be better (not yet).
FXO_DIAL_DELAY_MS: Final = 1000
# ITU-T Q.24: DTMF signals of 40 ms and pauses of 40 ms must be accepted;
# 70/70 ms is the usual automatic-dialler timing and passes every receiver we know.
DTMF_ON_MS: Final = 70
DTMF_OFF_MS: Final = 70
# Caller ID sent between the first and second ring (GR-30-CORE; EN 300 659-1 allows it too)
# must end at least 200 ms before the second ring; the longest first silence among the
# cadences we ship is 4 s (US 2 s on / 4 s off, ITU-T E.180 Suppl. 2).  An exchange call that
# came without caller ID is held that long, plus 500 ms for the decoder to finish, before it
# is put through, so that the caller ID can go with it.
FXO_CALLER_ID_WAIT_MS: Final = 4500
# The pjsua2 build holds this many calls (firmware.sip.limits, DESIGN.md).
MAX_SIP_LEGS: Final = PJSUA_MAX_CALLS
HISTORY_MAX = 16  # cap on the notes kept on one call
DECISIONS_MAX = 100  # cap on the routing decisions kept for the status
CLOSED_MAX = 256  # closed calls waiting for drain_closed (the shell drains after each input)

# SIP responses call control refuses incoming calls with (RFC 3261 section 21).
SIP_FORBIDDEN: Final = 403
SIP_NOT_FOUND: Final = 404
SIP_TEMPORARILY_UNAVAILABLE: Final = 480
SIP_BUSY_HERE: Final = 486
SIP_SERVICE_UNAVAILABLE: Final = 503


class CallControlError(Exception):
    """We broke it: a port call control was not told about."""


@dataclass(frozen=True, slots=True)
class PortInfo:
    port: int  # the card's port number (1-based, FXS and FXO interleaved as the card says)
    kind: Literal["fxs", "fxo"]
    index: int  # 0-based among the configuration's lines of that kind
    release_guard_ms: int = 0  # FXO: on-hook time before the line may be seized again
    # FXO: the line's caller ID comes after the first ring (Bell 202 countries), so an
    # incoming call without one waits FXO_CALLER_ID_WAIT_MS for it before being put through.
    caller_id_after_ring: bool = False


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


CallCommand = LineEvent | Join | Split | SendDtmf | SipCommand | AppCommand


# --- calls ------------------------------------------------------------------------------


class CallState(enum.Enum):
    DIALLING = "dialling"
    WAITING_CALLER_ID = "waiting-caller-id"  # an exchange line rings; its caller ID may follow
    RINGING = "ringing"  # an FXS extension is being alerted
    SEIZING = "seizing"  # an exchange line is seized; digits go out at ``dial_at``
    CALLING = "calling"  # a SIP call is placed and not answered yet
    TALKING = "talking"
    FAILED = "failed"  # the caller hears busy or congestion until hanging up
    ENDED = "ended"


class Progress(enum.Enum):
    """How far an outgoing SIP call got before it was answered."""

    NONE = ""
    RINGING = "remote-ringing"  # 180: the phone hears the box's ringback
    EARLY_MEDIA = "early-media"  # 183 with audio: the phone hears the far end


@dataclass(slots=True)
class Call:
    """One call.  The calling side is a port (an FXS phone dialling, an exchange line
    ringing) or, when ``leg_in``, the SIP leg; the called side a port or the SIP leg."""

    caller: int | None  # None: the call came in over SIP
    state: CallState
    collector: DigitCollector | None = None
    callee: int | None = None
    leg: int | None = None
    leg_in: bool = False  # the leg is the calling side
    leg_audio: int | None = None  # the port whose audio is connected to the leg
    account: str = ""  # the trunk or account the leg runs on
    caller_id: m.CallerId | None = None
    number: str = ""
    progress: Progress = Progress.NONE
    dial_at: int | None = None  # SEIZING: when to send the digits
    wait_until: int | None = None  # WAITING_CALLER_ID: when to go on without it
    decided_at: int | None = None
    started: int = 0
    since: int = 0  # when it entered its state
    sip_code: int | None = None
    reason: str = ""
    busy: bool = False  # failed because the called side was busy (call records)
    app: App | None = None  # TALKING to an application (voicemail) instead of a port
    voicemail_at: int | None = None  # RINGING: when the callee's voicemail takes the call
    route: str | None = None  # the route the number took (recording policy)
    connected_caller: bool = False  # the calling side talks already (a transferred call)
    history: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.history.append(text)
        del self.history[:-HISTORY_MAX]

    def enter(self, state: CallState, now: int) -> None:
        self.state = state
        self.since = now


@dataclass(frozen=True, slots=True)
class CallView:
    """One row of :meth:`CallControl.calls_view`, for the status and the API.

    ``state`` is the call's state, or for an outgoing SIP call not yet answered how far it
    got (``calling``, ``remote-ringing``, ``early-media``).  ``since``/``started``: ms on the
    monotonic clock call control is driven with.
    """

    ports: tuple[int, ...]
    leg: int | None
    from_: str
    to: str
    via: str  # the trunk or account of the SIP leg, "" for calls on the box
    state: str
    since: int
    started: int
    reason: str
    sip_code: int | None


class CallControl:
    """All the box's calls.  Drive it from one thread (the event loop)."""

    def __init__(self, config: Config, ports: Sequence[PortInfo]) -> None:
        self._config = config
        self._digit_map = DigitMap.from_config(config.dialplan)
        self._router = Router(config)
        self.ports = {p.port: p for p in ports}
        self._fxs_port = {p.index: p.port for p in ports if p.kind == "fxs"}
        self._fxo_port = {p.index: p.port for p in ports if p.kind == "fxo"}
        self._trunks: dict[str, Trunk] = {t.name: t for t in config.sip.trunks if t.enabled}
        self._accounts: dict[str, Account] = {a.name: a for a in config.sip.accounts if a.enabled}
        self._port_account: dict[int, Account] = {
            a.fxs: a for a in config.sip.accounts if a.enabled
        }
        self._calls: dict[int, Call] = {}  # port -> the call it takes part in
        self._legs: dict[int, Call] = {}  # SIP leg -> its call; at most MAX_SIP_LEGS
        # itertools.count: next() on it is atomic under the GIL, so the shell may take an id
        # for an incoming call on the SIP thread before the call reaches the event loop.
        self._leg_ids = itertools.count(1)
        self._off_hook: set[int] = set()  # FXS ports whose phone is lifted
        self._fxo_busy_until: dict[int, int] = {}  # FXO port -> end of its release guard
        self._fxo_ringing: set[int] = set()  # incoming exchange calls (not answered here yet)
        self.decisions: list[tuple[int, Verdict, Routed | NoRoute | None]] = []
        self._decisions_cap = DECISIONS_MAX
        # Calls that ended or were dropped, for the call records (firmware.pbx.calllog).
        self._closed: deque[Call] = deque(maxlen=CLOSED_MAX)

    # --- views --------------------------------------------------------------------------

    def call_of(self, port: int) -> Call | None:
        return self._calls.get(port)

    def call_of_leg(self, leg: int) -> Call | None:
        return self._legs.get(leg)

    @property
    def sip_legs_in_use(self) -> int:
        return len(self._legs)

    def new_leg(self) -> int:
        """A fresh leg id (for a call the shell hands in, or one placed here).  Leg ids
        must all come from here, so that the two kinds never collide."""
        return next(self._leg_ids)

    def active_calls(self) -> list[Call]:
        """The calls in progress (each once), for observers such as the call records."""
        return self._active()

    def drain_closed(self) -> list[Call]:
        """The calls that ended since the last drain, oldest first."""
        closed = list(self._closed)
        self._closed.clear()
        return closed

    def calls_view(self) -> list[CallView]:
        rows: list[CallView] = []
        for call in self._active():
            state = call.state.value
            if call.state is CallState.CALLING and call.progress is not Progress.NONE:
                state = call.progress.value
            ports = tuple(p for p in (call.caller, call.callee) if p is not None)
            rows.append(
                CallView(
                    ports=ports,
                    leg=call.leg if call.leg in self._legs else None,
                    from_=self._from(call),
                    to=call.number or (f"port {call.callee}" if call.callee else ""),
                    via=call.account,
                    state=state,
                    since=call.since,
                    started=call.started,
                    reason=call.reason,
                    sip_code=call.sip_code,
                )
            )
        return sorted(rows, key=lambda r: r.started)

    def _from(self, call: Call) -> str:
        cid = call.caller_id
        if cid is not None and cid.number:
            return cid.number
        if call.caller is None:
            return call.account or "sip"
        info = self.ports[call.caller]
        return f"{info.kind} port {info.index + 1}"

    def next_deadline(self) -> int | None:
        deadlines: list[int] = []
        for call in self._active():
            if call.state is CallState.DIALLING and call.collector is not None:
                d = call.collector.next_deadline()
                if d is not None:
                    deadlines.append(d)
            elif call.state is CallState.SEIZING and call.dial_at is not None:
                deadlines.append(call.dial_at)
            elif call.state is CallState.WAITING_CALLER_ID and call.wait_until is not None:
                deadlines.append(call.wait_until)
            elif call.state is CallState.RINGING and call.voicemail_at is not None:
                deadlines.append(call.voicemail_at)
        return min(deadlines) if deadlines else None

    def _active(self) -> list[Call]:
        calls = [*self._calls.values(), *self._legs.values()]
        return list({id(c): c for c in calls}.values())

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
                    call.enter(CallState.TALKING, now)
                    out.append(SendDtmf(call.callee, call.number))
            elif call.state is CallState.WAITING_CALLER_ID and call.wait_until is not None:
                if now >= call.wait_until:
                    call.wait_until = None
                    out += self._route_exchange_call(call, now)
            elif call.state is CallState.RINGING and call.voicemail_at is not None:
                if now >= call.voicemail_at:
                    out += self._no_answer(call, now)
        return out

    def handle_sip(self, event: SipEvent | object, now: int) -> list[CallCommand]:
        """An event from the SIP endpoint (a :data:`SipEvent`).  Events for legs that are
        over, and anything that is no SIP event, are logged and ignored: never an exception."""
        if isinstance(event, SipIncoming):
            return self._sip_incoming(event, now)
        if not isinstance(event, SipRinging | SipAnswered | SipEnded | SipDtmf):
            log.error("call control: %r is not a SIP event; ignored", event)
            return []
        call = self._legs.get(event.leg)
        if call is None:
            # Normal after our HangupSip crossed the far end's BYE; anything else is the
            # shell's mistake, and neither may stop the other calls.
            log.info("SIP leg %d is not in a call (over already?): %r ignored", event.leg, event)
            return []
        if isinstance(event, SipRinging):
            return self._sip_ringing(call, event.leg, event.early_media, now)
        if isinstance(event, SipAnswered):
            return self._sip_answered(call, event.leg, now)
        if isinstance(event, SipEnded):
            return self._sip_ended(call, event.leg, event.code, event.reason, now)
        if call.leg_audio is None:
            log.info("leg %d: %r before the audio is connected; dropped", event.leg, event)
            return []
        return [SendDtmf(call.leg_audio, event.digit)]

    # --- FXS ----------------------------------------------------------------------------

    def _fxs(self, port: int, report: m.Report, now: int) -> list[CallCommand]:
        call = self._calls.get(port)
        match report:
            case m.OffHook():
                self._off_hook.add(port)
                if call is not None:  # cannot happen with a sane line machine: start over
                    log.warning("port %d: off-hook while in a call; clearing it", port)
                    out = self._end(call, now, gone=port)
                else:
                    out = []
                self._calls[port] = Call(
                    port,
                    CallState.DIALLING,
                    self._digit_map.collector(),
                    caller_id=self._caller_id(port),
                    started=now,
                    since=now,
                )
                return out
            case m.DigitDialled(digit=digit):
                if call is None:
                    return []
                if call.state is CallState.DIALLING:
                    assert call.collector is not None
                    return self._dialled(call, call.collector.feed(digit, now), now)
                if call.app is not None and call.caller == port:
                    return [AppDigit(port, digit)]
                if call.leg is not None and call.leg_audio == port and call.leg in self._legs:
                    # Rotary digits exist only as these reports, and an RFC 4733 far end
                    # ignores in-band tones: the digit goes as a SIP DTMF event too.
                    return [SendSipDtmf(call.leg, digit)]
                return []  # between two lines the digits travel in the audio
            case m.Answered():
                self._off_hook.add(port)
                if call is None or call.state is not CallState.RINGING or call.callee != port:
                    # The caller gave up as the phone was lifted: nobody to talk to.
                    log.info("port %d answered, but the call is gone", port)
                    return [LineEvent(port, m.Busy())]
                return self._answered(call, port, now)
            case m.HungUp():
                self._off_hook.discard(port)
                return self._end(call, now, gone=port) if call is not None else []
            case m.PermanentSignal() | m.LockedOut():
                if call is not None and call.state is CallState.DIALLING:
                    del self._calls[port]
                return []
        return []  # flash, rejected pulses: nothing to do yet

    def _answered(self, call: Call, port: int, now: int) -> list[CallCommand]:
        call.enter(CallState.TALKING, now)
        call.note("answered")
        if call.leg is not None and call.leg_in:
            log.info("SIP leg %d -> port %d answered", call.leg, port)
            call.leg_audio = port
            return [AnswerSip(call.leg), ConnectSip(call.leg, port)]
        assert call.caller is not None
        log.info("call %d -> %d answered", call.caller, port)
        if call.connected_caller:
            return [Join(call.caller, port), *self._record(call, port)]
        recording = self._record(call, port)
        if self.ports[call.caller].kind == "fxo":
            self._fxo_ringing.discard(call.caller)
            return [LineEvent(call.caller, m.AnswerCall()), Join(call.caller, port), *recording]
        return [LineEvent(call.caller, m.Connect()), Join(call.caller, port), *recording]

    def _record(self, call: Call, callee: int) -> list[CallCommand]:
        """``RecordCall`` when the call's recording policy is ``always`` (on demand: not yet)."""
        assert call.caller is not None
        numbers = [self._extension_of_port(p) for p in (call.caller, callee)]
        try:
            policy = recording_policy(
                self._config, extensions=[n for n in numbers if n], route=call.route
            )
        except RecordingPolicyError as exc:
            log.warning("call from %s: recording policy unknown: %s", self._from(call), exc)
            return []
        if policy != "always":
            return []
        caller = numbers[0] or self._from(call)
        return [RecordCall(call.caller, caller, numbers[1] or call.number)]

    def _extension_of_port(self, port: int) -> str:
        info = self.ports[port]
        lines = self._config.lines.fxs
        if info.kind != "fxs" or info.index >= len(lines):
            return ""
        return lines[info.index].extension

    def _dialled(self, call: Call, verdict: Verdict, now: int) -> list[CallCommand]:
        if verdict.outcome is Outcome.INCOMPLETE:
            return []
        assert call.caller is not None
        call.collector = None
        call.number = verdict.digits
        call.decided_at = now
        if verdict.outcome is Outcome.INVALID:
            self._note(call.caller, verdict, None)
            return self._fail(call, now, f"{verdict.digits!r}: {verdict.reason}")
        if verdict.digits == self._config.features.codes.voicemail:
            return self._check_mailbox(call, now)
        if any(r.number == verdict.digits for r in self._config.conference.rooms):
            return self._start_app(call, JoinConference(verdict.digits), now)
        if self._is_ivr(verdict.digits):
            return self._start_app(call, RunIvr(), now)
        decision = self._router.route(verdict.digits)
        self._note(call.caller, verdict, decision)
        if isinstance(decision, Routed):
            call.route = decision.route
        account = self._port_account.get(self.ports[call.caller].index)
        if account is not None and not _local(decision):
            # An ATA line: what the box does not keep goes out through the port's own account,
            # as dialled (strip and prefix belong to the routes).
            log.info(
                "port %d dialled %s: out through its account %r",
                call.caller,
                verdict.digits,
                account.name,
            )
            return self._place_sip(call, account.name, verdict.digits, now)
        if isinstance(decision, NoRoute):
            return self._fail(call, now, decision.reason, busy=decision.busy)
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
                return self._ring_extension(call, fxs, now)
            case ToFxo(fxo=fxo):
                return self._seize_fxo(call, fxo, decision.number, now)
            case ToTrunk(trunk=trunk):
                return self._place_sip(call, trunk, decision.number, now)
        raise CallControlError(f"unhandled destination {decision.destination!r}")

    def _ring_extension(self, call: Call, fxs: int, now: int) -> list[CallCommand]:
        callee = self._fxs_port.get(fxs)
        if callee is None:
            return self._fail(
                call, now, f"FXS line {fxs} is not on this card", code=SIP_TEMPORARILY_UNAVAILABLE
            )
        if callee == call.caller:
            return self._fail(call, now, "called itself", busy=True)
        box = self._mailbox_of_line(fxs)
        if callee in self._calls or callee in self._off_hook:
            if box is not None and call.caller is not None:
                call.note(f"port {callee} is busy: voicemail {box}")
                return self._start_app(call, self._leave_message(call, box, "busy"), now)
            return self._fail(call, now, f"port {callee} is busy", busy=True)
        call.callee = callee
        call.enter(CallState.RINGING, now)
        self._calls[callee] = call
        if box is not None and call.caller is not None:
            call.voicemail_at = now + self._config.features.no_answer_timeout_s * 1000
        out: list[CallCommand] = []
        if (
            call.caller is not None
            and self.ports[call.caller].kind == "fxs"
            and not call.connected_caller
        ):
            out.append(LineEvent(call.caller, m.RemoteRinging()))
        out.append(LineEvent(callee, m.Alert(call.caller_id)))
        if call.leg is not None and call.leg_in:
            out.append(RingSip(call.leg))
        return out

    # --- applications (firmware.pbx.apps) ---------------------------------------------------

    def _mailbox_of_line(self, fxs: int) -> str | None:
        lines = self._config.lines.fxs
        return mailbox_of(self._config, lines[fxs].extension) if fxs < len(lines) else None

    def _leave_message(self, call: Call, box: str, reason: str) -> LeaveMessage:
        cid = call.caller_id
        return LeaveMessage(
            box,
            "busy" if reason == "busy" else "unavailable",
            (cid.number or "") if cid else "",
            (cid.name or "") if cid else "",
        )

    def _check_mailbox(self, call: Call, now: int) -> list[CallCommand]:
        assert call.caller is not None
        info = self.ports[call.caller]
        lines = self._config.lines.fxs
        extension = lines[info.index].extension if info.kind == "fxs" else ""
        box = mailbox_of(self._config, extension) if extension else None
        if box is None:
            return self._fail(call, now, f"port {call.caller} has no voicemail box")
        return self._start_app(call, CheckMailbox(box), now)

    def _start_app(self, call: Call, app: App, now: int) -> list[CallCommand]:
        """Answer the calling line and put it through to ``app`` (a port caller only: a SIP
        leg has no media loop of its own to run the application on)."""
        caller = call.caller
        assert caller is not None
        call.app = app
        call.voicemail_at = None
        call.enter(CallState.TALKING, now)
        call.note(f"application {type(app).__name__} {app.box}")
        log.info("port %d: call put through to %s", caller, app)
        if call.connected_caller:
            return [StartApp(caller, app)]
        if self.ports[caller].kind == "fxo":
            self._fxo_ringing.discard(caller)
            return [LineEvent(caller, m.AnswerCall()), StartApp(caller, app)]
        return [LineEvent(caller, m.Connect()), StartApp(caller, app)]

    def _no_answer(self, call: Call, now: int) -> list[CallCommand]:
        callee = call.callee
        assert callee is not None and call.caller is not None
        box = self._mailbox_of_line(self.ports[callee].index)
        call.voicemail_at = None
        if box is None:
            return []
        log.info("port %d did not answer: voicemail %s takes the call", callee, box)
        if self._calls.get(callee) is call:
            del self._calls[callee]
        call.callee = None
        out: list[CallCommand] = [LineEvent(callee, m.CancelAlert())]
        return out + self._start_app(call, self._leave_message(call, box, "unavailable"), now)

    def _is_ivr(self, number: str) -> bool:
        ivr = self._config.ivr
        return ivr.enabled and bool(ivr.number) and number == ivr.number

    def app_transfer(
        self, port: int, target: GoExtension | GoVoicemail | GoDial, now: int
    ) -> list[CallCommand]:
        """The IVR on ``port`` chose where the caller goes (its session is over)."""
        call = self._calls.get(port)
        if call is None or call.app is None or call.caller != port:
            return []
        call.app = None
        call.connected_caller = True  # answered by the IVR: its line talks already
        match target:
            case GoVoicemail(mailbox=box):
                return self._start_app(call, self._leave_message(call, box, "unavailable"), now)
            case GoExtension(number=number):
                call.number = number
                found = self._router.extension(number)
                if isinstance(found, NoRoute):
                    return self._fail(call, now, f"IVR: {found.reason}")
                return self._ring_extension(call, found.fxs, now)
            case GoDial(number=number):
                call.number = number
                decision = self._router.route(number)
                if isinstance(decision, NoRoute):
                    return self._fail(call, now, f"IVR: {decision.reason}", busy=decision.busy)
                call.route = decision.route
                match decision.destination:
                    case ToExtension(fxs=fxs):
                        return self._ring_extension(call, fxs, now)
                    case ToFxo(fxo=fxo):
                        return self._seize_fxo(call, fxo, decision.number, now)
                    case ToTrunk(trunk=trunk):
                        return self._place_sip(call, trunk, decision.number, now)
        return self._fail(call, now, f"IVR: cannot transfer to {target}")

    def app_finished(self, port: int, now: int) -> list[CallCommand]:
        """The application on ``port`` hung up by itself (goodbye said): end the call."""
        call = self._calls.get(port)
        if call is None or call.app is None or call.caller != port:
            return []
        call.app = None
        return self._end(call, now)

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
        unavailable = SIP_SERVICE_UNAVAILABLE
        if line is None:
            return self._fail(call, now, f"FXO line {fxo} is not on this card", code=unavailable)
        if line in self._calls or line in self._fxo_ringing:
            return self._fail(call, now, f"exchange line {fxo} is in use", code=unavailable)
        if now < self._fxo_busy_until.get(line, 0):
            return self._fail(
                call, now, f"exchange line {fxo} was released just now", code=unavailable
            )
        call.callee = line
        call.number = number
        call.enter(CallState.SEIZING, now)
        call.dial_at = now + FXO_DIAL_DELAY_MS
        self._calls[line] = call
        # The caller hears the exchange from now on (its dial tone, ringback, the far end):
        # an analogue line gives no reliable answer signal, so the audio is cut through, and
        # an IP caller is answered at once for the same reason.
        out: list[CallCommand] = [LineEvent(line, m.Originate())]
        if call.leg is not None and call.leg_in:
            call.leg_audio = line
            return [*out, AnswerSip(call.leg), ConnectSip(call.leg, line)]
        assert call.caller is not None
        if call.connected_caller:
            return [*out, Join(call.caller, line)]
        return [*out, LineEvent(call.caller, m.Connect()), Join(call.caller, line)]

    # --- SIP out ------------------------------------------------------------------------

    def _place_sip(self, call: Call, account: str, number: str, now: int) -> list[CallCommand]:
        assert call.caller is not None
        if len(self._legs) >= MAX_SIP_LEGS:
            return self._fail(call, now, f"all {MAX_SIP_LEGS} SIP legs in use")
        leg = self.new_leg()
        call.leg = leg
        call.account = account
        call.number = number
        call.enter(CallState.CALLING, now)
        self._legs[leg] = call
        log.info("port %d: SIP leg %d to %s via %r", call.caller, leg, number, account)
        out: list[CallCommand] = [PlaceSipCall(leg, account, number, call.caller_id)]
        if self.ports[call.caller].kind == "fxs" and not call.connected_caller:
            out.append(LineEvent(call.caller, m.Proceed()))  # dial tone off, silence
        return out

    def _sip_ringing(self, call: Call, leg: int, early: bool, now: int) -> list[CallCommand]:
        if call.leg_in or call.state is not CallState.CALLING:
            log.info("leg %d: %s in state %s ignored", leg, "183" if early else "180", call.state)
            return []
        assert call.caller is not None
        if self.ports[call.caller].kind == "fxo":
            # The exchange caller keeps hearing the exchange's ringback: the line cannot
            # carry the far end's audio before it is answered, and answering starts billing.
            return []
        if early:
            if call.progress is Progress.EARLY_MEDIA:
                return []
            call.progress = Progress.EARLY_MEDIA
            call.leg_audio = call.caller
            call.note("early media")
            return [ConnectSip(leg, call.caller), LineEvent(call.caller, m.EarlyMedia())]
        if call.progress is not Progress.NONE:
            return []  # ringback already on, or the far end's audio: RFC 3960, it wins
        call.progress = Progress.RINGING
        return [LineEvent(call.caller, m.RemoteRinging())]

    def _sip_answered(self, call: Call, leg: int, now: int) -> list[CallCommand]:
        if call.leg_in or call.state is not CallState.CALLING:
            return []  # our own 200 confirmed, or a retransmission
        assert call.caller is not None
        call.enter(CallState.TALKING, now)
        call.note("answered")
        log.info("SIP leg %d from port %d answered", leg, call.caller)
        out: list[CallCommand] = []
        if call.connected_caller:
            pass  # a transferred call: the calling side talks already
        elif self.ports[call.caller].kind == "fxo":
            self._fxo_ringing.discard(call.caller)
            out.append(LineEvent(call.caller, m.AnswerCall()))
        else:
            out.append(LineEvent(call.caller, m.Connect()))
        if call.leg_audio is None:
            call.leg_audio = call.caller
            out.append(ConnectSip(leg, call.caller))
        return out

    def _sip_ended(
        self, call: Call, leg: int, code: int, reason: str, now: int
    ) -> list[CallCommand]:
        call.sip_code = code
        if call.leg_in or call.state is not CallState.CALLING:
            call.reason = f"SIP leg ended: {code} {reason}".rstrip()
            log.info("leg %d ended by the far end (%s)", leg, call.reason)
            return self._end(call, now, leg_ended=True)
        del self._legs[leg]
        call.leg_audio = None
        what = failure(code, reason)
        log.info("leg %d via %r failed: %s", leg, call.account, what.describe())
        return self._fail(call, now, what.describe(), busy=what.tone is Tone.BUSY)

    # --- SIP in -------------------------------------------------------------------------

    def _sip_incoming(self, event: SipIncoming, now: int) -> list[CallCommand]:
        leg = event.leg
        if leg in self._legs:
            log.error("SIP leg %d handed in twice: %r ignored", leg, event)
            return []
        if len(self._legs) >= MAX_SIP_LEGS:
            log.info("incoming call on leg %d refused: all %d SIP legs in use", leg, MAX_SIP_LEGS)
            return [HangupSip(leg, SIP_SERVICE_UNAVAILABLE)]
        call = Call(
            None,
            CallState.RINGING,
            leg=leg,
            leg_in=True,
            account=event.account,
            caller_id=event.caller,
            number=event.called,
            started=now,
            since=now,
        )
        self._legs[leg] = call
        where = f"{event.peer_kind} {event.peer!r} on {event.account!r}"
        log.info("incoming SIP leg %d from %s to %r", leg, where, event.called)
        match event.peer_kind:
            case "trunk":
                trunk = self._trunks.get(event.account)
                if trunk is None:
                    return self._fail(call, now, f"no trunk {event.account!r} in service")
                found = self._router.extension(trunk.destination or event.called)
                if isinstance(found, NoRoute):
                    return self._fail(call, now, f"trunk {trunk.name!r}: {found.reason}")
                return self._ring_extension(call, found.fxs, now)
            case "account":
                account = self._accounts.get(event.account)
                if account is None:
                    return self._fail(call, now, f"no account {event.account!r} in service")
                lines = self._config.lines.fxs
                if account.fxs >= len(lines) or not lines[account.fxs].enabled:
                    return self._fail(
                        call,
                        now,
                        f"account {account.name!r}: FXS line {account.fxs} is not in service",
                        code=SIP_TEMPORARILY_UNAVAILABLE,
                    )
                return self._ring_extension(call, account.fxs, now)
        # An IP phone: its number is routed as if dialled on the box.
        decision = self._router.route(event.called)
        if isinstance(decision, NoRoute):
            return self._fail(call, now, decision.reason, busy=decision.busy)
        match decision.destination:
            case ToExtension(fxs=fxs):
                return self._ring_extension(call, fxs, now)
            case ToFxo(fxo=fxo):
                return self._seize_fxo(call, fxo, decision.number, now)
        # Bridging two SIP legs needs the endpoint to connect them: not there yet.
        return self._fail(
            call,
            now,
            f"route {decision.route!r}: IP phones cannot call out through a trunk yet",
            code=SIP_FORBIDDEN,
        )

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
                return out + self._end(call, now, gone=port, released=True)
            case m.IncomingCall(caller_id=cid):
                self._fxo_ringing.add(port)
                if call is not None:
                    log.warning("port %d: exchange call while in a call %s; ignored", port, call)
                    return []
                call = Call(
                    port, CallState.WAITING_CALLER_ID, caller_id=cid, started=now, since=now
                )
                self._calls[port] = call
                if cid is None and self.ports[port].caller_id_after_ring:
                    call.wait_until = now + FXO_CALLER_ID_WAIT_MS
                    return []
                return self._route_exchange_call(call, now)
            case m.CallerIdReceived(caller_id=cid):
                if call is None or call.caller != port:
                    return []
                if call.state is not CallState.WAITING_CALLER_ID:
                    log.info("port %d: caller ID %s came after the call was put through", port, cid)
                    return []
                call.caller_id = cid
                call.wait_until = None
                return self._route_exchange_call(call, now)
            case m.RingingStopped():
                self._fxo_ringing.discard(port)
                if call is not None and call.caller == port and call.state is not CallState.TALKING:
                    log.info("exchange caller on port %d gave up", port)
                    return self._end(call, now, gone=port)
            case m.FarEndAnswered():
                log.info("exchange line on port %d: far end answered", port)
        return []

    def _route_exchange_call(self, call: Call, now: int) -> list[CallCommand]:
        assert call.caller is not None
        port = call.caller
        index = self.ports[port].index
        lines = self._config.lines.fxo
        destination = lines[index].destination if index < len(lines) else ""
        call.number = destination
        if not destination:
            return self._fail(call, now, "the line has no destination")
        if self._is_ivr(destination):
            return self._start_app(call, RunIvr(), now)
        decision = self._router.route(destination)
        if isinstance(decision, NoRoute):
            return self._fail(call, now, f"destination {destination}: {decision.reason}")
        log.info(
            "exchange call on port %d (%s): route %r -> %s",
            port,
            call.caller_id,
            decision.route,
            decision.destination,
        )
        match decision.destination:
            case ToExtension(fxs=fxs):
                return self._ring_extension(call, fxs, now)
            case ToTrunk(trunk=trunk):
                return self._place_sip(call, trunk, decision.number, now)
        return self._fail(call, now, f"destination {destination}: an exchange line again")

    # --- ending -------------------------------------------------------------------------

    def _fail(
        self, call: Call, now: int, reason: str, *, busy: bool = False, code: int | None = None
    ) -> list[CallCommand]:
        """The call cannot go on: the calling side learns why.

        A phone hears busy or congestion until it hangs up; an IP caller gets ``code``
        (486 for busy, else 404 unless said otherwise); an exchange line is left to ring
        until its caller gives up, since it cannot be refused without answering it.
        """
        call.enter(CallState.FAILED, now)
        call.reason = reason
        call.busy = busy
        call.note(reason)
        out: list[CallCommand] = []
        if call.leg is not None and call.leg_in:
            refusal = code or (SIP_BUSY_HERE if busy else SIP_NOT_FOUND)
            call.sip_code = refusal
            log.info("SIP leg %d refused with %d: %s", call.leg, refusal, reason)
            self._forget(call)
            return [HangupSip(call.leg, refusal)]
        if call.leg is not None and self._legs.get(call.leg) is call:
            del self._legs[call.leg]  # defensive: every caller of _fail drops its leg first
            out.append(HangupSip(call.leg))
        assert call.caller is not None
        if self.ports[call.caller].kind == "fxo":
            log.info("exchange call on port %d not put through: %s", call.caller, reason)
            self._forget(call)
            return out
        tone: m.Busy | m.Congestion = m.Busy() if busy else m.Congestion()
        log.info("port %d: %s (%s)", call.caller, type(tone).__name__.lower(), reason)
        return [*out, LineEvent(call.caller, tone)]

    def _forget(self, call: Call) -> None:
        self._closed.append(call)
        for port in (call.caller, call.callee):
            if port is not None and self._calls.get(port) is call:
                del self._calls[port]
        if call.leg is not None and self._legs.get(call.leg) is call:
            del self._legs[call.leg]

    def _end(
        self,
        call: Call,
        now: int,
        *,
        gone: int | None = None,
        leg_ended: bool = False,
        released: bool = False,
    ) -> list[CallCommand]:
        """Port ``gone`` left the call (hung up, the line dropped) or its SIP leg ended
        (``leg_ended``); tell everybody else."""
        out: list[CallCommand] = []
        was = call.state
        if call.app is not None and call.caller is not None:
            out.append(StopApp(call.caller))
            call.app = None
        if (
            call.caller is not None
            and call.callee is not None
            and was in (CallState.TALKING, CallState.SEIZING)
        ):
            out.append(Split(call.caller, call.callee))
        if call.leg is not None and self._legs.get(call.leg) is call:
            del self._legs[call.leg]
            if not leg_ended:
                if call.leg_audio is not None:
                    out.append(DisconnectSip(call.leg, call.leg_audio))
                out.append(HangupSip(call.leg))
        call.leg_audio = None
        for port in (call.caller, call.callee):
            if port is not None and self._calls.get(port) is call:
                del self._calls[port]
        for port in (call.caller, call.callee):
            if port is None or port == gone:
                continue
            info = self.ports[port]
            if info.kind == "fxo":
                if port == call.callee or was is CallState.TALKING:  # off-hook: let go
                    out.append(LineEvent(port, m.Hangup()))
                    self._fxo_busy_until[port] = now + info.release_guard_ms
                # else an exchange call not answered here: it rings on until its caller gives up
            elif port == call.callee and was is CallState.RINGING:
                out.append(LineEvent(port, m.CancelAlert()))
            elif was is not CallState.FAILED:
                out.append(LineEvent(port, m.Busy()))
        if gone is not None and self.ports[gone].kind == "fxo" and released:
            self._fxo_busy_until[gone] = now + self.ports[gone].release_guard_ms
        # "port N left (state)" is what the service tests and the field logs look for.
        log.info(
            "call from %s ended: %s (%s)",
            self._from(call),
            f"port {gone} left" if gone is not None else f"SIP leg {call.leg} ended",
            was.value,
        )
        call.enter(CallState.ENDED, now)
        self._closed.append(call)
        return out

    def _note(self, port: int, verdict: Verdict, decision: Routed | NoRoute | None) -> None:
        self.decisions.append((port, verdict, decision))
        del self.decisions[: -self._decisions_cap]


def _local(decision: Routed | NoRoute) -> bool:
    """Kept on the box even for an ATA line: extensions, exchange lines, emergency calls."""
    if not isinstance(decision, Routed):
        return False
    return decision.emergency or isinstance(decision.destination, ToExtension | ToFxo)
