"""The line-card link: a thin asyncio shell around :class:`~drivers.linecard.session.Session`.

Opens any pyserial URL (``/dev/ttyUSB0``, ``/dev/pts/3``, ``socket://127.0.0.1:7000``,
``loop://``) and exposes::

    async with Link("socket://127.0.0.1:7000") as link:
        card = await link.wait_connected(timeout=2)        # HelloAck: ports, firmware
        await link.send(Ring(1, ((2000, 4000),)))
        async for event in link:                            # messages and link events
            ...

Iteration yields the card's messages (``HookChange``, ``RingDetect``, ...) and the
session's link events (``LinkUp``, ``LinkDown``, ``PeerFault``), plus :class:`LinkFailed`
if the port itself fails, after which the link is closed and iteration ends.

Blocking pyserial calls run in one reader thread and in executor writes; the protocol runs
on the event loop thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import serial

from drivers.linecard.protocol import HelloAck, LinecardError, LocalProtocolError, Message
from drivers.linecard.session import (
    LinkDown,
    LinkUp,
    PeerFault,
    Received,
    Role,
    Session,
    State,
    Stats,
    Timing,
)

log = logging.getLogger(__name__)

DEFAULT_BAUDRATE = 115200
# How long the reader thread blocks in read(); bounds how long close() waits for it.
READ_POLL_S = 0.05
READ_CHUNK = 4096
# Events the application has not taken yet; beyond this they are dropped and counted.
MAX_EVENTS = 4096


class LinkOpenError(LinecardError, OSError):
    """The URL could not be opened (no such device, nothing listening, bad URL).

    An OSError too, as pyserial's own SerialException is, so callers catching OSError
    around open() keep working."""


@dataclass(frozen=True)
class LinkFailed:
    """The serial port failed (unplugged USB adapter, socket closed); the link is closed."""

    description: str


LinkEvent = Message | LinkUp | LinkDown | PeerFault | LinkFailed


class _End:
    """Sentinel closing the event iteration."""


class Link:
    """Host end of the line-card link over a pyserial URL.

    Lifecycle: :meth:`open` (or ``async with``) starts the reader thread, the writer task
    and the session; :meth:`close` ends the session, stops both and awaits them.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        timing: Timing | None = None,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.session = Session(Role.HOST, timing=timing)
        self.events_dropped = 0
        self._port: serial.Serial | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: asyncio.Queue[LinkEvent | _End] = asyncio.Queue()
        self._writes: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._connected = asyncio.Event()
        self._closed = False
        self._closing: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        """Open the port and start the handshake (returns without waiting for the card).

        Raises :class:`LinkOpenError` naming the URL when the port cannot be opened.
        """
        if self._port is not None or self._closed:
            raise LocalProtocolError("a Link is opened once")
        self._loop = asyncio.get_running_loop()
        try:
            self._port = await asyncio.to_thread(
                serial.serial_for_url, self.url, baudrate=self.baudrate, timeout=READ_POLL_S
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self._closed = True
            raise LinkOpenError(f"cannot open line card at {self.url}: {exc}") from exc
        log.info("line-card link opened on %s", self.url)
        self._writer = asyncio.create_task(self._write_loop(), name=f"linecard-write {self.url}")
        self._reader = threading.Thread(
            target=self._read_loop, name=f"linecard-read {self.url}", daemon=True
        )
        self._reader.start()
        self.session.start(self._loop.time())
        self._after()

    async def close(self) -> None:
        """End the session, stop the reader and writer and close the port.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._loop is not None and self.session.state is not State.CLOSED:
            self.session.close(self._loop.time())
            self._after(reschedule=False)
        self._stop.set()
        if self._writer is not None:
            self._writes.put_nowait(None)
            await self._writer
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join)
        if self._port is not None:
            await asyncio.to_thread(self._port.close)
        self._events.put_nowait(_End())
        log.info("line-card link on %s closed", self.url)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- API ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.session.connected

    @property
    def card(self) -> HelloAck | None:
        """The connected card's description (ports, firmware, capabilities)."""
        return self.session.card if self.session.connected else None

    @property
    def stats(self) -> Stats:
        return self.session.stats

    async def wait_connected(self, timeout: float | None = None) -> HelloAck:
        """Wait until the handshake completes; raises TimeoutError."""
        async with asyncio.timeout(timeout):
            while not self.session.connected:
                self._connected.clear()
                await self._connected.wait()
        assert self.session.card is not None
        return self.session.card

    async def send(self, message: Message) -> int:
        """Send a command; returns its sequence number.

        Raises :class:`~drivers.linecard.session.NotConnectedError` while the card is
        absent and :class:`~drivers.linecard.session.QueueFullError` when too many
        commands wait for acknowledgement.
        """
        if self._loop is None or self._closed:
            raise LocalProtocolError("link is not open")
        seq = self.session.send(message, self._loop.time())
        self._after()
        return seq

    async def send_noise(self, data: bytes) -> None:
        """Put raw, unframed bytes on the wire towards the card (line tests: noise)."""
        if self._loop is None or self._closed:
            raise LocalProtocolError("link is not open")
        await self._writes.put(bytes(data))

    async def next_event(self, timeout: float | None = None) -> LinkEvent:
        """The next event; raises TimeoutError, or EOFError once the link is closed."""
        async with asyncio.timeout(timeout):
            item = await self._events.get()
        if isinstance(item, _End):
            self._events.put_nowait(item)  # every later call ends too
            raise EOFError("link closed")
        return item

    def __aiter__(self) -> AsyncIterator[LinkEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LinkEvent]:
        while True:
            try:
                yield await self.next_event()
            except EOFError:
                return

    # --- plumbing -------------------------------------------------------------------

    def _after(self, *, reschedule: bool = True) -> None:
        """Move the session's output to the writer and its events to the queue."""
        data = self.session.data_to_send()
        if data:
            self._writes.put_nowait(data)
        while (event := self.session.next_event()) is not None:
            out: LinkEvent = event.message if isinstance(event, Received) else event
            if isinstance(event, LinkUp):
                self._connected.set()
            if self._events.qsize() >= MAX_EVENTS:
                self.events_dropped += 1
                log.error("line-card event dropped (nobody reads the link): %r", out)
                continue
            self._events.put_nowait(out)
        if reschedule:
            self._reschedule()

    def _reschedule(self) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.session.get_timer()
        if deadline is not None and not self._closed:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        assert self._loop is not None
        self._timer = None
        if self._closed:
            return
        self.session.handle_timer(self._loop.time())
        self._after()

    def _on_data(self, data: bytes) -> None:
        if self._closed or self._loop is None:
            return
        self.session.receive_data(data, self._loop.time())
        self._after()

    def _on_port_error(self, description: str) -> None:
        if self._closed:
            return
        log.error("line-card port %s failed: %s", self.url, description)
        self._events.put_nowait(LinkFailed(description))
        self._closing = asyncio.ensure_future(self.close())

    def _read_loop(self) -> None:
        port, loop = self._port, self._loop
        assert port is not None and loop is not None
        try:
            while not self._stop.is_set():
                data = port.read(1)
                if not data:
                    continue
                # in_waiting is exact for ttys and loop://, 0/1 for socket://; both fine.
                while (waiting := port.in_waiting) and len(data) < READ_CHUNK:
                    data += port.read(min(waiting, READ_CHUNK - len(data)))
                loop.call_soon_threadsafe(self._on_data, data)
        except (serial.SerialException, OSError) as exc:
            if not self._stop.is_set():
                with contextlib.suppress(RuntimeError):  # loop already closed
                    loop.call_soon_threadsafe(self._on_port_error, str(exc))

    async def _write_loop(self) -> None:
        port = self._port
        assert port is not None
        while (data := await self._writes.get()) is not None:
            try:
                await asyncio.to_thread(port.write, data)
            except (serial.SerialException, OSError) as exc:
                self._on_port_error(f"write: {exc}")
                return
