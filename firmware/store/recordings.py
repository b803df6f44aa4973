"""The call recordings' index: one row per WAV file, in the appliance database.

A row is written (state ``recording``) before its file exists and completed after the file
was renamed into place, so that whatever moment a process dies at, the row tells the
recorder's reconciliation (``firmware.service.recording``) what to look for.  Retention is
a pure selection (:func:`select_for_removal`) over the rows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Literal

from firmware.store.db import Database

MAX_LIST: Final = 1000  # rows one listing returns at most
MAX_PARTY_LEN: Final = 64

State = Literal["recording", "complete"]


class RecordingIndexError(ValueError):
    """A request the index refuses (unknown id, bad filter), with the reason."""


@dataclass(frozen=True, slots=True)
class RecordingRow:
    id: int
    started_at: dt.datetime  # UTC
    caller: str
    callee: str
    reason: str  # "always", "on_demand" or "conference"
    state: State
    path: str  # file name in the recordings directory
    channels: int
    rate: int
    duration_ms: int
    size: int  # bytes of the WAV file
    salvaged: bool  # completed from what a killed process left

    def to_json(self) -> dict[str, str | int | bool]:
        return {
            "id": self.id,
            "started_at": self.started_at.isoformat(),
            "caller": self.caller,
            "callee": self.callee,
            "reason": self.reason,
            "state": self.state,
            "path": self.path,
            "channels": self.channels,
            "rate": self.rate,
            "duration_ms": self.duration_ms,
            "size": self.size,
            "salvaged": self.salvaged,
        }


_COLUMNS = (
    "id, started_at, caller, callee, reason, state, path, channels, rate, duration_ms, size, "
    "salvaged"
)


def _row(r: tuple[object, ...]) -> RecordingRow:
    (rid, started, caller, callee, reason, state, path, ch, rate, dur, size, salv) = r
    return RecordingRow(
        int(str(rid)),
        dt.datetime.fromisoformat(str(started)),
        str(caller),
        str(callee),
        str(reason),
        "complete" if state == "complete" else "recording",
        str(path),
        int(str(ch)),
        int(str(rate)),
        int(str(dur)),
        int(str(size)),
        bool(salv),
    )


def _utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        raise RecordingIndexError(f"time {when.isoformat()} has no time zone")
    return when.astimezone(dt.UTC)


class RecordingIndex:
    """Rows of ``recording`` in the appliance database; thread-safe as ``Database`` is."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(
        self,
        *,
        started_at: dt.datetime,
        caller: str,
        callee: str,
        reason: str,
        channels: int,
        rate: int,
        path_for: Callable[[int, dt.datetime], str],
    ) -> RecordingRow:
        """A new row in state ``recording``; ``path_for(id, started_at)`` names its file."""
        for what, value in (("caller", caller), ("callee", callee)):
            if len(value) > MAX_PARTY_LEN:
                raise RecordingIndexError(f"{what} longer than {MAX_PARTY_LEN} characters")
        started = _utc(started_at)
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO recording (started_at, caller, callee, reason, state, path, "
                "channels, rate) VALUES (?, ?, ?, ?, 'recording', ?, ?, ?)",
                (
                    started.isoformat(),
                    caller,
                    callee,
                    reason,
                    f".pending-{uuid.uuid4().hex}",
                    channels,
                    rate,
                ),
            )
            rid = int(cur.lastrowid or 0)
            conn.execute(
                "UPDATE recording SET path = ? WHERE id = ?", (path_for(rid, started), rid)
            )
            row = conn.execute(f"SELECT {_COLUMNS} FROM recording WHERE id = ?", (rid,)).fetchone()
        return _row(row)

    def complete(self, rid: int, *, duration_ms: int, size: int, salvaged: bool = False) -> None:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE recording SET state = 'complete', duration_ms = ?, size = ?, salvaged = ? "
                "WHERE id = ?",
                (duration_ms, size, int(salvaged), rid),
            )
            if cur.rowcount != 1:
                raise RecordingIndexError(f"no recording {rid}")

    def delete(self, rids: Iterable[int]) -> int:
        ids = list(rids)
        if not ids:
            return 0
        with self.db.transaction() as conn:
            return sum(
                conn.execute("DELETE FROM recording WHERE id = ?", (rid,)).rowcount for rid in ids
            )

    def get(self, rid: int) -> RecordingRow:
        with self.db.reading() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM recording WHERE id = ?", (rid,)).fetchone()
        if row is None:
            raise RecordingIndexError(f"no recording {rid}")
        return _row(row)

    def find(
        self,
        *,
        limit: int = 100,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        party: str = "",
        state: State | None = "complete",
    ) -> list[RecordingRow]:
        """Newest first; ``party`` matches the caller or the callee exactly."""
        if not 1 <= limit <= MAX_LIST:
            raise RecordingIndexError(f"limit {limit} is not in 1..{MAX_LIST}")
        where, args = ["1=1"], []
        if since is not None:
            where.append("started_at >= ?")
            args.append(_utc(since).isoformat())
        if until is not None:
            where.append("started_at < ?")
            args.append(_utc(until).isoformat())
        if party:
            where.append("(caller = ? OR callee = ?)")
            args += [party, party]
        if state is not None:
            where.append("state = ?")
            args.append(state)
        sql = (
            f"SELECT {_COLUMNS} FROM recording WHERE {' AND '.join(where)} "
            "ORDER BY started_at DESC, id DESC LIMIT ?"
        )
        with self.db.reading() as conn:
            rows = conn.execute(sql, (*args, limit)).fetchall()
        return [_row(r) for r in rows]

    def all(self) -> list[RecordingRow]:
        """Every row, oldest first (reconciliation and retention walk them all)."""
        with self.db.reading() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM recording ORDER BY started_at, id")
            return [_row(r) for r in rows.fetchall()]

    def total_size(self) -> int:
        with self.db.reading() as conn:
            return int(conn.execute("SELECT coalesce(sum(size), 0) FROM recording").fetchone()[0])


def file_name(rid: int, started_at: dt.datetime) -> str:
    """``20261125-203501-42.wav``: sorts by time, unique by id."""
    return f"{_utc(started_at):%Y%m%d-%H%M%S}-{rid}.wav"


def select_for_removal(
    rows: Iterable[RecordingRow],
    *,
    now: dt.datetime,
    retention_days: int,
    max_total_bytes: int,
) -> list[RecordingRow]:
    """Completed rows to delete: older than ``retention_days`` (0: none by age), then the
    oldest until the rest fit in ``max_total_bytes`` (0: no cap).  Recordings in progress
    are never chosen; their size still counts towards the cap."""
    rows = sorted(rows, key=lambda r: (r.started_at, r.id))
    chosen: list[RecordingRow] = []
    keep: list[RecordingRow] = []
    if retention_days > 0:
        cutoff = _utc(now) - dt.timedelta(days=retention_days)
        for r in rows:
            (chosen if r.state == "complete" and r.started_at < cutoff else keep).append(r)
    else:
        keep = rows
    if max_total_bytes > 0:
        total = sum(r.size for r in keep)
        for r in keep:
            if total <= max_total_bytes:
                break
            if r.state == "complete":
                chosen.append(r)
                total -= r.size
    return chosen


__all__ = [
    "RecordingIndex",
    "RecordingIndexError",
    "RecordingRow",
    "file_name",
    "select_for_removal",
]
