"""Appliance side of the simulator's PCM socket, for asyncio code (tests, hardware tests).

The simulator serves each port's audio as one TCP connection framed by
:mod:`drivers.audio.wire` (HELLO naming the port as its line, then 20 ms AUDIO frames), so
the appliance's own :class:`drivers.audio.socket_stream.SocketStream` attaches to it
directly (``SocketStream(PcmFormat(), url=sim.audio_url, line=port)``).  This is the same
thing with an asyncio face::

    client = await AudioClient.connect(sim.audio_url, ports=[1, 5])
    await client.wait_samples(5, 1600)        # 200 ms from the exchange on port 5
    pcm = client.take(5)
    await client.stream(1, pcm)               # to the handset on port 1, at line pace
    await client.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable
from urllib.parse import urlsplit

import numpy as np

from drivers.audio.format import PcmFormat
from drivers.audio.wire import Audio, Decoder, Hello, encode_audio, encode_hello
from drivers.sim.tones import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Pcm

FORMAT = PcmFormat(SAMPLE_RATE, FRAME_MS)
MAX_BUFFERED_FRAMES = 3000  # per port: 60 s; older frames are dropped


class _Line:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.seq = 1  # 0 was our HELLO
        self.frames: deque[Pcm] = deque(maxlen=MAX_BUFFERED_FRAMES)
        self.task: asyncio.Task[None] | None = None


class AudioClient:
    def __init__(self) -> None:
        self._lines: dict[int, _Line] = {}
        self._arrived = asyncio.Event()

    @classmethod
    async def connect(cls, url: str, ports: Iterable[int]) -> AudioClient:
        """Attach to ``ports`` of a simulator at ``url`` (``tcp://127.0.0.1:PORT``)."""
        parts = urlsplit(url)
        if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
            raise ValueError(f"audio URL must be tcp://HOST:PORT, got {url!r}")
        client = cls()
        try:
            for port in ports:
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                writer.write(encode_hello(Hello(FORMAT, port), 0))
                line = _Line(reader, writer)
                line.task = asyncio.create_task(client._read_loop(port, line))
                client._lines[port] = line
        except BaseException:
            await client.close()
            raise
        return client

    async def close(self) -> None:
        for line in self._lines.values():
            line.writer.close()
            if line.task is not None:
                line.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await line.task
        self._lines.clear()

    def buffered(self, port: int) -> int:
        """Samples received from ``port`` and not yet taken."""
        return len(self._lines[port].frames) * FRAME_SAMPLES

    def take(self, port: int) -> Pcm:
        """Everything received from ``port`` since the last take."""
        frames = self._lines[port].frames
        out = np.concatenate(list(frames)) if frames else np.zeros(0, dtype=np.int16)
        frames.clear()
        return out

    def discard(self) -> None:
        for line in self._lines.values():
            line.frames.clear()

    async def wait_samples(self, port: int, count: int, timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout):
            while self.buffered(port) < count:
                self._arrived.clear()
                await self._arrived.wait()

    def send(self, port: int, pcm: Pcm) -> None:
        """Queue ``pcm`` towards the line on ``port`` at once (padded to whole frames);
        more than 200 ms at a time overflows the card's buffer: use :meth:`stream`."""
        line = self._lines[port]
        pad = (-len(pcm)) % FRAME_SAMPLES
        if pad:
            pcm = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
        out = bytearray()
        for i in range(0, len(pcm), FRAME_SAMPLES):
            out += encode_audio(
                FORMAT, pcm[i : i + FRAME_SAMPLES].astype("<i2").tobytes(), line.seq
            )
            line.seq += 1
        line.writer.write(bytes(out))

    async def stream(self, port: int, pcm: Pcm, *, lead_frames: int = 2) -> None:
        """Send ``pcm`` at the line's pace (20 ms per frame, ``lead_frames`` ahead)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, i in enumerate(range(0, len(pcm), FRAME_SAMPLES)):
            due = start + (n - lead_frames) * FRAME_MS / 1000
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            self.send(port, pcm[i : i + FRAME_SAMPLES])

    async def _read_loop(self, port: int, line: _Line) -> None:
        decoder = Decoder()
        while data := await line.reader.read(8192):
            for message in decoder.feed(data):
                if isinstance(message, Hello):
                    if message.line != port or message.fmt != FORMAT:
                        raise ValueError(f"simulator answered {message} for port {port}")
                elif isinstance(message, Audio):
                    line.frames.append(np.frombuffer(message.pcm, dtype="<i2").astype(np.int16))
            self._arrived.set()
