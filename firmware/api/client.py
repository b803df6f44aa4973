"""Client library for Ponte's control API (the console, the CLI, tests, integrations).

This module imports nothing from the rest of Ponte: the console may import it and only it
(an import-linter contract and a test enforce that).  Usage::

    async with ApiClient("/run/ponte/api.sock", client_name="crm-pop") as api:
        info = await api.call("system.info")
        await api.subscribe("calls")
        async for event in api.events():
            print(event.topic, event.data)

    with SyncApiClient(path) as api:          # for scripts and the CLI
        print(api.call("jobs.list"))

Every failure is an :class:`ApiError` carrying the server's structured error (``code``,
``message``, ``path``, ``data``) or one of the client-side codes in :data:`CLIENT_CODES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeAlias, TypeVar

# Covariant containers, so that a handler may return ``{"names": sorted(names)}`` (a
# list[str]) or a dict[str, int] without casts; json.dumps accepts lists, tuples and dicts.
JsonValue: TypeAlias = (
    "bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)

PROTOCOL_VERSION: Final = "1.0"
DEFAULT_SOCKET_PATH: Final = "/run/ponte/api.sock"
SOCKET_ENV: Final = "PONTE_API_SOCKET"
# The server's lines are at most 1 MiB (firmware.api.protocol.MAX_MESSAGE_BYTES); a little
# headroom lets a future server grow without breaking old clients' framing.
MAX_LINE_BYTES: Final = 2 * 1024 * 1024
DEFAULT_TIMEOUT_S: Final = 35.0  # just over the server's default request timeout (30 s)
MAX_QUEUED_EVENTS: Final = 4096  # events not yet taken by the application
EVENTS_DROPPED_TOPIC: Final = "api.events_dropped"
CLOSING_TOPIC: Final = "api.closing"

# Codes raised by the client itself (the server's codes are listed in docs/api.md).
CONNECTION_LOST: Final = "connection_lost"
NOT_CONNECTED: Final = "not_connected"
CLIENT_TIMEOUT: Final = "client_timeout"
BAD_RESPONSE: Final = "bad_response"
CLIENT_CODES: Final = (CONNECTION_LOST, NOT_CONNECTED, CLIENT_TIMEOUT, BAD_RESPONSE)

T = TypeVar("T")


def default_socket_path() -> str:
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET_PATH


class ApiError(Exception):
    """A structured error from the server, or a client-side failure (see CLIENT_CODES)."""

    def __init__(
        self,
        code: str,
        message: str,
        path: str | None = None,
        data: Mapping[str, JsonValue] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path
        self.data: dict[str, JsonValue] = dict(data or {})

    @classmethod
    def from_json(cls, obj: object) -> ApiError:
        if not isinstance(obj, dict) or not isinstance(obj.get("code"), str):
            return cls(BAD_RESPONSE, f"malformed error object from server: {obj!r}"[:300])
        path = obj.get("path")
        data = obj.get("data")
        return cls(
            obj["code"],
            str(obj.get("message", "")),
            path if isinstance(path, str) else None,
            data if isinstance(data, dict) else None,
        )

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.code}{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    seq: int
    data: Any  # decoded JSON, shaped as the topic's documentation says


class ApiClient:
    """An asyncio client; one connection, many concurrent calls, an event queue."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        client_name: str = "ponte-client",
        timeout: float = DEFAULT_TIMEOUT_S,
        auto_reconnect: bool = False,
        max_queued_events: int = MAX_QUEUED_EVENTS,
    ) -> None:
        self.path = os.fspath(path) if path is not None else default_socket_path()
        self.client_name = client_name
        self.timeout = timeout
        self.auto_reconnect = auto_reconnect
        self.hello: dict[str, JsonValue] = {}
        self.close_reason: str | None = None  # from the server's api.closing notice
        self.events_dropped_locally = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[JsonValue]] = {}
        self._events: deque[Event] = deque()
        self._max_events = max_queued_events
        self._event_ready = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._topics: set[str] = set()
        self._token: str | None = None
        self._conn_error: ApiError | None = None
        self._connect_lock = asyncio.Lock()

    # -- connection -----------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._reader_task is not None and not self._reader_task.done()

    async def connect(self) -> dict[str, JsonValue]:
        """Open the socket, say hello, restore subscriptions and login.  Returns the hello."""
        async with self._connect_lock:
            if self.connected:
                return self.hello
            await self._drop()
            self._conn_error = None
            self.close_reason = None
            try:
                reader, writer = await asyncio.open_unix_connection(self.path, limit=MAX_LINE_BYTES)
            except OSError as exc:
                raise ApiError(NOT_CONNECTED, f"cannot connect to {self.path}: {exc}") from exc
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read_loop(reader))
            try:
                hello = await self._call(
                    "api.hello", {"version": PROTOCOL_VERSION, "client": self.client_name}
                )
                if not isinstance(hello, dict):
                    raise ApiError(BAD_RESPONSE, "api.hello answered with a non-object")
                self.hello = hello
                if self._topics:
                    await self._call("events.subscribe", {"topics": [*sorted(self._topics)]})
                if self._token is not None:
                    try:
                        await self._call("auth.resume", {"token": self._token})
                    except ApiError as exc:
                        if exc.code != "auth_failed":
                            raise
                        self._token = None  # expired while we were away: log in again
            except BaseException:
                await self._drop()
                raise
            return self.hello

    async def reconnect(self) -> dict[str, JsonValue]:
        await self._drop()
        return await self.connect()

    async def close(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        writer, self._writer = self._writer, None
        task, self._reader_task = self._reader_task, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail_pending(ApiError(CONNECTION_LOST, "connection closed"))

    async def __aenter__(self) -> ApiClient:
        await self.connect()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- requests ---------------------------------------------------------------------
    async def call(
        self,
        method: str,
        params: Mapping[str, JsonValue] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Call ``method``; returns its decoded JSON result or raises :class:`ApiError`.

        The result is typed ``Any`` on purpose: it is JSON whose shape the method's
        documentation gives; callers index into it as they know it.

        With ``auto_reconnect`` a lost connection is re-established *before* sending; a
        request that was already sent is never re-sent (it may have had an effect).
        """
        if not self.connected and self.auto_reconnect:
            await self.connect()
        return await self._call(method, dict(params or {}), timeout)

    async def _call(
        self, method: str, params: dict[str, JsonValue], timeout: float | None = None
    ) -> JsonValue:
        writer = self._writer
        if writer is None or not self.connected:
            raise self._conn_error or ApiError(NOT_CONNECTED, f"not connected to {self.path}")
        rid = next(self._ids)
        line = json.dumps({"id": rid, "method": method, "params": params}, separators=(",", ":"))
        fut: asyncio.Future[JsonValue] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            if not self.connected:  # lost since the check above: nobody would answer
                raise self._conn_error or ApiError(CONNECTION_LOST, "connection closed")
            writer.write(line.encode("utf-8") + b"\n")
            await writer.drain()
            async with asyncio.timeout(timeout if timeout is not None else self.timeout):
                return await fut
        except TimeoutError:
            raise ApiError(CLIENT_TIMEOUT, f"no answer to {method} in time") from None
        except (ConnectionError, OSError) as exc:
            raise ApiError(CONNECTION_LOST, f"{method}: {exc}") from exc
        finally:
            self._pending.pop(rid, None)

    # -- conveniences -----------------------------------------------------------------
    async def subscribe(self, *topics: str) -> list[str]:
        result = await self.call("events.subscribe", {"topics": list(topics)})
        self._topics.update(topics)
        return _str_list(result, "topics")

    async def unsubscribe(self, *topics: str) -> list[str]:
        params: dict[str, JsonValue] = {"topics": list(topics)} if topics else {}
        result = await self.call("events.unsubscribe", params)
        if topics:
            self._topics.difference_update(topics)
        else:
            self._topics.clear()
        return _str_list(result, "topics")

    async def login(self, password: str) -> dict[str, JsonValue]:
        result = await self.call("auth.login", {"password": password})
        if not isinstance(result, dict) or not isinstance(result.get("token"), str):
            raise ApiError(BAD_RESPONSE, "auth.login returned no token")
        self._token = str(result["token"])
        return result

    async def change_password(self, old: str, new: str) -> dict[str, JsonValue]:
        result = await self.call("auth.change_password", {"old_password": old, "new_password": new})
        if not isinstance(result, dict) or not isinstance(result.get("token"), str):
            raise ApiError(BAD_RESPONSE, "auth.change_password returned no token")
        self._token = str(result["token"])
        return result

    async def logout(self) -> None:
        await self.call("auth.logout")
        self._token = None

    # -- events -----------------------------------------------------------------------
    async def next_event(self, timeout: float | None = None) -> Event:
        """The next event; ApiError(connection_lost) once the stream has ended,
        ApiError(client_timeout) if none arrives within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self._next_event()
        except TimeoutError:
            raise ApiError(CLIENT_TIMEOUT, f"no event within {timeout} s") from None

    async def _next_event(self) -> Event:
        while not self._events:
            if not self.connected:
                if not self.auto_reconnect:
                    raise self._conn_error or ApiError(
                        CONNECTION_LOST, self.close_reason or "connection closed"
                    )
                await self.connect()
                continue
            self._event_ready.clear()
            waiter = asyncio.ensure_future(self._event_ready.wait())
            assert self._reader_task is not None
            try:
                await asyncio.wait({waiter, self._reader_task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
        return self._events.popleft()

    async def events(self) -> AsyncIterator[Event]:
        while True:
            yield await self.next_event()

    # -- the reader -------------------------------------------------------------------
    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # asyncio: line longer than MAX_LINE_BYTES
                    self._conn_error = ApiError(BAD_RESPONSE, "server sent an over-long line")
                    return
                if not line:
                    return
                self._handle_line(line)
        except (ConnectionError, OSError) as exc:
            self._conn_error = ApiError(CONNECTION_LOST, str(exc))
        finally:
            self._fail_pending(
                self._conn_error
                or ApiError(
                    CONNECTION_LOST, self.close_reason or "the server closed the connection"
                )
            )
            self._event_ready.set()

    def _handle_line(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return  # not ours to fix; the server's tests keep this from happening
        if not isinstance(msg, dict):
            return
        if "event" in msg:
            topic = msg["event"]
            seq = msg.get("seq")
            if topic == CLOSING_TOPIC and isinstance(msg.get("data"), dict):
                self.close_reason = str(msg["data"].get("reason", ""))
            self._push_event(Event(str(topic), seq if isinstance(seq, int) else 0, msg.get("data")))
            return
        rid = msg.get("id")
        if rid is None:
            # An error about the connection itself (too_many_clients, message_too_large...).
            if "error" in msg:
                err = ApiError.from_json(msg["error"])
                self._conn_error = err
                if len(self._pending) == 1:
                    # A lone request in flight is the one it is about (e.g. hello refused).
                    (lone,) = self._pending.values()
                    if not lone.done():
                        lone.set_exception(err)
            return
        fut = self._pending.get(rid) if isinstance(rid, int) else None
        if fut is None or fut.done():
            return
        if "error" in msg:
            fut.set_exception(ApiError.from_json(msg["error"]))
        else:
            fut.set_result(msg.get("result"))

    def _push_event(self, event: Event) -> None:
        if len(self._events) >= self._max_events:
            self._events.popleft()
            self.events_dropped_locally += 1
        self._events.append(event)
        self._event_ready.set()

    def _fail_pending(self, error: ApiError) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(error)


def _str_list(result: JsonValue, key: str) -> list[str]:
    if isinstance(result, dict):
        value = result.get(key)
        if isinstance(value, list):
            return [str(v) for v in value]
    raise ApiError(BAD_RESPONSE, f"expected {{{key}: [...]}} in the result")


class SyncApiClient:
    """A blocking wrapper over :class:`ApiClient` with its own event loop (CLI, scripts).

    Not for use inside a running event loop; use :class:`ApiClient` there.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self.client = ApiClient(path, **kwargs)

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def connect(self) -> dict[str, JsonValue]:
        result: dict[str, JsonValue] = self._run(self.client.connect())
        return result

    def call(
        self,
        method: str,
        params: Mapping[str, JsonValue] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        return self._run(self.client.call(method, params, timeout=timeout))

    def subscribe(self, *topics: str) -> list[str]:
        result: list[str] = self._run(self.client.subscribe(*topics))
        return result

    def login(self, password: str) -> dict[str, JsonValue]:
        result: dict[str, JsonValue] = self._run(self.client.login(password))
        return result

    def next_event(self, timeout: float | None = None) -> Event:
        result: Event = self._run(self.client.next_event(timeout))
        return result

    def events(self) -> Iterator[Event]:
        while True:
            yield self.next_event()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self.client.close())
            self._loop.close()

    def __enter__(self) -> SyncApiClient:
        self.connect()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
