"""Call recording: WAV files written off the media threads, atomically, with an index in SQLite.

Format: 16-bit PCM WAV at the line rate.  A two-party call is recorded in **stereo**, one
direction per channel (left: what the recorded party said, right: what they heard).  Mixed
mono would halve the size (8 kHz: 16 kB/s instead of 32 kB/s, 0.96 MB instead of 1.92 MB a
minute), but stereo keeps both talkers separate and unclipped: a listener can tell who
said what when they talk over each other, each side's level can be checked on its own (a
complaint about a quiet line is answerable), and a mono mix is one ``sox -c 1`` away while
the opposite is impossible.  A conference is recorded in mono: the room's own mix
(``Conference.on_round``) is already what everyone heard.

Atomicity: the index row is written first (state ``recording``), then the audio streams
into ``.<id>.wav.part`` beside the final file, synced every ``SYNC_EVERY_FRAMES``; at the
end the header gets its sizes, the file is fsynced, renamed to its final name, the
directory fsynced, and only then the row is marked complete.  :meth:`Recordings.open`
reconciles after a crash (a killed process or a power cut, at any of those points): a
``.part`` file is salvaged (whole frames kept, header fixed, renamed, row completed and
flagged ``salvaged``), a row whose file never appeared is dropped, and a WAV nobody
indexed is removed, so that the index and the directory always agree afterwards.  So one
process owns a recordings directory (``ponte run``'s ControlApi opens it): another that
opened it too would take the owner's files in progress for a crash's leftovers.

Threads: ``CallRecorder.write`` is called on a media thread and never blocks: it puts
the frame on one bounded queue (``QUEUE_FRAMES``) that a single writer thread drains for
every recording; a full queue drops the frame and counts it.  ``start``/``stop``/``list``
run on the event loop or in a worker thread (``stop`` waits for the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import queue
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from firmware.dsp.levels import peak_for_dbm0
from firmware.dsp.pcm import to_pcm
from firmware.store.db import Database
from firmware.store.recordings import (
    RecordingIndex,
    RecordingIndexError,
    RecordingRow,
    file_name,
    select_for_removal,
)
from firmware.store.schema import RecordingConfig

log = logging.getLogger(__name__)

RECORDINGS_DIR: Final = "recordings"  # under the data directory
HEADER_BYTES: Final = 44  # canonical RIFF/WAVE header: RIFF, fmt (16 bytes), data
SAMPLE_BYTES: Final = 2  # 16-bit PCM
QUEUE_FRAMES: Final = 500  # 10 s of one call's frames between the media threads and the disk
SYNC_EVERY_FRAMES: Final = 250  # fsync every 5 s of audio: a power cut loses at most that
STOP_TIMEOUT_S: Final = 30.0  # the writer finishing one file (a full queue and an fsync)
RETENTION_INTERVAL_S: Final = 24 * 3600.0  # retention runs at start and then daily
MAX_CHUNK: Final = 512 * 1024  # export chunk; base64 of it stays under the API's 1 MiB line
WAV_FORMAT_PCM: Final = 1
_PART = re.compile(r"^\.(\d+)\.wav\.part$")


# The notice both parties hear when a call's recording starts or stops on demand: the
# recorder warning tone, a half-second burst of 1400 Hz (Federal Standard 1037C, "recorder
# warning tone"), at -10 dBm0 like the voicemail beep.  Stopping: two short bursts, so the
# two can be told apart (an engineering choice).
NOTICE_HZ: Final = 1400.0
NOTICE_DBM0: Final = -10.0
NOTICE_START_MS: Final = (500,)
NOTICE_STOP_MS: Final = (150, 150)
NOTICE_GAP_MS: Final = 100
NOTICE_RAMP_MS: Final = 5  # rise and fall of each burst, so it does not click


def notice_pcm(start: bool, rate: int) -> bytes:
    """The start or stop notice as 16-bit little-endian PCM at ``rate``."""
    parts: list[np.ndarray[Any, np.dtype[np.float64]]] = []
    for i, ms in enumerate(NOTICE_START_MS if start else NOTICE_STOP_MS):
        if i:
            parts.append(np.zeros(rate * NOTICE_GAP_MS // 1000))
        n = rate * ms // 1000
        edge = np.minimum(np.arange(n), np.arange(n)[::-1]) / (rate * NOTICE_RAMP_MS / 1000)
        t = np.arange(n) / rate
        parts.append(np.minimum(1.0, edge) * np.sin(2 * np.pi * NOTICE_HZ * t))
    peak = peak_for_dbm0(NOTICE_DBM0)
    return to_pcm(peak * np.concatenate(parts)).astype("<i2").tobytes()


class RecordingError(Exception):
    """A recording could not be started, finished or read, with the reason."""


def wav_header(channels: int, rate: int, data_bytes: int) -> bytes:
    """The 44-byte header of a 16-bit PCM WAV file with ``data_bytes`` of samples."""
    block = channels * SAMPLE_BYTES
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        WAV_FORMAT_PCM,
        channels,
        rate,
        rate * block,
        block,
        8 * SAMPLE_BYTES,
        b"data",
        data_bytes,
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _duration_ms(data_bytes: int, channels: int, rate: int) -> int:
    return data_bytes // (channels * SAMPLE_BYTES) * 1000 // rate


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    salvaged: tuple[int, ...]  # rows completed from a .part file
    completed: tuple[int, ...]  # rows whose file was already in place
    dropped: tuple[int, ...]  # rows without any file
    orphans_removed: tuple[str, ...]  # files without a row


class CallRecorder:
    """One recording in progress.  ``write`` from a media thread; ``stop`` once."""

    def __init__(self, owner: Recordings, row: RecordingRow, frame_bytes: int) -> None:
        self.owner = owner
        self.row = row
        self.id = row.id
        self.channels = row.channels
        self.frame_bytes = frame_bytes
        self.frames = 0  # frames queued
        self.dropped = 0  # frames lost to a full queue
        self.written = 0  # bytes of audio on disk (writer thread)
        self.error: BaseException | None = None
        self._file = open(owner.part_path(row.id), "xb")  # the writer thread closes it
        self._file.write(wav_header(row.channels, row.rate, 0))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._unsynced = 0
        self._stopping = False
        self._done = threading.Event()
        self.result: RecordingRow | None = None

    def write(self, left: bytes, right: bytes | None = None) -> None:
        """One frame: ``left`` is the recorded party (or the room), ``right`` what they heard."""
        if self._stopping:
            return
        if len(left) != self.frame_bytes or (
            self.channels == 2 and (right is None or len(right) != self.frame_bytes)
        ):
            raise RecordingError(
                f"recording {self.id}: frames of {len(left)}/{len(right or b'')} bytes, "
                f"expected {self.frame_bytes} per channel"
            )
        try:
            self.owner._queue.put_nowait((self, left, right))
        except queue.Full:
            self.dropped += 1
            return
        self.frames += 1

    def stop(self) -> RecordingRow:
        """Finish the file and its row; blocks until the writer did (run it off the loop)."""
        if not self._stopping:
            self._stopping = True
            self.owner._queue.put((self, None, None), timeout=STOP_TIMEOUT_S)
        if not self._done.wait(STOP_TIMEOUT_S):
            raise RecordingError(f"recording {self.id}: the writer did not finish the file")
        if self.result is None:
            raise RecordingError(f"recording {self.id} failed: {self.error}")
        return self.result

    # --- writer thread -------------------------------------------------------------------

    def _append(self, left: bytes, right: bytes | None) -> None:
        if self.channels == 2:
            assert right is not None
            both = np.empty((self.frame_bytes // SAMPLE_BYTES, 2), dtype="<i2")
            both[:, 0] = np.frombuffer(left, dtype="<i2")
            both[:, 1] = np.frombuffer(right, dtype="<i2")
            data = both.tobytes()
        else:
            data = left
        self._file.write(data)
        self.written += len(data)
        self._unsynced += 1
        if self._unsynced >= SYNC_EVERY_FRAMES:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._unsynced = 0

    def _finish(self) -> None:
        owner, row = self.owner, self.row
        f = self._file
        f.seek(0)
        f.write(wav_header(row.channels, row.rate, self.written))
        f.flush()
        os.fsync(f.fileno())
        f.close()
        final = owner.directory / row.path
        os.replace(owner.part_path(row.id), final)
        _fsync_dir(owner.directory)
        size = HEADER_BYTES + self.written
        duration = _duration_ms(self.written, row.channels, row.rate)
        owner.index.complete(row.id, duration_ms=duration, size=size)
        self.result = owner.index.get(row.id)


class MediaLink(Protocol):
    """What ``PortMedia`` calls each frame: a CrossConnect or a conference Seat."""

    def heard(self, frame: bytes) -> None: ...

    def next_frame(self) -> bytes | None: ...


class RecordedLink:
    """A port's link with a recorder on it: ``media.link = RecordedLink(media.link, rec)``.

    Both directions are taken on the port's own media thread in the same tick (what the
    line said, then what it is played: the link's frame, or what PortMedia played instead,
    a SIP leg's audio, through :meth:`played`), so the two channels line up sample for sample.
    ``unwrap()`` gives the original link back when the recording stops.
    """

    def __init__(self, link: MediaLink, recorder: CallRecorder) -> None:
        self.link = link
        self.recorder = recorder
        self._said: bytes | None = None
        self._silence = bytes(recorder.frame_bytes)

    def heard(self, frame: bytes) -> None:
        if self._said is not None:
            # Last tick played a tone instead of the link (PortMedia.play): keep the time
            # line whole with silence on the heard channel.
            self.recorder.write(self._said, self._silence)
        self._said = frame
        self.link.heard(frame)

    def next_frame(self) -> bytes | None:
        played = self.link.next_frame()
        if played is not None:
            said, self._said = self._said, None
            if said is not None:
                self.recorder.write(said, played)
        # None: the port plays something else this tick (a SIP leg's audio, silence) and
        # hands it to played() once chosen.
        return played

    def played(self, frame: bytes) -> None:
        """What the port played this tick when the link had nothing (PortMedia's call)."""
        said, self._said = self._said, None
        if said is not None:
            self.recorder.write(said, frame)

    def unwrap(self) -> MediaLink:
        return self.link

    def __getattr__(self, name: str) -> Any:
        # send_pcm, sending, counters: whatever the wrapped link offers.
        return getattr(self.link, name)


class Recordings:
    """The recordings directory and its index: start, list, export, retention."""

    def __init__(
        self,
        db: Database,
        directory: Path,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.index = RecordingIndex(db)
        self.directory = directory
        self.clock = clock
        # (recorder, left, right); left None: finish that file; recorder None: stop.
        self._queue: queue.Queue[tuple[CallRecorder | None, bytes | None, bytes | None]] = (
            queue.Queue(QUEUE_FRAMES)
        )
        self._writer: threading.Thread | None = None
        self._active: dict[int, CallRecorder] = {}
        self._retention_task: asyncio.Task[None] | None = None

    @classmethod
    def for_data_dir(cls, db: Database, data_dir: Path) -> Recordings:
        return cls(db, data_dir / RECORDINGS_DIR)

    @property
    def queued(self) -> int:
        """Frames waiting for the writer thread (all recordings)."""
        return self._queue.qsize()

    def part_path(self, rid: int) -> Path:
        return self.directory / f".{rid}.wav.part"

    # --- lifecycle -----------------------------------------------------------------------

    def open(self, config: RecordingConfig) -> ReconcileReport:
        """Reconcile files with the index, apply retention, start the writer thread."""
        self.directory.mkdir(parents=True, exist_ok=True)
        report = self.reconcile()
        if any(dataclasses.astuple(report)):
            log.warning("recordings reconciled after an unclean stop: %s", report)
        self.apply_retention(config)
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="recorder", daemon=True)
            self._writer.start()
        return report

    def close(self) -> None:
        """Finish every recording still open and stop the writer thread (and retention)."""
        if self._retention_task is not None:
            self._retention_task.cancel()
            self._retention_task = None
        for rec in list(self._active.values()):
            try:
                rec.stop()
            except RecordingError as exc:
                log.error("%s", exc)
        if self._writer is not None:
            self._queue.put((None, None, None), timeout=STOP_TIMEOUT_S)
            self._writer.join(STOP_TIMEOUT_S)
            self._writer = None

    def start_retention(self, config: Callable[[], RecordingConfig]) -> None:
        """Apply retention daily from the event loop (``open`` applied it once already)."""
        if self._retention_task is not None:
            raise RecordingError("retention already scheduled")
        self._retention_task = asyncio.get_running_loop().create_task(self._retention(config))

    async def stop_retention(self) -> None:
        task, self._retention_task = self._retention_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _retention(self, config: Callable[[], RecordingConfig]) -> None:
        while True:
            await asyncio.sleep(RETENTION_INTERVAL_S)
            run = asyncio.ensure_future(asyncio.to_thread(self.apply_retention, config()))
            try:
                await asyncio.shield(run)
            except asyncio.CancelledError:
                # Cancelling cannot stop the thread: wait for the run in progress, so that
                # nothing deletes rows or files after stop_retention has returned.
                await asyncio.wait([run])
                if (exc := run.exception()) is not None:
                    log.error("recording retention failed: %s", exc)
                raise
            except (OSError, RecordingIndexError) as exc:
                log.error("recording retention failed: %s", exc)

    # --- recordings ----------------------------------------------------------------------

    def start(
        self,
        caller: str,
        callee: str,
        reason: str,
        *,
        channels: int = 2,
        rate: int = 8000,
        frame_bytes: int = 320,
    ) -> CallRecorder:
        if self._writer is None:
            raise RecordingError("recordings are not open")
        if channels not in (1, 2):
            raise RecordingError(f"{channels} channels; a recording has 1 or 2")
        row = self.index.begin(
            started_at=self.clock(),
            caller=caller,
            callee=callee,
            reason=reason,
            channels=channels,
            rate=rate,
            path_for=file_name,
        )
        try:
            rec = CallRecorder(self, row, frame_bytes)
        except OSError as exc:
            self.index.delete([row.id])
            raise RecordingError(f"cannot create recording {row.id}: {exc}") from exc
        self._active[row.id] = rec
        log.info("recording %d started: %s -> %s (%s)", row.id, caller, callee, reason)
        return rec

    def _write_loop(self) -> None:
        while True:
            rec, left, right = self._queue.get()
            if rec is None:
                return
            if rec._done.is_set():
                continue
            try:
                if left is None:
                    self._active.pop(rec.id, None)
                    rec._finish()
                    rec._done.set()
                    log.info(
                        "recording %d finished: %d ms",
                        rec.id,
                        rec.result.duration_ms if rec.result else 0,
                    )
                else:
                    rec._append(left, right)
            except (OSError, RecordingIndexError) as exc:
                log.error("recording %d failed: %s", rec.id, exc)
                rec.error = exc
                self._active.pop(rec.id, None)
                with contextlib.suppress(OSError):
                    rec._file.close()
                rec._done.set()

    def find(self, **filters: Any) -> list[RecordingRow]:
        """``RecordingIndex.find``: newest first, filtered."""
        return self.index.find(**filters)

    def read_chunk(self, rid: int, offset: int, length: int = MAX_CHUNK) -> bytes:
        """``length`` bytes of a finished recording's file from ``offset`` (export)."""
        row = self.index.get(rid)
        if row.state != "complete":
            raise RecordingError(f"recording {rid} is still being written")
        if offset < 0 or not 1 <= length <= MAX_CHUNK:
            raise RecordingError(f"offset {offset}, length {length}: length must be 1..{MAX_CHUNK}")
        with open(self.directory / row.path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def path_of(self, rid: int) -> Path:
        return self.directory / self.index.get(rid).path

    # --- retention and reconciliation -----------------------------------------------------

    def apply_retention(self, config: RecordingConfig, now: dt.datetime | None = None) -> list[int]:
        """Delete what the retention rules select; returns the ids removed."""
        chosen = select_for_removal(
            self.index.all(),
            now=now or self.clock(),
            retention_days=config.retention_days,
            max_total_bytes=config.max_total_mb * 1_000_000,
        )
        removed = []
        for row in chosen:
            # Row first: a crash between the two leaves a file without a row, which the
            # next reconciliation removes; the other order would list a missing file.
            self.index.delete([row.id])
            with contextlib.suppress(FileNotFoundError):
                (self.directory / row.path).unlink()
            removed.append(row.id)
        if removed:
            log.info("retention removed %d recording(s)", len(removed))
        return removed

    def reconcile(self) -> ReconcileReport:
        """Make the directory and the index agree (see the module docstring)."""
        salvaged, completed, dropped = [], [], []
        active = set(self._active)
        rows = {r.id: r for r in self.index.all()}
        for row in rows.values():
            if row.id in active:
                continue
            final, part = self.directory / row.path, self.part_path(row.id)
            if row.state == "complete":
                if not final.exists():
                    log.error("recording %d: file %s is missing; dropping its row", row.id, final)
                    self.index.delete([row.id])
                    dropped.append(row.id)
                continue
            if part.exists():
                data = _salvage(part, final, row.channels, row.rate)
                _fsync_dir(self.directory)
                self.index.complete(
                    row.id,
                    duration_ms=_duration_ms(data, row.channels, row.rate),
                    size=HEADER_BYTES + data,
                    salvaged=True,
                )
                salvaged.append(row.id)
            elif final.exists():  # renamed, but the row was not completed yet
                data = final.stat().st_size - HEADER_BYTES
                self.index.complete(
                    row.id,
                    duration_ms=_duration_ms(max(data, 0), row.channels, row.rate),
                    size=final.stat().st_size,
                )
                completed.append(row.id)
            else:  # died before the file was created
                self.index.delete([row.id])
                dropped.append(row.id)
        known = {r.path for r in self.index.all()}
        orphans = []
        for entry in sorted(self.directory.iterdir()):
            m = _PART.match(entry.name)
            if m and int(m.group(1)) in active:
                continue
            if entry.is_file() and (m or (entry.suffix == ".wav" and entry.name not in known)):
                entry.unlink()
                orphans.append(entry.name)
        return ReconcileReport(tuple(salvaged), tuple(completed), tuple(dropped), tuple(orphans))


def _salvage(part: Path, final: Path, channels: int, rate: int) -> int:
    """Fix the header of a file a killed process left (whole frames); rename it."""
    block = channels * SAMPLE_BYTES
    with open(part, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        data = max(size - HEADER_BYTES, 0) // block * block
        if size < HEADER_BYTES:
            f.truncate(0)
        f.truncate(HEADER_BYTES + data)
        f.seek(0)
        f.write(wav_header(channels, rate, data))
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, final)
    return data
