"""PortMedia's on-hook transmissions: whole, once, ahead of tones, and no delay left behind."""

from __future__ import annotations

import threading

import numpy as np

from drivers.audio.base import PcmStream
from drivers.audio.errors import AudioDeviceError
from drivers.audio.format import PcmFormat
from firmware.dsp.tones import ToneSpec
from firmware.service.media import ON_HOOK_CUSHION_FRAMES, PortMedia

FMT = PcmFormat(8000, 20)
TIMEOUT_S = 10


class CardClock(PcmStream):
    """A line whose clock the test turns: each :meth:`tick` lets the loop read one frame.

    Every frame written is kept with the number of frames read before it, so the test sees
    how far ahead of the card's clock the port wrote.
    """

    def __init__(self) -> None:
        super().__init__(FMT)
        self._ticks = threading.Semaphore(0)
        self.reads = 0
        self.ticked = 0
        self.written: list[tuple[int, np.ndarray]] = []
        self.closed = False

    def tick(self, n: int = 1) -> None:
        self.ticked += n
        for _ in range(n):
            self._ticks.release()

    def read_frame(self) -> bytes:
        while not self._ticks.acquire(timeout=0.05):
            if self.closed:
                raise AudioDeviceError("closed")
        if self.closed:
            raise AudioDeviceError("closed")
        self.reads += 1
        return bytes(FMT.bytes_per_frame)

    def write_frame(self, frame: bytes | bytearray | memoryview) -> None:
        self.written.append((self.reads, np.frombuffer(bytes(frame), "<i2")))

    def close(self) -> None:
        self.closed = True


def port(stream: CardClock) -> PortMedia:
    return PortMedia(
        1,
        stream,
        detect_dtmf=False,
        on_digit=lambda _p, _d: None,
        on_failure=lambda _p, e: (_ for _ in ()).throw(AssertionError(e)),
    )


def run_until(stream: CardClock, reads: int) -> None:
    """Let the card's clock run to ``reads`` periods in all, and the loop answer them."""
    stream.tick(reads - stream.ticked)
    for _ in range(TIMEOUT_S * 100):
        if stream.reads >= reads and (not stream.written or stream.written[-1][0] >= reads):
            break
        threading.Event().wait(0.01)


def test_the_pcm_goes_out_whole_once_and_the_cushion_is_taken_back() -> None:
    stream = CardClock()
    media = port(stream)
    pcm = (np.arange(8 * 160 + 40) % 300 + 100).astype(np.int16)  # 8.25 frames
    frames_out = 9  # the last one padded
    assert frames_out > 1 + ON_HOOK_CUSHION_FRAMES  # the whole cushion is written ahead
    done: list[int] = []
    media.play(ToneSpec.parse("425", -10.0))  # a tone it must not mix in
    media.send_on_hook(pcm, done.append)
    media.start()
    try:
        run_until(stream, 20)
    finally:
        media.stop()
    frames = [f for _, f in stream.written]
    out = np.concatenate(frames)
    assert np.array_equal(out[: len(pcm)], pcm)
    assert not out[len(pcm) : 9 * 160].any()  # the last frame is padded with silence
    assert done == [1]
    # The first period wrote the cushion ahead; the periods at the end wrote nothing.
    per_read = [sum(1 for r, _ in stream.written if r == n) for n in range(1, 21)]
    assert per_read[0] == 1 + ON_HOOK_CUSHION_FRAMES
    taken_back = per_read[frames_out - ON_HOOK_CUSHION_FRAMES : frames_out]
    assert taken_back == [0] * ON_HOOK_CUSHION_FRAMES, per_read
    assert sum(per_read) == 20  # one frame a period overall: no delay left behind
    assert np.abs(frames[-1]).max() > 1000  # then the tone again


def test_a_stop_takes_the_cushion_back_and_reports_nothing() -> None:
    stream = CardClock()
    media = port(stream)
    done: list[int] = []
    media.send_on_hook(np.full(50 * 160, 1000, dtype=np.int16), done.append)
    media.start()
    try:
        run_until(stream, 5)
        was_sending = media.sending_on_hook
        media.stop_on_hook()
        run_until(stream, 20)
    finally:
        media.stop()
    assert was_sending and not media.sending_on_hook and done == []
    assert len(stream.written) == 20  # as many frames as periods: the cushion is gone
    assert not np.concatenate([f for r, f in stream.written if r > 5 + 1]).any()
