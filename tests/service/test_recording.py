"""Call recording: the audio in the file, retention, and crash consistency with a real SIGKILL."""

from __future__ import annotations

import datetime as dt
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.audio import PcmFormat
from drivers.audio.memory import MemoryStream
from firmware.dsp.levels import peak_for_dbm0, power_dbm0
from firmware.dsp.pcm import SAMPLE_RATE
from firmware.service.media import PortMedia
from firmware.service.recording import (
    HEADER_BYTES,
    RecordedLink,
    RecordingError,
    Recordings,
    wav_header,
)
from firmware.store.db import DB_FILENAME, Database
from firmware.store.schema import RecordingConfig

FMT = PcmFormat(8000)
FRAME = FMT.bytes_per_frame
ROOT = Path(__file__).resolve().parents[2]


def tone(freq: float, dbm0: float, seconds: float) -> bytes:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    peak = peak_for_dbm0(dbm0)
    return np.rint(peak * np.sin(2 * math.pi * freq * t)).astype("<i2").tobytes()


def dominant_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(x.size)))
    return float(np.argmax(spec) * SAMPLE_RATE / x.size)


def wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def recordings(tmp_path: Path) -> Iterator[Recordings]:
    db = Database(tmp_path / DB_FILENAME)
    recs = Recordings.for_data_dir(db, tmp_path)
    recs.open(RecordingConfig())
    yield recs
    recs.close()
    db.close()


def consistent(recs: Recordings) -> None:
    """Every row has its file, of its size, and every file has its row."""
    rows = recs.index.all()
    assert all(r.state == "complete" for r in rows)
    assert sorted(p.name for p in recs.directory.iterdir()) == sorted(r.path for r in rows)
    for r in rows:
        path = recs.directory / r.path
        assert path.stat().st_size == r.size
        with wave.open(str(path)) as w:  # the standard library's reader agrees
            assert w.getnframes() * 1000 // w.getframerate() == r.duration_ms


def test_a_call_between_two_ports_is_recorded_in_stereo_at_the_right_levels(
    recordings: Recordings,
) -> None:
    streams = {1: MemoryStream(FMT), 2: MemoryStream(FMT)}
    medias = {
        p: PortMedia(p, s, detect_dtmf=False, on_digit=print, on_failure=print)
        for p, s in streams.items()
    }
    medias[1].link.join(medias[2].link)
    rec = recordings.start("101", "102", "always")
    medias[1].link = RecordedLink(medias[1].link, rec)  # type: ignore[assignment]
    streams[1].say(tone(1000, -10.0, 2.0))  # the recorded party
    streams[2].say(tone(400, -20.0, 2.0))  # the far end
    for m in medias.values():
        m.start()
    try:
        wait_for(lambda: all(s.pending == 0 for s in streams.values()))
    finally:
        for m in medias.values():
            m.stop()
    row = rec.stop()
    assert row.state == "complete" and row.channels == 2 and row.reason == "always"
    assert rec.dropped == 0
    path = recordings.directory / row.path
    # sox reads it as what it is: 2 channels, 8 kHz, 16-bit.
    info = subprocess.run(
        ["soxi", str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "Channels       : 2" in info and "Sample Rate    : 8000" in info
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    said, heard = pcm[SAMPLE_RATE // 2 : SAMPLE_RATE, 0], pcm[SAMPLE_RATE // 2 : SAMPLE_RATE, 1]
    assert dominant_hz(said) == pytest.approx(1000, abs=5)
    assert power_dbm0(said) == pytest.approx(-10.0, abs=0.3)
    assert dominant_hz(heard) == pytest.approx(400, abs=5)
    # A slip of the cross-connect could put a frame of silence in: allow 0.5 dB.
    assert power_dbm0(heard) == pytest.approx(-20.0, abs=0.5)
    assert row.duration_ms >= 1900
    consistent(recordings)
    assert isinstance(medias[1].link, RecordedLink) and medias[1].link.unwrap() is not None


def test_a_conference_is_recorded_mono_and_misuse_is_refused(recordings: Recordings) -> None:
    rec = recordings.start("800", "", "conference", channels=1)
    room = tone(700, -15.0, 1.0)
    for i in range(0, len(room), FRAME):
        rec.write(room[i : i + FRAME])
    with pytest.raises(RecordingError, match="expected 320"):
        rec.write(b"\0" * 10)
    row = rec.stop()
    assert rec.stop() == row  # idempotent
    with wave.open(str(recordings.directory / row.path)) as w:
        assert w.getnchannels() == 1
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert x.tobytes() == room
    with pytest.raises(RecordingError, match="1 or 2"):
        recordings.start("a", "b", "always", channels=3)
    chunk = recordings.read_chunk(row.id, 0, 100)
    assert chunk[:4] == b"RIFF" and len(chunk) == 100
    with pytest.raises(RecordingError, match="length must be"):
        recordings.read_chunk(row.id, 0, 0)


def test_retention_by_age_and_by_size_spares_recordings_in_progress(tmp_path: Path) -> None:
    clock = Clock()
    db = Database(tmp_path / DB_FILENAME)
    recs = Recordings(db, tmp_path / "recordings", clock=clock)
    recs.open(RecordingConfig())
    ids = []
    for day in range(5):  # one 1 s recording a day, 16 044 bytes each
        clock.now = dt.datetime(2026, 1, 1 + day, 12, tzinfo=dt.UTC)
        rec = recs.start("101", "102", "always", channels=1)
        for _ in range(50):
            rec.write(bytes(FRAME))
        ids.append(rec.stop().id)
    live = recs.start("101", "103", "always", channels=1)  # still being written
    clock.now = dt.datetime(2026, 1, 6, 11, tzinfo=dt.UTC)
    removed = recs.apply_retention(RecordingConfig(retention_days=3, max_total_mb=0))
    assert removed == ids[:2]  # 1 and 2 January are more than 3 days old
    assert [r.id for r in recs.find(limit=10)] == ids[:1:-1]
    assert recs.apply_retention(RecordingConfig(retention_days=0, max_total_mb=0)) == []
    assert recs.apply_retention(RecordingConfig(retention_days=0, max_total_mb=1)) == []
    # A cap of 40 kB: the oldest finished one goes, the two newest (32 088 bytes) stay.
    from firmware.store.recordings import select_for_removal

    chosen = select_for_removal(
        recs.index.all(), now=clock.now, retention_days=0, max_total_bytes=40_000
    )
    assert [r.id for r in chosen] == [ids[2]]
    assert live.id not in [r.id for r in chosen]
    live.stop()
    recs.close()
    # Retention at start: the next open applies it with the configuration in force.
    clock.now = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    again = Recordings(db, tmp_path / "recordings", clock=clock)
    again.open(RecordingConfig(retention_days=30))
    assert again.index.all() == []
    consistent(again)
    again.close()


def test_reconciliation_repairs_every_crash_point(recordings: Recordings) -> None:
    recs = recordings
    index, directory = recs.index, recs.directory
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def begin(caller: str) -> int:
        from firmware.store.recordings import file_name

        row = index.begin(
            started_at=now,
            caller=caller,
            callee="x",
            reason="always",
            channels=1,
            rate=8000,
            path_for=file_name,
        )
        return row.id

    # 1. killed while writing: a .part with a stale header and half a sample at the end
    a = begin("part")
    recs.part_path(a).write_bytes(wav_header(1, 8000, 0) + b"\x01\x00" * 800 + b"\x01")
    # 2. killed after the rename, before the row was completed
    b = begin("renamed")
    (directory / index.get(b).path).write_bytes(wav_header(1, 8000, 1600) + bytes(1600))
    # 3. killed before the file was created
    c = begin("nothing")
    # 4. a complete row whose file was deleted by hand
    d = begin("deleted")
    index.complete(d, duration_ms=1000, size=16044)
    # 5. files nobody indexed
    (directory / "20200101-000000-999.wav").write_bytes(wav_header(1, 8000, 0))
    (directory / ".998.wav.part").write_bytes(b"junk")
    report = recs.reconcile()
    assert report.salvaged == (a,)
    assert report.completed == (b,)
    assert set(report.dropped) == {c, d}
    assert set(report.orphans_removed) == {"20200101-000000-999.wav", ".998.wav.part"}
    salvaged = index.get(a)
    assert salvaged.salvaged and salvaged.size == HEADER_BYTES + 1600
    assert salvaged.duration_ms == 100
    consistent(recs)


CHILD = textwrap.dedent(
    """
    import sys, math
    from pathlib import Path
    import numpy as np
    from firmware.store.db import Database
    from firmware.service.recording import Recordings
    from firmware.store.schema import RecordingConfig

    data = Path(sys.argv[1])
    recs = Recordings.for_data_dir(Database(data / "ponte.db"), data)
    recs.open(RecordingConfig())
    t = np.arange(160) / 8000
    def frame(k):
        return np.rint(8000 * np.sin(2 * math.pi * 1000 * (t + k * 0.02))).astype("<i2").tobytes()
    done = recs.start("101", "102", "always")
    for k in range(100):
        done.write(frame(k), bytes(320))
    done.stop()
    rec = recs.start("101", "103", "on_demand")
    print(rec.id, flush=True)
    k = 0
    while True:
        rec.write(frame(k), frame(k))
        k += 1
        if k % 25 == 0:
            import time; time.sleep(0.01)
    """
)


@pytest.mark.parametrize("frames_before_kill", [1, 400])
def test_a_sigkilled_recorder_leaves_a_consistent_index_and_playable_files(
    tmp_path: Path, frames_before_kill: int
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        rid = int(child.stdout.readline())
        part = tmp_path / "recordings" / f".{rid}.wav.part"
        wait_for(lambda: part.exists() and part.stat().st_size >= frames_before_kill * 640)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(60)
    assert child.returncode == -signal.SIGKILL
    db = Database(tmp_path / DB_FILENAME)
    recs = Recordings.for_data_dir(db, tmp_path)
    report = recs.open(RecordingConfig())
    try:
        assert report.salvaged == (rid,)
        consistent(recs)
        first, second = recs.index.all()
        assert not first.salvaged and first.duration_ms == 2000
        assert second.salvaged and second.reason == "on_demand"
        with wave.open(str(recs.directory / second.path)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
        if pcm.shape[0] >= 800:
            assert dominant_hz(pcm[:800, 0]) == pytest.approx(1000, abs=10)
            assert np.array_equal(pcm[:, 0], pcm[:, 1])
        # A new recording after the crash gets a new id and file.
        rec = recs.start("101", "104", "always")
        rec.write(bytes(FRAME), bytes(FRAME))
        assert rec.stop().id > rid
        consistent(recs)
    finally:
        recs.close()
        db.close()


async def test_retention_runs_again_on_its_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from firmware.service import recording

    monkeypatch.setattr(recording, "RETENTION_INTERVAL_S", 0.05)
    clock = Clock()
    db = Database(tmp_path / DB_FILENAME)
    recs = Recordings(db, tmp_path / "recordings", clock=clock)
    config = RecordingConfig(retention_days=1)
    recs.open(config)
    rec = recs.start("101", "102", "always", channels=1)
    rec.write(bytes(FRAME))
    await asyncio.to_thread(rec.stop)
    recs.start_retention(lambda: config)
    with pytest.raises(RecordingError, match="already scheduled"):
        recs.start_retention(lambda: config)
    clock.now += dt.timedelta(days=2)  # a day passes: the next run removes it
    async with asyncio.timeout(60):
        while recs.index.all():
            await asyncio.sleep(0.02)
    await recs.stop_retention()
    consistent(recs)
    recs.close()
    db.close()
