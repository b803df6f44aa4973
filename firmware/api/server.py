"""The control API server: the asyncio shell around :mod:`firmware.api.core`.

A service builds one :class:`ApiServer`, registers its methods, publishes events, and
owns its lifecycle::

    server = ApiServer("/run/ponte/api.sock", credentials=store)
    server.register("ports.list", list_ports, NoParams,
                    result="{ports: [...]}", summary="Every port and its state")
    await server.start()
    server.publish("ports.hook", {"port": 1, "off_hook": True})
    ...
    await server.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import itertools
import logging
import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from firmware.api.auth import (
    DEFAULT_SCRYPT,
    Authenticator,
    CredentialStore,
    LockoutPolicy,
    ScryptParams,
)
from firmware.api.core import (
    DEFAULT_REQUEST_TIMEOUT_S,
    HELLO_METHOD,
    MAX_INFLIGHT_PER_CLIENT,
    Call,
    Dispatcher,
    Handler,
    HelloParams,
    MethodRegistry,
    MethodSpec,
    Peer,
    PeerState,
)
from firmware.api.events import EventBus
from firmware.api.jobs import JobRunner
from firmware.api.protocol import (
    EVENT_HIGH_WATER_BYTES,
    MAX_MESSAGE_BYTES,
    OUTBOUND_MAX_BYTES,
    ApiFault,
    ErrorCode,
    ErrorInfo,
    JsonValue,
    OutboundQueue,
    ProtocolBug,
    encode_error,
    encode_result,
)
from firmware.api.schema import NoParams
from firmware.api.sysinfo import PONTE_DISTRIBUTION, SystemInfo, distribution_version

log = logging.getLogger(__name__)

P = TypeVar("P")

DEFAULT_SOCKET_PATH: Final = "/run/ponte/api.sock"
SOCKET_ENV: Final = "PONTE_API_SOCKET"
SOCKET_MODE: Final = 0o660  # owner and group read/write: the group is the access list
SOCKET_GROUP: Final = "ponte"  # created by the image; members may use the API
MAX_CLIENTS: Final = 32  # console, CLI, a few integrations; more is a leak or an attack
READ_CHUNK: Final = 64 * 1024
WRITE_BATCH_BYTES: Final = 64 * 1024
CLOSE_FLUSH_TIMEOUT_S: Final = 2.0  # time a closing client gets to read its last words
LIVE_PROBE_TIMEOUT_S: Final = 1.0
HELLO_TIMEOUT_S: Final = 10.0  # a client says hello first thing or loses its slot


class ServerStartError(Exception):
    """The server cannot start (socket path held by a live server, not a socket, ...)."""


def default_socket_path() -> str:
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET_PATH


def socket_group(name: str = SOCKET_GROUP) -> tuple[int, bool]:
    """(gid, True) for the group ``name``, else (our effective gid, False)."""
    try:
        return grp.getgrnam(name).gr_gid, True
    except KeyError:
        return os.getegid(), False


class ApiServer:
    """Methods, events, jobs and the admin login, served on a Unix socket."""

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        *,
        credentials: CredentialStore,
        clock: Callable[[], float] = time.monotonic,
        scrypt: ScryptParams = DEFAULT_SCRYPT,
        lockout: LockoutPolicy | None = None,
        max_clients: int = MAX_CLIENTS,
        max_message: int = MAX_MESSAGE_BYTES,
        max_inflight: int = MAX_INFLIGHT_PER_CLIENT,
        event_high_water_bytes: int = EVENT_HIGH_WATER_BYTES,
        outbound_max_bytes: int = OUTBOUND_MAX_BYTES,
        hello_timeout_s: float = HELLO_TIMEOUT_S,
        group: str = SOCKET_GROUP,
        proc: Path = Path("/proc"),
        server_version: str | None = None,
    ) -> None:
        self.path = Path(socket_path)
        self.clock = clock
        self.max_clients = max_clients
        self.max_message = max_message
        self.max_inflight = max_inflight
        self.event_high_water_bytes = event_high_water_bytes
        self.outbound_max_bytes = outbound_max_bytes
        self.hello_timeout_s = hello_timeout_s
        self.group = group
        self.registry = MethodRegistry()
        self.bus = EventBus()
        self.jobs = JobRunner(self.publish, clock=clock)
        self.auth = Authenticator(credentials, clock=clock, scrypt=scrypt, lockout=lockout)
        self.sysinfo = SystemInfo(proc, clock)
        self.version = server_version or distribution_version(PONTE_DISTRIBUTION)
        self.dispatcher = Dispatcher(
            self.registry,
            self.auth.sessions,
            server_version=self.version,
            max_message=max_message,
        )
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inode: int | None = None
        self._peer_ids = itertools.count(1)
        self._peers: dict[int, Peer] = {}
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.refused_clients = 0
        from firmware.api import builtins

        builtins.register_builtins(self)

    # -- the public surface for services --------------------------------------------
    def register(
        self,
        name: str,
        handler: Handler[P],
        params_type: type[P],
        *,
        result: str,
        summary: str,
        requires_login: bool = False,
        timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> None:
        """Add a method.  ``handler(params, ctx)`` is async and returns plain JSON.

        ``params_type`` is a dataclass (see :mod:`firmware.api.schema`); requests whose
        params do not fit get ``invalid_params`` naming the field and never reach the
        handler.  Raise :class:`firmware.api.protocol.ApiFault` for a structured error.
        """
        self.registry.add(
            MethodSpec(name, handler, params_type, result, summary, requires_login, timeout_s)
        )

    def method(
        self,
        name: str,
        params_type: type[P],
        *,
        result: str,
        summary: str,
        requires_login: bool = False,
        timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> Callable[[Handler[P]], Handler[P]]:
        """Decorator form of :meth:`register`."""

        def decorate(handler: Handler[P]) -> Handler[P]:
            self.register(
                name,
                handler,
                params_type,
                result=result,
                summary=summary,
                requires_login=requires_login,
                timeout_s=timeout_s,
            )
            return handler

        return decorate

    def publish(self, topic: str, payload: JsonValue = None) -> int:
        """Send an event to every subscriber of ``topic``; never blocks.  Returns its seq.

        Call it on the server's event loop; other threads use :meth:`publish_threadsafe`.
        """
        return self.bus.publish(topic, payload)

    def publish_threadsafe(self, topic: str, payload: JsonValue = None) -> None:
        """Publish from another thread (the pjsua2 thread, an executor); needs start()."""
        if self._loop is None:
            raise RuntimeError("publish_threadsafe needs a started server")
        self._loop.call_soon_threadsafe(self._publish_logged, topic, payload)

    def _publish_logged(self, topic: str, payload: JsonValue) -> None:
        try:
            self.bus.publish(topic, payload)
        except ProtocolBug:
            # Raised on the loop, far from the publishing thread: log it where it is seen.
            log.exception("refused event on %r from another thread", topic)

    @property
    def clients(self) -> int:
        return len(self._peers)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already started")
        self._stopping = False
        self._loop = asyncio.get_running_loop()
        await self._clear_stale_socket()
        sock = self._bind()
        try:
            self._server = await asyncio.start_unix_server(
                self._on_connect, sock=sock, limit=READ_CHUNK
            )
        except BaseException:
            sock.close()
            self.path.unlink(missing_ok=True)
            raise
        log.info("control API listening on %s", self.path)

    async def stop(self) -> None:
        """Stop accepting, end every connection and job, remove the socket."""
        if self._server is None:
            return
        self._stopping = True
        server, self._server = self._server, None
        server.close()
        tasks = list(self._conn_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self.jobs.stop()
        await server.wait_closed()
        self._unlink_own_socket()
        log.info("control API stopped")

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the socket file ------------------------------------------------------------
    async def _clear_stale_socket(self) -> None:
        try:
            st = self.path.lstat()
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ServerStartError(f"{self.path} exists and is not a socket; not touching it")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.path)), LIVE_PROBE_TIMEOUT_S
            )
        except (ConnectionRefusedError, FileNotFoundError):
            log.info("removing stale control socket %s (no server behind it)", self.path)
            self.path.unlink(missing_ok=True)
            return
        except (TimeoutError, OSError) as exc:
            raise ServerStartError(f"{self.path}: cannot tell whether it is in use: {exc}") from exc
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        raise ServerStartError(f"{self.path} is in use by another running server")

    def _bind(self) -> socket.socket:
        # Bind under a temporary name, set mode and group, then rename into place: the
        # socket is never reachable with the umask's permissions.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(tmp))
            gid, found = socket_group(self.group)
            if not found:
                log.warning(
                    "group %r does not exist; %s is owned by group %d instead",
                    self.group,
                    self.path,
                    gid,
                )
            os.chown(tmp, -1, gid)
            os.chmod(tmp, SOCKET_MODE)
            sock.listen(self.max_clients)
            os.rename(tmp, self.path)
            self._inode = self.path.lstat().st_ino
        except BaseException:
            sock.close()
            tmp.unlink(missing_ok=True)
            raise
        return sock

    def _unlink_own_socket(self) -> None:
        try:
            if self.path.lstat().st_ino == self._inode:
                self.path.unlink()
        except FileNotFoundError:
            pass
        self._inode = None

    # -- connections ------------------------------------------------------------------
    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conn_tasks.add(task)
        try:
            if self._stopping or len(self._peers) >= self.max_clients:
                await self._refuse(writer)
                return
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # stop() cancels connections; asyncio's stream callback would log a cancelled
            # task as an error, so end it normally here.  Any other cancel propagates.
            if not self._stopping:
                raise
        finally:
            self._conn_tasks.discard(task)

    async def _refuse(self, writer: asyncio.StreamWriter) -> None:
        self.refused_clients += 1
        error = (
            ErrorInfo(ErrorCode.SHUTTING_DOWN, "the server is stopping")
            if self._stopping
            else ErrorInfo(
                ErrorCode.TOO_MANY_CLIENTS,
                f"the server already has {self.max_clients} clients",
                None,
                {"max_clients": self.max_clients},
            )
        )
        writer.write(encode_error(None, error))
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.drain(), CLOSE_FLUSH_TIMEOUT_S)
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(
            next(self._peer_ids),
            max_message=self.max_message,
            outbound=OutboundQueue(self.event_high_water_bytes, self.outbound_max_bytes),
        )
        self._peers[peer.id] = peer
        wake = asyncio.Event()
        closed = asyncio.Event()

        def on_output() -> None:
            wake.set()
            if peer.is_closed():
                closed.set()

        peer.on_output = on_output
        calls: set[asyncio.Task[None]] = set()
        writer_task = asyncio.create_task(self._write_loop(peer, writer, wake))
        reader_task = asyncio.create_task(self._read_loop(peer, reader, calls))
        closed_task = asyncio.create_task(closed.wait())
        hello_task = asyncio.create_task(self._hello_deadline(peer))
        log.debug("client %d connected", peer.id)
        try:
            await asyncio.wait({reader_task, closed_task}, return_when=asyncio.FIRST_COMPLETED)
            if reader_task.done() and not reader_task.cancelled() and reader_task.exception():
                # A bug in the dispatch path; the client gets a closing notice, not silence.
                log.error("client %d: reader failed", peer.id, exc_info=reader_task.exception())
                peer.close("internal error in the server; see its log")
            if not peer.is_closed() and calls:
                # The client half-closed: answer what it asked before hanging up.
                await asyncio.wait(calls)
            peer.hang_up()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(writer_task), CLOSE_FLUSH_TIMEOUT_S)
        finally:
            # Reached on normal end and on stop() (cancelled): tidy up in both cases.
            for task in (reader_task, closed_task, hello_task, *calls):
                task.cancel()
            await asyncio.wait({reader_task, closed_task, hello_task, *calls})
            if self._stopping and not writer_task.done():
                peer.hang_up(notice="the server is stopping")
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(writer_task), CLOSE_FLUSH_TIMEOUT_S)
            writer_task.cancel()
            await asyncio.wait({writer_task})
            self.bus.remove(peer)
            del self._peers[peer.id]
            if peer.close_reason:
                log.warning("client %d disconnected: %s", peer.id, peer.close_reason)
            if peer.overflowed:
                writer.transport.abort()  # it was not reading; do not wait for it
            else:
                writer.close()
            log.debug("client %d gone", peer.id)

    async def _hello_deadline(self, peer: Peer) -> None:
        # A connection that never says hello would hold one of the few client slots.
        await asyncio.sleep(self.hello_timeout_s)
        if peer.state is PeerState.AWAITING_HELLO:
            peer.close(f"no api.hello within {self.hello_timeout_s} s")

    async def _read_loop(
        self, peer: Peer, reader: asyncio.StreamReader, calls: set[asyncio.Task[None]]
    ) -> None:
        slots = asyncio.Semaphore(self.max_inflight)
        while not peer.is_closed():
            try:
                data = await reader.read(READ_CHUNK)
            except OSError:  # reset by the peer, or the socket went away under us
                return
            if not data:
                return
            for item in peer.receive_data(data):
                if peer.is_closed():
                    return
                action = self.dispatcher.dispatch(peer, item, self.clock())
                if isinstance(action, bytes):
                    peer.send_reply(action)
                    continue
                # Back-pressure: a client with too many requests running is not read from.
                await slots.acquire()
                peer.inflight.add(action.ctx.request_id)
                task = asyncio.create_task(self._run_call(peer, action))
                calls.add(task)

                def done(t: asyncio.Task[None]) -> None:
                    calls.discard(t)
                    slots.release()

                task.add_done_callback(done)

    async def _run_call(self, peer: Peer, call: Call) -> None:
        rid = call.ctx.request_id
        spec = call.spec
        assert spec.handler is not None
        try:
            async with asyncio.timeout(spec.timeout_s):
                result = await spec.handler(call.params, call.ctx)
            reply = encode_result(rid, result)
            if len(reply) > self.max_message:
                raise ProtocolBug(f"{spec.name} result is {len(reply)} bytes")
        except ApiFault as fault:
            reply = encode_error(rid, fault.info)
        except TimeoutError:
            reply = encode_error(
                rid,
                ErrorInfo(ErrorCode.TIMEOUT, f"{spec.name} did not finish in {spec.timeout_s} s"),
            )
        except asyncio.CancelledError:
            peer.send_reply(
                encode_error(rid, ErrorInfo(ErrorCode.SHUTTING_DOWN, "the server is stopping"))
            )
            raise
        except Exception as exc:
            log.exception("method %s failed", spec.name)
            reply = encode_error(
                rid,
                ErrorInfo(
                    ErrorCode.INTERNAL_ERROR,
                    f"{spec.name} failed inside the server ({type(exc).__name__}); see the log",
                ),
            )
        finally:
            peer.inflight.discard(rid)
        peer.send_reply(reply)

    async def _write_loop(
        self, peer: Peer, writer: asyncio.StreamWriter, wake: asyncio.Event
    ) -> None:
        try:
            while True:
                batch: list[bytes] = []
                size = 0
                while size < WRITE_BATCH_BYTES and (data := peer.outbound.pop()) is not None:
                    batch.append(data)
                    size += len(data)
                if batch:
                    writer.write(b"".join(batch))
                    await writer.drain()
                    continue
                if peer.is_closed():
                    return
                wake.clear()
                if len(peer.outbound) == 0 and not peer.is_closed():
                    await wake.wait()
        except (ConnectionError, OSError):
            if not peer.is_closed():
                peer.hang_up()

    # -- used by the built-in methods --------------------------------------------------
    def peers(self) -> dict[int, Peer]:
        return dict(self._peers)

    def method_specs(self) -> list[MethodSpec[Any]]:
        return list(self.registry)


__all__ = [
    "DEFAULT_SOCKET_PATH",
    "HELLO_METHOD",
    "SOCKET_ENV",
    "ApiServer",
    "HelloParams",
    "NoParams",
    "ServerStartError",
]
