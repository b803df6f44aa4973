"""Conference and recording figures: CPU per 20 ms frame of a 3-way call, of an 8-party room,
and what a recording costs a media thread and the writer thread per frame."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from firmware.dsp.mixer import Mixer
from firmware.service.conference import Conference
from firmware.service.recording import Recordings
from firmware.store.db import DB_FILENAME, Database
from firmware.store.schema import RecordingConfig

ROUNDS = 5_000  # 100 s of audio
FRAME_MS = 20.0


def _talk(n: int) -> list[bytes]:
    rng = np.random.default_rng(1)
    return [rng.integers(-4000, 4000, 160, dtype="<i2").tobytes() for _ in range(n)]


def _core_us(n: int) -> float:
    """Mixer.mix alone (pushes included), per round."""
    mixer = Mixer(cues=False)
    frames = [np.frombuffer(f, dtype="<i2").astype(np.int16) for f in _talk(n)]
    for pid in range(n):
        mixer.join(pid)
    started = time.process_time()
    for _ in range(ROUNDS):
        for pid in range(n):
            mixer.push(pid, frames[pid])
        mixer.mix()
    return (time.process_time() - started) / ROUNDS * 1e6


def _seats_us(n: int) -> float:
    """The whole per-frame path the media threads run: heard + next_frame for every seat."""
    conference = Conference(320, cues=False)
    seats = [conference.seat(pid) for pid in range(n)]
    frames = _talk(n)
    started = time.process_time()
    for _ in range(ROUNDS):
        for seat, frame in zip(seats, frames, strict=True):
            seat.heard(frame)
            seat.next_frame()
    return (time.process_time() - started) / ROUNDS * 1e6


def _recording_us() -> tuple[float, float, int]:
    """(media thread's write per frame, writer thread's CPU per frame, bytes a minute)."""
    root = Path(tempfile.mkdtemp(prefix="bench-rec-"))
    try:
        db = Database(root / DB_FILENAME)
        recs = Recordings.for_data_dir(db, root)
        recs.open(RecordingConfig())
        frames = _talk(2)
        rec = recs.start("101", "102", "always")
        writer = next(t for t in threading.enumerate() if t.name == "recorder")
        assert writer.ident is not None
        clock = time.pthread_getcpuclockid(writer.ident)
        writer_before = time.clock_gettime(clock)
        write = 0.0
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            rec.write(frames[0], frames[1])
            write += time.perf_counter() - t0
            if rec.dropped:
                break
            # The media threads produce 50 frames/s; here a burst, throttled to the queue.
            while recs.queued > 400:
                time.sleep(0.001)
        row = rec.stop()
        writer_cpu = time.clock_gettime(clock) - writer_before
        recs.close()
        db.close()
        per_minute = row.size * 60_000 // max(row.duration_ms, 1)
        return write / ROUNDS * 1e6, writer_cpu / ROUNDS * 1e6, per_minute
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    for n, what in ((3, "three-way call"), (8, "8-party room")):
        core, seats = _core_us(n), _seats_us(n)
        print(
            f"   {what:<15} mix {core:7.1f} us/frame   seats (heard+next_frame x{n}) "
            f"{seats:7.1f} us/frame   {seats / (FRAME_MS * 1000) * 100:5.2f} % of one core"
        )
    write_us, writer_us, per_minute = _recording_us()
    print(
        f"   recording       write() on the media thread {write_us:5.1f} us/frame, "
        f"writer thread {writer_us:5.1f} us/frame, "
        f"{per_minute / 1e6:.2f} MB a minute (stereo 8 kHz 16-bit)"
    )
    print(f"   ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; process CPU time, not wall clock)")
