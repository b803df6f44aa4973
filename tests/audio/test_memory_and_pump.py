"""In-memory backend and the line pump threads between a stream and pjmedia's buffers."""

from __future__ import annotations

import array
import itertools
import time

import pytest

from drivers.audio import (
    AudioDeviceError,
    AudioFormatError,
    LinePump,
    PcmFormat,
    open_stream,
)
from drivers.audio.memory import DeviceClock, MemoryStream

F8 = PcmFormat()


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, dt: float) -> None:
        self.slept.append(dt)
        self.now += dt


def ramp(start: int, count: int) -> bytes:
    return array.array("H", [(start + i) & 0xFFFF for i in range(count)]).tobytes()


def test_far_end_says_and_hears():
    s = MemoryStream(F8, paced=False)
    assert s.say(ramp(0, 200)) == 400
    assert s.read_frame() == ramp(0, 160)
    # The rest, padded with silence to a whole frame.
    assert s.read_frame() == ramp(160, 40) + bytes(240)
    assert s.read_frame() == bytes(320) and s.silent_reads == 1
    s.write_frame(ramp(7, 160))
    s.write_frame(ramp(9, 160))
    assert s.heard() == ramp(7, 160) + ramp(9, 160)
    assert s.heard() == b""


def test_memory_stream_caps():
    s = MemoryStream(F8, paced=False, capacity_s=1)
    assert s.say(bytes(20000)) == 16000  # one second at 8 kHz
    assert s.say(b"\x00\x00") == 0
    with pytest.raises(AudioFormatError):
        s.say(b"\x00")
    for _ in range(60):
        s.write_frame(bytes(320))
    assert len(s.heard()) == 50 * 320 and s.heard_dropped == 10
    with pytest.raises(AudioFormatError):
        s.write_frame(bytes(319))
    s.close()
    with pytest.raises(AudioDeviceError):
        s.read_frame()


@pytest.mark.parametrize("ppm", [-500.0, 0.0, 500.0])
def test_device_clock_paces_frames_at_its_own_rate(ppm):
    t = FakeTime()
    clock = DeviceClock(0.02, ppm=ppm, clock=t.clock, sleep=t.sleep)
    start = t.now
    for _ in range(1000):
        clock.wait_next()
    assert t.now - start == pytest.approx(20.0 / (1 + ppm * 1e-6), abs=1e-9)


def test_device_clock_resyncs_instead_of_bursting_after_a_stall():
    t = FakeTime()
    clock = DeviceClock(0.02, clock=t.clock, sleep=t.sleep)
    clock.wait_next()
    t.now += 5.0  # the thread was descheduled for 5 s
    clock.wait_next()
    assert clock.resyncs == 1
    before = t.now
    clock.wait_next()
    assert t.now - before == pytest.approx(0.02)


def test_open_stream_builds_a_memory_stream():
    s = open_stream("memory", PcmFormat(16000), paced=False)
    assert isinstance(s, MemoryStream) and s.fmt.bytes_per_frame == 640


def test_pump_carries_both_directions_on_a_real_clock():
    """Two real threads paced by the memory device's 20 ms clock, until ten frames each way."""
    stream = MemoryStream(F8, paced=True)
    n = F8.samples_per_frame
    wait_s = 30.0  # a loaded 2-core machine may starve the pump's threads for a while
    stream.say(ramp(0, int(wait_s / 0.02 + 100) * n))  # the line talks for longer than that
    pump = LinePump(stream, name="t1")
    pump.start()
    got = bytearray()
    line = bytearray()
    frame = bytearray(2 * n)
    k = 0
    deadline = time.monotonic() + wait_s

    def on_line() -> list[int]:
        return [s for s in array.array("H", bytes(line)) if s]

    # This thread plays pjmedia: one frame each way per 20 ms.
    while time.monotonic() < deadline and (len(got) < 20 * n or len(on_line()) < 10 * n):
        pump.downlink.push(ramp(1000 + k * n, n))
        if pump.uplink.pop_into(frame):
            got += frame
        line += stream.heard()
        k += 1
        time.sleep(0.02)
    pump.stop()
    assert not pump.running and pump.error is None
    # Uplink: what the line said arrives in order, nothing invented.
    up = list(array.array("H", bytes(got)))
    assert len(up) >= 10 * n
    assert up[0] == 0
    assert {(b - a) & 0xFFFF for a, b in itertools.pairwise(up)} <= {0, 1, 2}
    # Downlink: what pjmedia pushed reaches the line in order, after the priming silence.
    line += stream.heard()
    played = on_line()
    assert len(played) >= 10 * n and played[0] == 1000
    assert {(b - a) & 0xFFFF for a, b in itertools.pairwise(played)} <= {0, 1, 2}


def test_pump_records_a_device_failure():
    stream = MemoryStream(F8, paced=False)
    pump = LinePump(stream, name="t2")
    stream.close()  # the device goes away under the pump
    pump.start()
    pump.stop()
    assert isinstance(pump.error, AudioDeviceError)
    with pytest.raises(RuntimeError):
        pump.start()
