"""Socket backend: a line's PCM over TCP or a Unix socket, framed by :mod:`drivers.audio.wire`.

Meant for the simulator: each side announces its format with a HELLO, then sends one AUDIO
message per frame, paced by its own clock (a :class:`~drivers.audio.memory.DeviceClock`), so
the two ends drift apart exactly as a real line card and pjmedia do.  Reads block until the
peer's next frame; if none comes within ``read_timeout`` a frame of silence is returned (and
counted), so the reading thread never hangs on a quiet peer.

Addresses: ``tcp://HOST:PORT`` or ``unix:///path/to/socket``; or pass an already connected
socket as ``sock=`` (the simulator's accepted connection).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from drivers.audio.base import PcmStream
from drivers.audio.errors import AudioDeviceError, AudioFormatError, AudioFramingError
from drivers.audio.format import PcmFormat
from drivers.audio.memory import DeviceClock
from drivers.audio.wire import Audio, Decoder, Hello, encode_audio, encode_hello

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
RECV_CHUNK = 4096
DEFAULT_READ_TIMEOUT_FRAMES = 10  # a peer silent for 200 ms gets silence read in its place


def connect(url: str, timeout: float = CONNECT_TIMEOUT_S) -> socket.socket:
    """Open ``tcp://host:port`` or ``unix:///path``."""
    parts = urlsplit(url)
    try:
        if parts.scheme == "tcp":
            if not parts.hostname or parts.port is None:
                raise AudioFormatError(f"PCM socket URL needs tcp://HOST:PORT, got {url!r}")
            return socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        if parts.scheme == "unix":
            if not parts.path:
                raise AudioFormatError(f"PCM socket URL needs unix:///PATH, got {url!r}")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(parts.path)
            except OSError:
                sock.close()
                raise
            return sock
    except OSError as e:
        raise AudioDeviceError(f"cannot connect PCM socket {url}: {e}") from e
    raise AudioFormatError(f"PCM socket URL must be tcp:// or unix://, got {url!r}")


class SocketStream(PcmStream):
    def __init__(
        self,
        fmt: PcmFormat,
        *,
        url: str | None = None,
        sock: socket.socket | None = None,
        line: int = 0,
        paced: bool = True,
        ppm: float = 0.0,
        read_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(fmt)
        if (url is None) == (sock is None):
            raise AudioFormatError("SocketStream needs exactly one of url= or sock=")
        self._sock = sock if sock is not None else connect(str(url))
        self._sock.settimeout(
            read_timeout
            if read_timeout is not None
            else DEFAULT_READ_TIMEOUT_FRAMES * fmt.frame_seconds
        )
        self.line = line
        self.paced = paced
        self._clock = DeviceClock(fmt.frame_seconds, ppm=ppm, clock=clock, sleep=sleep)
        self._decoder = Decoder()
        self._frames: list[bytes] = []
        self._send_lock = threading.Lock()  # HELLO from __init__ vs. the writer thread
        self._seq = 0
        self.peer: Hello | None = None
        self.silent_reads = 0
        self._send(encode_hello(Hello(fmt, line), self._next_seq()))

    @property
    def seq_gaps(self) -> int:
        return self._decoder.seq_gaps

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def _send(self, data: bytes) -> None:
        try:
            with self._send_lock:
                self._sock.sendall(data)
        except OSError as e:
            raise AudioDeviceError(f"PCM socket send failed: {e}") from e

    def read_frame(self) -> bytes:
        if self.closed:
            raise AudioDeviceError("PCM socket stream is closed")
        while not self._frames:
            try:
                data = self._sock.recv(RECV_CHUNK)
            except TimeoutError:
                self.silent_reads += 1
                return bytes(self.fmt.bytes_per_frame)
            except OSError as e:
                raise AudioDeviceError(f"PCM socket receive failed: {e}") from e
            if not data:
                raise AudioDeviceError("PCM socket closed by the peer")
            for message in self._decoder.feed(data):
                if isinstance(message, Hello):
                    if message.fmt != self.fmt:
                        raise AudioFramingError(
                            f"peer speaks {message.fmt.rate} Hz/{message.fmt.frame_ms} ms, "
                            f"we {self.fmt.rate} Hz/{self.fmt.frame_ms} ms"
                        )
                    self.peer = message
                elif isinstance(message, Audio):
                    self._frames.append(message.pcm)
        return self._frames.pop(0)

    def write_frame(self, frame: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise AudioDeviceError("PCM socket stream is closed")
        data = encode_audio(self.fmt, frame, self._next_seq())
        if self.paced:
            self._clock.wait_next()
        self._send(data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError as e:
            log.debug("PCM socket shutdown: %s", e)
        self._sock.close()
