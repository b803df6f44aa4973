"""Audio between two ports of the same card: what one hears, the other plays next frame.

Why no drift buffer: every port's media loop is driven by the same card PCM clock (one
frame in, one frame out, per 20 ms tick of that clock), so two connected ports produce
and consume frames at exactly the same long-term rate; nothing can pile up or run dry
over time.  What remains is the phase between the two loop threads: in one tick, port A's
thread may run before or after port B's.  A hand-off queue of a few frames absorbs that
(``JITTER_FRAMES``, primed with ``PREFILL_FRAMES``); its over- and underruns are counted
and, with one clock, stay at the handful a thread-scheduling hiccup costs.  Calls to a
SIP leg (pjmedia's clock) are a different matter: they need the bridge's drift buffer.

Thread-safety: ``heard`` and ``next_frame`` run on the two media threads;
``join``/``split``/``send_pcm`` on the event loop.  ``collections.deque`` appends and
pops are atomic in CPython, and the peer is a single reference swap.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Final

JITTER_FRAMES: Final = 5  # 100 ms cap; the level stays at PREFILL_FRAMES on one clock
# Two frames (40 ms) in hand.  One was not enough: an FXO loop also runs the caller-ID and
# call-progress detectors, and under the GIL its thread wakes up to a frame late; measured
# on the simulator, an FXS-FXO call slipped about once a second with one frame primed and
# not once in 10 s with two.
PREFILL_FRAMES: Final = 2
MAX_SEND_FRAMES: Final = 500  # 10 s of queued PCM (a dialled number is well under 5 s)


class CrossConnectError(Exception):
    """We broke it: bad PCM handed over, or a port joined to itself."""


class CrossConnect:
    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes <= 0 or frame_bytes % 2:
            raise CrossConnectError(f"frame of {frame_bytes} bytes is not 16-bit PCM")
        self.frame_bytes = frame_bytes
        self._peer: CrossConnect | None = None
        self._inbox: deque[bytes] = deque(maxlen=JITTER_FRAMES)
        self._send: deque[bytes] = deque()
        self.frames_passed = 0
        self.overruns = 0
        self.underruns = 0
        # While set, the peer hears silence instead of this port (an in-call code is being
        # dialled: firmware.pbx.recording).  Plain attributes: the event loop sets them, the
        # media thread reads them.  ``hush_digits``: digits whose detection on this port
        # hushes it at once, on the media thread (``hush``), before the event loop hears of
        # them: a code's first digit must not reach the peer while that news travels.
        self.hushed = False
        self.hush_digits = ""
        # Set by the media thread from a hushed digit's start to its end: the code's last
        # digit completes it while its tone still sounds, and the event loop unhushing the
        # port then must not let the rest of that tone (a detectable DTMF digit) through.
        self.digit_hush = False
        self._hush = bytes(frame_bytes)
        self._scrub = 0  # frames of the peer's voice in our inbox to play as silence

    @property
    def peer(self) -> CrossConnect | None:
        return self._peer

    def join(self, other: CrossConnect) -> None:
        if other is self:
            raise CrossConnectError("a port cannot be connected to itself")
        if other.frame_bytes != self.frame_bytes:
            raise CrossConnectError(
                f"frame sizes differ: {self.frame_bytes} and {other.frame_bytes} bytes"
            )
        # Silence in hand: whichever thread runs first in a tick, and even one running a
        # frame late, the other side's earlier frame is there to play.
        for side in (self, other):
            side._inbox.clear()
            side._inbox.extend([bytes(self.frame_bytes)] * PREFILL_FRAMES)
        self._peer, other._peer = other, self
        for side in (self, other):
            side.frames_passed = side.underruns = side.overruns = side._scrub = 0
            side.hushed = False
            side.hush_digits = ""
            side.digit_hush = False

    def hush(self) -> None:
        """Hush this port from now on, including what the peer has not played yet (the
        frames in its hand-off queue: the digit's start, heard before it was detected)."""
        self.hushed = True
        peer = self._peer
        if peer is not None:
            peer._scrub = len(peer._inbox)

    def split(self) -> None:
        peer, self._peer = self._peer, None
        if peer is not None and peer._peer is self:
            peer._peer = None
        self._inbox.clear()

    def send_pcm(self, pcm: bytes) -> int:
        """Queue ``pcm`` (16-bit LE) to play before anything the peer says; frames queued."""
        if len(pcm) % 2:
            raise CrossConnectError(f"PCM of {len(pcm)} bytes is not whole 16-bit samples")
        frames = [
            pcm[i : i + self.frame_bytes].ljust(self.frame_bytes, b"\0")
            for i in range(0, len(pcm), self.frame_bytes)
        ]
        if len(self._send) + len(frames) > MAX_SEND_FRAMES:
            raise CrossConnectError(
                f"{len(frames)} frames would overfill the send queue ({MAX_SEND_FRAMES})"
            )
        self._send.extend(frames)
        return len(frames)

    @property
    def sending(self) -> bool:
        return bool(self._send)

    # --- media threads ---------------------------------------------------------------

    def heard(self, frame: bytes) -> None:
        """This port's line produced ``frame``: the peer plays it."""
        peer = self._peer
        if peer is None:
            return
        inbox = peer._inbox
        if len(inbox) == inbox.maxlen:
            peer.overruns += 1  # the deque drops the oldest frame itself
        inbox.append(self._hush if self.hushed or self.digit_hush else frame)

    def next_frame(self) -> bytes | None:
        """What this port plays now; None: nothing (the loop plays silence)."""
        if self._send:
            try:
                frame = self._send.popleft()
            except IndexError:
                pass
            else:
                # The peer's voice is not played while dialling; keep its level steady.
                with contextlib.suppress(IndexError):
                    self._inbox.popleft()
                return frame
        if self._peer is None:
            return None
        try:
            frame = self._inbox.popleft()
        except IndexError:
            self.underruns += 1
            return None
        self.frames_passed += 1
        if self._scrub > 0:
            self._scrub -= 1
            return self._hush
        return frame
