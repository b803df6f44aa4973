"""The I/O shell between call control (firmware.pbx) and the SIP endpoint (firmware.sip).

Call control speaks of *legs* (its own numbers); pjsua of *call ids* (slots 0..3 that it
reuses).  This shell keeps the map between them, turns call control's SIP commands into
endpoint commands (queued to the pjsua2 thread, so each one is a task here) and the
endpoint's events into call control's SIP events, and binds a line's media loop to a leg's
audio in the conference bridge.

Ordering: an outgoing leg has no call id until ``make_call`` returns; events of a call id
not known yet are held back (bounded) and replayed once the placement completes.  A hang-up
asked for while the placement is in flight is carried out as soon as it completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from firmware.lines import messages as m
from firmware.lines.errors import InvalidValue
from firmware.pbx.features import TollRules
from firmware.pbx.legs import (
    NUMBER_MAX,
    TEXT_MAX,
    PeerKind,
    SipAnswered,
    SipDtmf,
    SipEnded,
    SipEvent,
    SipHeld,
    SipIncoming,
    SipReferred,
    SipRinging,
    SipTransferred,
)
from firmware.sip.endpoint import SipEndpoint
from firmware.sip.errors import SipError, SipUsageError
from firmware.sip.events import (
    CallerIdentity,
    CallMediaChanged,
    CallStateChanged,
    DtmfReceived,
    IncomingCall,
    InviteRefused,
    RegistrationChanged,
    RegistrationRetryScheduled,
    TransferCallPlaced,
    TransferStatus,
)
from firmware.sip.policy import InboundPolicy
from firmware.sip.settings import AccountSettings, EndpointSettings

if TYPE_CHECKING:
    from firmware.service.appliance import Appliance

log = logging.getLogger(__name__)

# RFC 3261 §21.5.4: 503 Service Unavailable, what a leg we could not place ends with.
PLACEMENT_FAILED: Final = 503
# pjsua reports status 0 for a call that ended before any response (our own hang-up of a
# call still trying): RFC 3261 §21.4.25 487 Request Terminated is what the far end saw.
ENDED_WITHOUT_RESPONSE: Final = 487
# RFC 3261 §21.5.1 500 Server Internal Error: what a REFER we could not even send reports.
TRANSFER_NOT_SENT: Final = 500
HELD_EVENTS_CAP: Final = 64  # events of call ids whose placement is still in flight
STOP_TIMEOUT_S: Final = 10.0


@dataclass(slots=True)
class Leg:
    leg: int
    direction: Literal["in", "out"]
    account: str
    remote: str  # number or URI of the far end
    call_id: int | None = None
    state: str = "placing"
    code: int = 0
    port: int | None = None  # the line whose audio is bound to the leg
    media: bool = False
    local_hold: bool = False  # we sent a re-INVITE with a=sendonly
    remote_hold: bool = False  # the far end's offer was sendonly/inactive
    peer: int | None = None  # the leg whose audio is bridged with this one's
    hangup_pending: int | None = None  # hang up (with this code, 0 = none) once placed
    started: float = field(default_factory=time.time)
    answered: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "leg": self.leg,
            "direction": self.direction,
            "account": self.account,
            "remote": self.remote,
            "state": self.state,
            "code": self.code,
            "port": self.port,
            "hold": "local" if self.local_hold else "remote" if self.remote_hold else "",
            "bridged_with": self.peer,
            "started": self.started,
            "answered": self.answered,
        }


@dataclass(slots=True)
class Registration:
    account: str
    registered: bool = False
    code: int = 0
    reason: str = ""
    expires_s: int = 0
    retry_attempt: int = 0
    retry_in_s: float | None = None
    since: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "registered": self.registered,
            "code": self.code,
            "reason": self.reason,
            "expires_s": self.expires_s,
            "retry_attempt": self.retry_attempt,
            "retry_in_s": self.retry_in_s,
            "since": self.since,
        }


def _caller_id(number: str | None, name: str | None) -> m.CallerId | None:
    """The far end's identity as a line can show it; what a CallerId cannot hold is dropped."""
    if not (number or name):
        return None
    try:
        return m.CallerId(number=number or None, name=name or None)
    except InvalidValue:
        pass
    for keep in ({"number": number or None}, {"name": name or None}):
        try:
            return m.CallerId(**keep) if any(keep.values()) else None
        except InvalidValue:
            continue
    log.info("caller ID %r %r cannot be shown on a line", number, name)
    return None


def _register(core: Any, account: str) -> None:
    """On the SIP thread: REGISTER ``account`` now (it may have failed to be created)."""
    acc = core.accounts.get(account)
    if acc is None:
        raise SipUsageError(f"SIP account {account!r} is not running (see the log)")
    acc.setRegistration(True)


def call_uri(account: AccountSettings, number: str) -> str:
    """The Request-URI for ``number`` through ``account``: its registrar, with its port.

    ``AccountSettings.domain`` drops the port (it is the address-of-record's host), but a
    registrar on a non-standard port must be reached on that port.
    """
    host = account.registrar.removeprefix("sips:").removeprefix("sip:")
    suffix = "" if account.transport == "udp" else f";transport={account.transport}"
    return f"sip:{number}@{host}{suffix}"


class SipBridge:
    """Owns the endpoint for the appliance; driven from the event loop only."""

    def __init__(
        self,
        appliance: Appliance,
        settings: EndpointSettings,
        *,
        port_accounts: dict[str, int] | None = None,
        policy: InboundPolicy | None = None,
    ) -> None:
        self._app = appliance
        self.settings = settings
        self.endpoint = SipEndpoint(settings, policy, refer_check=self._refer_check)
        self._accounts = {a.name: a for a in settings.accounts}
        self._port_accounts = dict(port_accounts or {})  # per-port account -> FXS index
        self.legs: dict[int, Leg] = {}
        self._by_call: dict[int, int] = {}  # pjsua call id -> leg
        self._held: deque[Any] = deque(maxlen=HELD_EVENTS_CAP)
        self._placing = 0
        self._pump: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.registrations: dict[str, Registration] = {
            a.name: Registration(a.name) for a in settings.accounts if a.register
        }
        self.refused = 0
        self._reg_waiters: dict[str, list[asyncio.Future[Registration]]] = {}
        self.on_sip_event: Callable[[SipEvent], None] | None = None  # set by LocalCalls

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.endpoint.start()
        self._pump = asyncio.create_task(self._pump_events(), name="sip-events")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for leg in list(self.legs.values()):
            self._unbind(leg)
        await asyncio.wait_for(self.endpoint.stop(), STOP_TIMEOUT_S)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        self.legs.clear()
        self._by_call.clear()

    # --- views --------------------------------------------------------------------------

    @property
    def legs_in_use(self) -> int:
        return len(self.legs)

    def status(self) -> dict[str, Any]:
        return {
            "running": self.endpoint.running,
            "transports": [
                {"kind": t.kind, "host": t.host, "port": t.port} for t in self.endpoint.transports
            ],
            "legs_in_use": self.legs_in_use,
            "legs_max": self.settings.max_calls,
            "registrations": [r.to_json() for r in self.registrations.values()],
            "invites_refused": self.refused,
            "events_dropped": self.endpoint.events_dropped,
        }

    def leg_of_port(self, port: int) -> Leg | None:
        for leg in self.legs.values():
            if leg.port == port:
                return leg
        return None

    async def register_now(self, account: str, timeout_s: float) -> Registration:
        """Send a REGISTER for ``account`` now and wait for its outcome (a trunk "test")."""
        settings = self._accounts.get(account)
        if settings is None:
            raise SipUsageError(f"no SIP account {account!r}")
        if not settings.register:
            raise SipUsageError(f"account {account!r} does not register (IP-authenticated)")
        waiter: asyncio.Future[Registration] = asyncio.get_running_loop().create_future()
        self._reg_waiters.setdefault(account, []).append(waiter)
        try:
            await self.endpoint.call(lambda core: _register(core, account))
            return await asyncio.wait_for(waiter, timeout_s)
        finally:
            waiters = self._reg_waiters.get(account, [])
            if waiter in waiters:
                waiters.remove(waiter)

    # --- commands from call control -----------------------------------------------------

    def place(self, leg: int, account: str, number: str, caller: m.CallerId | None) -> None:
        settings = self._accounts.get(account)
        if settings is None:
            log.error("leg %d: no SIP account %r", leg, account)
            self._deliver(SipEnded(leg, PLACEMENT_FAILED, f"no SIP account {account!r}"))
            return
        uri = call_uri(settings, number)
        self.legs[leg] = Leg(leg, "out", account, uri)
        self._legs_changed()
        identity = (
            None
            if caller is None or not (caller.number or caller.name)
            else CallerIdentity(number=caller.number or "", name=caller.name or "")
        )
        self._placing += 1
        self._spawn(self._place(leg, account, uri, identity), f"place leg {leg}")

    async def _place(self, leg: int, account: str, uri: str, caller: CallerIdentity | None) -> None:
        try:
            call_id = await self.endpoint.make_call(account, uri, caller=caller)
        except (SipError, OSError) as exc:
            log.warning("leg %d: calling %s failed: %s", leg, uri, exc)
            self.legs.pop(leg, None)
            self._legs_changed()
            self._deliver(SipEnded(leg, PLACEMENT_FAILED, str(exc)[:TEXT_MAX]))
            return
        finally:
            self._placing -= 1
        record = self.legs.get(leg)
        log.info("leg %d: calling %s via %s (call %d)", leg, uri, account, call_id)
        if record is None:  # call control gave up meanwhile
            await self._hangup_call(call_id, None)
            return
        record.call_id = call_id
        self._by_call[call_id] = leg
        if record.hangup_pending is not None:
            await self._hangup_call(call_id, record.hangup_pending or None)
        if record.port is not None:
            await self._connect(record)
        if record.peer is not None:
            await self._bridge(record.leg, record.peer)
        held = [e for e in self._held if getattr(e, "call_id", None) == call_id]
        for event in held:
            self._held.remove(event)
            self._on_event(event)

    def ring(self, leg: int) -> None:
        self._call_op(leg, "ringing", lambda cid: self.endpoint.answer(cid, 180))

    def answer(self, leg: int) -> None:
        record = self.legs.get(leg)
        if record is not None:
            record.answered = time.time()
        self._call_op(leg, "answering", lambda cid: self.endpoint.answer(cid, 200))

    def hangup(self, leg: int, code: int | None = None) -> None:
        record = self.legs.get(leg)
        if record is None:
            return
        self._unbind(record)
        if record.call_id is None:
            record.hangup_pending = code or 0
            return
        call_id = record.call_id
        self._spawn(self._hangup_call(call_id, code), f"hang up leg {leg}")

    async def _hangup_call(self, call_id: int, code: int | None) -> None:
        try:
            await self.endpoint.hangup(call_id, code)
        except SipError as exc:  # it ended on its own meanwhile
            log.debug("hanging up call %d: %s", call_id, exc)

    def connect(self, leg: int, port: int) -> None:
        record = self.legs.get(leg)
        if record is None:
            log.warning("connect: leg %d is gone", leg)
            return
        record.port = port
        media = self._app.media.get(port)
        if media is not None:
            audio = self.endpoint.line_audio(port)
            media.attach_sip(audio.uplink, audio.downlink)
        if record.call_id is not None:
            self._spawn(self._connect(record), f"connect leg {leg}")

    async def _connect(self, record: Leg) -> None:
        if record.call_id is None or record.port is None:
            return
        try:
            await self.endpoint.connect_audio(record.call_id, record.port)
        except SipError as exc:
            log.warning("leg %d: audio not connected to port %d: %s", record.leg, record.port, exc)

    def disconnect(self, leg: int, port: int) -> None:
        record = self.legs.get(leg)
        if record is None or record.port != port:
            media = self._app.media.get(port)
            if media is not None:
                media.attach_sip(None)
            return
        self._unbind(record)

    def _unbind(self, record: Leg) -> None:
        if record.port is None:
            return
        media = self._app.media.get(record.port)
        if media is not None:
            media.attach_sip(None)
        record.port = None
        if record.call_id is not None and self.endpoint.running:
            call_id = record.call_id
            self._spawn(self._disconnect_call(call_id), f"disconnect leg {record.leg}")

    async def _disconnect_call(self, call_id: int) -> None:
        try:
            await self.endpoint.disconnect_audio(call_id)
        except SipError as exc:
            log.debug("disconnecting call %d: %s", call_id, exc)

    def hold(self, leg: int) -> None:
        record = self.legs.get(leg)
        if record is None or record.local_hold:
            return
        record.local_hold = True
        self._app.publish("calls.state", record.to_json())
        self._call_op(leg, "holding", lambda cid: self.endpoint.set_hold(cid, True))

    def resume(self, leg: int) -> None:
        record = self.legs.get(leg)
        if record is None or not record.local_hold:
            return
        record.local_hold = False
        self._app.publish("calls.state", record.to_json())
        self._call_op(leg, "resuming", lambda cid: self.endpoint.set_hold(cid, False))

    def bridge(self, a: int, b: int) -> None:
        ra, rb = self.legs.get(a), self.legs.get(b)
        if ra is None or rb is None:
            log.warning("bridge: leg %d or %d is gone", a, b)
            return
        ra.peer, rb.peer = b, a
        if ra.call_id is not None and rb.call_id is not None:
            self._spawn(self._bridge(a, b), f"bridge legs {a} and {b}")
        # else: _place bridges them once the outgoing one has its call id

    async def _bridge(self, a: int, b: int) -> None:
        ra, rb = self.legs.get(a), self.legs.get(b)
        if ra is None or rb is None or ra.call_id is None or rb.call_id is None:
            return
        try:
            await self.endpoint.bridge_calls(ra.call_id, rb.call_id)
        except SipError as exc:
            log.warning("legs %d and %d: audio not bridged: %s", a, b, exc)
            return
        log.info("audio of SIP legs %d and %d bridged", a, b)

    def transfer(self, leg: int, number: str, replaces: int | None) -> None:
        record = self.legs.get(leg)
        if record is None or record.call_id is None:
            self._deliver(SipTransferred(leg, TRANSFER_NOT_SENT, "no call to transfer"))
            return
        call_id = record.call_id
        if replaces is not None:
            other = self.legs.get(replaces)
            if other is None or other.call_id is None:
                self._deliver(SipTransferred(leg, TRANSFER_NOT_SENT, f"leg {replaces} is gone"))
                return
            target = other.call_id
            what = f"leg {replaces} (call {target})"

            async def send() -> None:
                await self.endpoint.transfer_replaces(call_id, target)
        else:
            settings = self._accounts.get(record.account)
            if settings is None:
                why = f"account {record.account!r} has no registrar to transfer through"
                self._deliver(SipTransferred(leg, TRANSFER_NOT_SENT, why))
                return
            uri = call_uri(settings, number)
            what = uri

            async def send() -> None:
                await self.endpoint.transfer(call_id, uri)

        async def run() -> None:
            try:
                await send()
            except SipError as exc:
                log.warning("leg %d: REFER to %s not sent: %s", leg, what, exc)
                self._deliver(SipTransferred(leg, TRANSFER_NOT_SENT, str(exc)[:TEXT_MAX]))
                return
            log.info("leg %d: REFER to %s sent", leg, what)

        self._spawn(run(), f"transfer leg {leg}")

    def send_dtmf(self, leg: int, digits: str) -> None:
        record = self.legs.get(leg)
        if record is None:
            return
        settings = self._accounts.get(record.account)
        mode = settings.dtmf if settings is not None else "rfc4733"
        if mode == "inband":
            return  # the digits are in the line's audio already
        self._call_op(leg, "sending DTMF", lambda cid: self.endpoint.send_dtmf(cid, digits, mode))

    def _call_op(self, leg: int, what: str, op: Callable[[int], Any]) -> None:
        record = self.legs.get(leg)
        if record is None or record.call_id is None:
            log.warning("leg %d: cannot do %s: no call", leg, what)
            return
        call_id = record.call_id

        async def run() -> None:
            try:
                await op(call_id)
            except SipUsageError as exc:  # it ended meanwhile (a CANCEL crossing our 180)
                log.info("leg %d: %s not done: %s", leg, what, exc)
            except SipError as exc:
                log.warning("leg %d: %s failed: %s", leg, what, exc)

        self._spawn(run(), f"{what} leg {leg}")

    # --- events from the endpoint -------------------------------------------------------

    async def _pump_events(self) -> None:
        while True:
            event = await self.endpoint.next_event()
            try:
                self._on_event(event)
            except Exception:
                log.exception("SIP event %r not handled", event)

    def _on_event(self, event: Any) -> None:
        match event:
            case RegistrationChanged():
                reg = self.registrations.setdefault(event.account, Registration(event.account))
                reg.registered, reg.code, reg.reason = event.registered, event.code, event.reason
                reg.expires_s, reg.since = event.expires_s, time.time()
                reg.retry_in_s = None
                if event.registered:
                    reg.retry_attempt = 0
                log.info(
                    "SIP account %s: %s (%d %s)",
                    event.account,
                    "registered" if event.registered else "not registered",
                    event.code,
                    event.reason,
                )
                self._app.publish("sip.registration", reg.to_json())
                for waiter in self._reg_waiters.pop(event.account, []):
                    if not waiter.done():
                        waiter.set_result(dataclasses.replace(reg))
            case RegistrationRetryScheduled():
                reg = self.registrations.setdefault(event.account, Registration(event.account))
                reg.retry_attempt, reg.retry_in_s = event.attempt, event.delay_s
                self._app.publish("sip.registration", reg.to_json())
            case InviteRefused():
                self.refused += 1
                log.info("INVITE from %s refused: %d %s", event.source, event.code, event.reason)
            case IncomingCall():
                self._incoming(event)
            case TransferCallPlaced():
                self._transfer_placed(event)
            case CallStateChanged() | CallMediaChanged() | DtmfReceived() | TransferStatus():
                leg = self._by_call.get(event.call_id)
                if leg is None:
                    if self._placing:
                        self._held.append(event)
                    return
                self._call_event(leg, event)

    def _refer_check(self, account: str, number: str) -> tuple[int, str]:
        """On the SIP thread: may the far end of a call on ``account`` transfer it to
        ``number`` at the same provider?  The toll rules say (the configuration objects are
        immutable; the attribute read is atomic)."""
        config = self._app.config
        if config is None:
            return PLACEMENT_FAILED, "no configuration loaded"
        if len(number) > NUMBER_MAX:
            return 400, f"target of {len(number)} characters (at most {NUMBER_MAX})"
        # The transfer replaces a leg one for one: no external call is added.
        refused = TollRules(config).refuse(number, number, 0)
        if refused is not None:
            return 403, refused
        return 202, ""

    def _transfer_placed(self, event: TransferCallPlaced) -> None:
        control = self._control()
        old = self._by_call.get(event.call_id)
        record = self.legs.get(old) if old is not None else None
        if control is None or record is None or old is None:
            log.warning(
                "call %d for a REFER of a call we no longer have: hung up", event.new_call_id
            )
            self._spawn(self._hangup_call(event.new_call_id, None), "hang up a stray call")
            return
        leg = control.new_leg()
        self.legs[leg] = Leg(leg, "out", record.account, event.number, event.new_call_id)
        self._by_call[event.new_call_id] = leg
        self._legs_changed()
        log.info(
            "leg %d: the far end transferred it to %s: leg %d (call %d)",
            old,
            event.number,
            leg,
            event.new_call_id,
        )
        self._deliver(SipReferred(old, leg, event.number))

    def _incoming(self, event: IncomingCall) -> None:
        control = self._control()
        if control is None:
            return
        leg = control.new_leg()
        # pjsua picks the account by the Request-URI, which may be the local account (a
        # provider sending to our contact's user); the policy knows which trunk's host it is.
        kind: PeerKind
        account = event.account
        if event.account in self._port_accounts:
            kind = "account"
        elif event.peer_kind == "trunk":
            kind, account = "trunk", event.peer
        else:
            kind = "user"
        caller = _caller_id(event.caller_number, event.caller_name)
        remote = event.caller_number or event.from_uri
        self.legs[leg] = Leg(leg, "in", account, remote, event.call_id)
        self.legs[leg].state = "incoming"
        self._by_call[event.call_id] = leg
        self._legs_changed()
        log.info(
            "leg %d: incoming call %d on %s from %s (%s %s) for %r",
            leg,
            event.call_id,
            event.account,
            event.source,
            kind,
            event.peer,
            event.called,
        )
        self._deliver(
            SipIncoming(
                leg,
                account[:TEXT_MAX],
                kind,
                event.peer[:TEXT_MAX],
                event.called[:NUMBER_MAX],
                caller,
            )
        )

    def _call_event(self, leg: int, event: Any) -> None:
        record = self.legs.get(leg)
        if record is None:
            return
        match event:
            case TransferStatus(code=code, reason=reason, final=over):
                self._deliver(SipTransferred(leg, code, reason[:TEXT_MAX], over))
            case CallMediaChanged(active=active, remote_hold=remote_hold):
                if remote_hold != record.remote_hold:
                    record.remote_hold = remote_hold
                    log.info("leg %d: %s by the far end", leg, "held" if remote_hold else "resumed")
                    self._app.publish("calls.state", record.to_json())
                    self._deliver(SipHeld(leg, remote_hold))
                record.media = active
                if active and record.port is not None:
                    pass  # the endpoint reconnects bound audio itself
                if active and record.state == "early" and record.direction == "out":
                    self._deliver(SipRinging(leg, early_media=True))
            case DtmfReceived(digit=digit):
                self._deliver(SipDtmf(leg, digit))
            case CallStateChanged(state=state, code=code, reason=reason):
                record.code = code or record.code
                previous, record.state = record.state, state
                self._app.publish("calls.state", record.to_json())
                if state == "early" and record.direction == "out":
                    if previous != "early" or code in (180, 183):
                        self._deliver(SipRinging(leg, early_media=record.media))
                elif state == "confirmed" and previous != "confirmed":
                    if record.answered is None:
                        record.answered = time.time()
                    if record.direction == "out":
                        self._deliver(SipAnswered(leg))
                elif state == "disconnected":
                    self._unbind(record)
                    self.legs.pop(leg, None)
                    if record.call_id is not None:
                        self._by_call.pop(record.call_id, None)
                    self._legs_changed()
                    final = code if 100 <= code <= 699 else ENDED_WITHOUT_RESPONSE
                    self._deliver(SipEnded(leg, final, reason[:TEXT_MAX]))

    # --- plumbing -----------------------------------------------------------------------

    def _control(self) -> Any:
        calls = self._app.calls
        return None if calls is None else calls.control

    def _legs_changed(self) -> None:
        """systemd's STATUS line shows the legs in use (the admission control's view)."""
        self._app.supervisor.status(self._app.summary())

    def _deliver(self, event: SipEvent) -> None:
        if self.on_sip_event is not None:
            self.on_sip_event(event)

    def _spawn(self, coro: Any, what: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("SIP: %s failed", what, exc_info=t.exception())

        task.add_done_callback(done)
