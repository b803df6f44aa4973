"""The voicemail store on its own: recording, quota, cap, greetings, PINs, recovery, MWI."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware.dsp.wavio import read_wav
from firmware.store.schema import VoicemailConfig
from firmware.store.voicemail import (
    GREETING_FILENAME,
    JOURNAL_SUFFIX,
    BadName,
    MailboxFull,
    MwiChanged,
    RecordingSink,
    StorageFull,
    UnknownMessage,
    VoicemailError,
    VoicemailStore,
    journal_header,
    seal_file,
)

FRAME = np.full(160, 1234, np.int16).tobytes()


def open_store(path: Path, **kw: Any) -> VoicemailStore:
    return VoicemailStore.open(path, VoicemailConfig(**kw))


def record(store: VoicemailStore, box: str = "101", frames: int = 10) -> str:
    rec = store.begin_message(box, "555", "Bob")
    for _ in range(frames):
        rec.append(FRAME)
    info = rec.finish()
    assert info is not None
    return info.id


def test_message_round_trip_every_format(tmp_path: Path) -> None:
    for fmt, size in (("alaw", 1), ("ulaw", 1), ("pcm16", 2)):
        with open_store(tmp_path / fmt, format=fmt) as store:
            mid = record(store, frames=50)
            info = store.message("101", mid)
            assert info.duration_ms == 1000 and info.encoding == fmt
            assert info.state == "new" and info.caller_name == "Bob"
            path = store.path_of("101", mid)
            assert info.size == path.stat().st_size
            audio = read_wav(path.read_bytes())
            assert audio.encoding == fmt and audio.pcm.size == 8000
            assert abs(int(audio.pcm[100]) - 1234) < 40  # G.711 step at this level
            assert path.stat().st_size - 8000 * size < 300  # header + metadata stay small


def test_caller_text_is_cleaned_and_bounded(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        rec = store.begin_message("101", "1\n2" * 40, "A\x00B" + "x" * 200)
        rec.append(FRAME)
        info = rec.finish()
        assert info is not None
        assert info.caller_name.startswith("AB") and len(info.caller_name) == 64
        assert "\n" not in info.caller_number and len(info.caller_number) == 32


def test_quota_counts_recordings_in_progress(tmp_path: Path) -> None:
    with open_store(tmp_path, max_messages=3) as store:
        record(store)
        a = store.begin_message("101")
        b = store.begin_message("101")
        with pytest.raises(MailboxFull, match="101 holds 3"):
            store.begin_message("101")
        record(store, box="102")  # another box is not affected
        b.abandon()
        c = store.begin_message("101")  # the abandoned one freed its place
        for r in (a, c):
            r.append(FRAME)
            r.finish()
        with pytest.raises(MailboxFull):
            store.begin_message("101")
        store.delete("101", store.messages("101")[0].id)
        store.begin_message("101").abandon()


def test_length_cap(tmp_path: Path) -> None:
    with open_store(tmp_path, max_message_s=5) as store:
        rec = store.begin_message("101")
        results = [rec.append(FRAME) for _ in range(260)]
        assert results.count(True) == 249 and not results[249]  # the 250th frame fills it
        assert rec.cap_reached and rec.seconds == 5.0
        info = rec.finish()
        assert info is not None and info.duration_ms == 5000
        with pytest.raises(VoicemailError):
            rec.append(FRAME)
        with pytest.raises(VoicemailError):
            rec.finish()


def test_odd_pcm_and_empty_messages(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        rec = store.begin_message("101")
        with pytest.raises(VoicemailError, match="whole 16-bit"):
            rec.append(b"\x00")
        assert rec.finish() is None  # nothing recorded, nothing kept
        assert store.messages("101") == []
        assert not list(store.box_dir("101").iterdir())


def test_bad_names_are_refused(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        for box in ("../etc", "", "12345678901", "1a", "/1"):
            with pytest.raises(BadName):
                store.begin_message(box)
        for mid in ("../../x", "20261125-204412-XYZ", ""):
            with pytest.raises(BadName):
                store.path_of("101", mid)
        with pytest.raises(UnknownMessage):
            store.message("101", "20261125-204412-00000000")
        with pytest.raises(UnknownMessage):
            store.delete("101", "20261125-204412-00000000")


def test_storage_full_is_refused_before_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(tmp_path) as store:
        real = shutil.disk_usage

        def nearly_full(path: Any) -> Any:
            u = real(path)
            return type(u)(u.total, u.total - 1000, 1000)

        monkeypatch.setattr(shutil, "disk_usage", nearly_full)
        with pytest.raises(StorageFull, match="KiB free"):
            store.begin_message("101")
        monkeypatch.undo()
        record(store)  # and the refused one did not count against the quota


def test_states_and_mwi_events(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        events: list[MwiChanged] = []
        store.subscribe(events.append)
        a = record(store)
        b = record(store)
        store.mark_saved("101", a)
        store.mark_saved("101", a)  # no change in count: no event
        store.mark_new("101", a)
        store.delete("101", b)
        store.delete("101", a)
        assert [(e.extension, e.new_count) for e in events] == [
            ("101", 1), ("101", 2), ("101", 1), ("101", 2), ("101", 1), ("101", 0),
        ]  # fmt: skip
        assert not events[-1].waiting and events[0].waiting
        assert store.messages("101", ("deleted",))[0].state == "deleted"
        assert store.mwi_state() == {}


def test_mwi_subscriber_failure_does_not_break_the_store(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        seen: list[MwiChanged] = []

        def broken(e: MwiChanged) -> None:
            raise RuntimeError("lamp driver crashed")

        store.subscribe(broken)
        store.subscribe(seen.append)
        record(store)
        assert seen == [MwiChanged("101", 1)]


def test_greeting_record_replace_abandon(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        assert store.greeting_path("101") is None
        rec = store.begin_greeting("101")
        for _ in range(50):
            rec.append(FRAME)
        assert rec.finish() is None
        path = store.greeting_path("101")
        assert path is not None and read_wav(path.read_bytes()).seconds == 1.0
        rec = store.begin_greeting("101")
        rec.append(FRAME)
        rec.abandon()  # hung up: the old greeting stays
        assert read_wav(path.read_bytes()).seconds == 1.0
        rec = store.begin_greeting("101")
        for _ in range(25):
            rec.append(FRAME)
        rec.finish()
        assert read_wav(path.read_bytes()).seconds == 0.5
        assert store.messages("101") == []  # a greeting is not a message
        assert store.delete_greeting("101") and store.greeting_path("101") is None
        assert not store.delete_greeting("101")


def test_the_busy_greeting_is_its_own_file_and_survives_recovery(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        rec = store.begin_greeting("101", kind="busy")
        for _ in range(25):
            rec.append(FRAME)
        assert rec.finish() is None
        busy = store.greeting_path("101", "busy")
        assert busy is not None and busy.name == "busy-greeting.wav"
        assert store.greeting_path("101") is None  # the unavailable one is another file
        assert read_wav(busy.read_bytes()).seconds == 0.5
    with open_store(tmp_path) as store:  # reopening recovers: a greeting is no orphan
        assert store.greeting_path("101", "busy") == busy
        assert store.delete_greeting("101", "busy") and store.greeting_path("101", "busy") is None


def test_pin_lockout_is_persisted_and_bounded(tmp_path: Path) -> None:
    with open_store(tmp_path, pin_attempts=3, lockout_s=600) as store:
        assert store.check_pin("101", "1111", "2468", 0).attempts_left == 2
        assert store.check_pin("101", "1111", "2468", 1).outcome == "wrong"
        assert store.check_pin("101", "2468", "2468", 2).ok  # success resets the count
        for t in range(3):
            last = store.check_pin("101", "0000", "2468", 10 + t)
        assert last.outcome == "locked" and last.locked_until == 612
    with open_store(tmp_path, pin_attempts=3, lockout_s=600) as store:
        assert store.check_pin("101", "2468", "2468", 611).outcome == "locked"
        assert store.check_pin("102", "1357", "1357", 611).ok  # other boxes unaffected
        assert store.check_pin("101", "2468", "2468", 613).ok
        assert store.check_pin("103", "", "", 0).outcome == "wrong"  # no PIN: never matches
        assert store.check_pin("103", "\udcff", "1234", 1).outcome == "wrong"


def test_sink_on_a_media_thread(tmp_path: Path) -> None:
    with open_store(tmp_path, max_message_s=5) as store:
        ended: list[str] = []
        done = threading.Event()

        def on_end(reason: str) -> None:
            ended.append(reason)
            done.set()

        sink = RecordingSink(store.begin_message("101", "777"), on_end)

        def speak() -> None:
            for _ in range(400):
                sink.heard(FRAME)

        media = threading.Thread(target=speak)
        media.start()
        media.join()
        assert done.wait(60)
        info = sink.stop(keep=True)
        assert ended == ["cap"] and info is not None and info.duration_ms == 5000
        with pytest.raises(VoicemailError):
            sink.stop()
        sink = RecordingSink(store.begin_message("101"), max_frames=4)
        sink.heard(FRAME)
        assert sink.stop(keep=False) is None
        assert len(store.messages("101")) == 1


def test_sink_counts_frames_a_slow_writer_drops(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        rec = store.begin_message("101")
        gate = threading.Event()
        real_append = rec.append

        def slow(pcm: bytes, now: float | None = None) -> bool:
            gate.wait(60)
            return real_append(pcm, now)

        rec.append = slow  # type: ignore[method-assign]
        sink = RecordingSink(rec, max_frames=4)
        for _ in range(20):
            sink.heard(FRAME)
        assert sink.dropped >= 20 - 4 - 1
        gate.set()
        info = sink.stop()
        assert info is not None and info.duration_ms == (20 - sink.dropped) * 20


# --- recovery ------------------------------------------------------------------------------


def test_recovery_finishes_a_journal_and_skips_a_live_one(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    live = store.begin_message("101")
    live.append(FRAME * 5)
    # A second process opening the store while this one records must not take it.
    with open_store(tmp_path) as other:
        assert other.messages("101") == []
        assert live.path.exists()
    live.append(FRAME * 5)
    info = live.finish()
    assert info is not None and info.duration_ms == 200
    store.close()


def test_recovery_of_every_leftover(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        keep = record(store)
        gone = record(store)
        deleted = record(store)
        box = store.box_dir("101")
        # A journal torn in the middle of a frame, a journal with a torn header, a greeting
        # journal, a finished file without a row, a row without a file, a file of a
        # deleted row.
        header = journal_header("alaw", 8000, {"received_at": "2026-11-25T10:00:00Z"})
        (box / f"20261125-100000-0000000a{JOURNAL_SUFFIX}").write_bytes(header + b"\x55" * 500)
        (box / f"20261125-100000-0000000b{JOURNAL_SUFFIX}").write_bytes(header[:30])
        (box / f"greeting-1234abcd{JOURNAL_SUFFIX}").write_bytes(header + b"\x55" * 320)
        orphan = box / "20261125-100001-0000000c.wav"
        orphan.write_bytes(header + b"\x55" * 160)
        seal_file(orphan)
        store.path_of("101", gone).unlink()
        store._set_state("101", deleted, "deleted")  # crash before its file went
        (box / "notes.txt").write_text("not ours")
    with open_store(tmp_path) as store:
        ids = [m.id for m in store.messages("101")]
        assert ids == ["20261125-100000-0000000a", "20261125-100001-0000000c", keep]
        torn = store.message("101", "20261125-100000-0000000a")
        assert torn.duration_ms == 60  # 500 bytes: three whole 20 ms frames
        assert torn.received_at == dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)
        box = store.box_dir("101")
        assert sorted(p.name for p in box.iterdir()) == sorted(
            [f"{i}.wav" for i in ids] + ["notes.txt"]
        )
        assert store.messages("101", ("deleted",))[0].id in (gone, deleted)
        assert store.mwi_state() == {"101": 3}
        again = store.recover()
        assert not again.changed and again.unreadable == ()


def test_recovery_leaves_a_damaged_file_alone(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        box = store.box_dir("102")
        box.mkdir()
        bad = box / "20261125-100000-0000000d.wav"
        bad.write_bytes(b"garbage" * 10)
        report = store.recover()
        assert report.unreadable == (str(bad),)
        assert bad.exists() and store.messages("102") == []


def test_boxes_lists_what_is_stored(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        record(store, "102")
        record(store, "1001")
        store.begin_greeting("7").abandon()
        assert store.boxes() == ["7", "102", "1001"]
        assert store.greeting_path("7") is None
        assert not (store.box_dir("7") / GREETING_FILENAME).exists()
