"""Queue agents logged in by feature code (``features.codes.queue_login`` / ``queue_logout``).

Its own SQLite file beside the configuration database, like availability.db: this is what
people dial on their phones, not configuration; it survives restarts and configuration
changes, and is not versioned or rolled back with the configuration.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Final

from firmware.store.db import Database

AGENTS_FILENAME: Final = "agents.db"
# PRAGMA application_id "PAGT": never mistaken for another of the box's databases.
AGENTS_APPLICATION_ID: Final = 0x50414754


def _v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE agents (
            extension TEXT PRIMARY KEY,
            since     REAL NOT NULL
        )
        """
    )


# Step i (1-based) brings user_version from i-1 to i.  Append only.
AGENTS_MIGRATIONS: Final = (_v1,)


class AgentStore:
    """Open with ``AgentStore.open(data_dir)``; thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def open(cls, data_dir: Path | str) -> AgentStore:
        directory = Path(data_dir)
        directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        return cls(
            Database(
                directory / AGENTS_FILENAME,
                migrations=AGENTS_MIGRATIONS,
                application_id=AGENTS_APPLICATION_ID,
            )
        )

    def close(self) -> None:
        self.db.close()

    def load(self) -> list[str]:
        """The extensions logged in, in the order they logged in."""
        with self.db.reading() as conn:
            rows = conn.execute("SELECT extension FROM agents ORDER BY since").fetchall()
        return [r[0] for r in rows]

    def save(self, extension: str, logged_in: bool) -> None:
        with self.db.transaction() as conn:
            if logged_in:
                conn.execute(
                    "INSERT INTO agents (extension, since) VALUES (?, ?) "
                    "ON CONFLICT(extension) DO NOTHING",
                    (extension, time.time()),
                )
            else:
                conn.execute("DELETE FROM agents WHERE extension = ?", (extension,))
