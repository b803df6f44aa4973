"""The thin I/O shell of a line's audio: two threads between a PcmStream and two DriftBuffers.

``uplink`` carries what the line hears towards pjmedia (the capture thread pushes, pjmedia's
clock thread pops); ``downlink`` carries pjmedia's audio to the line (pjmedia pushes, the
playback thread pops).  Each buffer thus has exactly one producer and one consumer thread, as
:class:`~drivers.audio.buffer.DriftBuffer` requires.  The threads block only on the stream
(the device clock); pjmedia's thread only ever touches the buffers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from drivers.audio.base import PcmStream
from drivers.audio.buffer import DriftBuffer
from drivers.audio.errors import AudioError

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 2.0  # a device blocks at most a few frame times; beyond this it is wedged


class LinePump:
    def __init__(
        self,
        stream: PcmStream,
        *,
        name: str = "line",
        capacity_frames: int = 8,
        target_frames: int = 2,
        capture: bool = True,
    ) -> None:
        self.stream = stream
        self.name = name
        fmt = stream.fmt
        self.uplink = DriftBuffer(fmt, capacity_frames=capacity_frames, target_frames=target_frames)
        self.downlink = DriftBuffer(
            fmt, capacity_frames=capacity_frames, target_frames=target_frames
        )
        self._capture = capture
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.error: BaseException | None = None  # what stopped a thread, if anything did

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self) -> None:
        if self._threads:
            raise RuntimeError(f"audio pump {self.name} already started")
        loops = [self._playback_loop] + ([self._capture_loop] if self._capture else [])
        for loop in loops:
            t = threading.Thread(
                target=self._guard, args=(loop,), name=f"audio-{self.name}-{loop.__name__}"
            )
            t.daemon = True  # a wedged device must not keep the process alive at exit
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        """Stop both threads and wait for them (each finishes its current frame)."""
        self._stop.set()
        for t in self._threads:
            t.join(JOIN_TIMEOUT_S)
            if t.is_alive():
                log.error("audio thread %s did not stop within %.1f s", t.name, JOIN_TIMEOUT_S)

    def _guard(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except AudioError as e:
            self.error = e
            log.error("audio pump %s stopped: %s", self.name, e)
        except BaseException as e:  # a bug: record it, the service decides what to do
            self.error = e
            log.exception("audio pump %s crashed", self.name)

    def _capture_loop(self) -> None:
        while not self._stop.is_set():
            self.uplink.push(self.stream.read_frame())

    def _playback_loop(self) -> None:
        frame = bytearray(self.stream.fmt.bytes_per_frame)
        while not self._stop.is_set():
            self.downlink.pop_into(frame)
            self.stream.write_frame(frame)
