"""The appliance's SQLite database: one file, WAL mode, numbered schema migrations.

Every subsystem's tables live in this one file so that a backup or a factory reset is one
file.  Add a table by appending a step to ``MIGRATIONS``; never edit a step that shipped.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

DB_FILENAME = "ponte.db"
DEFAULT_DATA_DIR = "/var/lib/ponte"
DATA_DIR_ENV = "PONTE_DATA_DIR"

# PRAGMA application_id marks the file as ours ("PONT"), so that a foreign SQLite file put
# in our place is refused instead of having our tables added to it.
APPLICATION_ID = 0x504F4E54
# https://www.sqlite.org/fileformat.html section 1.3: every database starts with this.
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 5.0  # a writer holds the lock for milliseconds; 5 s means something is stuck


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class StoreCorruptError(StoreError):
    """The database file is damaged, foreign or unreadable; it was left untouched."""


class StoreVersionError(StoreError):
    """The database was written by newer firmware than this one."""


Migration = Callable[[sqlite3.Connection], None]


def _script(conn: sqlite3.Connection, sql: str) -> None:
    # Not executescript(): it commits first, which would split a migration in two.
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v1(conn: sqlite3.Connection) -> None:
    _script(
        conn,
        """
        CREATE TABLE config_version (
            version       INTEGER PRIMARY KEY,
            created_at    TEXT    NOT NULL,
            author        TEXT    NOT NULL,
            action        TEXT    NOT NULL,
            summary       TEXT    NOT NULL,
            config_schema INTEGER NOT NULL,
            document      TEXT    NOT NULL
        );
        CREATE TABLE audit_log (
            id       INTEGER PRIMARY KEY AUTOINCREMENT,
            at       TEXT    NOT NULL,
            actor    TEXT    NOT NULL,
            action   TEXT    NOT NULL,
            summary  TEXT    NOT NULL,
            detail   TEXT    NOT NULL DEFAULT '',
            version  INTEGER
        );
        CREATE INDEX audit_log_at ON audit_log(at);
        """,
    )


def _v_recordings(conn: sqlite3.Connection) -> None:
    # firmware.store.recordings: the call recordings' index (the WAV files live beside it).
    _script(
        conn,
        """
        CREATE TABLE recording (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at  TEXT    NOT NULL,
            caller      TEXT    NOT NULL,
            callee      TEXT    NOT NULL,
            reason      TEXT    NOT NULL,
            state       TEXT    NOT NULL CHECK (state IN ('recording', 'complete')),
            path        TEXT    NOT NULL UNIQUE,
            channels    INTEGER NOT NULL,
            rate        INTEGER NOT NULL,
            duration_ms INTEGER NOT NULL DEFAULT 0,
            size        INTEGER NOT NULL DEFAULT 0,
            salvaged    INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX recording_started_at ON recording(started_at);
        """,
    )


# Step i (1-based) brings user_version from i-1 to i.  Append only.
MIGRATIONS: tuple[Migration, ...] = (_v1, _v_recordings)


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


class Database:
    """One connection to the appliance database, safe to share between threads."""

    def __init__(
        self,
        path: Path,
        *,
        migrations: tuple[Migration, ...] = MIGRATIONS,
        application_id: int = APPLICATION_ID,
    ) -> None:
        self.path = path
        self.application_id = application_id
        self._lock = threading.RLock()
        _check_header(path)
        if not path.exists():
            # Create it private first: SQLite gives the -wal and -shm files the same mode,
            # and the file will hold SIP passwords.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        try:
            self.conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
            )
        except sqlite3.Error as exc:
            raise StoreCorruptError(f"{path}: cannot open database: {exc}") from exc
        try:
            self._setup(migrations)
        except sqlite3.OperationalError as exc:
            self.conn.close()
            raise StoreError(f"{path}: cannot use database: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreCorruptError(
                f"{path}: the database is damaged or not a database ({exc}); it was left "
                "untouched: move it aside and import a configuration backup"
            ) from exc
        except BaseException:
            self.conn.close()
            raise

    def _setup(self, migrations: tuple[Migration, ...]) -> None:
        conn = self.conn
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise StoreCorruptError(
                f"{self.path}: integrity check failed: {'; '.join(map(str, problems))}; "
                "the file was left untouched: move it aside and import a configuration backup"
            )
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        if app_id != self.application_id and (app_id != 0 or tables):
            raise StoreCorruptError(
                f"{self.path}: a SQLite database but not a Ponte one (application_id {app_id:#x}); "
                "refusing to touch it"
            )
        # Only now that the file is known to be ours may anything be written to it.
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
        # FULL: the WAL is synced at every commit, so a committed version survives power loss.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        self._migrate(migrations)

    def _migrate(self, migrations: tuple[Migration, ...]) -> None:
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(migrations):
                raise StoreVersionError(
                    f"{self.path}: database schema {version} is newer than this firmware "
                    f"supports ({len(migrations)}); boot the newer firmware or restore a backup"
                )
            if version == 0:
                conn.execute(f"PRAGMA application_id={self.application_id}")
            for number in range(version + 1, len(migrations) + 1):
                log.info("migrating %s to schema %d", self.path, number)
                migrations[number - 1](conn)
                conn.execute(f"PRAGMA user_version={number}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock up front (BEGIN IMMEDIATE), so that
        reading the head version and writing the next one cannot interleave with another
        writer, in this process or another."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads."""
        with self._lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self.conn.execute("COMMIT")

    def integrity_check(self) -> list[str]:
        with self._lock:
            return [str(row[0]) for row in self.conn.execute("PRAGMA integrity_check")]

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreCorruptError(f"{path}: cannot read: {exc}") from exc
    if head and head != SQLITE_HEADER[: len(head)]:
        raise StoreCorruptError(
            f"{path}: not a SQLite database (starts with {head[:16]!r}); it was left untouched: "
            "move it aside and import a configuration backup"
        )
    if 0 < len(head) < len(SQLITE_HEADER):
        raise StoreCorruptError(
            f"{path}: truncated database ({len(head)} bytes); it was left untouched"
        )
