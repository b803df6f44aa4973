"""Appliance side of the simulator's PCM socket: a minimal asyncio client.

The audio backend of ``drivers/audio`` can attach to the same socket; this client is what
tests and hardware tests use to hear and feed the simulated lines directly::

    client = await AudioClient.connect(*sim.audio_address)
    await client.wait_samples(port=5, count=1600)     # 200 ms from the exchange
    pcm = client.take(5)
    client.send(1, pcm)                               # to the handset on port 1
    await client.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import numpy as np

from drivers.sim.pcm import AudioFrame, AudioFrameDecoder
from drivers.sim.tones import FRAME_SAMPLES, Pcm

MAX_BUFFERED_FRAMES = 3000  # per port: 60 s; older frames are dropped


class AudioClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._frames: dict[int, deque[Pcm]] = {}
        self._seq: dict[int, int] = {}
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._read_loop(), name="sim audio client")

    @classmethod
    async def connect(cls, host: str, port: int) -> AudioClient:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def close(self) -> None:
        self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._task
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    def buffered(self, port: int) -> int:
        """Samples received from ``port`` and not yet taken."""
        return len(self._frames.get(port, ())) * FRAME_SAMPLES

    def take(self, port: int) -> Pcm:
        """Everything received from ``port`` since the last take."""
        frames = self._frames.pop(port, deque())
        return np.concatenate(list(frames)) if frames else np.zeros(0, dtype=np.int16)

    def discard(self) -> None:
        self._frames.clear()

    async def wait_samples(self, port: int, count: int, timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout):
            while self.buffered(port) < count:
                self._arrived.clear()
                await self._arrived.wait()

    def send(self, port: int, pcm: Pcm) -> None:
        """Queue ``pcm`` towards the line on ``port`` (padded to whole 20 ms frames)."""
        pad = (-len(pcm)) % FRAME_SAMPLES
        if pad:
            pcm = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
        out = bytearray()
        for i in range(0, len(pcm), FRAME_SAMPLES):
            seq = self._seq.get(port, 0)
            out += AudioFrame.of(port, seq, pcm[i : i + FRAME_SAMPLES]).to_bytes()
            self._seq[port] = (seq + 1) % 0x10000
        self._writer.write(bytes(out))

    async def stream(self, port: int, pcm: Pcm, *, lead_frames: int = 2) -> None:
        """Send ``pcm`` at the line's pace (20 ms per frame, ``lead_frames`` ahead), as an
        appliance does; sending faster overflows the card's jitter buffer."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, i in enumerate(range(0, len(pcm), FRAME_SAMPLES)):
            due = start + (n - lead_frames) * FRAME_SAMPLES / 8000
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            self.send(port, pcm[i : i + FRAME_SAMPLES])

    async def _read_loop(self) -> None:
        decoder = AudioFrameDecoder()
        while data := await self._reader.read(8192):
            for frame in decoder.feed(data):
                frames = self._frames.setdefault(frame.port, deque(maxlen=MAX_BUFFERED_FRAMES))
                frames.append(frame.pcm())
            self._arrived.set()
