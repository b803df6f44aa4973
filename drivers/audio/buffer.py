"""A bounded, lock-free ring buffer that absorbs clock drift between two audio clocks.

One of these sits between a line's audio clock (the line card's PCM, paced by ALSA) and
pjmedia's clock for each direction of each line.  The two clocks come from different crystals
and drift apart by up to a few hundred ppm; without correction the buffer would slowly fill up
(added delay, then overruns) or drain (underruns, clicks).  The consumer corrects the drift a
sample at a time: when the fill level stays above its target it drops one sample from a frame
(*slip*), when it stays below it repeats one (*insert*).  One sample per 20 ms frame is
inaudible in speech and corrects up to 1/160 = 6250 ppm at 8 kHz, far beyond crystal drift.

Threading contract (pjmedia's clock thread is one side, so this matters):

- single producer, single consumer: exactly one thread calls :meth:`push`, exactly one
  (possibly other) thread calls :meth:`pop_into`/:meth:`pop`.  Any thread may call
  :meth:`stats`; its figures may be a frame stale.
- neither side ever blocks or takes a lock.  The producer only writes the write counter and its
  own statistics, the consumer only the read counter and its own; each publishes its counter
  with one attribute store after the samples are in place.  Under CPython's GIL an attribute
  store is atomic and ordered after the preceding buffer copy, which is all SPSC needs.
- no allocation on the hot path beyond small memoryview slices: storage, scratch space and the
  silence frame are allocated once.  :meth:`pop` allocates one ``bytes`` per frame;
  :meth:`pop_into` none.
- :meth:`reset` only while neither side runs.

Overflow drops the *incoming* chunk (the producer may not move the consumer's counter);
underflow returns silence and re-primes: output resumes once ``target_frames`` are buffered
again, so a starved stream stutters once instead of on every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.audio.errors import AudioFormatError
from drivers.audio.format import SAMPLE_BYTES, PcmFormat

MAX_CAPACITY_FRAMES = 50  # 1 s at 20 ms: more is latency no conversation survives
AVERAGE_WEIGHT = 16  # fill level is averaged over ~16 frames, smoothing scheduling jitter


@dataclass(frozen=True, slots=True)
class BufferStats:
    pushed: int  # chunks accepted
    popped: int  # frames handed out with audio
    overruns: int  # chunks dropped because the buffer was full
    underruns: int  # frames of silence handed out because the buffer ran dry
    slipped: int  # samples dropped to catch up with a faster producer
    inserted: int  # samples repeated to wait for a slower producer
    fill: int  # samples buffered now


class DriftBuffer:
    """Bounded SPSC sample ring with drift correction; see the module doc for threading."""

    def __init__(self, fmt: PcmFormat, *, capacity_frames: int = 8, target_frames: int = 2):
        if not 1 <= target_frames:
            raise AudioFormatError(f"target_frames must be >= 1, got {target_frames}")
        if not target_frames + 2 <= capacity_frames <= MAX_CAPACITY_FRAMES:
            raise AudioFormatError(
                f"capacity_frames must be target_frames + 2 .. {MAX_CAPACITY_FRAMES}, "
                f"got {capacity_frames} (target {target_frames})"
            )
        self.fmt = fmt
        n = fmt.samples_per_frame
        self._n = n
        self._cap = capacity_frames * n  # samples
        self._buf = bytearray(self._cap * SAMPLE_BYTES)
        self._mv = memoryview(self._buf)
        self._scratch = memoryview(bytearray((n + 1) * SAMPLE_BYTES))
        self._silence = bytes(n * SAMPLE_BYTES)
        self._target = target_frames * n
        # Fill is measured just before a pop.  Priming starts output at the target, so without
        # drift the average sits at or a little above it; scheduling jitter moves single
        # measurements by up to a frame either way.  Correcting below the target keeps a
        # frame of margin against underruns; above target + 1 frame, against added delay.
        self._high = self._target + n
        self._low = self._target
        self._w = 0  # samples ever written (producer-owned)
        self._r = 0  # samples ever read (consumer-owned)
        # producer-owned
        self._pushed = 0
        self._overruns = 0
        # consumer-owned
        self._popped = 0
        self._underruns = 0
        self._slipped = 0
        self._inserted = 0
        self._primed = False
        self._avg = float(self._target)

    @property
    def capacity_samples(self) -> int:
        return self._cap

    @property
    def target_samples(self) -> int:
        return self._target

    @property
    def fill(self) -> int:
        """Samples buffered now, without building a stats object (for per-frame callers)."""
        return self._w - self._r

    def stats(self) -> BufferStats:
        return BufferStats(
            pushed=self._pushed,
            popped=self._popped,
            overruns=self._overruns,
            underruns=self._underruns,
            slipped=self._slipped,
            inserted=self._inserted,
            fill=self._w - self._r,
        )

    def reset(self) -> None:
        """Forget the audio and the statistics.  Only while neither side is running."""
        self._w = self._r = 0
        self._pushed = self._overruns = 0
        self._popped = self._underruns = self._slipped = self._inserted = 0
        self._primed = False
        self._avg = float(self._target)

    # --- producer side ----------------------------------------------------------------------

    def push(self, data: bytes | bytearray | memoryview) -> bool:
        """Append samples (any whole number of them, up to the capacity).

        Returns False, and counts an overrun, if they do not fit; nothing is written then.
        """
        src = memoryview(data).cast("B")
        nbytes = src.nbytes
        if nbytes == 0 or nbytes % SAMPLE_BYTES or nbytes > self._cap * SAMPLE_BYTES:
            raise AudioFormatError(
                f"push needs 1..{self._cap} whole 16-bit samples, got {nbytes} bytes"
            )
        k = nbytes // SAMPLE_BYTES
        w = self._w
        if k > self._cap - (w - self._r):
            self._overruns += 1
            return False
        pos = w % self._cap
        first = min(k, self._cap - pos)
        self._mv[pos * SAMPLE_BYTES : (pos + first) * SAMPLE_BYTES] = src[: first * SAMPLE_BYTES]
        if first < k:
            self._mv[: (k - first) * SAMPLE_BYTES] = src[first * SAMPLE_BYTES :]
        self._w = w + k  # publish: the samples are in place
        self._pushed += 1
        return True

    # --- consumer side ----------------------------------------------------------------------

    def discard(self) -> int:
        """Drop every sample buffered now (a new listener must not hear an earlier one's
        audio); the producer may go on pushing meanwhile.  Returns how many were dropped."""
        dropped = self._w - self._r
        self._r += dropped  # publish: the space is free
        self._primed = False
        return dropped

    def pop(self) -> bytes:
        """One frame: audio if available, else silence.  Allocates the returned bytes."""
        out = bytearray(self._n * SAMPLE_BYTES)
        self.pop_into(out)
        return bytes(out)

    def pop_into(self, out: bytearray | memoryview) -> bool:
        """Fill ``out`` (exactly one frame) with audio; True, or silence and False."""
        dst = memoryview(out).cast("B")
        n = self._n
        if dst.nbytes != n * SAMPLE_BYTES:
            raise AudioFormatError(
                f"pop_into needs a {n * SAMPLE_BYTES}-byte frame, got {dst.nbytes}"
            )
        r = self._r
        fill = self._w - r
        if not self._primed:
            if fill < self._target:
                dst[:] = self._silence
                return False
            self._primed = True
            self._avg = float(fill)
        if fill < n:
            self._underruns += 1
            self._primed = False
            dst[:] = self._silence
            return False
        self._avg += (fill - self._avg) / AVERAGE_WEIGHT
        if self._avg > self._high and fill > n:
            # Slip: read n + 1 samples, hand out the first n.
            self._copy_out(r, n + 1, self._scratch)
            dst[:] = self._scratch[: n * SAMPLE_BYTES]
            self._slipped += 1
            self._avg -= 1.0
            r += n + 1
        elif self._avg < self._low:
            # Insert: read n - 1 samples, repeat the last one.
            self._copy_out(r, n - 1, dst)
            last = (n - 2) * SAMPLE_BYTES
            dst[last + SAMPLE_BYTES : last + 2 * SAMPLE_BYTES] = dst[last : last + SAMPLE_BYTES]
            self._inserted += 1
            self._avg += 1.0
            r += n - 1
        else:
            self._copy_out(r, n, dst)
            r += n
        self._r = r  # publish: the samples are consumed
        self._popped += 1
        return True

    def _copy_out(self, r: int, k: int, dst: memoryview) -> None:
        pos = r % self._cap
        first = min(k, self._cap - pos)
        dst[: first * SAMPLE_BYTES] = self._mv[pos * SAMPLE_BYTES : (pos + first) * SAMPLE_BYTES]
        if first < k:
            dst[first * SAMPLE_BYTES : k * SAMPLE_BYTES] = self._mv[: (k - first) * SAMPLE_BYTES]
