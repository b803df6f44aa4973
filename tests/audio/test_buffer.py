"""DriftBuffer: bounded, drift-correcting, loses nothing it does not count."""

from __future__ import annotations

import array
import itertools
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.audio import AudioFormatError, DriftBuffer, PcmFormat

F8 = PcmFormat(8000, 20)
F16 = PcmFormat(16000, 20)


def ramp(start: int, count: int) -> bytes:
    """Samples numbered start, start+1, ... (mod 2**16) so that every sample is traceable."""
    return array.array("H", [(start + i) & 0xFFFF for i in range(count)]).tobytes()


def samples(data: bytes) -> list[int]:
    return list(array.array("H", data))


def test_rejects_bad_sizes_and_options():
    with pytest.raises(AudioFormatError):
        DriftBuffer(F8, capacity_frames=3, target_frames=2)
    with pytest.raises(AudioFormatError):
        DriftBuffer(F8, capacity_frames=51)
    buf = DriftBuffer(F8)
    with pytest.raises(AudioFormatError, match="3 bytes"):
        buf.push(b"abc")
    with pytest.raises(AudioFormatError):
        buf.push(b"")
    with pytest.raises(AudioFormatError):
        buf.push(bytes(buf.capacity_samples * 2 + 2))
    with pytest.raises(AudioFormatError, match="320-byte"):
        buf.pop_into(bytearray(100))
    with pytest.raises(AudioFormatError):
        PcmFormat(44100)


def test_primes_then_passes_audio_through_unchanged():
    buf = DriftBuffer(F8, target_frames=2)
    n = F8.samples_per_frame
    buf.push(ramp(0, n))
    assert buf.pop() == bytes(2 * n)  # still priming: silence, not an underrun
    buf.push(ramp(n, n))
    out = [buf.pop()]
    for k in range(2, 50):
        buf.push(ramp(k * n, n))
        out.append(buf.pop())
    assert samples(b"".join(out)) == list(range(49 * n))
    st_ = buf.stats()
    assert (st_.underruns, st_.overruns, st_.slipped, st_.inserted) == (0, 0, 0, 0)


def test_overrun_drops_the_incoming_chunk_and_counts_it():
    buf = DriftBuffer(F8, capacity_frames=4, target_frames=2)
    n = F8.samples_per_frame
    for k in range(4):
        assert buf.push(ramp(k * n, n))
    assert not buf.push(ramp(4 * n, n))
    assert buf.stats().overruns == 1 and buf.stats().fill == 4 * n
    # What was in the buffer is intact (the first pop sees a full buffer and may slip one).
    got = samples(buf.pop())
    assert got[0] == 0 and got == sorted(got)


def test_discard_drops_what_is_buffered_and_primes_again():
    buf = DriftBuffer(F8, target_frames=2)
    n = F8.samples_per_frame
    for k in range(3):
        buf.push(ramp(k * n, n))
    buf.pop()  # a partial frame left behind by drift correction must go too
    buf.push(ramp(3 * n, 7))
    assert buf.discard() == 2 * n + 7
    assert buf.fill == 0 and buf.discard() == 0
    buf.push(ramp(1000, n))
    assert buf.pop() == bytes(2 * n)  # priming again: silence, nothing old
    buf.push(ramp(1000 + n, n))
    assert samples(buf.pop()) == list(range(1000, 1000 + n))


def test_underrun_gives_silence_then_reprimes():
    buf = DriftBuffer(F8, target_frames=2)
    n = F8.samples_per_frame
    buf.push(ramp(0, 2 * n))
    out = bytearray(2 * n)
    assert buf.pop_into(out)
    assert buf.pop_into(out)
    last = samples(bytes(out))[-1]
    assert not buf.pop_into(out) and out == bytes(2 * n)
    assert buf.stats().underruns == 1
    buf.push(ramp(2 * n, n))
    assert not buf.pop_into(out)  # re-priming, not another underrun
    assert buf.stats().underruns == 1
    buf.push(ramp(3 * n, n))
    # Output resumes exactly where it stopped: nothing was lost in the underrun.
    assert buf.pop_into(out) and samples(bytes(out))[0] == last + 1


def simulate(fmt: PcmFormat, ppm: float, seconds: float, jitter_ms: float = 0.0):
    """Producer on a clock ``ppm`` fast (negative: slow), consumer on the nominal clock."""
    buf = DriftBuffer(fmt, capacity_frames=8, target_frames=2)
    n = fmt.samples_per_frame
    period = fmt.frame_seconds
    p_period = period / (1 + ppm * 1e-6)
    jitter = jitter_ms / 1000.0
    # Both clocks run for the same wall time; the producer's pseudo-random jitter is +/- jitter.
    events = [
        (k * p_period + jitter * ((k * 7919) % 5 - 2) / 2, 0, k)
        for k in range(int(seconds / p_period))
    ]
    events += [(j * period + period / 3, 1, j) for j in range(int(seconds / period) - 1)]
    events.sort()
    out: list[bytes] = []
    max_fill = 0
    written = 0
    for _, kind, k in events:
        if kind == 0:
            buf.push(ramp(k * n, n))
            written += n
        else:
            max_fill = max(max_fill, buf.stats().fill)
            out.append(buf.pop())
    return buf, out, written, max_fill


# +/-2000 ppm drifts six frames a minute: uncorrected, that over- or underruns this buffer.
@pytest.mark.parametrize("ppm", [-2000.0, -300.0, 0.0, 300.0, 2000.0])
@pytest.mark.parametrize("fmt", [F8, F16], ids=["8k", "16k"])
def test_drift_is_absorbed_by_slips_and_inserts(fmt, ppm):
    seconds = 60.0
    buf, out, written, max_fill = simulate(fmt, ppm, seconds, jitter_ms=6.0)
    st_ = buf.stats()
    n = fmt.samples_per_frame
    assert st_.overruns == 0
    assert st_.underruns == 0
    # Nothing is lost that is not counted: every sample written was read, slipped or is still
    # buffered, and every sample handed out was read or inserted.
    read = written - st_.fill
    assert st_.popped * n == read - st_.slipped + st_.inserted
    # The correction matches the drift, within the fill level's wander of about a frame.
    drift = seconds * fmt.rate * ppm * 1e-6
    assert abs((st_.slipped - st_.inserted) - drift) <= 2 * n
    assert max_fill <= buf.target_samples + 3 * n
    # The audio is continuous: consecutive samples differ by 1, by 2 where one was slipped,
    # by 0 where one was repeated, and nothing else happens.
    got = [s for frame in out if any(frame) for s in samples(frame)]
    diffs = [(b - a) & 0xFFFF for a, b in itertools.pairwise(got)]
    assert set(diffs) <= {0, 1, 2}
    assert st_.slipped - 1 <= diffs.count(2) <= st_.slipped  # the last slip may be unseen
    assert diffs.count(0) == st_.inserted


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.one_of(st.integers(1, 500), st.just(0)),  # 0: pop, k: push k samples
        max_size=300,
    )
)
def test_random_push_pop_never_corrupts(ops):
    buf = DriftBuffer(F8, capacity_frames=6, target_frames=2)
    n = F8.samples_per_frame
    written = 0
    accepted = 0
    got: list[int] = []
    for op in ops:
        if op:
            before = buf.stats().fill
            if buf.push(ramp(written, op)):
                accepted += op
                written += op
            else:
                assert before + op > buf.capacity_samples
        else:
            frame = bytearray(2 * n)
            if buf.pop_into(frame):
                got += samples(bytes(frame))
            else:
                assert frame == bytes(2 * n)
        st_ = buf.stats()
        assert 0 <= st_.fill <= buf.capacity_samples
        assert st_.popped * n == accepted - st_.fill - st_.slipped + st_.inserted
    diffs = [(b - a) & 0xFFFF for a, b in itertools.pairwise(got)]
    assert set(diffs) <= {0, 1, 2}


def test_one_producer_thread_and_one_consumer_thread():
    """Real threads, no locks: the consumer never sees a torn or reordered frame."""
    buf = DriftBuffer(F8, capacity_frames=8, target_frames=2)
    n = F8.samples_per_frame
    stop = threading.Event()
    got: list[int] = []

    def produce() -> None:
        k = 0
        while not stop.is_set():
            if buf.push(ramp(k * n, n)):
                k += 1
            else:
                time.sleep(0.0005)

    def consume() -> None:
        frame = bytearray(2 * n)
        while not stop.is_set():
            if buf.pop_into(frame):
                got.extend(samples(bytes(frame)))
            else:
                time.sleep(0.0005)

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(5)
    assert len(got) > 10 * n
    diffs = [(b - a) & 0xFFFF for a, b in itertools.pairwise(got)]
    st_ = buf.stats()
    # Overruns drop whole chunks at the producer, who retries the same chunk: no gaps.
    assert set(diffs) <= {0, 1, 2}
    # (a slip in the very last frame has no following sample to show it)
    assert st_.slipped - 1 <= diffs.count(2) <= st_.slipped
    assert diffs.count(0) == st_.inserted
