"""Per-extension availability (forwarding, do not disturb) set by feature codes.

Its own SQLite file beside the configuration database, like the call records: this is what
people dial on their phones, not configuration; it is not versioned, audited or rolled back
with the configuration, and a configuration import must not wipe it.  Its own file also keeps
its schema steps out of the configuration database's numbered migrations.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware.store.db import Database

AVAILABILITY_FILENAME: Final = "availability.db"
# PRAGMA application_id "PAVL": never mistaken for the configuration or records database.
AVAILABILITY_APPLICATION_ID: Final = 0x5041564C


def _v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE availability (
            extension         TEXT    PRIMARY KEY,
            forward_all       TEXT    NOT NULL DEFAULT '',
            forward_busy      TEXT    NOT NULL DEFAULT '',
            forward_no_answer TEXT    NOT NULL DEFAULT '',
            dnd               INTEGER NOT NULL DEFAULT 0 CHECK (dnd IN (0, 1))
        )
        """
    )


# Step i (1-based) brings user_version from i-1 to i.  Append only.
AVAILABILITY_MIGRATIONS: Final = (_v1,)


@dataclass(frozen=True, slots=True)
class AvailabilityRow:
    extension: str
    forward_all: str = ""
    forward_busy: str = ""
    forward_no_answer: str = ""
    dnd: bool = False


class AvailabilityStore:
    """Open with ``AvailabilityStore.open(data_dir)``; thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def open(cls, data_dir: Path | str) -> AvailabilityStore:
        directory = Path(data_dir)
        directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        return cls(
            Database(
                directory / AVAILABILITY_FILENAME,
                migrations=AVAILABILITY_MIGRATIONS,
                application_id=AVAILABILITY_APPLICATION_ID,
            )
        )

    def close(self) -> None:
        self.db.close()

    def load(self) -> list[AvailabilityRow]:
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT extension, forward_all, forward_busy, forward_no_answer, dnd "
                "FROM availability ORDER BY extension"
            ).fetchall()
        return [AvailabilityRow(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def save(self, row: AvailabilityRow) -> None:
        """Store one extension's state; all off removes its row."""
        with self.db.transaction() as conn:
            if not (row.forward_all or row.forward_busy or row.forward_no_answer or row.dnd):
                conn.execute("DELETE FROM availability WHERE extension = ?", (row.extension,))
                return
            conn.execute(
                "INSERT INTO availability "
                "(extension, forward_all, forward_busy, forward_no_answer, dnd) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(extension) DO UPDATE SET "
                "forward_all = excluded.forward_all, forward_busy = excluded.forward_busy, "
                "forward_no_answer = excluded.forward_no_answer, dnd = excluded.dnd",
                (
                    row.extension,
                    row.forward_all,
                    row.forward_busy,
                    row.forward_no_answer,
                    int(row.dnd),
                ),
            )
