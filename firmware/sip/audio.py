"""A line's audio in pjmedia's conference bridge (DESIGN.md "Threads and time").

Each FXS/FXO port is one ``AudioMediaPort`` in the bridge.  Two ``DriftBuffer``s connect it
to the line's own media thread:

- ``uplink``: the line thread pushes the 20 ms frames the line hears; pjmedia's clock pops
  one per tick (``onFrameRequested``) and sends it to whatever call the port transmits to;
- ``downlink``: pjmedia's clock pushes what the bridge mixed for the port
  (``onFrameReceived``); the line thread pops it and plays it to the line.

The callbacks run on pjmedia's clock thread, 50 times a second per port: they never block,
never log, never raise (an exception in a SWIG director would end in C++), and avoid
allocation.  pjsua2 hands frames over as ``std::vector<unsigned char>`` (``ByteVector``);
converting one through SWIG's sequence protocol costs 40-150 us, reading or writing its
storage directly costs 1-2 us (measured on this 2-core VM, see bench/bench_sipmedia.py);
each SWIG attribute access still costs 2-6 us, so the callbacks make as few as they can.
:func:`vector_fast_path_problem` checks at start that the vector really is laid out as
libstdc++ does it (begin, end, end-of-storage pointers); if not, the ports use the slow path
and the endpoint logs why.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

from drivers.audio.buffer import BufferStats, DriftBuffer
from drivers.audio.format import PcmFormat

# The lines run narrowband: 8 kHz, 20 ms frames, 16-bit mono (drivers.audio.format).
LINE_FORMAT = PcmFormat(8000, 20)
BITS_PER_SAMPLE = 16
UPLINK_CAPACITY_FRAMES = 8  # 160 ms: room for a loaded line thread's bursts
UPLINK_TARGET_FRAMES = 2
DOWNLINK_CAPACITY_FRAMES = 8
DOWNLINK_TARGET_FRAMES = 2
# While no call listens to a port pjmedia stops asking it for frames and the uplink fills
# up; the first frames asked for afterwards would be that stale audio, late by the whole
# buffer (and the drift correction takes ~25 s to work off 160 ms).  A buffer this close to
# full is flushed down to its target instead.
FLUSH_AT_FRAMES = UPLINK_CAPACITY_FRAMES - 1

_FRAME_AUDIO = int(pj.PJMEDIA_FRAME_TYPE_AUDIO)
# libstdc++'s std::vector<T> is three pointers: begin, end, end of storage.
_VectorPointers = ctypes.c_void_p * 3


@dataclass(frozen=True)
class LineAudioStats:
    port: int
    call_id: int | None  # the call whose audio the port carries now
    uplink: BufferStats  # line -> SIP
    downlink: BufferStats  # SIP -> line
    frames_to_sip: int  # frames pjmedia asked for
    frames_from_sip: int  # audio frames pjmedia delivered
    flushed_frames: int  # stale uplink frames dropped when a call started listening
    callback_errors: int  # exceptions caught in the clock-thread callbacks (should stay 0)


class LineAudio:
    """The buffers and counters of one line's bridge port; plain Python, no pjsua2 object.

    Threading: the line thread pushes ``uplink`` and pops ``downlink``; pjmedia's clock
    thread does the reverse; the endpoint thread sets ``call_id``; anyone may read stats.
    """

    def __init__(self, port: int, fmt: PcmFormat = LINE_FORMAT) -> None:
        self.port = port
        self.fmt = fmt
        self.uplink = DriftBuffer(
            fmt, capacity_frames=UPLINK_CAPACITY_FRAMES, target_frames=UPLINK_TARGET_FRAMES
        )
        self.downlink = DriftBuffer(
            fmt, capacity_frames=DOWNLINK_CAPACITY_FRAMES, target_frames=DOWNLINK_TARGET_FRAMES
        )
        self.call_id: int | None = None
        # written by the clock thread only
        self.frames_to_sip = 0
        self.frames_from_sip = 0
        self.flushed_frames = 0
        self.callback_errors = 0

    def stats(self) -> LineAudioStats:
        return LineAudioStats(
            port=self.port,
            call_id=self.call_id,
            uplink=self.uplink.stats(),
            downlink=self.downlink.stats(),
            frames_to_sip=self.frames_to_sip,
            frames_from_sip=self.frames_from_sip,
            flushed_frames=self.flushed_frames,
            callback_errors=self.callback_errors,
        )


def _vector_begin_end(vec: Any) -> tuple[int, int]:
    ptrs = _VectorPointers.from_address(int(vec.this))
    return ptrs[0] or 0, ptrs[1] or 0


def vector_fast_path_problem() -> str | None:
    """Why the direct std::vector access cannot be used here, or None when it can."""
    try:
        known = bytes(range(256)) + bytes(range(64))
        vec = pj.ByteVector(known)
        begin, end = _vector_begin_end(vec)
        if end - begin != len(known) or ctypes.string_at(begin, end - begin) != known:
            return "reading a ByteVector's storage did not give back its bytes"
        out = pj.ByteVector()
        out.resize(len(known))
        begin, end = _vector_begin_end(out)
        if end - begin != len(known):
            return "a resized ByteVector's end pointer is not where libstdc++ puts it"
        ctypes.memmove(begin, known, len(known))
        if bytes(out) != known:
            return "writing a ByteVector's storage did not change its bytes"
        frame = pj.MediaFrame()
        frame.buf = out
        begin, end = _vector_begin_end(frame.buf)
        if ctypes.string_at(begin, end - begin) != known:
            return "assigning a ByteVector to MediaFrame.buf did not copy its bytes"
    except Exception as exc:  # any surprise means: do not touch raw memory
        return f"{type(exc).__name__}: {exc}"
    return None


class LinePort(pj.AudioMediaPort):  # type: ignore[misc]  # pjsua2 ships no type information
    """The bridge port of one line.  Create and destroy on the endpoint thread only."""

    def __init__(self, audio: LineAudio, fast: bool) -> None:
        super().__init__()
        self.audio = audio
        self._fast = fast
        fmt = audio.fmt
        self._nbytes = fmt.bytes_per_frame
        self._flush_at = FLUSH_AT_FRAMES * fmt.samples_per_frame
        self._target = audio.uplink.target_samples
        # Outgoing frames are popped straight into the storage of one ByteVector of frame
        # size (never resized, so its storage stays put), then assigned to the frame: a
        # C++ copy in one SWIG call, cheaper than growing the frame's own empty vector.
        self._out = bytearray(self._nbytes)
        self._vec = pj.ByteVector(bytes(self._nbytes))
        self._vec_view: memoryview | None = None
        if fast:
            begin, _end = _vector_begin_end(self._vec)
            self._vec_view = memoryview((ctypes.c_char * self._nbytes).from_address(begin)).cast(
                "B"
            )
        self._in = bytearray(self._nbytes)
        self._in_addr = ctypes.addressof((ctypes.c_char * self._nbytes).from_buffer(self._in))
        self._in_view = memoryview(self._in)

    def create(self) -> None:
        mf = pj.MediaFormatAudio()
        # The bridge runs at 8 kHz as the lines do (EpConfig.medConfig.clockRate), so this
        # port's frames cross it without resampling.
        mf.init(
            pj.PJMEDIA_FORMAT_PCM,
            self.audio.fmt.rate,
            1,
            self.audio.fmt.frame_ms * 1000,
            BITS_PER_SAMPLE,
        )
        self.createPort(f"line{self.audio.port}", mf)

    # ---- pjmedia's clock thread ---------------------------------------------------------

    def onFrameRequested(self, frame: Any) -> None:
        audio = self.audio
        try:
            up = audio.uplink
            if up.fill >= self._flush_at:
                while up.fill > self._target:
                    up.pop_into(self._out)
                    audio.flushed_frames += 1
            frame.type = _FRAME_AUDIO
            view = self._vec_view
            if view is not None:
                up.pop_into(view)  # silence when the line has nothing (counted there)
                frame.buf = self._vec
            else:
                up.pop_into(self._out)
                frame.buf = pj.ByteVector(bytes(self._out))
            frame.size = self._nbytes
            audio.frames_to_sip += 1
        except Exception:
            audio.callback_errors += 1

    def onFrameReceived(self, frame: Any) -> None:
        # pjmedia calls this every tick, with an empty NONE frame when nothing is connected
        if frame.type != _FRAME_AUDIO:
            return
        audio = self.audio
        try:
            if self._fast:
                begin, end = _vector_begin_end(frame.buf)
                n = end - begin
                if n == self._nbytes:
                    ctypes.memmove(self._in_addr, begin, n)
                    audio.downlink.push(self._in_view)
                elif n > 0:
                    audio.downlink.push(ctypes.string_at(begin, n))
                else:
                    return
            else:
                data = bytes(frame.buf)
                if not data:
                    return
                audio.downlink.push(data)
            audio.frames_from_sip += 1
        except Exception:
            audio.callback_errors += 1
