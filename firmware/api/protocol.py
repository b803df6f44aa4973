"""The control API's wire protocol, sans-IO: bytes in -> messages, messages -> bytes out.

Framing is newline-delimited JSON (one UTF-8 JSON object per ``\\n``-terminated line):

- a compact JSON encoder never emits a raw newline (newlines inside strings are escaped
  as ``\\n``), so the delimiter cannot occur inside a message;
- after garbage or an over-long line the decoder re-synchronises at the next newline,
  which a length prefix cannot do once a prefix is corrupt;
- every language and ``socat``/``nc`` speak it, which matters for integrations (CRM
  screen pops, billing) that will not use our client library.

Nothing here touches a socket or the clock: :class:`LineDecoder` turns bytes into lines,
:func:`parse_request` turns a line into a :class:`Request` or a :class:`ProtocolError`, and
:class:`OutboundQueue` holds what is waiting to be written, capped in bytes.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias

# Covariant containers, so that a handler may return ``{"names": sorted(names)}`` (a
# list[str]) or a dict[str, int] without casts; json.dumps accepts lists, tuples and dicts.
JsonValue: TypeAlias = (
    "bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
RequestId: TypeAlias = int | str

PROTOCOL_VERSION: Final = "1.0"  # major.minor; a client with another major is refused
PROTOCOL_MAJOR: Final = 1
MAX_MESSAGE_BYTES: Final = 1 << 20  # one line either way; keeps a hostile client's cost bounded
MAX_ID_CHARS: Final = 128  # a string id longer than this is not an id, it is a payload
MAX_METHOD_CHARS: Final = 128
# JSON numbers beyond 2**53 lose precision in JavaScript clients; ids must round-trip exactly.
MAX_SAFE_INTEGER: Final = 2**53 - 1
# Per-client outbound caps: events stop being queued at the high-water mark (and are
# counted as dropped); anything that would push the queue past the hard cap closes the
# connection with a reason.  256 KiB holds ~1000 typical events; 4 MiB a few large replies.
EVENT_HIGH_WATER_BYTES: Final = 256 * 1024
OUTBOUND_MAX_BYTES: Final = 4 * 1024 * 1024

ENVELOPE_KEYS: Final = frozenset({"id", "method", "params"})


class ErrorCode(enum.StrEnum):
    """Every error code the server sends; docs/api.md explains each (a test checks)."""

    PARSE_ERROR = "parse_error"
    INVALID_REQUEST = "invalid_request"
    MESSAGE_TOO_LARGE = "message_too_large"
    HELLO_REQUIRED = "hello_required"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_METHOD = "unknown_method"
    INVALID_PARAMS = "invalid_params"
    DUPLICATE_ID = "duplicate_id"
    TOO_MANY_CLIENTS = "too_many_clients"
    LOGIN_REQUIRED = "login_required"
    PASSWORD_CHANGE_REQUIRED = "password_change_required"
    AUTH_FAILED = "auth_failed"
    LOCKED_OUT = "locked_out"
    NOT_FOUND = "not_found"
    INVALID_STATE = "invalid_state"
    TIMEOUT = "timeout"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """The body of ``{"error": {...}}``: what was wrong, and where (``path``)."""

    code: ErrorCode
    message: str
    path: str | None = None  # e.g. "params.port", "method", "" for the whole message
    data: Mapping[str, JsonValue] | None = None  # machine-readable extras (retry_after)

    def to_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"code": str(self.code), "message": self.message}
        if self.path is not None:
            out["path"] = self.path
        if self.data is not None:
            out["data"] = dict(self.data)
        return out


class ApiFault(Exception):
    """Raised by handlers (and the dispatch core) to answer with a structured error.

    This is "the peer broke it": the request was wrong, the server is fine.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        path: str | None = None,
        data: Mapping[str, JsonValue] | None = None,
    ) -> None:
        super().__init__(message)
        self.info = ErrorInfo(code, message, path, data)


class ProtocolBug(Exception):
    """We broke it: the server tried to send something the protocol does not allow."""


@dataclass(frozen=True, slots=True)
class Request:
    id: RequestId
    method: str
    params: Mapping[str, JsonValue]

    def __post_init__(self) -> None:
        _check_id(self.id)
        if not isinstance(self.method, str) or not 0 < len(self.method) <= MAX_METHOD_CHARS:
            raise ValueError(f"method must be 1..{MAX_METHOD_CHARS} characters")


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A message that could not become a :class:`Request`; answer it and carry on."""

    id: RequestId | None  # the request's id when it could be read, else None
    error: ErrorInfo


def _check_id(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("id must be an integer or a string")
    if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        raise ValueError(f"integer id must be within +-{MAX_SAFE_INTEGER}")
    if isinstance(value, str) and not 0 < len(value) <= MAX_ID_CHARS:
        raise ValueError(f"string id must be 1..{MAX_ID_CHARS} characters")


class LineDecoder:
    """Splits a byte stream into lines of at most ``max_line`` bytes.

    An over-long line is discarded up to its newline and reported once, as a
    ``message_too_large`` error in the output, so the connection survives it.
    """

    def __init__(self, max_line: int = MAX_MESSAGE_BYTES) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self._max = max_line
        self._buf = bytearray()
        self._discarding = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        out: list[bytes | ProtocolError] = []
        self._buf += data
        while True:
            nl = self._buf.find(b"\n")
            if self._discarding:
                if nl < 0:
                    self._buf.clear()
                    return out
                del self._buf[: nl + 1]
                self._discarding = False
                continue
            if nl < 0:
                if len(self._buf) > self._max:
                    self._buf.clear()
                    self._discarding = True
                    out.append(_too_large(self._max))
                return out
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self._max:
                out.append(_too_large(self._max))
            elif line.strip():  # blank lines are keep-alives
                out.append(line)


def _too_large(limit: int) -> ProtocolError:
    return ProtocolError(
        None,
        ErrorInfo(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"message exceeds {limit} bytes; it was discarded up to the next newline",
            "",
            {"limit": limit},
        ),
    )


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads(line: bytes) -> object:
    """Strict JSON: UTF-8 only, no NaN/Infinity, no duplicate keys."""
    text = line.decode("utf-8")
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)


def dumps(obj: object) -> bytes:
    """One compact line; raises ProtocolBug if ``obj`` is not plain JSON."""
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProtocolBug(f"not JSON-serialisable: {exc}") from exc
    return text.encode("utf-8") + b"\n"


def parse_request(line: bytes) -> Request | ProtocolError:
    """One line -> a :class:`Request`, or the structured error that answers it."""
    try:
        obj = loads(line)
    except UnicodeDecodeError as exc:
        return ProtocolError(
            None, ErrorInfo(ErrorCode.PARSE_ERROR, f"message is not UTF-8: {exc.reason}", "")
        )
    except RecursionError:
        return ProtocolError(None, ErrorInfo(ErrorCode.PARSE_ERROR, "JSON nested too deeply", ""))
    except ValueError as exc:
        return ProtocolError(None, ErrorInfo(ErrorCode.PARSE_ERROR, f"invalid JSON: {exc}", ""))
    if not isinstance(obj, dict):
        kind = _json_type(obj)
        return ProtocolError(
            None,
            ErrorInfo(ErrorCode.INVALID_REQUEST, f"a request is a JSON object, not {kind}", ""),
        )
    if "id" not in obj:
        return ProtocolError(
            None, ErrorInfo(ErrorCode.INVALID_REQUEST, "missing required member 'id'", "id")
        )
    raw_id = obj["id"]
    try:
        _check_id(raw_id)
    except ValueError as exc:
        return ProtocolError(None, ErrorInfo(ErrorCode.INVALID_REQUEST, str(exc), "id"))
    rid: RequestId = raw_id
    for key in obj:
        if key not in ENVELOPE_KEYS:
            return ProtocolError(
                rid,
                ErrorInfo(
                    ErrorCode.INVALID_REQUEST,
                    f"unknown member {key!r}; a request has only id, method and params",
                    key,
                ),
            )
    method = obj.get("method")
    if not isinstance(method, str):
        what = "missing" if method is None else f"must be a string, not {_json_type(method)}"
        return ProtocolError(
            rid, ErrorInfo(ErrorCode.INVALID_REQUEST, f"'method' {what}", "method")
        )
    if not 0 < len(method) <= MAX_METHOD_CHARS:
        return ProtocolError(
            rid,
            ErrorInfo(
                ErrorCode.INVALID_REQUEST,
                f"'method' must be 1..{MAX_METHOD_CHARS} characters",
                "method",
            ),
        )
    params = obj.get("params", {})
    if not isinstance(params, dict):
        return ProtocolError(
            rid,
            ErrorInfo(
                ErrorCode.INVALID_REQUEST,
                f"'params' must be an object, not {_json_type(params)}",
                "params",
            ),
        )
    return Request(rid, method, params)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def encode_result(rid: RequestId, result: JsonValue) -> bytes:
    return dumps({"id": rid, "result": result})


def encode_error(rid: RequestId | None, error: ErrorInfo) -> bytes:
    return dumps({"id": rid, "error": error.to_json()})


def encode_event(topic: str, data: JsonValue, seq: int) -> bytes:
    return dumps({"event": topic, "seq": seq, "data": data})


EVENTS_DROPPED_TOPIC: Final = "api.events_dropped"
CLOSING_TOPIC: Final = "api.closing"


class Overflow(Exception):
    """The client is not reading; the connection must be closed (reason in the message)."""


@dataclass
class OutboundQueue:
    """Bytes waiting for one client, capped; events are shed before replies are.

    Events beyond ``event_high_water`` queued bytes are dropped and counted; the count is
    reported as an ``api.events_dropped`` event as soon as there is room again, so a
    subscriber always learns that it missed something.  A reply that would exceed
    ``max_bytes`` raises :class:`Overflow`: replies are never silently lost.
    """

    event_high_water: int = EVENT_HIGH_WATER_BYTES
    max_bytes: int = OUTBOUND_MAX_BYTES
    dropped: int = 0
    dropped_total: int = 0
    _items: deque[bytes] = field(default_factory=deque)
    _bytes: int = 0
    _last_dropped_seq: int = 0

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def _append(self, data: bytes) -> None:
        self._items.append(data)
        self._bytes += len(data)

    def push_reply(self, data: bytes) -> None:
        if self._bytes + len(data) > self.max_bytes:
            raise Overflow(
                f"outbound queue would exceed {self.max_bytes} bytes: the client is not reading"
            )
        self._append(data)

    def push_event(self, data: bytes, seq: int) -> bool:
        """Queue event number ``seq``; False if it was dropped (and counted)."""
        self._flush_notice(len(data))
        if self.dropped or self._bytes + len(data) > self.event_high_water:
            self.dropped += 1
            self.dropped_total += 1
            self._last_dropped_seq = seq
            return False
        self._append(data)
        return True

    def _flush_notice(self, room_for: int = 0) -> None:
        if not self.dropped:
            return
        notice = encode_event(EVENTS_DROPPED_TOPIC, {"count": self.dropped}, self._last_dropped_seq)
        if self._bytes + len(notice) + room_for <= self.event_high_water:
            self._append(notice)
            self.dropped = 0

    def pop(self) -> bytes | None:
        if not self._items:
            return None
        data = self._items.popleft()
        self._bytes -= len(data)
        # The drop notice goes out as soon as there is room, not only when the next
        # event happens to arrive: the subscriber must learn it missed something.
        self._flush_notice()
        return data

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0
