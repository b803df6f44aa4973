"""In-memory backend: a virtual line whose far end is a Python object.

The far end *says* audio (:meth:`MemoryStream.say`: it comes out of :meth:`read_frame`) and
*hears* what was played (:meth:`MemoryStream.heard`).  Reads and writes are paced by a
simulated device clock that can run fast or slow by ``ppm`` (to exercise drift correction);
``paced=False`` makes them return at once, for tests that drive time themselves.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from drivers.audio.base import PcmStream
from drivers.audio.errors import AudioDeviceError, AudioFormatError
from drivers.audio.format import SAMPLE_BYTES, PcmFormat

DEFAULT_CAPACITY_S = 60  # a minute of audio each way before the oldest is dropped
LATE_RESYNC_FRAMES = 5  # fell this far behind the device clock: restart it, do not burst


class DeviceClock:
    """Frame ``k`` is due at ``start + k * frame_seconds / (1 + ppm * 1e-6)``."""

    def __init__(
        self,
        frame_seconds: float,
        *,
        ppm: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not -10_000.0 <= ppm <= 10_000.0:
            raise AudioFormatError(f"clock offset must be within +/-10000 ppm, got {ppm}")
        self.period = frame_seconds / (1.0 + ppm * 1e-6)
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        self._k = 0
        self.resyncs = 0

    def wait_next(self) -> None:
        now = self._clock()
        if self._start is None:
            self._start = now
        self._k += 1
        due = self._start + self._k * self.period
        delay = due - now
        if delay > 0:
            self._sleep(delay)
        elif -delay > LATE_RESYNC_FRAMES * self.period:
            self._start, self._k = now, 0
            self.resyncs += 1


class MemoryStream(PcmStream):
    def __init__(
        self,
        fmt: PcmFormat,
        *,
        paced: bool = True,
        ppm: float = 0.0,
        capacity_s: int = DEFAULT_CAPACITY_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(fmt)
        if not 1 <= capacity_s <= 3600:
            raise AudioFormatError(f"capacity_s must be 1..3600, got {capacity_s}")
        self._lock = threading.Lock()
        self._cap_bytes = capacity_s * fmt.rate * SAMPLE_BYTES
        self._said = bytearray()  # waiting to be read from the line
        self._heard: collections.deque[bytes] = collections.deque(
            maxlen=capacity_s * 1000 // fmt.frame_ms
        )
        self._read_clock = DeviceClock(fmt.frame_seconds, ppm=ppm, clock=clock, sleep=sleep)
        self._write_clock = DeviceClock(fmt.frame_seconds, ppm=ppm, clock=clock, sleep=sleep)
        self.paced = paced
        self.frames_read = 0
        self.frames_written = 0
        self.silent_reads = 0  # reads with nothing said: silence came out
        self.heard_dropped = 0  # played frames dropped because nobody collected them

    # --- the far end --------------------------------------------------------------------------

    def say(self, pcm: bytes | bytearray | memoryview) -> int:
        """Queue audio to be heard on the line; returns the bytes taken (all, unless full)."""
        data = memoryview(pcm).cast("B")
        if data.nbytes % SAMPLE_BYTES:
            raise AudioFormatError(f"say needs whole 16-bit samples, got {data.nbytes} bytes")
        with self._lock:
            room = self._cap_bytes - len(self._said)
            take = min(room, data.nbytes)
            self._said += data[:take]
            return take

    def heard(self) -> bytes:
        """Everything played to the line since the last call."""
        with self._lock:
            frames = list(self._heard)
            self._heard.clear()
        return b"".join(frames)

    @property
    def pending(self) -> int:
        """Bytes said and not yet read."""
        with self._lock:
            return len(self._said)

    # --- PcmStream ----------------------------------------------------------------------------

    def read_frame(self) -> bytes:
        if self.closed:
            raise AudioDeviceError("memory stream is closed")
        if self.paced:
            self._read_clock.wait_next()
        n = self.fmt.bytes_per_frame
        with self._lock:
            frame = bytes(self._said[:n])
            del self._said[:n]
        self.frames_read += 1
        if len(frame) < n:
            if not frame:
                self.silent_reads += 1
            frame += bytes(n - len(frame))
        return frame

    def write_frame(self, frame: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise AudioDeviceError("memory stream is closed")
        self.fmt.check_frame(frame)
        if self.paced:
            self._write_clock.wait_next()
        with self._lock:
            if len(self._heard) == self._heard.maxlen:
                self.heard_dropped += 1
            self._heard.append(bytes(frame))
        self.frames_written += 1

    def close(self) -> None:
        self.closed = True
