"""Sans-IO dispatch: one connection's state, the method registry, request -> action.

:class:`Peer` holds what the server knows about one client (hello done? logged in?
what is queued for it?).  :class:`Dispatcher` turns each decoded message into either an
immediate reply (errors, ``api.hello``) or a :class:`Call` for the I/O shell to run.
Neither touches a socket, a task or the clock: ``now`` is an argument.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from firmware.api import schema
from firmware.api.auth import Session, SessionTable
from firmware.api.protocol import (
    CLOSING_TOPIC,
    MAX_MESSAGE_BYTES,
    PROTOCOL_MAJOR,
    PROTOCOL_VERSION,
    ApiFault,
    ErrorCode,
    JsonValue,
    LineDecoder,
    OutboundQueue,
    Overflow,
    ProtocolError,
    Request,
    RequestId,
    encode_error,
    encode_event,
    encode_result,
    parse_request,
)

P = TypeVar("P")

DEFAULT_REQUEST_TIMEOUT_S: Final = 30.0  # a handler that takes longer answers `timeout`
MAX_REQUEST_TIMEOUT_S: Final = 600.0
MAX_INFLIGHT_PER_CLIENT: Final = 16  # requests running at once; more waits unread
METHOD_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+\Z")
HELLO_METHOD: Final = "api.hello"
VERSION_RE: Final = re.compile(r"(\d{1,4})\.(\d{1,4})\Z")


class PeerState(enum.Enum):
    AWAITING_HELLO = "awaiting_hello"
    READY = "ready"
    CLOSED = "closed"


class PeerEvent(enum.Enum):
    HELLO = "hello"
    CLOSE = "close"


# (state, event) -> next state.  Anything missing is illegal and raises.
_TRANSITIONS: Final[Mapping[tuple[PeerState, PeerEvent], PeerState]] = {
    (PeerState.AWAITING_HELLO, PeerEvent.HELLO): PeerState.READY,
    (PeerState.READY, PeerEvent.HELLO): PeerState.READY,  # re-hello: same answer
    (PeerState.AWAITING_HELLO, PeerEvent.CLOSE): PeerState.CLOSED,
    (PeerState.READY, PeerEvent.CLOSE): PeerState.CLOSED,
}


class IllegalTransition(RuntimeError):
    """We broke it: the server drove a connection through a transition it does not have."""


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a handler learns about its caller."""

    peer: Peer
    request_id: RequestId

    @property
    def client_id(self) -> int:
        return self.peer.id


Handler = Callable[[P, CallContext], Awaitable[JsonValue]]


@dataclass(frozen=True, slots=True)
class MethodSpec(Generic[P]):
    name: str
    handler: Handler[P] | None  # None: answered by the protocol core itself (api.hello)
    params_type: type[P]
    result: str  # prose description of the result, for api.methods and the docs
    summary: str
    requires_login: bool = False
    timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S

    def describe(self) -> dict[str, JsonValue]:
        params: Any = schema.describe(self.params_type)
        return {
            "name": self.name,
            "summary": self.summary,
            "params": params,
            "signature": schema.signature(self.params_type),
            "result": self.result,
            "requires_login": self.requires_login,
            "timeout_s": self.timeout_s,
        }


class MethodRegistry:
    def __init__(self) -> None:
        self._methods: dict[str, MethodSpec[Any]] = {}

    def add(self, spec: MethodSpec[Any]) -> None:
        if not METHOD_NAME_RE.match(spec.name):
            raise ValueError(f"method name {spec.name!r} must look like 'area.verb'")
        if spec.name in self._methods:
            raise ValueError(f"method {spec.name!r} is already registered")
        if not 0 < spec.timeout_s <= MAX_REQUEST_TIMEOUT_S:
            raise ValueError(f"timeout must be in (0, {MAX_REQUEST_TIMEOUT_S}] s")
        schema.check_schema_type(spec.params_type)
        self._methods[spec.name] = spec

    def get(self, name: str) -> MethodSpec[Any] | None:
        return self._methods.get(name)

    def __iter__(self) -> Iterator[MethodSpec[Any]]:
        return iter(sorted(self._methods.values(), key=lambda s: s.name))

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def names(self) -> list[str]:
        return sorted(self._methods)


@dataclass(frozen=True, slots=True)
class HelloParams:
    version: str = field(metadata={"doc": "protocol version the client speaks, 'major.minor'"})
    client: str = field(default="", metadata={"doc": "client name for logs", "max_length": 64})


class Peer:
    """One connection's protocol state and outbound queue (an EventSink)."""

    def __init__(
        self,
        peer_id: int,
        *,
        max_message: int = MAX_MESSAGE_BYTES,
        outbound: OutboundQueue | None = None,
    ) -> None:
        self.id = peer_id
        self.state = PeerState.AWAITING_HELLO
        self.client_name = ""
        self.client_version = ""
        self.session: Session | None = None
        self.inflight: set[RequestId] = set()
        self.decoder = LineDecoder(max_message)
        self.outbound = outbound if outbound is not None else OutboundQueue()
        self.close_reason: str | None = None
        self.overflowed = False  # closed for not reading: its buffers are dropped, not flushed
        self.on_output: Callable[[], None] = lambda: None  # the shell's "wake the writer"

    def is_closed(self) -> bool:
        return self.state is PeerState.CLOSED

    def transition(self, event: PeerEvent) -> None:
        try:
            self.state = _TRANSITIONS[(self.state, event)]
        except KeyError:
            raise IllegalTransition(
                f"peer {self.id}: {event.value} in {self.state.value}"
            ) from None

    def receive_data(self, data: bytes) -> list[Request | ProtocolError]:
        out: list[Request | ProtocolError] = []
        for item in self.decoder.feed(data):
            out.append(item if isinstance(item, ProtocolError) else parse_request(item))
        return out

    # -- output --------------------------------------------------------------------
    def send_reply(self, data: bytes) -> None:
        if self.is_closed():
            return
        try:
            self.outbound.push_reply(data)
        except Overflow as exc:
            self.overflowed = True
            self.close(str(exc))
        self.on_output()

    def offer_event(self, topic: str, line: bytes, seq: int) -> None:
        if self.is_closed():
            return
        self.outbound.push_event(line, seq)
        self.on_output()

    def hang_up(self, notice: str | None = None) -> None:
        """End gracefully: what is queued is still written, then ``notice`` if given."""
        if self.state is not PeerState.CLOSED:
            if notice is not None:
                with contextlib.suppress(Overflow):
                    self.outbound.push_reply(encode_event(CLOSING_TOPIC, {"reason": notice}, 0))
            self.transition(PeerEvent.CLOSE)
        self.on_output()

    def close(self, reason: str) -> None:
        """Stop queueing; the shell writes what is queued (a closing notice) and hangs up."""
        if self.is_closed():
            return
        self.outbound.clear()
        self.outbound.push_reply(encode_event(CLOSING_TOPIC, {"reason": reason}, 0))
        self.close_reason = reason
        self.transition(PeerEvent.CLOSE)
        self.on_output()


@dataclass(frozen=True, slots=True)
class Call:
    """A validated request for the shell to run: ``await spec.handler(params, ctx)``."""

    spec: MethodSpec[Any]
    params: object
    ctx: CallContext


class Dispatcher:
    """Request -> a reply now, or a :class:`Call`.  Never raises for anything a client sends."""

    def __init__(
        self,
        registry: MethodRegistry,
        sessions: SessionTable,
        *,
        server_name: str = "ponte",
        server_version: str | None = None,
        max_message: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.registry = registry
        self.sessions = sessions
        self.server_name = server_name
        self.server_version = server_version
        self.max_message = max_message

    def dispatch(self, peer: Peer, item: Request | ProtocolError, now: float) -> bytes | Call:
        if isinstance(item, ProtocolError):
            return encode_error(item.id, item.error)
        try:
            return self._dispatch(peer, item, now)
        except ApiFault as fault:
            return encode_error(item.id, fault.info)

    def _dispatch(self, peer: Peer, req: Request, now: float) -> bytes | Call:
        if req.id in peer.inflight:
            raise ApiFault(
                ErrorCode.DUPLICATE_ID,
                f"request id {req.id!r} is still in flight; ids must be unique until answered",
                "id",
            )
        spec = self.registry.get(req.method)
        if spec is None:
            raise ApiFault(ErrorCode.UNKNOWN_METHOD, self._unknown(req.method), "method")
        if req.method != HELLO_METHOD and peer.state is PeerState.AWAITING_HELLO:
            raise ApiFault(
                ErrorCode.HELLO_REQUIRED,
                f"send api.hello with version {PROTOCOL_VERSION!r} before {req.method}",
                "method",
            )
        try:
            params = schema.validate(spec.params_type, req.params)
        except schema.SchemaError as exc:
            raise ApiFault(ErrorCode.INVALID_PARAMS, exc.message, exc.path) from None
        if spec.handler is None:
            assert isinstance(params, HelloParams)  # the only protocol-level method
            return encode_result(req.id, self._hello(peer, params))
        if spec.requires_login:
            self._check_login(peer, spec.name, now)
        return Call(spec, params, CallContext(peer, req.id))

    def _unknown(self, method: str) -> str:
        close = difflib.get_close_matches(method, self.registry.names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; api.methods lists them"
        return f"unknown method {method!r}{hint}"[:300]

    def _hello(self, peer: Peer, params: HelloParams) -> JsonValue:
        m = VERSION_RE.match(params.version)
        if m is None:
            raise ApiFault(
                ErrorCode.INVALID_PARAMS,
                f"version must look like 'major.minor', got {params.version!r}"[:200],
                "params.version",
            )
        if int(m[1]) != PROTOCOL_MAJOR:
            raise ApiFault(
                ErrorCode.UNSUPPORTED_VERSION,
                f"this server speaks protocol {PROTOCOL_VERSION}; major version {m[1]} is "
                "not supported",
                "params.version",
                {"supported": [PROTOCOL_VERSION]},
            )
        peer.transition(PeerEvent.HELLO)
        peer.client_name = params.client
        peer.client_version = params.version
        return {
            "protocol": PROTOCOL_VERSION,
            "server": self.server_name,
            "server_version": self.server_version,
            "client_id": peer.id,
            "max_message_bytes": self.max_message,
        }

    def _check_login(self, peer: Peer, method: str, now: float) -> None:
        session = peer.session
        if session is None or not self.sessions.touch(session, now):
            peer.session = None
            raise ApiFault(
                ErrorCode.LOGIN_REQUIRED, f"{method} needs a login (auth.login or auth.resume)"
            )
        if session.must_change:
            raise ApiFault(
                ErrorCode.PASSWORD_CHANGE_REQUIRED,
                "the admin password must be changed first (auth.change_password)",
            )
