"""Voicemail storage: one mailbox per extension, messages as WAV files, their index in SQLite.

A message is never lost.  While a caller speaks, each frame is appended to a *journal*: a
WAV file in the mailbox directory whose header still says "length unknown"; it is
fdatasync'ed every ``SYNC_INTERVAL_S``.  Finishing a message is a fixed sequence of steps,
each of which leaves something recovery understands:

1. fix the journal's header (RIFF, ``fact`` and ``data`` sizes) and cut it to whole frames,
   fsync it;
2. rename it to ``<id>.wav`` and fsync the directory;
3. insert the index row (one SQLite transaction, WAL, ``synchronous=FULL``).

A killed process or a power cut at any moment leaves either a journal (recovery does steps
1-3), or a ``.wav`` without a row (recovery does step 3 from the metadata chunk the file
carries), or a finished message.  So the index and the files never disagree after
:meth:`VoicemailStore.recover`, and at most the last interval of audio is gone.  The
journal holds an exclusive ``flock`` while it is written, so recovery never touches a
recording that a live process is still making.

Layout under the data directory::

    voicemail/index.db              the index (messages, PIN lock-out state)
    voicemail/<box>/<id>.wav        a message: G.711 or 16-bit PCM WAV, 8 kHz mono
    voicemail/<box>/<id>.journal    a message being recorded (or cut short by a crash)
    voicemail/<box>/greeting.wav    the box owner's greeting

The index has its own file next to the audio rather than a table in ``ponte.db``: messages
and their index are checked and recovered together, and a configuration backup does not
carry megabytes of audio.

Threads: every method may be called from any thread (the database serialises itself; the
in-memory counters take a lock).  ``MwiChanged`` callbacks run on the thread that made the
change; a shell hands them to its event loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hmac
import json
import logging
import os
import queue
import re
import secrets
import shutil
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from firmware.dsp import g711
from firmware.dsp.pcm import FRAME_MS, SAMPLE_RATE
from firmware.store.db import Database, StoreError, _script
from firmware.store.schema import VoicemailConfig

log = logging.getLogger(__name__)

VOICEMAIL_DIR: Final = "voicemail"
INDEX_FILENAME: Final = "index.db"
JOURNAL_SUFFIX: Final = ".journal"
WAV_SUFFIX: Final = ".wav"
GREETING_FILENAME: Final = "greeting.wav"
# The greeting a caller hears when the owner is busy (or in do not disturb); without it the
# default busy prompt plays (docs/features.md, Voicemail).
BUSY_GREETING_FILENAME: Final = "busy-greeting.wav"
GREETING_FILES: Final[dict[str, str]] = {
    "unavailable": GREETING_FILENAME,
    "busy": BUSY_GREETING_FILENAME,
}
GREETING_JOURNAL_PREFIX: Final = "greeting-"
# Power loss costs at most this much of the message being recorded: the journal is synced
# at this interval (the brief's figure; an SD card's fdatasync takes 5-50 ms, 2-10 % duty).
SYNC_INTERVAL_S: Final = 0.5
META_CHUNK: Final = b"pnte"  # our metadata chunk; WAV readers skip chunks they do not know
MAX_META_BYTES: Final = 4096
MAX_HEADER_BYTES: Final = 8192  # RIFF + fmt + fact + metadata + data header, with room
MAX_DELETED_ROWS: Final = 1000  # deleted messages remembered in the index, newest kept
MAX_CALLER_NAME: Final = 64
MAX_CALLER_NUMBER: Final = 32
UNKNOWN_SIZE: Final = 0xFFFFFFFF  # a journal's RIFF and data sizes until it is finished
# Refuse to start a recording when the file system has less free space than one message at
# the length cap needs, plus this much for SQLite and the rest of the box.
FREE_SPACE_MARGIN: Final = 16 * 1024 * 1024
SINK_QUEUE_FRAMES: Final = 250  # 5 s of 20 ms frames between a media thread and the writer

BOX_RE: Final = re.compile(r"^[0-9]{1,8}$")  # an extension number (schema: 1 to 8 digits)
ID_RE: Final = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{8}$")

Encoding = Literal["alaw", "ulaw", "pcm16"]
State = Literal["new", "saved", "deleted"]

# RFC 2361 / Microsoft WAVE format tags, and bytes per sample.
_FORMAT_TAG: Final[dict[str, int]] = {"pcm16": 0x0001, "alaw": 0x0006, "ulaw": 0x0007}
_WIDTH: Final[dict[str, int]] = {"pcm16": 2, "alaw": 1, "ulaw": 1}
_ENCODING_OF_TAG: Final[dict[tuple[int, int], Encoding]] = {
    (0x0001, 16): "pcm16",
    (0x0006, 8): "alaw",
    (0x0007, 8): "ulaw",
}


class VoicemailError(StoreError):
    """Base of the voicemail store's errors."""


class MailboxFull(VoicemailError):
    """The box holds its quota of messages."""


class StorageFull(VoicemailError):
    """Not enough free space for a message at the length cap."""


class UnknownMessage(VoicemailError, KeyError):
    """No such message in that box."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown message"


class BadName(VoicemailError, ValueError):
    """A box or message id that is not well formed (never used as a path)."""


class JournalError(VoicemailError):
    """A journal or message file whose header cannot be read: left in place, logged."""


@dataclass(frozen=True, slots=True)
class MessageInfo:
    id: str
    box: str
    received_at: dt.datetime  # UTC
    caller_number: str
    caller_name: str
    duration_ms: int
    size: int
    encoding: Encoding
    state: State

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "box": self.box,
            "received_at": _iso(self.received_at),
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "duration_ms": self.duration_ms,
            "size": self.size,
            "encoding": self.encoding,
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class MailboxCounts:
    new: int
    saved: int

    @property
    def total(self) -> int:
        return self.new + self.saved


@dataclass(frozen=True, slots=True)
class MwiChanged:
    """The number of new messages in ``extension``'s box changed (lamp on iff > 0)."""

    extension: str
    new_count: int

    def __post_init__(self) -> None:
        if self.new_count < 0:
            raise ValueError(f"negative message count {self.new_count}")

    @property
    def waiting(self) -> bool:
        return self.new_count > 0


PinOutcome = Literal["ok", "wrong", "locked"]
GreetingKind = Literal["unavailable", "busy"]


@dataclass(frozen=True, slots=True)
class PinCheck:
    outcome: PinOutcome
    attempts_left: int  # before the box locks; 0 when locked
    locked_until: float | None = None  # time.time() when the lock ends

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    journals_finished: int = 0  # leftover journals turned into messages
    rows_added: int = 0  # .wav files that had no index row (killed between rename and commit)
    rows_lost: int = 0  # rows whose file is gone (marked deleted, logged as errors)
    files_removed: int = 0  # empty journals, abandoned greetings, files of deleted rows
    unreadable: tuple[str, ...] = ()  # files left alone because their header is damaged

    @property
    def changed(self) -> bool:
        return bool(
            self.journals_finished or self.rows_added or self.rows_lost or self.files_removed
        )


# --- index schema ----------------------------------------------------------------------


def _v1(conn: sqlite3.Connection) -> None:
    _script(
        conn,
        """
        CREATE TABLE message (
            id            TEXT    PRIMARY KEY,
            box           TEXT    NOT NULL,
            received_at   TEXT    NOT NULL,
            caller_number TEXT    NOT NULL,
            caller_name   TEXT    NOT NULL,
            duration_ms   INTEGER NOT NULL,
            size          INTEGER NOT NULL,
            encoding      TEXT    NOT NULL,
            state         TEXT    NOT NULL CHECK (state IN ('new', 'saved', 'deleted')),
            changed_at    TEXT    NOT NULL
        );
        CREATE INDEX message_box ON message(box, state, received_at);
        CREATE TABLE pin_state (
            box          TEXT    PRIMARY KEY,
            failures     INTEGER NOT NULL,
            locked_until REAL    NOT NULL
        );
        """,
    )


INDEX_MIGRATIONS: Final = (_v1,)


# --- WAV journal format ------------------------------------------------------------------


def frame_bytes(encoding: Encoding, rate: int = SAMPLE_RATE) -> int:
    """Bytes of one 20 ms frame in a file of this encoding."""
    return rate * FRAME_MS // 1000 * _WIDTH[encoding]


def journal_header(encoding: Encoding, rate: int, meta: dict[str, Any]) -> bytes:
    """The header a journal starts with: sizes unknown, metadata in its own chunk."""
    width = _WIDTH[encoding]
    tag = _FORMAT_TAG[encoding]
    if encoding == "pcm16":
        fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * width, width, 8 * width)
    else:  # non-PCM formats carry cbSize and need a fact chunk (RIFF spec, WAVEFORMATEX)
        fmt = struct.pack("<HHIIHHH", tag, 1, rate, rate * width, width, 8 * width, 0)
    body = json.dumps(meta, separators=(",", ":"), sort_keys=True).encode()
    if len(body) > MAX_META_BYTES:
        raise VoicemailError(f"message metadata of {len(body)} bytes is too long")
    if len(body) & 1:
        body += b" "  # chunks are word-aligned; a space keeps the JSON valid
    out = [b"RIFF", struct.pack("<I", UNKNOWN_SIZE), b"WAVE"]
    out += [b"fmt ", struct.pack("<I", len(fmt)), fmt]
    if encoding != "pcm16":
        out += [b"fact", struct.pack("<II", 4, 0)]
    out += [META_CHUNK, struct.pack("<I", len(body)), body]
    out += [b"data", struct.pack("<I", UNKNOWN_SIZE)]
    return b"".join(out)


@dataclass(frozen=True, slots=True)
class _Layout:
    encoding: Encoding
    rate: int
    meta: dict[str, Any]
    fact_at: int | None  # offset of the fact chunk's sample count
    data_size_at: int
    data_start: int


def _parse_header(head: bytes) -> _Layout:
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise JournalError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, ...] | None = None
    fact_at: int | None = None
    meta: dict[str, Any] = {}
    while pos + 8 <= len(head):
        cid = head[pos : pos + 4]
        (size,) = struct.unpack_from("<I", head, pos + 4)
        if cid == b"data":
            if fmt is None:
                raise JournalError("'data' before 'fmt '")
            tag, channels, rate, _, _, bits = fmt
            encoding = _ENCODING_OF_TAG.get((tag, bits))
            if encoding is None or channels != 1 or not 1000 <= rate <= 48000:
                raise JournalError(f"not a voicemail format (tag {tag:#x}, {bits} bits)")
            return _Layout(encoding, rate, meta, fact_at, pos + 4, pos + 8)
        body = head[pos + 8 : pos + 8 + size]
        if len(body) < size:
            raise JournalError(f"chunk {cid!r} runs past the header")
        if cid == b"fmt ":
            if size < 16:
                raise JournalError("'fmt ' chunk too short")
            fmt = struct.unpack_from("<HHIIHH", body)
        elif cid == b"fact" and size >= 4:
            fact_at = pos + 8
        elif cid == META_CHUNK:
            try:
                loaded = json.loads(body.decode())
            except (UnicodeDecodeError, ValueError) as exc:
                raise JournalError(f"metadata chunk unreadable: {exc}") from None
            if not isinstance(loaded, dict):
                raise JournalError("metadata chunk is not an object")
            meta = loaded
        pos += 8 + size + (size & 1)
    raise JournalError("no 'data' chunk in the header")


def seal_file(path: Path) -> tuple[_Layout, int]:
    """Step 1: fix the header of a journal (or a file already fixed) and cut it to whole
    20 ms frames; fsync.  Returns the layout and the number of data bytes kept."""
    with open(path, "r+b") as f:
        head = f.read(MAX_HEADER_BYTES)
        layout = _parse_header(head)
        total = os.fstat(f.fileno()).st_size
        step = frame_bytes(layout.encoding, layout.rate)
        data = max(total - layout.data_start, 0)
        data -= data % step
        end = layout.data_start + data
        if end != total:
            f.truncate(end)
        f.seek(4)
        f.write(struct.pack("<I", end - 8))
        if layout.fact_at is not None:
            f.seek(layout.fact_at)
            f.write(struct.pack("<I", data // _WIDTH[layout.encoding]))
        f.seek(layout.data_size_at)
        f.write(struct.pack("<I", data))
        f.flush()
        os.fsync(f.fileno())
    return layout, data


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def check_box(box: str) -> str:
    if not isinstance(box, str) or not BOX_RE.match(box):
        raise BadName(f"mailbox {box!r} is not an extension number (1 to 8 digits)")
    return box


def check_id(message_id: str) -> str:
    if not isinstance(message_id, str) or not ID_RE.match(message_id):
        raise BadName(f"message id {message_id!r} is not of the form YYYYMMDD-HHMMSS-xxxxxxxx")
    return message_id


def _clean_text(text: str, limit: int) -> str:
    return "".join(c for c in str(text) if c.isprintable())[:limit]


# --- recording ----------------------------------------------------------------------------


class Recording:
    """One message or greeting being recorded: append 16-bit PCM, then finish or abandon.

    Not thread-safe: one thread appends and finishes (``RecordingSink`` is the thread-safe
    shell for media threads).  Appending never raises on I/O errors: a full disk ends the
    recording (``failed``) and :meth:`finish` keeps what reached the file.
    """

    def __init__(
        self,
        store: VoicemailStore,
        *,
        kind: Literal["message", "greeting"],
        box: str,
        message_id: str,
        path: Path,
        encoding: Encoding,
        rate: int,
        max_seconds: int,
        meta: dict[str, Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.kind = kind
        self.meta = meta
        self.box = box
        self.id = message_id
        self.path = path
        self.encoding = encoding
        self.rate = rate
        self.max_samples = max_seconds * rate
        self.samples = 0
        self.failed = False
        self.closed = False
        self._clock = clock
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(self._fd, journal_header(encoding, rate, meta))
            os.fsync(self._fd)
            _fsync_dir(path.parent)
        except BaseException:
            os.close(self._fd)
            path.unlink(missing_ok=True)
            raise
        self._last_sync = clock()

    @property
    def seconds(self) -> float:
        return self.samples / self.rate

    @property
    def cap_reached(self) -> bool:
        return self.samples >= self.max_samples

    def append(self, pcm: bytes, now: float | None = None) -> bool:
        """Add 16-bit little-endian PCM; False once the length cap is reached or the disk
        failed (the caller ends the recording)."""
        if self.closed:
            raise VoicemailError("append to a recording that was finished or abandoned")
        if self.failed or self.cap_reached:
            return False
        if len(pcm) % 2:
            raise VoicemailError(f"PCM of {len(pcm)} bytes is not whole 16-bit samples")
        room = self.max_samples - self.samples
        samples = np.frombuffer(pcm, "<i2")[:room]
        if self.encoding == "alaw":
            data = g711.alaw_encode(samples).tobytes()
        elif self.encoding == "ulaw":
            data = g711.ulaw_encode(samples).tobytes()
        else:
            data = samples.astype("<i2", copy=False).tobytes()
        try:
            os.write(self._fd, data)
            self.samples += samples.size
            now = self._clock() if now is None else now
            if now - self._last_sync >= SYNC_INTERVAL_S:
                os.fdatasync(self._fd)
                self._last_sync = now
        except OSError as exc:
            log.error("voicemail %s/%s: recording stopped: %s", self.box, self.id, exc)
            self.failed = True
            return False
        return not self.cap_reached

    def sync(self) -> None:
        if not self.closed and not self.failed:
            os.fdatasync(self._fd)
            self._last_sync = self._clock()

    def finish(self) -> MessageInfo | None:
        """Make the recording permanent; None for a greeting or an empty message."""
        self._closing()
        try:
            # The flock stays held until the journal is renamed, so that a recovery pass
            # in another process never finishes the same journal at the same time.
            return self.store._publish(self)
        finally:
            os.close(self._fd)

    def abandon(self) -> None:
        """Throw the recording away (a greeting the owner hung up on)."""
        self._closing()
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self.store._forget(self)

    def _closing(self) -> None:
        if self.closed:
            raise VoicemailError("recording already finished or abandoned")
        self.closed = True


class RecordingSink:
    """Thread-safe shell over a :class:`Recording` for a port's media thread.

    ``heard(frame)`` runs on the media thread and never blocks: it queues the frame (bounded;
    a writer that falls 5 s behind drops frames and counts them).  A writer thread appends
    and syncs.  ``on_end(reason)`` is called once, on the writer thread, when the recording
    stops by itself: ``"cap"`` (length cap) or ``"error"`` (disk).  ``stop(keep)`` runs on
    the event loop (in an executor: it joins the writer) and finishes or abandons.
    """

    def __init__(
        self,
        recording: Recording,
        on_end: Callable[[str], None] | None = None,
        *,
        max_frames: int = SINK_QUEUE_FRAMES,
    ) -> None:
        self.recording = recording
        self._on_end = on_end
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max_frames)
        self.dropped = 0
        self.ended: str | None = None
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name=f"vm-record-{recording.box}", daemon=True
        )
        self._thread.start()

    def heard(self, frame: bytes) -> None:
        if self.ended is not None or self._stopped:
            return
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        rec = self.recording
        while True:
            try:
                frame = self._queue.get(timeout=SYNC_INTERVAL_S)
            except queue.Empty:
                if self.ended is None:
                    with contextlib.suppress(OSError):
                        rec.sync()
                continue
            if frame is None:
                return
            if self.ended is not None:
                continue
            if not rec.append(frame):
                self.ended = "error" if rec.failed else "cap"
                if self._on_end is not None:
                    try:
                        self._on_end(self.ended)
                    except Exception:
                        log.exception("voicemail: on_end callback failed")

    def stop(self, keep: bool = True) -> MessageInfo | None:
        if self._stopped:
            raise VoicemailError("recording sink already stopped")
        self._stopped = True
        self._queue.put(None)  # blocks only while the writer drains a full queue
        self._thread.join()
        if self.dropped:
            log.warning(
                "voicemail %s/%s: %d frames dropped (writer too slow)",
                self.recording.box,
                self.recording.id,
                self.dropped,
            )
        if keep:
            return self.recording.finish()
        self.recording.abandon()
        return None


# --- the store ---------------------------------------------------------------------------


def _row(row: sqlite3.Row | tuple[Any, ...]) -> MessageInfo:
    mid, box, received, number, name, duration, size, encoding, state = tuple(row)[:9]
    return MessageInfo(
        id=mid,
        box=box,
        received_at=_parse_iso(received),
        caller_number=number,
        caller_name=name,
        duration_ms=int(duration),
        size=int(size),
        encoding=encoding,
        state=state,
    )


_COLUMNS: Final = (
    "id, box, received_at, caller_number, caller_name, duration_ms, size, encoding, state"
)


@dataclass
class _Active:
    by_box: dict[str, int] = field(default_factory=dict)


class VoicemailStore:
    """Mailboxes under ``<data_dir>/voicemail``.  Open with :meth:`open`."""

    def __init__(
        self,
        root: Path,
        db: Database,
        settings: VoicemailConfig,
        *,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.root = root
        self.db = db
        self.settings = settings
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._active = _Active()
        self._subscribers: list[Callable[[MwiChanged], None]] = []
        self._mwi: dict[str, int] = {}

    @classmethod
    def open(
        cls,
        data_dir: Path | str,
        settings: VoicemailConfig | None = None,
        *,
        recover: bool = True,
        wall_clock: Callable[[], dt.datetime] | None = None,
    ) -> VoicemailStore:
        """Open (creating) the voicemail directory; ``recover`` finishes what a crash left.

        Only the process that records may recover; tools reading a live box pass False.
        """
        root = Path(data_dir) / VOICEMAIL_DIR
        root.mkdir(parents=True, exist_ok=True, mode=0o750)
        db = Database(root / INDEX_FILENAME, migrations=INDEX_MIGRATIONS)
        kwargs = {"wall_clock": wall_clock} if wall_clock is not None else {}
        store = cls(root, db, settings or VoicemailConfig(), **kwargs)
        try:
            if recover:
                report = store.recover()
                if report.changed or report.unreadable:
                    log.warning("voicemail recovery: %s", report)
            store._mwi = store.mwi_state()
        except BaseException:
            db.close()
            raise
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> VoicemailStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def configure(self, settings: VoicemailConfig) -> None:
        """New limits from a configuration change; recordings in progress keep theirs."""
        self.settings = settings

    def subscribe(self, callback: Callable[[MwiChanged], None]) -> None:
        self._subscribers.append(callback)

    # -- reading ---------------------------------------------------------------------------
    def box_dir(self, box: str) -> Path:
        return self.root / check_box(box)

    def boxes(self) -> list[str]:
        """Boxes with anything stored (messages, a greeting or index rows)."""
        found = {p.name for p in self.root.iterdir() if p.is_dir() and BOX_RE.match(p.name)}
        with self.db.reading() as conn:
            found |= {r[0] for r in conn.execute("SELECT DISTINCT box FROM message")}
        return sorted(found, key=lambda b: (len(b), b))

    def messages(self, box: str, states: tuple[State, ...] = ("new", "saved")) -> list[MessageInfo]:
        """Oldest first, as a caller listens to them."""
        check_box(box)
        marks = ",".join("?" * len(states))
        with self.db.reading() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM message WHERE box = ? AND state IN ({marks}) "
                "ORDER BY received_at, rowid",  # same second: in the order they were stored
                (box, *states),
            ).fetchall()
        return [_row(r) for r in rows]

    def counts(self, box: str) -> MailboxCounts:
        check_box(box)
        with self.db.reading() as conn:
            rows = dict(
                conn.execute(
                    "SELECT state, count(*) FROM message WHERE box = ? GROUP BY state", (box,)
                ).fetchall()
            )
        return MailboxCounts(new=int(rows.get("new", 0)), saved=int(rows.get("saved", 0)))

    def message(self, box: str, message_id: str) -> MessageInfo:
        check_box(box)
        check_id(message_id)
        with self.db.reading() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM message WHERE box = ? AND id = ? AND state != 'deleted'",
                (box, message_id),
            ).fetchone()
        if row is None:
            raise UnknownMessage(f"no message {message_id} in mailbox {box}")
        return _row(row)

    def path_of(self, box: str, message_id: str) -> Path:
        return self.box_dir(box) / f"{check_id(message_id)}{WAV_SUFFIX}"

    def greeting_path(self, box: str, kind: GreetingKind = "unavailable") -> Path | None:
        path = self.box_dir(box) / GREETING_FILES[kind]
        return path if path.exists() else None

    def mwi_state(self) -> dict[str, int]:
        """New-message count of every box that has any messages (others: 0, lamp off)."""
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT box, sum(state = 'new') FROM message WHERE state != 'deleted' GROUP BY box"
            ).fetchall()
        return {str(box): int(new or 0) for box, new in rows}

    # -- changing -------------------------------------------------------------------------
    def _set_state(self, box: str, message_id: str, state: State) -> None:
        check_box(box)
        check_id(message_id)
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE message SET state = ?, changed_at = ? "
                "WHERE box = ? AND id = ? AND state != 'deleted'",
                (state, _iso(self._wall_clock()), box, message_id),
            )
            if cur.rowcount == 0:
                raise UnknownMessage(f"no message {message_id} in mailbox {box}")

    def mark_saved(self, box: str, message_id: str) -> None:
        self._set_state(box, message_id, "saved")
        self._notify(box)

    def mark_new(self, box: str, message_id: str) -> None:
        self._set_state(box, message_id, "new")
        self._notify(box)

    def delete(self, box: str, message_id: str) -> None:
        """Row first, then the file: a crash in between leaves a file that recovery knows
        to remove, never a message that comes back from the dead."""
        self._set_state(box, message_id, "deleted")
        self.path_of(box, message_id).unlink(missing_ok=True)
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM message WHERE state = 'deleted' AND id NOT IN "
                "(SELECT id FROM message WHERE state = 'deleted' "
                " ORDER BY changed_at DESC, id DESC LIMIT ?)",
                (MAX_DELETED_ROWS,),
            )
        self._notify(box)

    def delete_greeting(self, box: str, kind: GreetingKind = "unavailable") -> bool:
        path = self.box_dir(box) / GREETING_FILES[kind]
        existed = path.exists()
        path.unlink(missing_ok=True)
        if existed:
            _fsync_dir(path.parent)
        return existed

    # -- recording -------------------------------------------------------------------------
    def _check_space(self, directory: Path, seconds: int, encoding: Encoding) -> None:
        need = seconds * SAMPLE_RATE * _WIDTH[encoding] + FREE_SPACE_MARGIN
        free = shutil.disk_usage(directory).free
        if free < need:
            raise StorageFull(
                f"{free // 1024} KiB free in {directory}; a message needs {need // 1024} KiB"
            )

    def begin_message(
        self,
        box: str,
        caller_number: str = "",
        caller_name: str = "",
        *,
        rate: int = SAMPLE_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> Recording:
        """Start recording a message for ``box``; :class:`MailboxFull` at the quota."""
        check_box(box)
        settings = self.settings
        with self._lock:
            busy = self._active.by_box.get(box, 0)
            if self.counts(box).total + busy >= settings.max_messages:
                raise MailboxFull(
                    f"mailbox {box} holds {settings.max_messages} messages (its quota)"
                )
            self._active.by_box[box] = busy + 1
        try:
            directory = self.box_dir(box)
            directory.mkdir(exist_ok=True, mode=0o750)
            self._check_space(directory, settings.max_message_s, settings.format)
            when = self._wall_clock()
            message_id = f"{when.astimezone(dt.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"
            meta = {
                "v": 1,
                "kind": "message",
                "box": box,
                "id": message_id,
                "received_at": _iso(when),
                "caller_number": _clean_text(caller_number, MAX_CALLER_NUMBER),
                "caller_name": _clean_text(caller_name, MAX_CALLER_NAME),
            }
            return Recording(
                self,
                kind="message",
                box=box,
                message_id=message_id,
                path=directory / f"{message_id}{JOURNAL_SUFFIX}",
                encoding=settings.format,
                rate=rate,
                max_seconds=settings.max_message_s,
                meta=meta,
                clock=clock,
            )
        except BaseException:
            self._release(box)
            raise

    def begin_greeting(
        self,
        box: str,
        *,
        kind: GreetingKind = "unavailable",
        rate: int = SAMPLE_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> Recording:
        check_box(box)
        settings = self.settings
        directory = self.box_dir(box)
        directory.mkdir(exist_ok=True, mode=0o750)
        self._check_space(directory, settings.max_greeting_s, settings.format)
        token = secrets.token_hex(4)
        return Recording(
            self,
            kind="greeting",
            box=box,
            message_id=token,
            path=directory / f"{GREETING_JOURNAL_PREFIX}{token}{JOURNAL_SUFFIX}",
            encoding=settings.format,
            rate=rate,
            max_seconds=settings.max_greeting_s,
            meta={"v": 1, "kind": "greeting", "box": box, "greeting": kind},
            clock=clock,
        )

    def _release(self, box: str) -> None:
        with self._lock:
            left = self._active.by_box.get(box, 0) - 1
            if left > 0:
                self._active.by_box[box] = left
            else:
                self._active.by_box.pop(box, None)

    def _forget(self, rec: Recording) -> None:
        if rec.kind == "message":
            self._release(rec.box)

    def _publish(self, rec: Recording) -> MessageInfo | None:
        try:
            if rec.kind == "greeting":
                _, data = seal_file(rec.path)
                if data == 0:
                    rec.path.unlink(missing_ok=True)
                    return None
                name = GREETING_FILES.get(str(rec.meta.get("greeting")), GREETING_FILENAME)
                os.replace(rec.path, rec.path.parent / name)
                _fsync_dir(rec.path.parent)
                return None
            info = self._commit_journal(rec.path)
        finally:
            self._forget(rec)
        if info is not None:
            self._notify(info.box)
        return info

    def _commit_journal(self, journal: Path) -> MessageInfo | None:
        """Steps 1-3 for one message journal; None (and the journal gone) when empty."""
        layout, data = seal_file(journal)
        if data == 0:
            journal.unlink(missing_ok=True)
            _fsync_dir(journal.parent)
            return None
        final = journal.with_suffix(WAV_SUFFIX)
        os.replace(journal, final)
        _fsync_dir(journal.parent)
        return self._index_file(final, layout, data)

    def _index_file(self, path: Path, layout: _Layout, data: int) -> MessageInfo:
        """Step 3: the index row for a sealed message file (idempotent)."""
        meta = layout.meta
        box = path.parent.name
        message_id = path.stem
        try:
            received = _parse_iso(str(meta["received_at"]))
        except (KeyError, ValueError):
            received = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(
                microsecond=0
            )
        width = _WIDTH[layout.encoding]
        info = MessageInfo(
            id=message_id,
            box=box,
            received_at=received,
            caller_number=_clean_text(str(meta.get("caller_number", "")), MAX_CALLER_NUMBER),
            caller_name=_clean_text(str(meta.get("caller_name", "")), MAX_CALLER_NAME),
            duration_ms=data // width * 1000 // layout.rate,
            size=path.stat().st_size,
            encoding=layout.encoding,
            state="new",
        )
        with self.db.transaction() as conn:
            conn.execute(
                f"INSERT OR IGNORE INTO message ({_COLUMNS}, changed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    info.id,
                    info.box,
                    _iso(info.received_at),
                    info.caller_number,
                    info.caller_name,
                    info.duration_ms,
                    info.size,
                    info.encoding,
                    info.state,
                    _iso(self._wall_clock()),
                ),
            )
        return info

    def _notify(self, box: str) -> None:
        new = self.counts(box).new
        with self._lock:
            if self._mwi.get(box, 0) == new:
                return
            self._mwi[box] = new
        event = MwiChanged(box, new)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("voicemail: MWI subscriber failed on %s", event)

    # -- PIN ------------------------------------------------------------------------------
    def check_pin(self, box: str, entered: str, expected: str, now: float) -> PinCheck:
        """Compare ``entered`` with the configured PIN; consecutive failures (over any
        number of calls, persisted) lock the box for ``lockout_s``.  An empty configured PIN
        never matches: a box without a PIN is reachable only from its own phone."""
        check_box(box)
        attempts = self.settings.pin_attempts
        if not expected:
            # Nothing to guess, and no row: failures against boxes that do not exist (or
            # have no PIN) cannot fill the table.
            return PinCheck("wrong", attempts)
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT failures, locked_until FROM pin_state WHERE box = ?", (box,)
            ).fetchone()
            failures, locked_until = (int(row[0]), float(row[1])) if row else (0, 0.0)
            if locked_until > now:
                return PinCheck("locked", 0, locked_until)
            good = hmac.compare_digest(entered.encode("utf-8", "replace"), expected.encode())
            if good:
                conn.execute("DELETE FROM pin_state WHERE box = ?", (box,))
                return PinCheck("ok", attempts)
            failures = min(failures + 1, attempts)
            if failures >= attempts:
                until = now + self.settings.lockout_s
                conn.execute("INSERT OR REPLACE INTO pin_state VALUES (?, 0, ?)", (box, until))
                log.warning("voicemail: mailbox %s locked after %d wrong PINs", box, attempts)
                return PinCheck("locked", 0, until)
            conn.execute("INSERT OR REPLACE INTO pin_state VALUES (?, ?, 0)", (box, failures))
            return PinCheck("wrong", attempts - failures)

    # -- recovery ----------------------------------------------------------------------------
    def recover(self) -> RecoveryReport:
        """Bring files and index into agreement after a crash (see the module docstring)."""
        finished = added = lost = removed = 0
        unreadable: list[str] = []
        with self.db.reading() as conn:
            rows = {
                (str(r[0]), str(r[1])): str(r[2])
                for r in conn.execute("SELECT box, id, state FROM message")
            }
        touched: set[str] = set()
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            box = directory.name
            if not BOX_RE.match(box):
                continue
            for journal in sorted(directory.glob(f"*{JOURNAL_SUFFIX}")):
                outcome = self._recover_journal(journal, unreadable)
                if outcome == "message":
                    finished += 1
                    touched.add(box)
                    rows[(box, journal.stem)] = "new"
                elif outcome == "removed":
                    removed += 1
            for wav in sorted(directory.glob(f"*{WAV_SUFFIX}")):
                if wav.name in GREETING_FILES.values() or not ID_RE.match(wav.stem):
                    continue
                state = rows.get((box, wav.stem))
                if state == "deleted":
                    wav.unlink(missing_ok=True)
                    removed += 1
                elif state is None:
                    try:
                        layout, data = seal_file(wav)
                    except (JournalError, OSError) as exc:
                        log.error("voicemail: %s unreadable, left alone: %s", wav, exc)
                        unreadable.append(str(wav))
                        continue
                    self._index_file(wav, layout, data)
                    rows[(box, wav.stem)] = "new"
                    added += 1
                    touched.add(box)
        for (box, message_id), state in rows.items():
            if state == "deleted" or not ID_RE.match(message_id) or not BOX_RE.match(box):
                continue
            if not (self.root / box / f"{message_id}{WAV_SUFFIX}").exists():
                log.error("voicemail: message %s/%s lost its file; marked deleted", box, message_id)
                self._set_state(box, message_id, "deleted")
                lost += 1
                touched.add(box)
        for box in touched:
            self._notify(box)
        return RecoveryReport(finished, added, lost, removed, tuple(unreadable))

    def _recover_journal(self, journal: Path, unreadable: list[str]) -> str:
        try:
            fd = os.open(journal, os.O_RDONLY)
        except FileNotFoundError:
            return "gone"
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return "live"  # a live process is recording it
                raise
            if not journal.exists():
                return "gone"  # its recorder finished it while we waited for the lock
            if journal.name.startswith(GREETING_JOURNAL_PREFIX):
                # A greeting the owner never confirmed: the old greeting stays.
                journal.unlink(missing_ok=True)
                return "removed"
            if not ID_RE.match(journal.stem):
                unreadable.append(str(journal))
                return "unreadable"
            try:
                info = self._commit_journal(journal)
            except JournalError as exc:
                # The header goes out in one write, fsync'ed, before any audio: a journal
                # without a whole header was killed at birth and holds no audio.
                log.warning("voicemail: journal %s has no whole header (%s); removed", journal, exc)
                journal.unlink(missing_ok=True)
                return "removed"
            except OSError as exc:
                log.error("voicemail: journal %s unreadable, left alone: %s", journal, exc)
                unreadable.append(str(journal))
                return "unreadable"
            return "message" if info is not None else "removed"
        finally:
            os.close(fd)


@contextlib.contextmanager
def opened(
    data_dir: Path | str, settings: VoicemailConfig | None = None, *, recover: bool = True
) -> Iterator[VoicemailStore]:
    store = VoicemailStore.open(data_dir, settings, recover=recover)
    try:
        yield store
    finally:
        store.close()
