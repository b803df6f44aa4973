"""Line-card session: handshake, sequencing, acks, retransmission, heartbeat (sans-IO).

One class serves both ends: ``Session(Role.HOST)`` in the appliance and
``Session(Role.CARD, card=HelloAck(...))`` in a line card (the simulator uses it).
Feed it bytes with :meth:`Session.receive_data`, the time with :meth:`Session.handle_timer`
when :meth:`Session.get_timer` says so, and messages to send with :meth:`Session.send`;
take bytes for the wire from :meth:`Session.data_to_send` and events from
:meth:`Session.next_event`.  ``now`` is any monotonic clock in seconds.

Reliability is go-back-N with a window of ``Timing.window`` frames and cumulative acks:
the header's ack field is the next sequence number the sender expects.  Timing and the
handshake are described in ``docs/linecard-protocol.md``.
"""

from __future__ import annotations

import enum
import logging
import random
from collections import deque
from dataclasses import dataclass

from drivers.linecard.protocol import (
    FIRST_SEQUENCED_TYPE,
    PROTOCOL_VERSION,
    SEQ_MODULUS,
    Ack,
    CommandRejected,
    Frame,
    FrameDecoder,
    FrameError,
    Heartbeat,
    Hello,
    HelloAck,
    LocalProtocolError,
    Message,
    MessageError,
    NotConnected,
    RejectReason,
    decode_message,
)

log = logging.getLogger(__name__)

# Caps: a shell that stops draining gets an error instead of unbounded memory.
MAX_QUEUED_MESSAGES = 64  # waiting for window space
MAX_PENDING_EVENTS = 1024
MAX_PENDING_OUTPUT = 16384  # bytes


@dataclass(frozen=True)
class Timing:
    """Protocol timers in seconds.  ``dead_after`` < 1 s is the issue's requirement."""

    heartbeat_interval: float = 0.2  # send a Heartbeat when idle this long
    dead_after: float = 0.8  # peer silent this long -> link down (4 heartbeats missed)
    retransmit_timeout: float = 0.1  # > 10x a 70-byte frame at 115200 Bd plus card latency
    max_retransmits: int = 8  # then the link is declared down
    hello_interval: float = 0.1  # host repeats Hello until a HelloAck arrives
    window: int = 8  # sequenced frames in flight

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_interval < self.dead_after:
            raise LocalProtocolError("heartbeat_interval must be below dead_after")
        if not 1 <= self.window <= SEQ_MODULUS // 2 - 1:
            raise LocalProtocolError(f"window {self.window} outside 1..{SEQ_MODULUS // 2 - 1}")
        if self.retransmit_timeout <= 0 or self.hello_interval <= 0 or self.max_retransmits < 1:
            raise LocalProtocolError("timers must be positive")


class Role(enum.Enum):
    HOST = "host"
    CARD = "card"


class State(enum.Enum):
    IDLE = "idle"
    HANDSHAKING = "handshaking"  # host: sending Hello; card: waiting for one
    CONNECTED = "connected"
    CLOSED = "closed"


class Input(enum.Enum):
    START = "start"
    HANDSHAKE_DONE = "handshake done"
    PEER_SILENT = "peer silent"
    PEER_RESET = "peer reset"
    NO_ACK = "retransmissions exhausted"
    CLOSE = "close"


_TRANSITIONS: dict[tuple[Role, State, Input], State] = {}
for _role in Role:
    _TRANSITIONS[_role, State.IDLE, Input.START] = State.HANDSHAKING
    _TRANSITIONS[_role, State.HANDSHAKING, Input.HANDSHAKE_DONE] = State.CONNECTED
    _TRANSITIONS[_role, State.CONNECTED, Input.PEER_SILENT] = State.HANDSHAKING
    _TRANSITIONS[_role, State.CONNECTED, Input.NO_ACK] = State.HANDSHAKING
    for _state in (State.IDLE, State.HANDSHAKING, State.CONNECTED):
        _TRANSITIONS[_role, _state, Input.CLOSE] = State.CLOSED
# Only the host can see the card reset (NotConnected, new boot id); only the card
# can be asked for a new session while it has one (the host restarted).
_TRANSITIONS[Role.HOST, State.CONNECTED, Input.PEER_RESET] = State.HANDSHAKING
_TRANSITIONS[Role.CARD, State.CONNECTED, Input.HANDSHAKE_DONE] = State.CONNECTED


class NotConnectedError(LocalProtocolError):
    """send() while the session is not connected."""


class QueueFullError(LocalProtocolError):
    """The shell sent faster than the window drains, or stopped draining events/output."""


class DownReason(enum.Enum):
    PEER_SILENT = "peer silent"  # nothing received for Timing.dead_after
    PEER_RESET = "peer reset"  # the card rebooted (host role)
    NO_ACK = "no acknowledgement"  # Timing.max_retransmits exhausted
    NEW_SESSION = "new session"  # the host opened a new session (card role)
    CLOSED = "closed"


# --- events out -------------------------------------------------------------------


@dataclass(frozen=True)
class LinkUp:
    """The handshake completed.  ``card`` describes the card; ``card.nonce`` is the session."""

    card: HelloAck


@dataclass(frozen=True)
class LinkDown:
    """The session ended.  Sequenced messages not yet acknowledged are handed back."""

    reason: DownReason
    unacknowledged: tuple[Message, ...] = ()


@dataclass(frozen=True)
class Received:
    """A sequenced message from the peer, delivered once and in order."""

    message: Message
    seq: int


@dataclass(frozen=True)
class PeerFault:
    """The peer sent an intact frame we could not accept (logged and counted; link goes on)."""

    description: str


SessionEvent = LinkUp | LinkDown | Received | PeerFault


@dataclass
class Stats:
    frames_in: int = 0
    frames_bad: int = 0  # CRC/COBS/length failures
    frames_out: int = 0
    retransmissions: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    bad_acks: int = 0
    peer_faults: int = 0
    link_downs: int = 0


@dataclass
class _InFlight:
    seq: int
    message: Message
    payload: bytes


@dataclass
class _Timers:
    hello: float | None = None
    heartbeat: float | None = None
    dead: float | None = None
    retransmit: float | None = None


def _seq_distance(a: int, b: int) -> int:
    """How far b is ahead of a, modulo the sequence space."""
    return (b - a) % SEQ_MODULUS


class Session:
    """One end of a line-card link.  See the module docstring for the calling pattern."""

    def __init__(
        self,
        role: Role,
        *,
        card: HelloAck | None = None,
        timing: Timing | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if (role is Role.CARD) != (card is not None):
            raise LocalProtocolError("a card session needs its HelloAck, a host session none")
        self.role = role
        self.timing = timing or Timing()
        self._rng = rng or random.Random()
        self._card_template = card
        self.state = State.IDLE
        self.stats = Stats()
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._events: deque[SessionEvent] = deque()
        self._queue: deque[Message] = deque()
        self._inflight: deque[_InFlight] = deque()
        self._timers = _Timers()
        self._next_seq = 0
        self._rx_expected = 0
        self._retries = 0
        self._ack_pending = False
        self._last_rx = 0.0
        # Host: our current nonce.  Card: the host's nonce of the current session.
        self._nonce = 0
        # Host: the connected card's description.  Card: what we answer Hello with.
        self.card: HelloAck | None = None
        self._reported_versions: set[int] = set()
        self._not_connected_sent_at: float | None = None

    # --- public API -----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.state is State.CONNECTED

    @property
    def boot_id(self) -> int:
        """Card role: this card's boot id."""
        if self._card_template is None:
            raise LocalProtocolError("boot_id: a host session has none (see .card)")
        return self._card_template.boot_id

    def start(self, now: float) -> None:
        """Begin: the host starts sending Hello; the card announces it has no session."""
        self._transition(Input.START)
        self._last_rx = now
        if self.role is Role.HOST:
            self._send_hello(now)
        else:
            self._send_not_connected(now)

    def close(self, now: float) -> None:
        """End the session; pending messages come back in a LinkDown(CLOSED)."""
        was_connected = self.connected
        unacked = self._drop_outgoing()
        self._transition(Input.CLOSE)
        self._timers = _Timers()
        if was_connected:
            self._emit(LinkDown(DownReason.CLOSED, unacked))

    def send(self, message: Message, now: float) -> int:
        """Queue a sequenced message; returns its sequence number.

        Raises :class:`NotConnectedError` unless connected, :class:`QueueFullError` when
        ``MAX_QUEUED_MESSAGES`` are already waiting, :class:`LocalProtocolError` for a
        link-control message or one this role may not send.
        """
        if not type(message).sequenced():
            raise LocalProtocolError(f"{type(message).__name__} is link control, not sendable")
        if type(message).SENDER not in ("both", self.role.value):
            raise LocalProtocolError(f"a {self.role.value} may not send {type(message).__name__}")
        if not self.connected:
            raise NotConnectedError(f"cannot send {type(message).__name__}: {self.state.value}")
        if len(self._queue) >= MAX_QUEUED_MESSAGES:
            raise QueueFullError(f"{MAX_QUEUED_MESSAGES} messages already queued")
        seq = (self._next_seq + len(self._queue)) % SEQ_MODULUS
        self._queue.append(message)
        self._pump(now)
        return seq

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the wire.  Never raises on bad input; raises QueueFullError (without
        consuming ``data``) when ``MAX_PENDING_EVENTS`` events wait to be taken."""
        if self.state in (State.IDLE, State.CLOSED):
            raise LocalProtocolError(f"receive_data() on a session that is {self.state.value}")
        if len(self._events) >= MAX_PENDING_EVENTS:
            raise QueueFullError(f"{MAX_PENDING_EVENTS} events not taken by next_event()")
        for item in self._decoder.feed(data):
            if isinstance(item, FrameError):
                self.stats.frames_bad += 1
                log.debug("line-card frame dropped: %s", item)
                continue
            self.stats.frames_in += 1
            self._on_frame(item, now)
        if self._ack_pending and self.connected:
            self._write(Frame.of(Ack(), ack=self._rx_expected), now)

    def get_timer(self) -> float | None:
        """The earliest time :meth:`handle_timer` must be called, or None."""
        times = [
            t
            for t in (
                self._timers.hello,
                self._timers.heartbeat,
                self._timers.dead,
                self._timers.retransmit,
            )
            if t is not None
        ]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        t = self._timers
        if self.state is State.CONNECTED and t.dead is not None and now >= t.dead:
            log.warning("line-card peer silent for %.3f s", self.timing.dead_after)
            self._link_down(Input.PEER_SILENT, DownReason.PEER_SILENT, now)
        if self.state is State.CONNECTED and t.retransmit is not None and now >= t.retransmit:
            self._retransmit(now)
        if self.state is State.CONNECTED and t.heartbeat is not None and now >= t.heartbeat:
            session_id = self._nonce if self.role is Role.HOST else self.boot_id
            self._write(Frame.of(Heartbeat(session_id), ack=self._rx_expected), now)
        if self.state is State.HANDSHAKING and t.hello is not None and now >= t.hello:
            self._send_hello(now)

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> SessionEvent | None:
        return self._events.popleft() if self._events else None

    def events(self) -> list[SessionEvent]:
        """Take every pending event."""
        out = list(self._events)
        self._events.clear()
        return out

    @property
    def in_flight(self) -> int:
        """Sequenced messages sent or queued but not yet acknowledged."""
        return len(self._inflight) + len(self._queue)

    # --- state machine --------------------------------------------------------------

    def _transition(self, event: Input) -> None:
        new = _TRANSITIONS.get((self.role, self.state, event))
        if new is None:
            raise LocalProtocolError(
                f"{self.role.value} session: {event.value!r} is illegal in {self.state.value}"
            )
        log.debug("line-card %s: %s --%s--> %s", self.role.value, self.state, event, new)
        self.state = new

    def _link_down(self, event: Input, reason: DownReason, now: float) -> None:
        unacked = self._drop_outgoing()
        self._transition(event)
        self.stats.link_downs += 1
        self._timers = _Timers()
        self._emit(LinkDown(reason, unacked))
        if self.role is Role.HOST:
            self._send_hello(now)

    def _drop_outgoing(self) -> tuple[Message, ...]:
        out = tuple(f.message for f in self._inflight) + tuple(self._queue)
        self._inflight.clear()
        self._queue.clear()
        return out

    def _reset_sequence(self, now: float) -> None:
        self._next_seq = 0
        self._rx_expected = 0
        self._retries = 0
        self._ack_pending = False
        self._timers = _Timers(
            heartbeat=now + self.timing.heartbeat_interval, dead=now + self.timing.dead_after
        )

    # --- receiving ------------------------------------------------------------------

    def _on_frame(self, frame: Frame, now: float) -> None:
        if frame.type < FIRST_SEQUENCED_TYPE:
            self._on_control(frame, now)
            return
        if not self.connected:
            if self.role is Role.CARD:
                self._send_not_connected(now)
            return
        self._alive(now)
        self._on_ack(frame.ack, now)
        distance = _seq_distance(self._rx_expected, frame.seq)
        self._ack_pending = True
        if distance != 0:
            # Behind: a retransmission of something delivered (our ack was lost).
            # Ahead: a frame after one we lost; go-back-N resends from our ack.
            if distance > SEQ_MODULUS // 2:
                self.stats.duplicates += 1
            else:
                self.stats.out_of_order += 1
            return
        self._rx_expected = (self._rx_expected + 1) % SEQ_MODULUS
        try:
            message = decode_message(frame.type, frame.payload)
        except MessageError as exc:
            self._peer_fault(f"seq {frame.seq}: {exc}", now, frame)
            return
        if type(message).SENDER == self.role.value:
            self._peer_fault(f"seq {frame.seq}: peer sent {type(message).__name__}", now, frame)
            return
        self._emit(Received(message, frame.seq))

    def _on_control(self, frame: Frame, now: float) -> None:
        try:
            message = decode_message(frame.type, frame.payload)
        except MessageError as exc:
            self._peer_fault(str(exc), now, None)
            return
        if self.role is Role.HOST:
            self._host_control(message, frame, now)
        else:
            self._card_control(message, frame, now)

    def _host_control(self, message: Message, frame: Frame, now: float) -> None:
        if isinstance(message, HelloAck):
            if self.state is not State.HANDSHAKING or message.nonce != self._nonce:
                return  # a late answer to an earlier Hello
            if message.version != PROTOCOL_VERSION:
                if message.version not in self._reported_versions:
                    self._reported_versions.add(message.version)
                    self._peer_fault(
                        f"card speaks protocol version {message.version}, "
                        f"we speak {PROTOCOL_VERSION}",
                        now,
                        None,
                    )
                return
            self.card = message
            self._transition(Input.HANDSHAKE_DONE)
            self._reset_sequence(now)
            self._last_rx = now
            log.info(
                "line card connected: firmware %s, ports %s",
                ".".join(map(str, message.firmware)),
                ",".join(p.name for p in message.ports),
            )
            self._emit(LinkUp(message))
            return
        if isinstance(message, NotConnected):
            if self.connected:
                log.warning("line card reset (boot id %08x)", message.boot_id)
                self._link_down(Input.PEER_RESET, DownReason.PEER_RESET, now)
            elif self.state is State.HANDSHAKING:
                self._send_hello(now)  # the card is there and listening: don't wait
            return
        if not self.connected:
            return
        if isinstance(message, Heartbeat) and self.card and message.session_id != self.card.boot_id:
            log.warning("line card boot id changed to %08x", message.session_id)
            self._link_down(Input.PEER_RESET, DownReason.PEER_RESET, now)
            return
        if isinstance(message, Heartbeat | Ack):
            self._alive(now)
            self._on_ack(frame.ack, now)
            return
        self._peer_fault(f"card sent {type(message).__name__}", now, None)

    def _card_control(self, message: Message, frame: Frame, now: float) -> None:
        if isinstance(message, Hello):
            self._on_hello(message, now)
            return
        if not self.connected:
            self._send_not_connected(now)
            return
        if isinstance(message, Heartbeat) and message.session_id != self._nonce:
            # The host believes in a session we do not have (we reset, or it is stale).
            self._send_not_connected(now)
            return
        if isinstance(message, Heartbeat | Ack):
            self._alive(now)
            self._on_ack(frame.ack, now)
            return
        self._peer_fault(f"host sent {type(message).__name__}", now, None)

    def _on_hello(self, hello: Hello, now: float) -> None:
        assert self._card_template is not None
        answer = HelloAck(
            PROTOCOL_VERSION,
            hello.nonce,
            self._card_template.boot_id,
            self._card_template.firmware,
            self._card_template.capabilities,
            self._card_template.ports,
        )
        if self.connected and hello.nonce == self._nonce:
            # The host missed our HelloAck and asked again: same session, answer again.
            self._write(Frame.of(answer), now)
            return
        if hello.version != PROTOCOL_VERSION:
            log.warning("host speaks protocol version %d", hello.version)
        if self.connected:
            unacked = self._drop_outgoing()
            self._emit(LinkDown(DownReason.NEW_SESSION, unacked))
        self._transition(Input.HANDSHAKE_DONE)
        self._nonce = hello.nonce
        self.card = answer
        self._reset_sequence(now)
        self._last_rx = now
        self._write(Frame.of(answer), now)
        self._emit(LinkUp(answer))

    def _alive(self, now: float) -> None:
        self._last_rx = now
        self._timers.dead = now + self.timing.dead_after

    def _on_ack(self, ack: int, now: float) -> None:
        if not self._inflight:
            return
        advanced = _seq_distance(self._inflight[0].seq, ack)
        if advanced > len(self._inflight):
            self.stats.bad_acks += 1  # acks something never sent: stale or broken peer
            return
        if advanced == 0:
            return
        for _ in range(advanced):
            self._inflight.popleft()
        self._retries = 0
        self._timers.retransmit = now + self.timing.retransmit_timeout if self._inflight else None
        self._pump(now)

    def _peer_fault(self, description: str, now: float, frame: Frame | None) -> None:
        self.stats.peer_faults += 1
        log.warning("line-card peer fault: %s", description)
        self._emit(PeerFault(description))
        if self.role is Role.CARD and frame is not None and self.connected:
            # Tell the host we could not act on its command rather than ignoring it.
            if len(self._queue) >= MAX_QUEUED_MESSAGES:
                log.warning("not rejecting seq %d: send queue full", frame.seq)
                return
            port = frame.payload[0] if frame.payload else 0
            self._queue.append(CommandRejected(frame.seq, frame.type, port, RejectReason.MALFORMED))
            self._pump(now)

    # --- sending --------------------------------------------------------------------

    def _pump(self, now: float) -> None:
        while self._queue and len(self._inflight) < self.timing.window:
            message = self._queue.popleft()
            item = _InFlight(self._next_seq, message, message.to_bytes())
            self._next_seq = (self._next_seq + 1) % SEQ_MODULUS
            self._inflight.append(item)
            self._write(Frame(item.seq, self._rx_expected, message.TYPE, item.payload), now)
            if self._timers.retransmit is None:
                self._timers.retransmit = now + self.timing.retransmit_timeout

    def _retransmit(self, now: float) -> None:
        self._retries += 1
        if self._retries > self.timing.max_retransmits:
            log.warning("line-card link: %d retransmissions unanswered", self._retries - 1)
            self._link_down(Input.NO_ACK, DownReason.NO_ACK, now)
            return
        for item in self._inflight:
            self.stats.retransmissions += 1
            self._write(Frame(item.seq, self._rx_expected, item.message.TYPE, item.payload), now)
        self._timers.retransmit = now + self.timing.retransmit_timeout

    def _send_hello(self, now: float) -> None:
        if self.state is State.HANDSHAKING and self._timers.hello is None:
            self._nonce = self._rng.getrandbits(32)  # new attempt, new session id
        self._write(Frame.of(Hello(PROTOCOL_VERSION, self._nonce)), now)
        self._timers.hello = now + self.timing.hello_interval

    def _send_not_connected(self, now: float) -> None:
        # Rate-limited: a burst of stale frames must not become a burst of answers.
        last = self._not_connected_sent_at
        if last is not None and now - last < self.timing.hello_interval:
            return
        self._not_connected_sent_at = now
        self._write(Frame.of(NotConnected(self.boot_id)), now)

    def _write(self, frame: Frame, now: float) -> None:
        data = frame.encode()
        if len(self._out) + len(data) > MAX_PENDING_OUTPUT:
            raise QueueFullError(f"{MAX_PENDING_OUTPUT} bytes not taken by data_to_send()")
        self._out += data
        self.stats.frames_out += 1
        self._ack_pending = False  # every frame carries our ack
        if self.state is State.CONNECTED:
            self._timers.heartbeat = now + self.timing.heartbeat_interval

    def _emit(self, event: SessionEvent) -> None:
        self._events.append(event)


__all__ = [
    "DownReason",
    "LinkDown",
    "LinkUp",
    "NotConnectedError",
    "PeerFault",
    "QueueFullError",
    "Received",
    "Role",
    "Session",
    "SessionEvent",
    "State",
    "Stats",
    "Timing",
]
