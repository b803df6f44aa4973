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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from firmware.lines import messages as m
from firmware.pbx.apps import (
    App,
    AppCommand,
    AppDigit,
    CheckMailbox,
    HushLine,
    JoinConference,
    LeaveMessage,
    RecordCall,
    RunIvr,
    StartApp,
    StopApp,
    StopRecording,
    WaitInQueue,
    mailbox_of,
)
from firmware.pbx.digits import Completion, DigitCollector, DigitMap, Outcome, Verdict
from firmware.pbx.features import (
    MAX_FORWARDS,
    TAKES_NUMBER,
    VOICEMAIL_TARGET,
    Availability,
    AvailabilityChanged,
    Feature,
    TollRules,
    apply,
    parse_code,
)
from firmware.pbx.groups import (
    AgentChanged,
    AnnouncePosition,
    GroupCommand,
    Groups,
    Hunt,
    parse_destination,
)
from firmware.pbx.legs import (
    AnswerSip,
    BridgeSip,
    ConnectSip,
    DisconnectSip,
    HangupSip,
    HoldSip,
    PlaceSipCall,
    ResumeSip,
    RingSip,
    SendSipDtmf,
    SipAnswered,
    SipCommand,
    SipDtmf,
    SipEnded,
    SipEvent,
    SipHeld,
    SipIncoming,
    SipReferred,
    SipRinging,
    SipTransferred,
    TransferSip,
)
from firmware.pbx.recording import OnDemand, RecordingPolicyError, recording_policy
from firmware.pbx.routing import (
    NoRoute,
    Routed,
    Router,
    ToExtension,
    ToFxo,
    ToGroup,
    ToTrunk,
    ToVoicemail,
)
from firmware.pbx.sipstatus import Tone, failure
from firmware.sip.limits import PJSUA_MAX_CALLS
from firmware.store.ivrconfig import GoDial, GoExtension, GoVoicemail
from firmware.store.schema import Account, Config, Trunk

__all__ = [
    "AnswerSip",
    "BridgeSip",
    "ConnectSip",
    "DisconnectSip",
    "HangupSip",
    "HoldSip",
    "PlaceSipCall",
    "ResumeSip",
    "RingSip",
    "SendSipDtmf",
    "SipAnswered",
    "SipDtmf",
    "SipEnded",
    "SipEvent",
    "SipHeld",
    "SipIncoming",
    "SipReferred",
    "SipRinging",
    "SipTransferred",
    "TransferSip",
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


@dataclass(frozen=True, slots=True)
class Mix:
    """Put the audio of ``ports`` into one conference (a three-way call by hook flash):
    their two-party cross-connects are split first."""

    ports: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Unmix:
    """Take ``ports`` out of their conference; each is left unconnected."""

    ports: tuple[int, ...]


CallCommand = (
    LineEvent
    | Join
    | Split
    | SendDtmf
    | SipCommand
    | Mix
    | Unmix
    | AvailabilityChanged
    | AppCommand
    | GroupCommand
)

# A PIN is dialled as digits ended by the inter-digit timer or '#'.
PIN_MAP: Final = "x.#|x.T"


# --- calls ------------------------------------------------------------------------------


class CallState(enum.Enum):
    DIALLING = "dialling"
    WAITING_CALLER_ID = "waiting-caller-id"  # an exchange line rings; its caller ID may follow
    RINGING = "ringing"  # an FXS extension is being alerted
    SEIZING = "seizing"  # an exchange line is seized; digits go out at ``dial_at``
    CALLING = "calling"  # a SIP call is placed and not answered yet
    TALKING = "talking"
    FEATURE = "feature"  # a feature code was done: confirmation tone until hang-up
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
    route: str | None = None  # the route the number took (recording policy)
    history: list[str] = field(default_factory=list)
    # Features (firmware.pbx.features, docs/features.md).
    feature: Feature | None = None  # a code that takes a number: the digits are that number
    pending: Routed | None = None  # an external call waiting for its PIN
    pin_ok: bool = False
    no_call_waiting: bool = False  # *70 was dialled for this call
    forwards: int = 0  # times the call was forwarded
    no_answer_at: int | None = None  # RINGING: when forward-on-no-answer takes it
    forward_no_answer: str = ""  # where it goes then
    connected_caller: bool = False  # the calling side talks already (a transferred call)
    ringback: bool = False  # the calling phone hears ringback already (forwarded on no answer)
    hunt: Hunt | None = None  # ringing a ring group's members or waiting in a queue
    # A SIP caller put through to a SIP destination: the second leg, bridged with ``leg``.
    out_leg: int | None = None
    out_account: str = ""
    remote_hold: bool = False  # the far end of ``leg`` holds the call
    app_port: int | None = None  # a SIP caller's application runs on this application port
    leg_held: bool = False  # we hold ``leg`` (RFC 3264 sendonly): bridging it resumes it
    on_demand: OnDemand | None = None  # TALKING, policy on_demand: the record toggle
    busy_forward: bool = False  # forwarded to voicemail on busy / DND: the busy greeting

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
    group: str = ""  # "group 600" / "queue 700": the ring group or queue the call is in
    hold: str = ""  # "local": held by hook flash here, "remote": by the SIP far end


class CallControl:
    """All the box's calls.  Drive it from one thread (the event loop)."""

    def __init__(
        self,
        config: Config,
        ports: Sequence[PortInfo],
        availability: Mapping[str, Availability] | None = None,
        agents: Iterable[str] = (),
        app_ports: Sequence[int] = (),
    ) -> None:
        self._config = config
        # Ring groups and queues (firmware.pbx.groups); ``agents``: logged in, as stored.
        self.groups = Groups(config, agents)
        self._features = config.features
        self._toll = TollRules(config)
        self._pin_map = DigitMap(
            PIN_MAP, inter_digit_timeout_ms=config.dialplan.inter_digit_timeout_ms
        )
        # Extension number -> its forwarding and do-not-disturb state (stored by the shell).
        self.availability: dict[str, Availability] = dict(availability or {})
        # Hook-flash state per FXS port: the call on hold, a call waiting, and what a flash
        # does next ("swap" between two calls, "consult" a third party, "conference").
        self._held: dict[int, Call] = {}
        self._waiting: dict[int, Call] = {}
        self._mode: dict[int, str] = {}
        self._recall: dict[int, Call] = {}  # port rung back for its held call
        # SIP leg -> (its call, the attended consultation, the blind target's number) while
        # a REFER we sent on it runs (firmware.pbx.legs.TransferSip)
        self._referring: dict[int, tuple[Call, Call | None, str]] = {}
        # New SIP leg -> (its call, the leg it is to replace, its number): the far end of
        # that leg transferred us (SipReferred) and the new leg is not answered yet.
        self._replacing: dict[int, tuple[Call, int, str]] = {}
        self._last_caller: dict[int, str] = {}  # FXS port -> number of the last call to it
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
        # Media loops with no line (the shell's firmware.service.appports) that run the
        # application of a SIP caller: application port -> its call.  None of them is a card port.
        self.app_ports = tuple(app_ports)
        if set(self.app_ports) & set(self.ports):
            raise CallControlError(f"application ports {self.app_ports} clash with the card's")
        self._app_calls: dict[int, Call] = {}

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
            if call.hunt is not None:
                ports += tuple(call.hunt.ringing)
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
                    group=f"{call.hunt.kind} {call.hunt.number}" if call.hunt else "",
                    hold=self._hold_of(call),
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
            elif call.state is CallState.RINGING and call.no_answer_at is not None:
                deadlines.append(call.no_answer_at)
            elif call.on_demand is not None and (d := call.on_demand.next_deadline()) is not None:
                deadlines.append(d)
            if call.hunt is not None:
                deadlines += call.hunt.deadlines()
        return min(deadlines) if deadlines else None

    def _active(self) -> list[Call]:
        calls = [*self._calls.values(), *self._legs.values(), *self._waiting.values()]
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
            elif call.state is CallState.RINGING and call.no_answer_at is not None:
                if now >= call.no_answer_at:
                    out += self._no_answer(call, now)
            elif call.on_demand is not None:
                for port, digits in call.on_demand.handle_timer(now):
                    out += self._let_go(call, port, digits)
        return out + self._hunt_timer(now)

    def handle_sip(self, event: SipEvent | object, now: int) -> list[CallCommand]:
        """An event from the SIP endpoint (a :data:`SipEvent`).  Events for legs that are
        over, and anything that is no SIP event, are logged and ignored: never an exception."""
        if isinstance(event, SipIncoming):
            return self._sip_incoming(event, now)
        if isinstance(event, SipHeld | SipTransferred | SipReferred):
            return self._sip_leg_event(event, now)
        if not isinstance(event, SipRinging | SipAnswered | SipEnded | SipDtmf):
            log.error("call control: %r is not a SIP event; ignored", event)
            return []
        call = self._legs.get(event.leg)
        if call is None:
            # Normal after our HangupSip crossed the far end's BYE; anything else is the
            # shell's mistake, and neither may stop the other calls.
            log.info("SIP leg %d is not in a call (over already?): %r ignored", event.leg, event)
            return []
        if isinstance(event, SipEnded) and event.leg in self._referring:
            # The far end we REFERred left before the transfer's outcome: the transfer is
            # over; an attended one's consultation has nobody left on our side either.
            _, consult, _ = self._referring.pop(event.leg)
            out = self._sip_ended(call, event.leg, event.code, event.reason, now)
            if consult is not None and consult.leg is not None:
                if self._legs.get(consult.leg) is consult:
                    out += self._end(consult, now)
            return out
        if self._replacing and (
            event.leg in self._replacing
            or (
                isinstance(event, SipEnded)
                and any(event.leg == r[1] for r in self._replacing.values())
            )
        ):
            return self._replacement_event(call, event, now)
        if call.out_leg is not None and event.leg in (call.leg, call.out_leg):
            bridged = self._bridged_event(call, event, now)
            if bridged is not None:
                return bridged
        if isinstance(event, SipRinging):
            return self._sip_ringing(call, event.leg, event.early_media, now)
        if isinstance(event, SipAnswered):
            return self._sip_answered(call, event.leg, now)
        if isinstance(event, SipEnded):
            return self._sip_ended(call, event.leg, event.code, event.reason, now)
        if call.app is not None and call.app_port is not None:
            return [AppDigit(call.app_port, event.digit)]  # RFC 4733 drives the application
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
                    verdict = call.collector.feed(digit, now)
                    if (
                        verdict.outcome is Outcome.INCOMPLETE
                        and call.feature is None
                        and call.pending is None
                        and parse_code(self._features.codes, verdict.digits) is not None
                    ):
                        # A feature code is complete once dialled: no code is a prefix of
                        # another (the store checks), so nothing longer can be meant.
                        verdict = Verdict(
                            Outcome.COMPLETE, verdict.digits, completion=Completion.UNIQUE_MATCH
                        )
                    held = self._held.get(port)
                    if (
                        verdict.digits == self._features.codes.record_toggle
                        and self._mode.get(port) == "consult"
                        and held is not None
                        and held.on_demand is not None
                    ):
                        return self._record_toggle_after_flash(port, call, held, now)
                    return self._dialled(call, verdict, now)
                if call.app is not None and call.caller == port:
                    return [AppDigit(port, digit)]
                if call.leg is not None and call.leg_audio == port and call.leg in self._legs:
                    # Rotary digits exist only as these reports, and an RFC 4733 far end
                    # ignores in-band tones: the digit goes as a SIP DTMF event too.
                    return [SendSipDtmf(call.leg, digit)]
                if call.on_demand is not None and call.state is CallState.TALKING:
                    return self._record_digit(call, port, digit, now)
                return []  # between two lines the digits travel in the audio
            case m.Answered():
                self._off_hook.add(port)
                recalled = self._recall.pop(port, None)
                if recalled is not None and recalled is call:
                    call.note(f"port {port} took its held call back")
                    return self._resume(call, port)
                if call is not None and call.hunt is not None and port in call.hunt.ringing:
                    return self._hunt_answered(call, port, now)
                if call is None or call.state is not CallState.RINGING or call.callee != port:
                    # The caller gave up as the phone was lifted: nobody to talk to.
                    log.info("port %d answered, but the call is gone", port)
                    return [LineEvent(port, m.Busy())]
                return self._answered(call, port, now)
            case m.HungUp():
                self._off_hook.discard(port)
                return self._hung_up(port, call, now)
            case m.HookFlash():
                return self._flash(port, call, now)
            case m.PermanentSignal() | m.LockedOut():
                if call is not None and call.state is CallState.DIALLING:
                    del self._calls[port]
                return []
        return []  # rejected pulses: nothing to do

    def _answered(self, call: Call, port: int, now: int) -> list[CallCommand]:
        call.enter(CallState.TALKING, now)
        call.note("answered")
        call.no_answer_at = None
        if call.leg is not None and call.leg_in:
            log.info("SIP leg %d -> port %d answered", call.leg, port)
            call.leg_audio = port
            recording = self._record_sip(call, port)
            if call.connected_caller:
                return [ConnectSip(call.leg, port), *recording]
            return [AnswerSip(call.leg), ConnectSip(call.leg, port), *recording]
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
        """``RecordCall`` when the call's recording policy is ``always``; ``on_demand``: the
        parties' digits are watched for the toggle code from now on."""
        assert call.caller is not None
        numbers = [self._extension_of_port(p) for p in (call.caller, callee)]
        try:
            policy = recording_policy(
                self._config, extensions=[n for n in numbers if n], route=call.route
            )
        except RecordingPolicyError as exc:
            log.warning("call from %s: recording policy unknown: %s", self._from(call), exc)
            return []
        caller, called = numbers[0] or self._from(call), numbers[1] or call.number
        if policy == "on_demand":
            call.on_demand = OnDemand(self._features.codes.record_toggle, caller, called)
            arm = call.on_demand.code[:1]
            return [HushLine(call.caller, False, arm), HushLine(callee, False, arm)]
        if policy != "always":
            return []
        return [RecordCall(call.caller, caller, called)]

    def _record_sip(self, call: Call, port: int) -> list[CallCommand]:
        """``RecordCall`` for line ``port`` talking to the call's SIP leg, when the policy of
        the line's extension or of the call's route says ``always``."""
        extension = self._extension_of_port(port)
        try:
            policy = recording_policy(
                self._config, extensions=[extension] if extension else [], route=call.route
            )
        except RecordingPolicyError as exc:
            log.warning("call from %s: recording policy unknown: %s", self._from(call), exc)
            return []
        if policy != "always":
            return []
        if call.leg_in:
            return [RecordCall(port, self._from(call), extension or call.number)]
        return [RecordCall(port, extension or self._from(call), call.number)]

    def _extension_of_port(self, port: int) -> str:
        info = self.ports[port]
        lines = self._config.lines.fxs
        if info.kind != "fxs" or info.index >= len(lines):
            return ""
        return lines[info.index].extension

    # --- on-demand recording (firmware.pbx.recording, docs/features.md) --------------------

    def _record_digit(self, call: Call, port: int, digit: str, now: int) -> list[CallCommand]:
        """A digit of a party of an ``on_demand`` call talking between two ports."""
        assert call.on_demand is not None
        other = self._other(call, port)
        if (
            other is None
            or other[0] != "port"
            or any(self._mode.get(p) == "conference" for p in (port, other[1]))
            or any(held is call for held in self._held.values())
        ):
            return []  # held, or mixed in a three-way call: no two-party recording to toggle
        step = call.on_demand.digit(port, digit, now)
        out: list[CallCommand] = []
        if step.hush is not None:
            out.append(HushLine(port, step.hush, call.on_demand.code[:1]))
        if step.replay:
            out.append(SendDtmf(other[1], step.replay))
        if step.toggled:
            out += self._toggled(call, port)
        return out

    def _let_go(self, call: Call, port: int, digits: str) -> list[CallCommand]:
        """Held-back digits were not the code (nothing followed in time): send them on."""
        assert call.on_demand is not None
        other = self._other(call, port)
        out: list[CallCommand] = [HushLine(port, False, call.on_demand.code[:1])]
        if other is not None and other[0] == "port":
            out.append(SendDtmf(other[1], digits))
        return out

    def _toggled(self, call: Call, port: int) -> list[CallCommand]:
        od = call.on_demand
        assert od is not None and call.caller is not None
        verb = "starts" if od.recording else "stops"
        log.info("port %d %s recording the call (%s -> %s)", port, verb, od.caller, od.callee)
        call.note(f"recording {'on' if od.recording else 'off'} by port {port}")
        # The file is always that of the calling port: left what the caller said.
        if od.recording:
            return [RecordCall(call.caller, od.caller, od.callee, "on_demand", beep=True)]
        return [StopRecording(call.caller)]

    def _record_toggle_after_flash(
        self, port: int, consult: Call, held: Call, now: int
    ) -> list[CallCommand]:
        """Flash, then the toggle code: back to the held call, its recording toggled."""
        assert held.on_demand is not None
        log.info("port %d: toggle code after a flash", port)
        del self._held[port]
        del self._mode[port]
        out = self._end(consult, now, gone=port)
        held.on_demand.recording = not held.on_demand.recording
        resumed = [c for c in self._resume(held, port) if not isinstance(c, RecordCall)]
        return out + resumed + self._toggled(held, port)

    def _dialled(self, call: Call, verdict: Verdict, now: int) -> list[CallCommand]:
        if verdict.outcome is Outcome.INCOMPLETE:
            return []
        assert call.caller is not None
        call.collector = None
        call.number = verdict.digits
        call.decided_at = now
        if call.pending is not None:
            return self._pin_dialled(call, verdict, now)
        if verdict.outcome is Outcome.INVALID:
            self._note(call.caller, verdict, None)
            return self._fail(call, now, f"{verdict.digits!r}: {verdict.reason}")
        if call.feature is not None:
            taken, call.feature = call.feature, None
            if taken is Feature.CALL_WAITING_OFF:
                call.no_call_waiting = True
                call.note("call waiting off for this call")
            else:
                return self._set_availability(call, taken, verdict.digits, now)
        else:
            feature = parse_code(self._features.codes, verdict.digits)
            if feature is not None:
                self._note(call.caller, verdict, None)
                return self._feature_code(call, feature, now)
        if any(r.number == verdict.digits for r in self._config.conference.rooms):
            return self._start_app(call, JoinConference(verdict.digits), now)
        if self._is_ivr(verdict.digits):
            return self._start_app(call, RunIvr(), now)
        if self.groups.kind(verdict.digits) is not None:
            self._note(call.caller, verdict, None)
            return self._hunt_start(call, verdict.digits, now)
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
        return self._go(call, decision, now)

    def _go(self, call: Call, decision: Routed, now: int) -> list[CallCommand]:
        """Put ``call`` through to a routed destination (dialled, forwarded, called back)."""
        external = isinstance(decision.destination, ToFxo | ToTrunk)
        if isinstance(decision.destination, ToTrunk) and len(self._legs) >= MAX_SIP_LEGS:
            external = False  # the endpoint's limit comes first: _place_sip says so
        if external:
            refused = self._toll.refuse(decision.dialled, decision.number, self._external_calls())
            if refused is None and call.caller is not None and call.forwards == 0:
                if self.ports[call.caller].kind == "fxs":
                    extension = self._extension_of(call.caller)
                    refused = self._toll.refuse_for(extension, decision.dialled)
            if refused is not None:
                log.warning("%s: external call refused: %s", self._from(call), refused)
                return self._fail(call, now, refused, code=SIP_FORBIDDEN)
            if (
                call.caller is not None
                and call.forwards == 0  # a forwarded caller was not asked for, nor knows, it
                and self.ports[call.caller].kind == "fxs"
                and not call.pin_ok
                and self._toll.needs_pin(decision.dialled)
            ):
                call.pending = decision
                call.collector = self._pin_map.collector()
                call.enter(CallState.DIALLING, now)
                return [
                    LineEvent(call.caller, m.Proceed()),
                    LineEvent(call.caller, m.RecallDialTone()),
                ]
        match decision.destination:
            case ToExtension(fxs=fxs):
                return self._ring_extension(call, fxs, now)
            case ToFxo(fxo=fxo):
                return self._seize_fxo(call, fxo, decision.number, now)
            case ToTrunk(trunk=trunk):
                if call.caller is None:
                    return self._bridge_sip(call, trunk, decision.number, now)
                return self._place_sip(call, trunk, decision.number, now)
            case ToVoicemail(mailbox=extension):
                box = mailbox_of(self._config, extension)
                if box is None:
                    return self._fail(
                        call,
                        now,
                        f"voicemail of {extension} is not available",
                        code=SIP_TEMPORARILY_UNAVAILABLE,
                    )
                log.info("call from %s: voicemail %s takes the call", self._from(call), box)
                reason = "busy" if call.busy_forward else "unavailable"
                return self._start_app(call, self._leave_message(call, box, reason), now)
            case ToGroup(number=number):
                return self._hunt_start(call, number, now)
        raise CallControlError(f"unhandled destination {decision.destination!r}")

    def _external_calls(self) -> int:
        n = 0
        for call in self._active():
            if call.state in (CallState.ENDED, CallState.FAILED):
                continue
            if call.callee is not None and self.ports[call.callee].kind == "fxo":
                n += 1
            elif call.leg is not None and not call.leg_in and call.account in self._trunks:
                n += 1
            elif call.out_leg is not None and call.out_account in self._trunks:
                n += 1
        return n

    def _pin_dialled(self, call: Call, verdict: Verdict, now: int) -> list[CallCommand]:
        decision, call.pending = call.pending, None
        assert decision is not None
        call.number = decision.dialled
        digits = verdict.digits.rstrip("#")
        if verdict.outcome is not Outcome.COMPLETE or digits != self._toll.pin:
            log.warning("port %s: wrong PIN for an external call to %s", call.caller, call.number)
            return self._fail(call, now, "wrong PIN for an external call", code=SIP_FORBIDDEN)
        call.pin_ok = True
        return self._go(call, decision, now)

    # --- feature codes ------------------------------------------------------------------

    def _extension_of(self, port: int) -> str:
        index = self.ports[port].index
        lines = self._config.lines.fxs
        return lines[index].extension if index < len(lines) else ""

    def _feature_code(self, call: Call, feature: Feature, now: int) -> list[CallCommand]:
        assert call.caller is not None
        port = call.caller
        log.info("port %d dialled feature code %s", port, feature.value)
        if self.ports[port].kind != "fxs":
            return self._fail(call, now, f"feature {feature.value} from an exchange line")
        if feature in TAKES_NUMBER:
            call.feature = feature
            call.collector = self._digit_map.collector()
            return [LineEvent(port, m.Proceed()), LineEvent(port, m.RecallDialTone())]
        match feature:
            case Feature.PICKUP:
                return self._pickup(call, port, now)
            case Feature.LAST_CALL_RETURN:
                number = self._last_caller.get(port, "")
                if not number:
                    return self._fail(call, now, "no call to return")
                decision = self._router.route(number)
                if isinstance(decision, NoRoute):
                    return self._fail(call, now, f"last caller {number}: {decision.reason}")
                call.number = number
                return self._go(call, decision, now)
            case Feature.VOICEMAIL:
                return self._check_mailbox(call, now)
            case Feature.QUEUE_LOGIN | Feature.QUEUE_LOGOUT:
                return self._agent(call, feature, now)
        return self._set_availability(call, feature, "", now)

    def _set_availability(
        self, call: Call, feature: Feature, number: str, now: int
    ) -> list[CallCommand]:
        assert call.caller is not None
        port = call.caller
        extension = self._extension_of(port)
        if not extension:
            return self._fail(call, now, f"port {port} has no extension for {feature.value}")
        if number == self._features.codes.voicemail:
            number = VOICEMAIL_TARGET  # *72 *98: forward to the extension's voicemail
        if number and number != VOICEMAIL_TARGET:
            decision = self._router.route(number)
            if isinstance(decision, NoRoute):
                return self._fail(call, now, f"forwarding to {number}: {decision.reason}")
        before = self.availability.get(extension, Availability())
        after = apply(before, feature, number)
        self.availability[extension] = after
        log.info("extension %s: %s %s -> %s", extension, feature.value, number, after)
        call.enter(CallState.FEATURE, now)
        call.note(f"{feature.value} {number}".rstrip())
        # Stutter dial tone confirms, as on the public network (GR-580-CORE, "confirmation").
        return [
            AvailabilityChanged(extension, after),
            LineEvent(port, m.Proceed()),
            LineEvent(port, m.RecallDialTone()),
        ]

    def _pickup(self, call: Call, port: int, now: int) -> list[CallCommand]:
        picked = self._hunt_pickup(call, port, now)
        if picked is not None:
            return picked
        for target in self._active():
            ringing = target.callee
            if (
                target.state is CallState.RINGING
                and ringing is not None
                and ringing != port
                and self._calls.get(ringing) is target
                and self.ports[ringing].kind == "fxs"
                and ringing not in self._recall
            ):
                break
        else:
            return self._fail(call, now, "no call to pick up")
        log.info("port %d picks up the call ringing on port %d", port, ringing)
        del self._calls[port]
        call.enter(CallState.ENDED, now)
        del self._calls[ringing]
        target.callee = port
        self._calls[port] = target
        out: list[CallCommand] = [LineEvent(ringing, m.CancelAlert()), LineEvent(port, m.Connect())]
        return out + self._answered(target, port, now)

    # --- forwarding and availability ------------------------------------------------------

    def _forward(
        self, call: Call, target: str, extension: str, why: str, now: int
    ) -> list[CallCommand]:
        call.forwards += 1
        call.no_answer_at = None
        if call.forwards > MAX_FORWARDS:
            return self._fail(call, now, f"forwarded more than {MAX_FORWARDS} times (a loop?)")
        call.note(f"forwarded to {target} ({extension}: {why})")
        log.info("call from %s forwarded to %s (%s: %s)", self._from(call), target, extension, why)
        if target == VOICEMAIL_TARGET:
            # Forwarded on busy or in do not disturb: the box greets with the busy greeting.
            call.busy_forward = why in ("busy", "do not disturb")
            return self._go(call, Routed(target, "", "forward", ToVoicemail(extension)), now)
        decision = self._router.route(target)
        if isinstance(decision, NoRoute):
            return self._fail(call, now, f"forwarding to {target}: {decision.reason}")
        return self._go(call, decision, now)

    def _ring_extension(self, call: Call, fxs: int, now: int) -> list[CallCommand]:
        callee = self._fxs_port.get(fxs)
        if callee is None:
            return self._fail(
                call, now, f"FXS line {fxs} is not on this card", code=SIP_TEMPORARILY_UNAVAILABLE
            )
        if callee == call.caller:
            return self._fail(call, now, "called itself", busy=True)
        extension = self._extension_of(callee)
        available = self.availability.get(extension, Availability())
        if available.forward_all:
            return self._forward(call, available.forward_all, extension, "forwards all", now)
        busy = callee in self._calls or callee in self._off_hook
        if busy and not available.dnd and self._may_wait(callee, call):
            return self._call_waiting(call, callee, available, now)
        if busy or available.dnd:
            why = "do not disturb" if available.dnd else "busy"
            if available.forward_busy:
                return self._forward(call, available.forward_busy, extension, why, now)
            box = self._mailbox_of_line(fxs)
            if box is not None:
                call.note(f"port {callee}: {why}: voicemail {box}")
                log.info("port %d: %s: voicemail %s takes the call", callee, why, box)
                # Do not disturb counts as busy: the owner is there and does not want calls.
                return self._start_app(call, self._leave_message(call, box, "busy"), now)
            what = f"port {callee}: do not disturb" if available.dnd else f"port {callee} is busy"
            return self._fail(call, now, what, busy=True)
        call.callee = callee
        call.enter(CallState.RINGING, now)
        self._calls[callee] = call
        self._ringing_for(call, callee, available, now)
        out: list[CallCommand] = []
        if (
            call.caller is not None
            and self.ports[call.caller].kind == "fxs"
            and not call.connected_caller
        ):
            call.ringback = True
            out.append(LineEvent(call.caller, m.RemoteRinging()))
        out.append(LineEvent(callee, m.Alert(call.caller_id)))
        if call.leg is not None and call.leg_in and not call.connected_caller:
            out.append(RingSip(call.leg))
        return out

    def _ringing_for(self, call: Call, callee: int, available: Availability, now: int) -> None:
        if call.caller_id is not None and call.caller_id.number:
            self._last_caller[callee] = call.caller_id.number
        if available.forward_no_answer:
            call.forward_no_answer = available.forward_no_answer
            call.no_answer_at = now + self._features.no_answer_timeout_s * 1000
        elif self._mailbox_of_line(self.ports[callee].index):
            # One no-answer timer: an extension with a mailbox forwards to it (docs/apps.md).
            call.forward_no_answer = VOICEMAIL_TARGET
            call.no_answer_at = now + self._features.no_answer_timeout_s * 1000

    def _no_answer(self, call: Call, now: int) -> list[CallCommand]:
        callee = call.callee
        assert callee is not None
        out: list[CallCommand] = []
        if self._waiting.get(callee) is call:
            del self._waiting[callee]
            current = self._calls.get(callee)
            # As in _detach: a line whose own call ended meanwhile hears busy, not the tone.
            if current is not None and current.state is CallState.TALKING:
                out.append(LineEvent(callee, m.CallWaitingEnd()))
        elif self._calls.get(callee) is call:
            del self._calls[callee]
            out.append(LineEvent(callee, m.CancelAlert()))
        call.callee = None
        extension = self._extension_of(callee)
        return out + self._forward(call, call.forward_no_answer, extension, "no answer", now)

    # --- call waiting and hook flash ------------------------------------------------------

    def _may_wait(self, callee: int, call: Call) -> bool:
        current = self._calls.get(callee)
        return (
            self._features.call_waiting
            and self.ports[callee].kind == "fxs"
            and current is not None
            and current is not call
            and current.state is CallState.TALKING
            and not current.no_call_waiting
            and callee not in self._waiting
            and callee not in self._held
            and callee not in self._recall
            and all(current is not held for held in self._held.values())
        )

    def _call_waiting(
        self, call: Call, callee: int, available: Availability, now: int
    ) -> list[CallCommand]:
        log.info("port %d is talking: call from %s waits", callee, self._from(call))
        call.callee = callee
        call.enter(CallState.RINGING, now)
        call.note("waiting")
        self._waiting[callee] = call
        self._ringing_for(call, callee, available, now)
        out: list[CallCommand] = []
        if call.caller is not None and self.ports[call.caller].kind == "fxs":
            call.ringback = True
            out.append(LineEvent(call.caller, m.RemoteRinging()))
        out.append(LineEvent(callee, m.CallWaiting(call.caller_id)))
        if call.leg is not None and call.leg_in and not call.connected_caller:
            out.append(RingSip(call.leg))
        return out

    def _other(self, call: Call, port: int) -> tuple[str, int] | None:
        """The party ``port`` talks to in ``call``: ("port", n) or ("leg", n)."""
        other = call.callee if call.caller == port else call.caller
        if other is not None and other != port:
            return ("port", other)
        if call.leg is not None and call.leg in self._legs:
            return ("leg", call.leg)
        return None

    def _hold(self, call: Call, port: int) -> list[CallCommand]:
        call.note(f"held by port {port}")
        match self._other(call, port):
            case ("port", other):
                return [Split(port, other)]
            case ("leg", leg):
                if call.leg_audio == port:
                    call.leg_audio = None
                    call.leg_held = True
                    return [DisconnectSip(leg, port), HoldSip(leg)]
        return []

    def _resume(self, call: Call, port: int) -> list[CallCommand]:
        call.note(f"resumed by port {port}")
        self._calls[port] = call
        match self._other(call, port):
            case ("port", other):
                joined: list[CallCommand] = [LineEvent(port, m.Connect()), Join(port, other)]
                od = call.on_demand
                if od is not None:
                    joined += [HushLine(p, False, od.code[:1]) for p in (port, other)]
                if od is not None and od.recording and call.caller is not None:
                    # The hold's split ended the file: recording goes on in a new one.
                    joined.append(RecordCall(call.caller, od.caller, od.callee, "on_demand"))
                return joined
            case ("leg", leg):
                call.leg_audio = port
                call.leg_held = False
                return [LineEvent(port, m.Connect()), ConnectSip(leg, port), ResumeSip(leg)]
        return [LineEvent(port, m.Connect())]

    def _flash(self, port: int, call: Call | None, now: int) -> list[CallCommand]:
        if self.ports[port].kind != "fxs":
            return []
        waiting = self._waiting.get(port)
        held = self._held.get(port)
        mode = self._mode.get(port)
        if call is None:
            return []
        if waiting is not None and call.state is CallState.TALKING:
            # Hold the party we talk to and answer the one waiting.
            del self._waiting[port]
            log.info("port %d: flash answers the waiting call, holds the other", port)
            out = self._hold(call, port)
            self._held[port] = call
            self._mode[port] = "swap"
            self._calls[port] = waiting
            return [*out, LineEvent(port, m.CallWaitingEnd()), *self._answered(waiting, port, now)]
        if held is not None and mode == "swap":
            if call.state is not CallState.TALKING:
                return []
            log.info("port %d: flash swaps the two calls", port)
            out = self._hold(call, port)
            self._held[port] = call
            return out + self._resume(held, port)
        if held is not None and mode == "consult":
            x, y = self._other(held, port), self._other(call, port)
            if (
                call.state is CallState.TALKING
                and self._features.three_way
                and x is not None
                and y is not None
            ):
                three_way = self._three_way(port, held, x, call, y)
                if three_way is not None:
                    return three_way
            # Not (or not yet) a conference: drop the consultation, back to the held party.
            log.info("port %d: flash drops the consultation", port)
            del self._held[port]
            del self._mode[port]
            out = self._end(call, now, gone=port)
            return out + self._resume(held, port)
        if held is not None and mode == "conference":
            # Drop the party added last and go on with the first (Bellcore three-way).
            del self._held[port]
            del self._mode[port]
            out = [Unmix(self._mixed_ports(port, held, call))]
            out += self._end(call, now, gone=port)
            out += self._release_app_port(held)  # a SIP party's audio goes back to the line
            return out + self._resume(held, port)
        if call.state is CallState.TALKING and (
            self._features.three_way or self._features.transfer
        ):
            log.info("port %d: flash holds the call and gives recall dial tone", port)
            out = self._hold(call, port)
            self._held[port] = call
            self._mode[port] = "consult"
            self._calls[port] = Call(
                port,
                CallState.DIALLING,
                self._digit_map.collector(),
                caller_id=self._caller_id(port),
                started=now,
                since=now,
            )
            return [*out, LineEvent(port, m.RecallDialTone())]
        return []

    def _three_way(
        self, port: int, held: Call, x: tuple[str, int], call: Call, y: tuple[str, int]
    ) -> list[CallCommand] | None:
        """The flash in consultation makes a three-way call of ``port``, the held party ``x``
        and the consultation ``y``.  A SIP party's audio moves from the line to an application
        port of its own (a media loop with no line, :mod:`firmware.service.appports`), which
        takes its seat in the mixer like a line.  None when too few application ports are free."""
        legs = [c for c, other in ((held, x), (call, y)) if other[0] == "leg"]
        free = [p for p in self.app_ports if p not in self._app_calls]
        if len(free) < len(legs) or any(c.app_port is not None for c in legs):
            log.warning(
                "port %d: no three-way call: %d application ports free for %d SIP parties",
                port,
                len(free),
                len(legs),
            )
            return None
        out: list[CallCommand] = []
        members = [port]
        for c, other in ((held, x), (call, y)):
            if other[0] == "port":
                if c is call:
                    out.append(Split(port, other[1]))
                members.append(other[1])
                continue
            if c.leg_audio is not None:
                out.append(DisconnectSip(other[1], c.leg_audio))
            app_port = free.pop(0)
            c.app_port = app_port
            self._app_calls[app_port] = c
            c.leg_audio = app_port
            out.append(ConnectSip(other[1], app_port))
            if c.leg_held:
                c.leg_held = False
                out.append(ResumeSip(other[1]))
            members.append(app_port)
        log.info("port %d: flash makes a three-way call with %s and %s", port, x, y)
        self._mode[port] = "conference"
        call.note("three-way")
        held.note("three-way")
        return [*out, LineEvent(port, m.Connect()), Mix(tuple(members))]

    def _mixed_ports(self, port: int, *calls: Call) -> tuple[int, ...]:
        """The mixer's ports in the three-way call of ``port``: the line, the other lines
        and the application ports carrying the SIP parties of ``calls``."""
        ports = [port]
        for c in calls:
            if c.app_port is not None and c.app is None and self._app_calls.get(c.app_port) is c:
                ports.append(c.app_port)
                continue
            other = self._other(c, port)
            if other is not None and other[0] == "port":
                ports.append(other[1])
        return tuple(ports)

    def _hung_up(self, port: int, call: Call | None, now: int) -> list[CallCommand]:
        held = self._held.pop(port, None)
        mode = self._mode.pop(port, None)
        waiting = self._waiting.pop(port, None)
        self._recall.pop(port, None)
        out: list[CallCommand] = []
        if held is not None and call is not None and mode in ("consult", "conference"):
            if mode == "conference":
                out.append(Unmix(self._mixed_ports(port, held, call)))
                # The SIP parties leave their application ports: joined or bridged below.
                out += self._release_app_port(held) + self._release_app_port(call)
            if self._features.transfer and call.state in (
                CallState.TALKING,
                CallState.RINGING,
                CallState.CALLING,
                CallState.SEIZING,
            ):
                transferred = self._transfer(held, call, port, now)
                if transferred is not None:
                    return out + transferred
        if call is not None:
            out += self._end(call, now, gone=port)
        if held is not None:
            # Hung up on a held party: ring back, as the exchange does (recall).
            log.info("port %d hung up with a call on hold: ringing it back", port)
            if mode == "conference" and held.leg is not None and held.leg in self._legs:
                # Resumed for the three-way call: the SIP party waits on hold again.
                held.leg_held = True
                out.append(HoldSip(held.leg))
            self._calls[port] = held
            self._recall[port] = held
            other = self._other(held, port)
            cid = None
            if other is not None and other[0] == "port" and held.caller == other[1]:
                cid = held.caller_id
            out.append(LineEvent(port, m.Alert(cid)))
        elif waiting is not None:
            log.info("port %d hung up with a call waiting: ringing it", port)
            self._calls[port] = waiting
            out.append(LineEvent(port, m.Alert(waiting.caller_id)))
        return out

    def _transfer(self, a: Call, b: Call, port: int, now: int) -> list[CallCommand] | None:
        """``port`` hung up with ``a`` held and ``b`` in consultation: join the other two.
        None when they cannot be joined (two SIP legs: the endpoint cannot bridge them)."""
        x, y = self._other(a, port), self._other(b, port)
        if x is None or y is None:
            return None
        if x[0] == "leg" and y[0] == "leg":
            return self._transfer_legs(a, b, port, now)
        log.info("port %d transfers %s to %s (%s)", port, x, y, b.state.value)
        out: list[CallCommand] = []
        talking = b.state in (CallState.TALKING, CallState.SEIZING)
        if y[0] == "port" and talking:
            out.append(Split(port, y[1]))
        elif y[0] == "leg" and b.leg_audio == port:
            out.append(DisconnectSip(y[1], port))
            b.leg_audio = None
        if self._calls.get(port) is b:
            del self._calls[port]
        b.connected_caller = True
        b.note(f"transferred by port {port}")
        a.enter(CallState.ENDED, now)
        self._closed.append(a)
        if x[0] == "port":
            b.caller = x[1]
            b.caller_id = a.caller_id if a.caller == x[1] else self._caller_id(x[1])
            self._calls[x[1]] = b
            if y[0] == "port" and talking:
                out.append(Join(x[1], y[1]))
            elif y[0] == "leg" and (talking or b.progress is Progress.EARLY_MEDIA):
                b.leg_audio = x[1]
                out.append(ConnectSip(y[1], x[1]))
        else:
            assert a.leg is not None
            b.caller = None
            b.leg = a.leg
            b.leg_in = True
            b.account = a.account
            b.caller_id = a.caller_id
            self._legs[a.leg] = b
            if talking:
                b.leg_audio = y[1]
                out.append(ConnectSip(a.leg, y[1]))
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
        """Answer the calling line and put it through to ``app``; a SIP caller gets an
        application port of its own (:meth:`_start_sip_app`)."""
        caller = call.caller
        if caller is None:
            return self._start_sip_app(call, app, now)
        call.app = app
        call.no_answer_at = None
        call.enter(CallState.TALKING, now)
        call.note(f"application {type(app).__name__} {app.box}")
        log.info("port %d: call put through to %s", caller, app)
        if call.connected_caller:
            return [StartApp(caller, app)]
        if self.ports[caller].kind == "fxo":
            self._fxo_ringing.discard(caller)
            return [LineEvent(caller, m.AnswerCall()), StartApp(caller, app)]
        return [LineEvent(caller, m.Connect()), StartApp(caller, app)]

    def _start_sip_app(self, call: Call, app: App, now: int) -> list[CallCommand]:
        """Answer the SIP caller and connect its leg to a free application port, where the
        shell runs ``app`` as on a line (its RFC 4733 digits become ``AppDigit``)."""
        assert call.leg is not None and call.leg_in
        port = call.app_port
        if port is None:
            free = [p for p in self.app_ports if p not in self._app_calls]
            if not free:
                return self._fail(
                    call,
                    now,
                    f"all {len(self.app_ports)} application ports in use for {app.box}",
                    code=SIP_SERVICE_UNAVAILABLE,
                )
            port = free[0]
        call.app = app
        call.app_port = port
        self._app_calls[port] = call
        call.no_answer_at = None
        call.enter(CallState.TALKING, now)
        call.note(f"application {type(app).__name__} {app.box}")
        log.info("SIP leg %d: call put through to %s on port %d", call.leg, app, port)
        out: list[CallCommand] = []
        if not call.connected_caller:
            out.append(AnswerSip(call.leg))
            call.connected_caller = True
        if call.leg_audio != port:
            call.leg_audio = port
            out.append(ConnectSip(call.leg, port))
        return [*out, StartApp(port, app)]

    def _release_app_port(self, call: Call) -> list[CallCommand]:
        """The SIP caller leaves its application port (transferred on, or gone)."""
        port, call.app_port = call.app_port, None
        if port is None or self._app_calls.get(port) is not call:
            return []
        del self._app_calls[port]
        if call.leg_audio == port:
            call.leg_audio = None
            if call.leg is not None and self._legs.get(call.leg) is call:
                return [DisconnectSip(call.leg, port)]
        return []

    def _app_port_of(self, call: Call) -> int:
        """Where ``call``'s application runs: its line, or a SIP caller's application port."""
        port = call.caller if call.caller is not None else call.app_port
        assert port is not None
        return port

    def _app_call(self, port: int) -> Call | None:
        """The call whose application runs on ``port`` (a line's or an application port)."""
        call = self._calls.get(port) or self._app_calls.get(port)
        if call is None or call.app is None or port not in (call.caller, call.app_port):
            return None
        return call

    def _is_ivr(self, number: str) -> bool:
        ivr = self._config.ivr
        return ivr.enabled and bool(ivr.number) and number == ivr.number

    def app_transfer(
        self, port: int, target: GoExtension | GoVoicemail | GoDial, now: int
    ) -> list[CallCommand]:
        """The IVR on ``port`` chose where the caller goes (its session is over)."""
        call = self._app_call(port)
        if call is None:
            return []
        call.app = None
        call.connected_caller = True  # answered by the IVR: its line talks already
        if call.app_port is not None and not self._keeps_app_port(target):
            released = self._release_app_port(call)
            return released + self._app_transfer_to(call, target, now)
        return self._app_transfer_to(call, target, now)

    def _keeps_app_port(self, target: GoExtension | GoVoicemail | GoDial) -> bool:
        """A SIP caller the IVR sends to voicemail or a queue stays on its application port."""
        match target:
            case GoVoicemail():
                return True
            case GoExtension(number=number):
                return self.groups.kind(number) == "queue"
            case GoDial(number=number):
                decision = self._router.route(number)
                return (
                    isinstance(decision, Routed)
                    and isinstance(decision.destination, ToGroup)
                    and self.groups.kind(decision.destination.number) == "queue"
                )

    def _app_transfer_to(
        self, call: Call, target: GoExtension | GoVoicemail | GoDial, now: int
    ) -> list[CallCommand]:
        match target:
            case GoVoicemail(mailbox=box):
                return self._start_app(call, self._leave_message(call, box, "unavailable"), now)
            case GoExtension(number=number):
                call.number = number
                if self.groups.kind(number) is not None:
                    return self._hunt_start(call, number, now)
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
                    case ToTrunk(trunk=trunk) if call.caller is not None:
                        return self._place_sip(call, trunk, decision.number, now)
                    case ToGroup(number=group):
                        return self._hunt_start(call, group, now)
                    case ToTrunk(trunk=trunk):  # a SIP caller: a second leg, bridged with it
                        return self._bridge_sip(call, trunk, decision.number, now)
        return self._fail(call, now, f"IVR: cannot transfer to {target}")

    def app_finished(self, port: int, now: int) -> list[CallCommand]:
        """The application on ``port`` hung up by itself (goodbye said): end the call."""
        call = self._app_call(port)
        if call is None:
            return []
        call.app = None
        if call.app_port is not None:
            return self._release_app_port(call) + self._end(call, now)
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
            if call.connected_caller:  # answered already (by the IVR)
                return [*out, ConnectSip(call.leg, line)]
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
        if (
            self.ports[call.caller].kind == "fxs"
            and not call.ringback
            and not call.connected_caller
        ):
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
        if call.leg_audio == call.caller:
            out += self._record_sip(call, call.caller)
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
                if self.groups.kind(trunk.destination or event.called) is not None:
                    return self._hunt_start(call, trunk.destination or event.called, now)
                app = self._sip_app(trunk.destination or event.called)
                if app is not None:
                    return self._start_app(call, app, now)
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
        if self.groups.kind(event.called) is not None:
            return self._hunt_start(call, event.called, now)
        if event.called == self._features.codes.voicemail:
            box = mailbox_of(self._config, event.peer)
            if box is None:
                return self._fail(call, now, f"IP phone {event.peer!r} has no voicemail box")
            return self._start_app(call, CheckMailbox(box), now)
        app = self._sip_app(event.called)
        if app is not None:
            return self._start_app(call, app, now)
        decision = self._router.route(event.called)
        if isinstance(decision, NoRoute):
            return self._fail(call, now, decision.reason, busy=decision.busy)
        match decision.destination:
            case ToExtension(fxs=fxs):
                return self._ring_extension(call, fxs, now)
            case ToFxo(fxo=fxo):
                return self._seize_fxo(call, fxo, decision.number, now)
        refused = self._toll.refuse_for(event.peer, decision.dialled)
        if refused is not None:
            log.warning("IP phone %s: external call refused: %s", event.peer, refused)
            return self._fail(call, now, refused, code=SIP_FORBIDDEN)
        return self._go(call, decision, now)

    # --- SIP hold, transfer by REFER, two bridged legs -----------------------------------

    def _hold_of(self, call: Call) -> str:
        if call.leg in self._referring or any(held is call for held in self._held.values()):
            return "local"
        return "remote" if call.remote_hold else ""

    def _sip_leg_event(
        self, event: SipHeld | SipTransferred | SipReferred, now: int
    ) -> list[CallCommand]:
        if isinstance(event, SipTransferred):
            return self._referred(event, now)
        if isinstance(event, SipReferred):
            return self._transferred_by_far_end(event, now)
        call = self._legs.get(event.leg)
        if call is None:
            log.info("SIP leg %d is not in a call (over already?): %r ignored", event.leg, event)
            return []
        if event.leg == call.leg:
            call.remote_hold = event.held
        what = "holds" if event.held else "resumes"
        call.note(f"the far end of leg {event.leg} {what} the call")
        log.info("SIP leg %d: the far end %s the call", event.leg, what)
        return []  # its audio to us stops; the line stays connected for when it comes back

    def _bridge_sip(self, call: Call, account: str, number: str, now: int) -> list[CallCommand]:
        """A SIP caller (``call.leg``) goes out through ``account``: a second leg, whose audio
        is bridged with the first in the endpoint once it answers (no line takes part)."""
        if len(self._legs) >= MAX_SIP_LEGS:
            return self._fail(
                call, now, f"all {MAX_SIP_LEGS} SIP legs in use", code=SIP_SERVICE_UNAVAILABLE
            )
        leg = self.new_leg()
        call.out_leg = leg
        call.out_account = account
        call.number = number
        call.progress = Progress.NONE
        call.enter(CallState.CALLING, now)
        self._legs[leg] = call
        log.info("SIP leg %d: bridged to SIP leg %d to %s via %r", call.leg, leg, number, account)
        return [PlaceSipCall(leg, account, number, call.caller_id)]

    def _bridged_event(
        self, call: Call, event: SipRinging | SipAnswered | SipEnded | SipDtmf, now: int
    ) -> list[CallCommand] | None:
        """An event of a bridged call's outgoing leg (None: the usual handling applies)."""
        leg_in, leg_out = call.leg, call.out_leg
        assert leg_in is not None and leg_out is not None
        if event.leg != leg_out:
            if isinstance(event, SipDtmf) and self._legs.get(leg_out) is call:
                return [SendSipDtmf(leg_out, event.digit)]  # RFC 4733 does not cross the bridge
            return None
        match event:
            case SipRinging():
                if call.state is not CallState.CALLING or call.progress is not Progress.NONE:
                    return []
                call.progress = Progress.RINGING
                return [] if call.connected_caller else [RingSip(leg_in)]
            case SipAnswered():
                if call.state is not CallState.CALLING:
                    return []
                call.enter(CallState.TALKING, now)
                call.note("answered")
                log.info("SIP leg %d answered: bridged with SIP leg %d", leg_out, leg_in)
                # A transferred caller talks already, and waits on hold (RFC 3264 sendonly);
                # one the IVR answered was never held: a re-INVITE would be for nothing.
                bridge: list[CallCommand] = [BridgeSip(leg_in, leg_out)]
                if call.leg_held:
                    call.leg_held = False
                    return [ResumeSip(leg_in), *bridge]
                if not call.connected_caller:
                    return [AnswerSip(leg_in), *bridge]
                return bridge
            case SipEnded(code=code, reason=reason):
                del self._legs[leg_out]
                call.sip_code = code
                if call.state is CallState.CALLING:
                    what = failure(code, reason)
                    log.info("leg %d via %r failed: %s", leg_out, call.out_account, what.describe())
                    refusal = code if 400 <= code <= 699 else None
                    return self._fail(
                        call, now, what.describe(), busy=what.tone is Tone.BUSY, code=refusal
                    )
                call.reason = f"SIP leg ended: {code} {reason}".rstrip()
                return self._end(call, now)
            case SipDtmf(digit=digit):
                return [SendSipDtmf(leg_in, digit)]

    def _transfer_legs(self, a: Call, b: Call, port: int, now: int) -> list[CallCommand]:
        """``port`` hung up with SIP leg ``a`` held and SIP leg ``b`` in consultation.

        Both on the same trunk or account: a REFER asks ``a``'s far end to call ``b``'s
        number itself (blind, ``b`` still ringing: ``b`` is cancelled) or to take ``b``'s
        dialog over with Replaces (attended).  Otherwise, or when the REFER fails, the two
        legs are bridged here.
        """
        x, y = a.leg, b.leg
        assert x is not None and y is not None
        out: list[CallCommand] = []
        if b.leg_audio == port:
            out.append(DisconnectSip(y, port))
            b.leg_audio = None
        if self._calls.get(port) is b:
            del self._calls[port]
        account = a.account
        if account != b.account or not (account in self._trunks or account in self._accounts):
            log.info("port %d: transfer bridges SIP legs %d and %d here", port, x, y)
            return out + self._merge_legs(a, b, now)
        if b.state is CallState.TALKING:
            log.info("port %d: attended transfer: REFER on leg %d replacing leg %d", port, x, y)
            a.note(f"REFER to leg {y} (attended)")
            self._referring[x] = (a, b, "")
            return [*out, TransferSip(x, replaces=y)]
        log.info("port %d: blind transfer: REFER on leg %d to %s", port, x, b.number)
        del self._legs[y]
        b.reason = "cancelled: blind transfer by REFER"
        b.enter(CallState.ENDED, now)
        self._closed.append(b)
        a.note(f"REFER to {b.number} (blind)")
        self._referring[x] = (a, None, b.number)
        return [*out, HangupSip(y), TransferSip(x, number=b.number)]

    def _merge_legs(self, a: Call, b: Call, now: int) -> list[CallCommand]:
        """Leg ``a.leg`` takes the place of the phone in ``b``: one call of two bridged legs."""
        x, y = a.leg, b.leg
        assert x is not None and y is not None
        a.enter(CallState.ENDED, now)
        a.note("transferred: bridged here")
        self._closed.append(a)
        b.out_leg, b.out_account = y, b.account
        b.leg, b.leg_in, b.account = x, True, a.account
        b.caller, b.caller_id = None, a.caller_id
        b.connected_caller = True
        b.leg_held = a.leg_held
        b.note(f"legs {x} and {y} bridged by transfer")
        self._legs[x] = b
        if b.state is CallState.TALKING:
            b.leg_held = False
            return [ResumeSip(x), BridgeSip(x, y)]
        return []  # _bridged_event connects them when the consultation answers

    def _referred(self, event: SipTransferred, now: int) -> list[CallCommand]:
        x = event.leg
        entry = self._referring.get(x)
        if entry is None:
            log.info("SIP leg %d: transfer report %r for no transfer; ignored", x, event)
            return []
        a, b, number = entry
        if not event.final:
            a.note(f"transfer: {event.code} {event.reason}".rstrip())
            return []
        del self._referring[x]
        out: list[CallCommand] = []
        if 200 <= event.code < 300:
            log.info("SIP leg %d: transfer done (%d %s)", x, event.code, event.reason)
            for call in (a, b):
                if call is None:
                    continue
                if call.leg is not None and self._legs.get(call.leg) is call:
                    del self._legs[call.leg]
                    out.append(HangupSip(call.leg))
                if call.state is not CallState.ENDED:
                    call.reason = "transferred by REFER"
                    call.enter(CallState.ENDED, now)
                    self._closed.append(call)
            return out
        alive = self._legs.get(x) is a
        log.warning(
            "SIP leg %d: REFER refused or failed (%d %s): %s",
            x,
            event.code,
            event.reason,
            "bridging here instead" if alive else "the far end left meanwhile",
        )
        a.note(f"REFER failed: {event.code} {event.reason}".rstrip())
        consult = b is not None and b.leg is not None and self._legs.get(b.leg) is b
        if not alive:
            return self._end(b, now) if b is not None and consult else []
        if b is not None and consult:
            return self._merge_legs(a, b, now)
        if number:
            # Blind: the consultation was cancelled for the REFER; call the number from here.
            a.caller, a.leg_in, a.connected_caller = None, True, True
            return self._bridge_sip(a, a.account, number, now)
        a.reason = f"transfer failed: {event.code} {event.reason}".rstrip()
        return self._end(a, now)

    def _transferred_by_far_end(self, event: SipReferred, now: int) -> list[CallCommand]:
        """The far end of ``event.leg`` REFERred us; the endpoint placed ``event.new_leg``."""
        call = self._legs.get(event.leg)
        new = event.new_leg
        if call is None or call.leg != event.leg or call.out_leg is not None:
            # Over already, or a call of two bridged legs: their far ends transfer each other.
            log.info(
                "SIP leg %d: transfer to %s not taken: no call of one leg", event.leg, event.number
            )
            return [HangupSip(new)]
        if len(self._legs) >= MAX_SIP_LEGS:
            log.warning(
                "SIP leg %d: transfer to %s: all %d legs in use",
                event.leg,
                event.number,
                MAX_SIP_LEGS,
            )
            return [HangupSip(new)]
        self._legs[new] = call
        self._replacing[new] = (call, event.leg, event.number)
        call.note(f"transferred by the far end to {event.number}")
        log.info(
            "SIP leg %d: the far end transfers the call to %s (leg %d)",
            event.leg,
            event.number,
            new,
        )
        return []

    def _replacement_event(
        self, call: Call, event: SipRinging | SipAnswered | SipEnded | SipDtmf, now: int
    ) -> list[CallCommand]:
        """An event of a leg the far end transferred us to, or the end of the leg it is to
        replace (the referrer hangs up once the target answers, maybe before we hear of it)."""
        if event.leg not in self._replacing:  # the referred leg ended: keep the call
            assert isinstance(event, SipEnded)
            log.info("SIP leg %d (transferred away) ended: %d", event.leg, event.code)
            if self._legs.get(event.leg) is call:
                del self._legs[event.leg]
            if call.leg == event.leg:
                call.leg_audio = None  # the endpoint dropped its audio with it
            return []
        new = event.leg
        _, old, number = self._replacing[new]
        match event:
            case SipAnswered():
                del self._replacing[new]
                port = self._port_of(call)
                out: list[CallCommand] = []
                if self._legs.get(old) is call:
                    del self._legs[old]
                    if call.leg_audio is not None:
                        out.append(DisconnectSip(old, call.leg_audio))
                    out.append(HangupSip(old))
                call.leg, call.remote_hold, call.number = new, False, number
                call.leg_audio = None
                call.note(f"talking to {number} (transferred by the far end)")
                log.info("SIP leg %d to %s answered: it replaces leg %d", new, number, old)
                if port is not None:
                    call.leg_audio = port
                    out.append(ConnectSip(new, port))
                return out
            case SipEnded(code=code, reason=reason):
                del self._replacing[new]
                del self._legs[new]
                call.note(f"transfer to {number} failed: {code} {reason}".rstrip())
                log.info("SIP leg %d: transfer to %s failed (%d %s)", new, number, code, reason)
                if self._legs.get(old) is not call:  # the referrer left too: nobody to talk to
                    call.reason = f"transfer to {number} failed: {code}"
                    return self._end(call, now, leg_ended=True)
                return []  # the referrer learns it by NOTIFY and may take the call back
        return []  # 180 and digits of a leg not connected yet

    def _port_of(self, call: Call) -> int | None:
        """The line a call's SIP leg talks to (None while that line holds it)."""
        for port in (call.caller, call.callee):
            if port is not None and self._calls.get(port) is call:
                return port
        return None

    def _sip_app(self, number: str) -> App | None:
        """The application a SIP caller of ``number`` reaches: a room, or the IVR."""
        if any(r.number == number for r in self._config.conference.rooms):
            return JoinConference(number)
        if self._is_ivr(number):
            return RunIvr()
        return None

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
            case m.DigitDialled(digit=digit):
                # The exchange caller pressed a key (the media loop's DTMF receiver): an
                # application (the IVR) takes it; in a call it travels in the audio.
                if call is not None and call.app is not None and call.caller == port:
                    return [AppDigit(port, digit)]
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
        if self.groups.kind(destination) is not None:
            return self._hunt_start(call, destination, now)
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
        out: list[CallCommand] = self._hunt_release(call)
        call.enter(CallState.FAILED, now)
        call.reason = reason
        call.busy = busy
        call.note(reason)
        if call.leg is not None and call.leg_in:
            refusal = code or (SIP_BUSY_HERE if busy else SIP_NOT_FOUND)
            call.sip_code = refusal
            log.info("SIP leg %d refused with %d: %s", call.leg, refusal, reason)
            self._forget(call)
            return [*out, HangupSip(call.leg, refusal)]
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
        if call.out_leg is not None and self._legs.get(call.out_leg) is call:
            del self._legs[call.out_leg]

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
        was = call.state
        unhunted = self._hunt_release(call)
        mine = {
            p for p in (call.caller, call.callee) if p is not None and self._calls.get(p) is call
        }
        out, resume = self._detach(call, mine, gone)
        out = unhunted + out
        if call.app is not None and call.caller is not None:
            out.append(StopApp(call.caller))
            call.app = None
        if call.app_port is not None:
            if call.app is not None:
                out.append(StopApp(call.app_port))
                call.app = None
            freed = self._release_app_port(call)
            if not leg_ended:  # an ended leg's audio is dropped by the shell (legs.py)
                out += freed
        if (
            call.caller is not None
            and call.callee is not None
            and call.caller in mine
            and call.callee in mine
            and was in (CallState.TALKING, CallState.SEIZING)
        ):
            out.append(Split(call.caller, call.callee))
        if call.leg is not None and self._legs.get(call.leg) is call:
            del self._legs[call.leg]
            if not leg_ended:
                if call.leg_audio is not None:
                    out.append(DisconnectSip(call.leg, call.leg_audio))
                out.append(HangupSip(call.leg))
        if call.out_leg is not None and self._legs.get(call.out_leg) is call:
            del self._legs[call.out_leg]
            out.append(HangupSip(call.out_leg))
        for new, (replacing, _, _) in list(self._replacing.items()):
            if replacing is call:  # a transfer by the far end still ringing
                del self._replacing[new]
                self._legs.pop(new, None)
                out.append(HangupSip(new))
        call.leg_audio = None
        for port in (call.caller, call.callee):
            if port is not None and self._calls.get(port) is call:
                del self._calls[port]
        for port in (call.caller, call.callee):
            if port is None or port == gone or port not in mine:
                continue
            info = self.ports[port]
            if self._recall.get(port) is call:
                del self._recall[port]
                out.append(LineEvent(port, m.CancelAlert()))
                continue
            if port in resume:
                out += self._resume(resume[port], port)
                continue
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

    def _detach(
        self, call: Call, mine: set[int], gone: int | None
    ) -> tuple[list[CallCommand], dict[int, Call]]:
        """Hook-flash bookkeeping for a call that ends: a held or waiting call leaves its
        port alone; a port whose current call ends goes back to its held call (returned)."""
        out: list[CallCommand] = []
        resume: dict[int, Call] = {}
        for port, held in list(self._held.items()):
            current = self._calls.get(port)
            if held is call:
                del self._held[port]
                if self._mode.pop(port, None) == "conference" and current is not None:
                    out += self._unmix_to_two(port, held, current, join=True)
            elif current is call and port in mine and port != gone:
                del self._held[port]
                if self._mode.pop(port, None) == "conference":
                    out += self._unmix_to_two(port, held, call, join=False)
                resume[port] = held
        for port, waiting in list(self._waiting.items()):
            if waiting is call:
                del self._waiting[port]
                current = self._calls.get(port)
                if current is not None and current.state is CallState.TALKING:
                    out.append(LineEvent(port, m.CallWaitingEnd()))
        return out, resume

    def _unmix_to_two(
        self, port: int, held: Call, current: Call, *, join: bool
    ) -> list[CallCommand]:
        """A party left the three-way call of ``port``: the mixer goes; ``join``: ``port``
        talks on with ``current``'s party (else the resume of the held call follows)."""
        out: list[CallCommand] = [Unmix(self._mixed_ports(port, held, current))]
        # The party staying on: a SIP leg's audio goes back from its application port to
        # the line (the leaving one's port is freed as its call ends).
        stays = current if join else held
        if stays.app_port is not None and stays.app is None:
            out += self._release_app_port(stays)
            if join and stays.leg is not None and stays.leg in self._legs:
                stays.leg_audio = port
                out.append(ConnectSip(stays.leg, port))
        other = self._other(current, port)
        if join and other is not None and other[0] == "port":
            out.append(Join(port, other[1]))
        return out

    # --- ring groups and queues (firmware.pbx.groups) --------------------------------------

    def _hunt_start(self, call: Call, number: str, now: int) -> list[CallCommand]:
        """Put ``call`` through to ring group or queue ``number``."""
        # A group whose no-answer destination is another group counts as a forward, so that
        # a loop of groups ends like a loop of forwardings.
        call.forwards += 1
        if call.forwards > MAX_FORWARDS:
            return self._hunt_fail(call, f"passed on more than {MAX_FORWARDS} times (a loop?)", now)
        hunt = self.groups.start(number, now)
        call.number = number
        call.no_answer_at = None
        call.note(f"{hunt.kind} {number}")
        if hunt.kind == "queue":
            if (
                call.caller is None
                and call.app_port is None
                and all(p in self._app_calls for p in self.app_ports)
            ):
                # A SIP caller waits on an application port (its music is played there).
                return self._fail(
                    call,
                    now,
                    f"queue {number}: all {len(self.app_ports)} application ports in use",
                    code=SIP_SERVICE_UNAVAILABLE,
                )
            if self.groups.full(number):
                log.info("queue %s is full: call from %s overflows", number, self._from(call))
                return self._hunt_destination(call, hunt, "full", now)
            call.hunt = hunt
            position = self.groups.enqueue(hunt, self._from(call), now)
            log.info(
                "call from %s waits in queue %s (position %d)", self._from(call), number, position
            )
            out = self._start_app(call, WaitInQueue(number), now)
            return out + self._hunt_ring(call, now)
        call.hunt = hunt
        out = self._hunt_ring(call, now)
        if not hunt.ringing:
            return out + self._hunt_over(call, "no member can ring", now)
        call.enter(CallState.RINGING, now)
        if (
            call.caller is not None
            and self.ports[call.caller].kind == "fxs"
            and not call.connected_caller
        ):
            call.ringback = True
            out.insert(0, LineEvent(call.caller, m.RemoteRinging()))
        if call.leg is not None and call.leg_in:
            out.append(RingSip(call.leg))
        return out

    def _ringable(self, call: Call, extension: str) -> int | None:
        """The port to alert for group member ``extension``, or None: busy, DND, no port."""
        found = self._router.extension(extension)
        if isinstance(found, NoRoute):
            return None
        port = self._fxs_port.get(found.fxs)
        if port is None or port == call.caller or port in self._calls or port in self._off_hook:
            return None
        if self.availability.get(extension, Availability()).dnd:
            return None
        return port

    def _hunt_ring(self, call: Call, now: int) -> list[CallCommand]:
        """Alert the members the hunt's strategy picks now; stop the others ringing."""
        hunt = call.hunt
        assert hunt is not None
        before = dict(hunt.ringing)
        for port in before:
            if self._calls.get(port) is call:
                del self._calls[port]  # free again for the choice
        picked = self.groups.pick(hunt, now, lambda extension: self._ringable(call, extension))
        out: list[CallCommand] = [
            LineEvent(port, m.CancelAlert()) for port in before if port not in picked
        ]
        for port in picked:
            self._calls[port] = call
            if port in before:
                continue  # rings on
            if call.caller_id is not None and call.caller_id.number:
                self._last_caller[port] = call.caller_id.number
            out.append(LineEvent(port, m.Alert(call.caller_id)))
        if picked and picked != before:
            log.info(
                "%s %s: ringing %s for %s",
                hunt.kind,
                hunt.number,
                ", ".join(picked.values()),
                self._from(call),
            )
        return out

    def _hunt_answered(self, call: Call, port: int, now: int) -> list[CallCommand]:
        hunt = call.hunt
        assert hunt is not None
        member = hunt.ringing[port]
        out: list[CallCommand] = []
        for other in hunt.ringing:
            if other != port and self._calls.get(other) is call:
                del self._calls[other]
                out.append(LineEvent(other, m.CancelAlert()))
        self.groups.answered(hunt, member, now)
        call.hunt = None
        call.callee = port
        call.note(f"{hunt.kind} {hunt.number}: {member} answered")
        log.info("%s %s: %s answered on port %d", hunt.kind, hunt.number, member, port)
        if isinstance(call.app, WaitInQueue):
            out.append(StopApp(self._app_port_of(call)))  # the music stops
            call.app = None
            call.connected_caller = True
            out += self._release_app_port(call)  # a SIP caller: its leg goes to the agent
        return out + self._answered(call, port, now)

    def _hunt_pickup(self, call: Call, port: int, now: int) -> list[CallCommand] | None:
        """``port`` dialled the pickup code: it answers a ring group's call ringing elsewhere
        (None: there is none)."""
        for target in self._active():
            hunt = target.hunt
            if (
                hunt is not None
                and hunt.kind == "group"
                and hunt.ringing
                and target.state is CallState.RINGING
                and target.caller != port
            ):
                break
        else:
            return None
        log.info("port %d picks up the call ringing group %s", port, hunt.number)
        del self._calls[port]
        call.enter(CallState.ENDED, now)
        out = self._hunt_release(target)
        target.callee = port
        self._calls[port] = target
        target.note(f"group {hunt.number}: picked up by port {port}")
        return [*out, LineEvent(port, m.Connect()), *self._answered(target, port, now)]

    def _hunt_release(self, call: Call) -> list[CallCommand]:
        """The call leaves its group or queue (it ends, fails or goes elsewhere)."""
        hunt, call.hunt = call.hunt, None
        if hunt is None:
            return []
        out: list[CallCommand] = []
        for port in hunt.ringing:
            if self._calls.get(port) is call and port != call.callee:
                del self._calls[port]
                out.append(LineEvent(port, m.CancelAlert()))
        self.groups.leave(hunt)
        return out

    def _hunt_timer(self, now: int) -> list[CallCommand]:
        out: list[CallCommand] = []
        hunting = [c for c in self._active() if c.hunt is not None]
        # Earlier callers first: they choose among the free agents before later ones.
        hunting.sort(key=lambda c: c.hunt.started if c.hunt is not None else 0)
        for call in hunting:
            hunt = call.hunt
            if hunt is None:
                continue
            if now >= hunt.ends_at:
                why = "no answer" if hunt.kind == "group" else "waited too long"
                out += self._hunt_over(call, why, now)
                continue
            due = [d for d in (hunt.ring_until, hunt.retry_at) if d is not None]
            if due and now >= min(due):
                out += self._hunt_ring(call, now)
                if hunt.kind == "group" and not hunt.ringing:
                    out += self._hunt_over(call, "no member can ring", now)
                    continue
            if hunt.announce_at is not None and now >= hunt.announce_at:
                position = self.groups.announced(hunt, now)
                if position is not None and isinstance(call.app, WaitInQueue):
                    out.append(AnnouncePosition(self._app_port_of(call), hunt.number, position))
        return out

    def _hunt_over(self, call: Call, why: str, now: int) -> list[CallCommand]:
        hunt = call.hunt
        assert hunt is not None
        out = self._hunt_release(call)
        log.info("%s %s: %s for %s", hunt.kind, hunt.number, why, self._from(call))
        return out + self._hunt_destination(call, hunt, why, now)

    def _hunt_destination(self, call: Call, hunt: Hunt, why: str, now: int) -> list[CallCommand]:
        """Where an unanswered (or overflowing) call goes: ``no_answer`` / ``overflow``."""
        kind, number = parse_destination(self.groups.destination(hunt))
        where = f"{hunt.kind} {hunt.number}: {why}"
        call.note(where)
        out: list[CallCommand] = []
        if isinstance(call.app, WaitInQueue):
            out.append(StopApp(self._app_port_of(call)))
            call.app = None
            call.connected_caller = True
        # A SIP caller keeps its application port for voicemail or another queue.
        if kind == "number" and self.groups.kind(number) != "queue":
            out += self._release_app_port(call)
        if kind == "hangup":
            return out + self._hunt_fail(call, where, now)
        if kind == "voicemail":  # a SIP caller leaves it on an application port
            log.info("%s: voicemail %s takes the call", where, number)
            return out + self._start_app(
                call, self._leave_message(call, number, "unavailable"), now
            )
        log.info("%s: the call goes to %s", where, number)
        if self.groups.kind(number) is not None:
            return out + self._hunt_start(call, number, now)
        found = self._router.extension(number)
        if isinstance(found, NoRoute):
            return out + self._hunt_fail(call, f"{where}: {found.reason}", now)
        return out + self._ring_extension(call, found.fxs, now)

    def _hunt_fail(self, call: Call, reason: str, now: int) -> list[CallCommand]:
        """The call goes nowhere: busy tone (486 for SIP); a line answered already (by the
        queue or the IVR) is cleared as when the far end of a call hangs up, so that an
        exchange line is let go."""
        if call.connected_caller:
            call.reason = reason
            call.note(reason)
            call.enter(CallState.TALKING, now)
            return self._end(call, now)
        return self._fail(call, now, reason, busy=True)

    def _agent(self, call: Call, feature: Feature, now: int) -> list[CallCommand]:
        """A queue agent logs in or out of every queue it is a member of."""
        assert call.caller is not None
        port = call.caller
        extension = self._extension_of(port)
        login = feature is Feature.QUEUE_LOGIN
        done = self.groups.log_in(extension) if login else self.groups.log_out(extension)
        if not extension or not done:
            return self._fail(call, now, f"extension {extension or '-'} is in no queue")
        queues = ", ".join(self.groups.queues_of(extension))
        log.info("extension %s: %s (queues %s)", extension, feature.value, queues)
        call.enter(CallState.FEATURE, now)
        call.note(feature.value)
        # Stutter dial tone confirms, as for the other feature codes.
        return [
            AgentChanged(extension, login),
            LineEvent(port, m.Proceed()),
            LineEvent(port, m.RecallDialTone()),
        ]

    def _note(self, port: int, verdict: Verdict, decision: Routed | NoRoute | None) -> None:
        self.decisions.append((port, verdict, decision))
        del self.decisions[: -self._decisions_cap]


def _local(decision: Routed | NoRoute) -> bool:
    """Kept on the box even for an ATA line: extensions, exchange lines, emergency calls."""
    if not isinstance(decision, Routed):
        return False
    return decision.emergency or isinstance(decision.destination, ToExtension | ToFxo | ToGroup)
