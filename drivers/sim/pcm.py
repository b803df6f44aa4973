"""The simulator's PCM transport: per-port 20 ms audio frames over one TCP stream (sans-IO).

A real line card moves audio on a PCM bus beside its control UART; the simulator moves
it over a TCP socket on 127.0.0.1, one connection for the whole card.  Every frame is
324 bytes, little-endian::

    port u8 | flags u8 (0) | seq u16 | 160 x int16 samples (8 kHz, 20 ms)

The simulator is the clock master, like a card's PCM bus: every 20 ms it sends one frame
per port (what the line delivers to the appliance: the handset's microphone on an FXS port,
the exchange on an FXO port).  The appliance sends frames back (what it puts on the line)
at the same pace; the simulator buffers up to ``JITTER_FRAMES`` per port, dropping the
oldest on overflow and playing silence on underrun (both counted).  ``seq`` counts per port
and direction, modulo 2**16.  Documented in ``docs/simulator.md``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from drivers.sim.tones import FRAME_SAMPLES, Pcm

HEADER = struct.Struct("<BBH")
FRAME_BYTES = HEADER.size + 2 * FRAME_SAMPLES  # 324
MAX_PORT = 32
JITTER_FRAMES = 10  # 200 ms of buffering towards the line, per port


class AudioStreamError(Exception):
    """The audio stream is out of step (bad header); the connection must be dropped."""


@dataclass(frozen=True)
class AudioFrame:
    port: int
    seq: int
    samples: bytes  # 160 little-endian int16

    def __post_init__(self) -> None:
        if not 1 <= self.port <= MAX_PORT:
            raise ValueError(f"AudioFrame.port={self.port} outside 1..{MAX_PORT}")
        if not 0 <= self.seq <= 0xFFFF:
            raise ValueError(f"AudioFrame.seq={self.seq} outside 0..65535")
        if len(self.samples) != 2 * FRAME_SAMPLES:
            raise ValueError(f"AudioFrame carries {len(self.samples)} bytes, need 320")

    @classmethod
    def of(cls, port: int, seq: int, pcm: Pcm) -> AudioFrame:
        return cls(port, seq % 0x10000, pcm.astype("<i2").tobytes())

    def pcm(self) -> Pcm:
        return np.frombuffer(self.samples, dtype="<i2").astype(np.int16)

    def to_bytes(self) -> bytes:
        return HEADER.pack(self.port, 0, self.seq) + self.samples


class AudioFrameDecoder:
    """Bytes in, frames out; holds less than one frame."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[AudioFrame]:
        self._buf += data
        out: list[AudioFrame] = []
        while len(self._buf) >= FRAME_BYTES:
            port, flags, seq = HEADER.unpack_from(self._buf)
            if not 1 <= port <= MAX_PORT or flags != 0:
                self._buf.clear()
                raise AudioStreamError(f"bad audio frame header: port {port}, flags {flags}")
            out.append(AudioFrame(port, seq, bytes(self._buf[HEADER.size : FRAME_BYTES])))
            del self._buf[:FRAME_BYTES]
        return out
