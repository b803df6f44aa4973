"""The one PCM format lines use: mono, 16-bit signed little-endian, fixed-length frames."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.audio.errors import AudioFormatError

RATES_HZ = (8000, 16000)  # narrowband (G.711) and wideband (G.722) as pjmedia runs them
FRAME_MS = (10, 20, 30)  # pjmedia ptime choices; lines use 20 ms (DESIGN.md)
SAMPLE_BYTES = 2  # S16_LE


@dataclass(frozen=True, slots=True)
class PcmFormat:
    rate: int = 8000
    frame_ms: int = 20

    def __post_init__(self) -> None:
        if self.rate not in RATES_HZ:
            raise AudioFormatError(f"PCM rate must be one of {RATES_HZ} Hz, got {self.rate!r}")
        if self.frame_ms not in FRAME_MS:
            raise AudioFormatError(
                f"PCM frame length must be one of {FRAME_MS} ms, got {self.frame_ms!r}"
            )

    @property
    def samples_per_frame(self) -> int:
        return self.rate * self.frame_ms // 1000

    @property
    def bytes_per_frame(self) -> int:
        return self.samples_per_frame * SAMPLE_BYTES

    @property
    def frame_seconds(self) -> float:
        return self.frame_ms / 1000.0

    def check_frame(self, frame: bytes | bytearray | memoryview) -> None:
        """Raise :class:`AudioFormatError` unless ``frame`` is exactly one frame long."""
        n = memoryview(frame).nbytes
        if n != self.bytes_per_frame:
            raise AudioFormatError(
                f"a {self.rate} Hz {self.frame_ms} ms frame is {self.bytes_per_frame} bytes, "
                f"got {n}"
            )
