"""The simulator's I/O shell: serves the card's UART, its PCM audio and a control socket.

::

    async with Simulator(fxs=4, fxo=2) as sim:              # listen="socket://127.0.0.1:0"
        async with Link(sim.url) as link:                    # the appliance side
            await link.wait_connected(timeout=2)
            sim.handset(1).off_hook()                        # -> HookChange(port=1, ...)
            sim.co.line(1).ring(caller_id="5551234")         # -> RingDetect(port=5, ...)
            await sim.wait_for(lambda: sim.handset(1).ringing)

The control UART is served on ``socket://127.0.0.1:PORT`` (one appliance at a time; a new
connection replaces the old one) or on a pty (``listen="pty"``, ``sim.url`` is the
``/dev/pts/N`` path; ``"pty:/some/link"`` also makes a symlink there).  PCM audio goes over
TCP on 127.0.0.1 (``sim.audio_url``), one connection per port framed by
:mod:`drivers.audio.wire`, so ``drivers.audio``'s socket backend attaches directly.
With ``control=PATH`` a Unix socket accepts the JSON requests of ``ponte sim``
(:mod:`drivers.sim.control`).  Everything runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import tty
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from drivers.audio.errors import AudioError
from drivers.audio.format import PcmFormat
from drivers.audio.wire import Audio, Decoder, Hello, encode_audio, encode_hello
from drivers.linecard.session import Timing
from drivers.sim.card import SimCard
from drivers.sim.co import CentralOffice
from drivers.sim.endpoint import SimError
from drivers.sim.handset import Handset
from drivers.sim.signals import SignalKit
from drivers.sim.tones import FRAME_MS

log = logging.getLogger(__name__)

TICK_S = FRAME_MS / 1000
# If the loop falls this many ticks behind, skip ahead instead of bursting frames.
MAX_TICK_LAG = 5
# A connected appliance that stops reading: drop rather than buffer without bound.
MAX_WRITE_BUFFER = 256 * 1024
CONTROL_LINE_LIMIT = 64 * 1024
# The card's PCM bus: 8 kHz, 20 ms frames (drivers.audio.wire HELLO must announce this).
AUDIO_FORMAT = PcmFormat(8000, FRAME_MS)
# An audio client must say which line it is within this time.
AUDIO_HELLO_TIMEOUT_S = 5.0


def _claim_control_path(path: Path) -> None:
    """Refuse a control path a live simulator answers on; clear one a dead one left."""
    if not path.is_socket():
        if path.exists():
            raise SimError(f"control path {path} exists and is not a socket")
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # left over by a killed simulator
            return
    raise SimError(f"another simulator is already running at {path}")


class Simulator:
    """A running simulated line card; see the module docstring.  Not thread-safe."""

    def __init__(
        self,
        *,
        fxs: int = 4,
        fxo: int = 2,
        listen: str = "socket://127.0.0.1:0",
        audio_port: int = 0,
        control: Path | None = None,
        country: str = "US",
        card_dtmf: bool = True,
        timing: Timing | None = None,
        seed: int | None = None,
        signals: SignalKit | None = None,
    ) -> None:
        self._fxs, self._fxo, self._country = fxs, fxo, country
        self._signals = signals
        self._card_dtmf, self._timing = card_dtmf, timing
        self._rng = random.Random(seed)
        self.listen = listen
        self.audio_port = audio_port
        self.control_path = control
        self._card: SimCard | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._uart_server: asyncio.Server | None = None
        self._uart_writer: asyncio.StreamWriter | None = None
        self._pty: tuple[int, int] | None = None
        self._pty_link: Path | None = None
        self._audio_server: asyncio.Server | None = None
        # port number -> (writer, next seq) of the appliance stream attached to it
        self._audio_lines: dict[int, tuple[asyncio.StreamWriter, int]] = {}
        self._control_server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        # Connection handlers, awaited by stop() so that none is left cancelled.
        self._handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._kicked = False
        self._stopped = asyncio.Event()  # stop() began: no more service
        self._finished = asyncio.Event()  # stop() completed
        self.unplugged = False
        self.url = ""
        self.audio_address: tuple[str, int] = ("127.0.0.1", 0)
        self.audio_url = ""  # tcp://127.0.0.1:PORT, for drivers.audio's socket backend
        self.bytes_dropped = 0
        self.ticks_skipped = 0

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        if self._loop is not None:
            raise SimError("a Simulator is started once")
        self._loop = asyncio.get_running_loop()
        if self.control_path is not None:
            _claim_control_path(self.control_path)
        self._card = SimCard(
            fxs=self._fxs,
            fxo=self._fxo,
            clock=self._loop.time,
            country=self._country,
            card_dtmf=self._card_dtmf,
            timing=self._timing,
            rng=self._rng,
            signals=self._signals,
        )
        self._card.notify = self._kick
        await self._open_uart()
        self._audio_server = await asyncio.start_server(
            self._tracked(self._serve_audio), "127.0.0.1", self.audio_port
        )
        self.audio_address = self._audio_server.sockets[0].getsockname()[:2]
        self.audio_url = f"tcp://{self.audio_address[0]}:{self.audio_address[1]}"
        if self.control_path is not None:
            from drivers.sim.control import serve_control

            self._control_server = await asyncio.start_unix_server(
                self._tracked(lambda r, w: serve_control(self, r, w)),
                path=str(self.control_path),
                limit=CONTROL_LINE_LIMIT,
            )
        self._ticker = asyncio.create_task(self._tick_loop(), name="sim audio clock")
        self._service()
        log.info(
            "simulated line card: %d FXS + %d FXO, link %s, audio %s:%d",
            self._fxs,
            self._fxo,
            self.url,
            *self.audio_address,
        )

    async def stop(self) -> None:
        """Stop serving and wait for every task; idempotent."""
        if self._stopped.is_set():
            await self._finished.wait()
            return
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for server in (self._control_server, self._audio_server, self._uart_server):
            if server is not None:
                server.close()
        for writer in self._handlers.values():
            writer.close()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        for server in (self._control_server, self._audio_server, self._uart_server):
            if server is not None:
                await server.wait_closed()
        if self._pty is not None and self._loop is not None:
            self._loop.remove_reader(self._pty[0])
            for fd in self._pty:
                os.close(fd)
            self._pty = None
        if self._pty_link is not None:
            self._pty_link.unlink(missing_ok=True)
        if self.control_path is not None and self._control_server is not None:
            self.control_path.unlink(missing_ok=True)
        log.info("simulator stopped")
        self._finished.set()

    async def wait_stopped(self) -> None:
        """Returns once :meth:`stop` completed (e.g. after a ``ponte sim stop`` request)."""
        await self._finished.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- API --------------------------------------------------------------------

    @property
    def card(self) -> SimCard:
        if self._card is None:
            raise SimError("simulator not started")
        return self._card

    def handset(self, number: int) -> Handset:
        """The phone on FXS port ``number`` (1-based)."""
        handsets = self.card.handsets
        if not 1 <= number <= len(handsets):
            raise SimError(f"no handset {number}: handsets are 1..{len(handsets)}")
        return handsets[number - 1]

    @property
    def co(self) -> CentralOffice:
        """The exchange; ``co.line(n)`` is wired to FXO port ``fxs + n``."""
        return self.card.co

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 2.0, interval: float = 0.005
    ) -> None:
        """Poll ``predicate`` until it is true; raises TimeoutError."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(interval)

    def reset_card(self) -> None:
        """Reboot the card mid-stream (new boot id; the host must handshake again)."""
        self.card.reset()

    def unplug(self) -> None:
        """Cut the UART both ways (the card keeps running): the host sees a dead card."""
        self.unplugged = True

    def plug(self) -> None:
        self.unplugged = False

    def inject_garbage(self, data: bytes) -> None:
        """Put raw bytes on the UART towards the host (noise on the line)."""
        self._write_uart(data, force=True)

    def status(self) -> dict[str, Any]:
        card = self.card
        return {
            "link": self.url,
            "audio": self.audio_url,
            "audio_ports": sorted(self._audio_lines),
            "control": str(self.control_path) if self.control_path else None,
            "country": card.country.code,
            "host_connected": card.session.connected,
            "boot_id": f"{card.boot_id:08x}",
            "unplugged": self.unplugged,
            "handsets": [
                {
                    "handset": h.number,
                    "port": h.number,
                    "off_hook": h.is_off_hook,
                    "ringing": h.ringing,
                    "rings": len(h.ring_log),
                    "auto_answered": h.auto_answered,
                    "polarity": h.polarity.name.lower(),
                    "playing": h.playing,
                    "recording": h.recording,
                    "caller_id": h.caller_id_view(),
                    "call_waiting_id": h.call_waiting_ack,
                    "cas_heard": h.cas_heard,
                    "timeline": h.timeline(),
                }
                for h in card.handsets
            ],
            "co_lines": [
                {
                    "line": line.number,
                    "port": len(card.handsets) + line.number,
                    "state": line.state.value,
                    "digits": line.digits,
                    "dialled": list(line.dialled),
                    "caller_id": line.caller_id,
                    "caller_name": line.caller_name,
                    "loop_current": line.loop_current,
                    "polarity": line.polarity.name.lower(),
                }
                for line in card.co.lines
            ],
            "stats": {
                "frames_in": card.session.stats.frames_in,
                "frames_bad": card.session.stats.frames_bad,
                "retransmissions": card.session.stats.retransmissions,
                "events_dropped": card.events_dropped,
                "audio_underruns": card.underruns,
                "audio_overruns": card.overruns,
            },
        }

    # --- plumbing -------------------------------------------------------------------

    def _tracked(
        self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._handlers[task] = writer
            try:
                await handler(reader, writer)
            finally:
                del self._handlers[task]

        return run

    def _kick(self) -> None:
        if not self._kicked and self._loop is not None and not self._stopped.is_set():
            self._kicked = True
            self._loop.call_soon(self._service)

    def _service(self) -> None:
        self._kicked = False
        if self._stopped.is_set():
            return
        card = self.card
        card.advance()
        data = card.data_to_send()
        if data:
            self._write_uart(data)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = card.next_deadline()
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._service)

    def _on_uart_data(self, data: bytes) -> None:
        if self.unplugged or self._stopped.is_set():
            return
        self.card.receive_data(data)
        self._service()

    def _write_uart(self, data: bytes, *, force: bool = False) -> None:
        if self.unplugged and not force:
            return
        if self._pty is not None:
            try:
                os.write(self._pty[0], data)
            except BlockingIOError:
                self.bytes_dropped += len(data)  # nobody reads the pty: like an open UART
            return
        writer = self._uart_writer
        if writer is None or writer.is_closing():
            return
        if writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.bytes_dropped += len(data)
            return
        writer.write(data)

    async def _open_uart(self) -> None:
        assert self._loop is not None
        if self.listen == "pty" or self.listen.startswith("pty:"):
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo or line editing before the host configures it
            os.set_blocking(master, False)
            self._pty = (master, slave)
            self._loop.add_reader(master, self._pty_readable)
            self.url = os.ttyname(slave)
            if self.listen.startswith("pty:"):
                link = Path(self.listen[4:])
                link.unlink(missing_ok=True)
                link.symlink_to(self.url)
                self._pty_link = link
            return
        if not self.listen.startswith("socket://"):
            raise SimError(f"listen {self.listen!r}: use socket://HOST:PORT, pty or pty:PATH")
        host, _, port = self.listen[len("socket://") :].rpartition(":")
        if not host or not port.isdigit():
            raise SimError(f"listen {self.listen!r}: use socket://HOST:PORT")
        self._uart_server = await asyncio.start_server(
            self._tracked(self._serve_uart), host.strip("[]"), int(port)
        )
        bound = self._uart_server.sockets[0].getsockname()
        self.url = f"socket://{host}:{bound[1]}"

    def _pty_readable(self) -> None:
        assert self._pty is not None
        try:
            data = os.read(self._pty[0], 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("pty read failed: %s", exc)
            return
        if data:
            self._on_uart_data(data)

    async def _serve_uart(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._uart_writer is not None:
            log.info("a new appliance connected; dropping the previous one")
            self._uart_writer.close()
        self._uart_writer = writer
        try:
            while data := await reader.read(4096):
                self._on_uart_data(data)
        except ConnectionError:
            pass
        finally:
            if self._uart_writer is writer:
                self._uart_writer = None
            writer.close()

    async def _serve_audio(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One line's PCM, framed as drivers.audio.wire: HELLO (naming the port) then AUDIO."""
        decoder = Decoder()
        port = 0
        try:
            async with asyncio.timeout(AUDIO_HELLO_TIMEOUT_S):
                while decoder.fmt is None:
                    data = await reader.read(4096)
                    if not data:
                        return
                    messages = decoder.feed(data)
            hello = messages[0]
            assert isinstance(hello, Hello)
            port = self._attach_audio(hello, writer)
            for message in messages[1:]:
                if isinstance(message, Audio):
                    self.card.audio_in(port, np.frombuffer(message.pcm, dtype="<i2"))
            while data := await reader.read(8192):
                for message in decoder.feed(data):
                    if isinstance(message, Audio):
                        self.card.audio_in(port, np.frombuffer(message.pcm, dtype="<i2"))
        except (AudioError, SimError, TimeoutError) as exc:
            log.warning("audio client on port %d dropped: %s", port, exc)
        except ConnectionError:
            pass
        finally:
            if port and self._audio_lines.get(port, (None, 0))[0] is writer:
                del self._audio_lines[port]
                self.card.ports[port - 1].audio_connected = False
            writer.close()

    def _attach_audio(self, hello: Hello, writer: asyncio.StreamWriter) -> int:
        if hello.fmt != AUDIO_FORMAT:
            raise SimError(
                f"audio client wants {hello.fmt.rate} Hz / {hello.fmt.frame_ms} ms; "
                f"the card runs {AUDIO_FORMAT.rate} Hz / {AUDIO_FORMAT.frame_ms} ms"
            )
        port = hello.line
        if not 1 <= port <= len(self.card.ports):
            raise SimError(f"audio HELLO names line {port}: ports are 1..{len(self.card.ports)}")
        previous = self._audio_lines.get(port)
        if previous is not None:
            log.info("a new audio stream for port %d replaces the previous one", port)
            previous[0].close()
        writer.write(encode_hello(Hello(AUDIO_FORMAT, port), 0))
        self._audio_lines[port] = (writer, 1)
        self.card.ports[port - 1].audio_connected = True
        return port

    async def _tick_loop(self) -> None:
        assert self._loop is not None
        loop = self._loop
        next_tick = loop.time()
        while True:
            next_tick += TICK_S
            delay = next_tick - loop.time()
            if delay < -MAX_TICK_LAG * TICK_S:
                skipped = int(-delay / TICK_S)
                self.ticks_skipped += skipped
                next_tick += skipped * TICK_S
                delay = 0
            await asyncio.sleep(max(0.0, delay))
            self.card.advance()
            frames = self.card.audio_tick()
            for port, (writer, seq) in list(self._audio_lines.items()):
                if writer.is_closing():
                    continue
                if writer.transport.get_write_buffer_size() <= MAX_WRITE_BUFFER:
                    writer.write(
                        encode_audio(AUDIO_FORMAT, frames[port].astype("<i2").tobytes(), seq)
                    )
                # A frame not written still counts: the reader sees the gap in seq.
                self._audio_lines[port] = (writer, seq + 1)
            self._service()
