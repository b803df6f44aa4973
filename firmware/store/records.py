"""Call detail records in SQLite: insert, query with paging, retention, CSV, summary figures.

The records live in their own file, ``DATA_DIR/records.db`` (WAL, ``synchronous=FULL``,
numbered migrations like the configuration database): they grow with traffic and are
pruned by retention, while the configuration database is what a backup must carry.  A
batch handed to :meth:`RecordStore.insert` is one transaction: once it returns the batch
survives a killed process or a power cut; a kill before that loses only that batch.

Summary definitions (docs/records.md):

- a *seizure* is a leg; a *call* is the set of legs sharing a call id;
- answer-seizure ratio, ITU-T E.411 (03/1998) section 2 / E.425: 100 x seizures that
  resulted in an answer signal / all seizures;
- average call duration: over answered calls, first answer to last end of the answered
  legs;
- calls per day and busiest hour by the start of the call's first leg, in the box's time
  zone (``system.timezone``).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import sqlite3
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from datetime import time as dtime
from pathlib import Path
from typing import Any, Final, TextIO

from firmware.store.db import Database, StoreError
from firmware.store.legs import (
    DISPOSITIONS,
    MAX_ID_CHARS,
    LegRecord,
    Party,
    Place,
    Quality,
    RecordError,
)

log = logging.getLogger(__name__)

RECORDS_FILENAME: Final = "records.db"
# PRAGMA application_id "PCDR": a records file is never mistaken for the configuration
# database (application_id "PONT") or the other way round.
RECORDS_APPLICATION_ID: Final = 0x50434452
MAX_PAGE: Final = 1000  # records per query page
DEFAULT_PAGE: Final = 100
MAX_BATCH: Final = 10_000  # records per insert transaction
EXPORT_CHUNK: Final = 2000  # rows fetched at a time while exporting
# Every UTC offset in the tz database since 1970 is a whole multiple of 15 minutes (the
# finest are +05:45 Nepal and +12:45 Chatham), and so is every DST transition instant, so
# all instants of one UTC quarter-hour fall in the same local hour and day.
BUCKET_MS: Final = 15 * 60 * 1000
MS_PER_DAY: Final = 86_400_000


def _v1(conn: sqlite3.Connection) -> None:
    for statement in (
        """
        CREATE TABLE leg (
            seq          INTEGER PRIMARY KEY AUTOINCREMENT,
            leg          TEXT    NOT NULL,
            call         TEXT    NOT NULL,
            direction    TEXT    NOT NULL,
            src_number   TEXT    NOT NULL,
            src_name     TEXT    NOT NULL,
            dst_number   TEXT    NOT NULL,
            dst_name     TEXT    NOT NULL,
            where_kind   TEXT    NOT NULL,
            where_name   TEXT    NOT NULL,
            start_ms     INTEGER NOT NULL,
            answer_ms    INTEGER,
            end_ms       INTEGER NOT NULL,
            disposition  TEXT    NOT NULL,
            sip_code     INTEGER,
            sip_reason   TEXT    NOT NULL,
            codec        TEXT    NOT NULL,
            jitter_ms    REAL,
            loss_pct     REAL,
            mos          REAL
        )
        """,
        "CREATE INDEX leg_start ON leg(start_ms, seq)",
        "CREATE INDEX leg_where ON leg(where_kind, where_name, start_ms)",
    ):
        conn.execute(statement)


# Step i (1-based) brings user_version from i-1 to i.  Append only.
RECORD_MIGRATIONS: Final = (_v1,)

_COLUMNS: Final = (
    "seq, leg, call, direction, src_number, src_name, dst_number, dst_name, where_kind, "
    "where_name, start_ms, answer_ms, end_ms, disposition, sip_code, sip_reason, codec, "
    "jitter_ms, loss_pct, mos"
)


class CursorError(StoreError):
    """A paging cursor that this store did not hand out."""


def _ms(t: float) -> int:
    return round(t * 1000)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as stored: ``seq`` numbers records in insertion order, never reused."""

    seq: int
    record: LegRecord

    def to_json(self) -> dict[str, str | int | float | bool | None]:
        return {"seq": self.seq, **self.record.to_json()}


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """Which records: ``since <= start < until`` (POSIX seconds), and optional filters."""

    since: float | None = None
    until: float | None = None
    port: int | None = None
    trunk: str | None = None
    disposition: str | None = None
    direction: str | None = None
    call: str | None = None

    def __post_init__(self) -> None:
        if self.disposition is not None and self.disposition not in DISPOSITIONS:
            raise RecordError(
                f"disposition {self.disposition!r} is not one of {', '.join(DISPOSITIONS)}"
            )
        if self.port is not None and self.port < 1:
            raise RecordError(f"port {self.port} is not a port number (1, 2, ...)")
        if self.since is not None and self.until is not None and self.until < self.since:
            raise RecordError("until is before since")

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.since is not None:
            clauses.append("start_ms >= ?")
            args.append(_ms(self.since))
        if self.until is not None:
            clauses.append("start_ms < ?")
            args.append(_ms(self.until))
        if self.port is not None:
            clauses.append("where_kind = 'port' AND where_name = ?")
            args.append(str(self.port))
        if self.trunk is not None:
            clauses.append("where_kind = 'trunk' AND where_name = ?")
            args.append(self.trunk)
        if self.disposition is not None:
            clauses.append("disposition = ?")
            args.append(self.disposition)
        if self.direction is not None:
            clauses.append("direction = ?")
            args.append(self.direction)
        if self.call is not None:
            clauses.append("call = ?")
            args.append(self.call)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


@dataclass(frozen=True, slots=True)
class Page:
    records: list[StoredRecord]
    next_cursor: str | None  # None: this was the last page


_CURSOR_RE: Final = re.compile(r"(-?\d{1,16})\.(\d{1,19})\Z")


def _cursor(start_ms: int, seq: int) -> str:
    return f"{start_ms}.{seq}"


def _parse_cursor(text: str) -> tuple[int, int]:
    m = _CURSOR_RE.match(text)
    if m is None:
        raise CursorError(f"cursor {text[:40]!r} was not handed out by records.list")
    return int(m[1]), int(m[2])


# --- summary ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """Legs on one port or trunk: how many, how many answered, minutes of conversation."""

    legs: int
    answered: int
    minutes: float

    def to_json(self) -> dict[str, int | float]:
        return {"legs": self.legs, "answered": self.answered, "minutes": round(self.minutes, 2)}


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    calls: int
    answered: int
    minutes: float

    def to_json(self) -> dict[str, str | int | float]:
        return {
            "day": self.day.isoformat(),
            "calls": self.calls,
            "answered": self.answered,
            "minutes": round(self.minutes, 2),
        }


@dataclass(frozen=True, slots=True)
class BusyHour:
    start: datetime  # local time, the hour's first instant
    calls: int
    minutes: float

    def to_json(self) -> dict[str, str | int | float]:
        return {
            "start": self.start.isoformat(),
            "calls": self.calls,
            "minutes": round(self.minutes, 2),
        }


@dataclass(frozen=True, slots=True)
class Summary:
    timezone: str
    since: float | None
    until: float | None
    legs: int
    answered_legs: int
    calls: int
    answered_calls: int
    asr_pct: float | None  # None when there was no seizure (0/0)
    average_call_s: float | None  # None when no call was answered
    per_day: list[DayFigures]
    busiest_hour: BusyHour | None
    hour_of_day: list[int]  # calls started in each local hour 0..23, over the range
    per_port: dict[int, Usage]
    per_trunk: dict[str, Usage]
    other: dict[str, Usage] = field(default_factory=dict)  # IP peers, by kind

    def to_json(self) -> dict[str, Any]:
        def iso(t: float | None) -> str | None:
            return datetime.fromtimestamp(t, UTC).isoformat() if t is not None else None

        return {
            "timezone": self.timezone,
            "since": iso(self.since),
            "until": iso(self.until),
            "legs": self.legs,
            "answered_legs": self.answered_legs,
            "calls": self.calls,
            "answered_calls": self.answered_calls,
            "asr_pct": None if self.asr_pct is None else round(self.asr_pct, 2),
            "average_call_s": None
            if self.average_call_s is None
            else round(self.average_call_s, 1),
            "per_day": [d.to_json() for d in self.per_day],
            "busiest_hour": self.busiest_hour.to_json() if self.busiest_hour else None,
            "hour_of_day": self.hour_of_day,
            "per_port": [{"port": p, **u.to_json()} for p, u in sorted(self.per_port.items())],
            "per_trunk": [{"trunk": t, **u.to_json()} for t, u in sorted(self.per_trunk.items())],
            "ip_peers": self.other.get("ip", Usage(0, 0, 0.0)).to_json(),
        }


# --- CSV --------------------------------------------------------------------------------

CSV_COLUMNS: Final = (
    "seq",
    "leg",
    "call",
    "direction",
    "source_number",
    "source_name",
    "destination_number",
    "destination_name",
    "where",
    "start",
    "answer",
    "end",
    "ring_s",
    "talk_s",
    "disposition",
    "sip_code",
    "sip_reason",
    "codec",
    "jitter_ms",
    "loss_pct",
    "mos",
)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV
# injection"); names and reasons come from callers, so such cells get a leading quote.
# Phone numbers like +4930... are left as they are.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_PHONE_RE: Final = re.compile(r"\+?[0-9*#]+\Z")


def _safe_cell(text: str) -> str:
    if text.startswith(_FORMULA_START) and not _PHONE_RE.match(text):
        return "'" + text
    return text


def _local_iso(ms: int | None, tz: tzinfo) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="milliseconds")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


# --- time ---------------------------------------------------------------------------


def zone(name: str) -> tzinfo:
    """The IANA zone ``name``; UTC (with a warning) when the box does not know it."""
    if name in ("", "UTC"):
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r: call records use UTC", name)
        return UTC


def parse_when(text: str, tz: tzinfo, *, end_of_day: bool = False) -> float:
    """POSIX seconds of an ISO 8601 date or date-time; a bare date is its local midnight
    (with ``end_of_day``, the next midnight, so that ``until: 2026-11-25`` includes that day)."""
    try:
        if "T" not in text and " " not in text and len(text) <= 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, dtime(0), tz)
            if end_of_day:
                moment = datetime.combine(date.fromordinal(day.toordinal() + 1), dtime(0), tz)
            return moment.timestamp()
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not an ISO 8601 date or date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.timestamp()


# --- the store --------------------------------------------------------------------------


class RecordStore:
    """The call-record database.  Open with ``RecordStore.open(data_dir)``; thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def open(cls, data_dir: Path | str) -> RecordStore:
        directory = Path(data_dir)
        directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        return cls(
            Database(
                directory / RECORDS_FILENAME,
                migrations=RECORD_MIGRATIONS,
                application_id=RECORDS_APPLICATION_ID,
            )
        )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------
    def insert(self, records: Sequence[LegRecord]) -> list[int]:
        """Store ``records`` in one transaction; returns their ``seq`` numbers."""
        if len(records) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} records a batch, not {len(records)}")
        for r in records:
            if not isinstance(r, LegRecord):
                raise RecordError(f"not a LegRecord: {type(r).__name__}")
        seqs: list[int] = []
        with self.db.transaction() as conn:
            for r in records:
                q = r.quality
                cur = conn.execute(
                    "INSERT INTO leg (leg, call, direction, src_number, src_name, dst_number, "
                    "dst_name, where_kind, where_name, start_ms, answer_ms, end_ms, disposition, "
                    "sip_code, sip_reason, codec, jitter_ms, loss_pct, mos) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.id,
                        r.call,
                        r.direction,
                        r.source.number,
                        r.source.name,
                        r.destination.number,
                        r.destination.name,
                        r.where.kind,
                        r.where.name,
                        _ms(r.start),
                        None if r.answer is None else _ms(r.answer),
                        _ms(r.end),
                        r.disposition,
                        r.sip_code,
                        r.sip_reason,
                        r.codec,
                        q.jitter_ms if q else None,
                        q.loss_pct if q else None,
                        q.mos if q else None,
                    ),
                )
                seqs.append(int(cur.lastrowid or 0))
        return seqs

    def prune(self, now: float, *, retention_days: int, max_rows: int) -> int:
        """Delete records that started more than ``retention_days`` before ``now`` (0: no
        age limit), then all but the newest ``max_rows``.  Returns how many went."""
        if retention_days < 0 or max_rows < 0:
            raise ValueError("retention_days and max_rows must be >= 0")
        deleted = 0
        with self.db.transaction() as conn:
            if retention_days > 0:
                cutoff = _ms(now) - retention_days * MS_PER_DAY
                deleted += conn.execute("DELETE FROM leg WHERE start_ms < ?", (cutoff,)).rowcount
            row = conn.execute(
                "SELECT seq FROM leg ORDER BY seq DESC LIMIT 1 OFFSET ?", (max_rows,)
            ).fetchone()
            if row is not None:
                deleted += conn.execute("DELETE FROM leg WHERE seq <= ?", (row[0],)).rowcount
        if deleted:
            log.info("call records: %d deleted by retention", deleted)
        return deleted

    # -- reading ----------------------------------------------------------------------
    def count(self, query: RecordQuery | None = None) -> int:
        where, args = (query or RecordQuery()).where()
        with self.db.reading() as conn:
            return int(conn.execute(f"SELECT count(*) FROM leg{where}", args).fetchone()[0])

    def last_seq(self) -> int:
        with self.db.reading() as conn:
            row = conn.execute("SELECT max(seq) FROM leg").fetchone()
        return int(row[0] or 0)

    def after(self, seq: int, limit: int) -> list[StoredRecord]:
        """Records with a ``seq`` above ``seq``, in insertion order (for the event stream)."""
        with self.db.reading() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM leg WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
            ).fetchall()
        return [_decode(row) for row in rows]

    def query(
        self, query: RecordQuery, *, limit: int = DEFAULT_PAGE, cursor: str | None = None
    ) -> Page:
        """Newest first.  Pass ``next_cursor`` back as ``cursor`` for the next page; pages
        stay consistent while records are added (new ones are newer than the cursor)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be 1..{MAX_PAGE}")
        where, args = query.where()
        if cursor is not None:
            start_ms, seq = _parse_cursor(cursor)
            where += (" AND " if where else " WHERE ") + "(start_ms, seq) < (?, ?)"
            args += [start_ms, seq]
        with self.db.reading() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM leg{where} ORDER BY start_ms DESC, seq DESC LIMIT ?",
                [*args, limit + 1],
            ).fetchall()
        records = [_decode(row) for row in rows[:limit]]
        more = len(rows) > limit
        last = rows[limit - 1] if more else None
        return Page(records, _cursor(last[10], last[0]) if last is not None else None)

    def iterate(self, query: RecordQuery) -> Iterator[StoredRecord]:
        """Oldest first, fetched in chunks (each chunk its own snapshot)."""
        for row in self._rows(query):
            yield _decode(row)

    def _rows(self, query: RecordQuery) -> Iterator[tuple[Any, ...]]:
        where, args = query.where()
        position = (-(2**62), 0)
        while True:
            extra = (" AND " if where else " WHERE ") + "(start_ms, seq) > (?, ?)"
            with self.db.reading() as conn:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM leg{where}{extra} ORDER BY start_ms, seq LIMIT ?",
                    [*args, *position, EXPORT_CHUNK],
                ).fetchall()
            yield from rows
            if len(rows) < EXPORT_CHUNK:
                return
            position = (rows[-1][10], rows[-1][0])

    def export_csv(self, out: TextIO, query: RecordQuery, tz: tzinfo = UTC) -> int:
        """Write the records as CSV (RFC 4180: CRLF, quoted where needed, a header row),
        oldest first, times ISO 8601 in ``tz``.  Returns the number of rows."""
        writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(CSV_COLUMNS)
        rows = 0
        # Straight from the rows: what the store holds passed LegRecord's checks going in,
        # and building a record per row would double the time of a 100k-row export.
        for row in self._rows(query):
            writer.writerow(_csv_row(row, tz))
            rows += 1
        return rows

    def export_csv_text(self, query: RecordQuery, tz: tzinfo = UTC) -> tuple[str, int]:
        buffer = io.StringIO(newline="")
        rows = self.export_csv(buffer, query, tz)
        return buffer.getvalue(), rows

    def summary(
        self, since: float | None = None, until: float | None = None, tz: tzinfo = UTC
    ) -> Summary:
        where, args = RecordQuery(since=since, until=until).where()
        with self.db.reading() as conn:
            legs, answered_legs = conn.execute(
                f"SELECT count(*), count(answer_ms) FROM leg{where}", args
            ).fetchone()
            buckets = conn.execute(
                "WITH calls AS (SELECT min(start_ms) AS start_ms, min(answer_ms) AS answer_ms, "
                "max(CASE WHEN answer_ms IS NOT NULL THEN end_ms END) AS end_ms "
                f"FROM leg{where} GROUP BY call) "
                "SELECT start_ms / ?, count(*), count(answer_ms), total(end_ms - answer_ms) "
                "FROM calls GROUP BY 1",
                [*args, BUCKET_MS],
            ).fetchall()
            places = conn.execute(
                "SELECT where_kind, where_name, count(*), count(answer_ms), "
                f"total(end_ms - answer_ms) FROM leg{where} GROUP BY where_kind, where_name",
                args,
            ).fetchall()
        return _summarize(since, until, tz, legs, answered_legs, buckets, places)


def _summarize(
    since: float | None,
    until: float | None,
    tz: tzinfo,
    legs: int,
    answered_legs: int,
    buckets: list[tuple[int, int, int, float]],
    places: list[tuple[str, str, int, int, float]],
) -> Summary:
    days: dict[date, list[float]] = {}
    hours: dict[datetime, list[float]] = {}
    hour_of_day = [0] * 24
    calls = answered_calls = 0
    talk_ms = 0.0
    for bucket, n, answered, talk in buckets:
        # Integer division in SQLite truncates towards zero; records before 1970 cannot exist.
        local = datetime.fromtimestamp(bucket * BUCKET_MS / 1000, tz)
        hour = local.replace(minute=0, second=0, microsecond=0)
        for acc in (
            days.setdefault(local.date(), [0, 0, 0.0]),
            hours.setdefault(hour, [0, 0, 0.0]),
        ):
            acc[0] += n
            acc[1] += answered
            acc[2] += talk
        hour_of_day[local.hour] += n
        calls += n
        answered_calls += answered
        talk_ms += talk
    per_day = [
        DayFigures(day, int(a[0]), int(a[1]), a[2] / 60000) for day, a in sorted(days.items())
    ]
    busiest = None
    if hours:
        # The most calls started; the earlier hour wins a tie.
        start, acc = max(sorted(hours.items()), key=lambda item: item[1][0])
        busiest = BusyHour(start, int(acc[0]), acc[2] / 60000)
    per_port: dict[int, Usage] = {}
    per_trunk: dict[str, Usage] = {}
    other: dict[str, Usage] = {}
    for kind, name, n, answered, talk in places:
        usage = Usage(n, answered, talk / 60000)
        if kind == "port" and name.isdigit():
            per_port[int(name)] = usage
        elif kind == "trunk":
            per_trunk[name] = usage
        else:
            prev = other.get(kind, Usage(0, 0, 0.0))
            other[kind] = Usage(
                prev.legs + n, prev.answered + answered, prev.minutes + usage.minutes
            )
    return Summary(
        timezone=str(getattr(tz, "key", tz)),
        since=since,
        until=until,
        legs=legs,
        answered_legs=answered_legs,
        calls=calls,
        answered_calls=answered_calls,
        asr_pct=100 * answered_legs / legs if legs else None,
        average_call_s=talk_ms / 1000 / answered_calls if answered_calls else None,
        per_day=per_day,
        busiest_hour=busiest,
        hour_of_day=hour_of_day,
        per_port=per_port,
        per_trunk=per_trunk,
        other=other,
    )


def _decode(row: sqlite3.Row | tuple[Any, ...]) -> StoredRecord:
    (
        seq,
        leg,
        call,
        direction,
        src_number,
        src_name,
        dst_number,
        dst_name,
        where_kind,
        where_name,
        start_ms,
        answer_ms,
        end_ms,
        disposition,
        sip_code,
        sip_reason,
        codec,
        jitter_ms,
        loss_pct,
        mos,
    ) = row
    quality = Quality(jitter_ms, loss_pct, mos) if mos is not None else None
    return StoredRecord(
        seq,
        LegRecord(
            id=leg,
            call=call,
            direction=direction,
            source=Party(src_number, src_name),
            destination=Party(dst_number, dst_name),
            where=Place(where_kind, where_name),
            start=start_ms / 1000,
            answer=None if answer_ms is None else answer_ms / 1000,
            end=end_ms / 1000,
            disposition=disposition,
            sip_code=sip_code,
            sip_reason=sip_reason,
            codec=codec,
            quality=quality,
        ),
    )


def _csv_row(row: tuple[Any, ...], tz: tzinfo) -> list[str]:
    (seq, leg, call, direction, src_number, src_name, dst_number, dst_name, where_kind,
     where_name, start_ms, answer_ms, end_ms, disposition, sip_code, sip_reason, codec,
     jitter_ms, loss_pct, mos) = row  # fmt: skip
    return [
        str(seq),
        _safe_cell(leg),
        _safe_cell(call),
        direction,
        _safe_cell(src_number),
        _safe_cell(src_name),
        _safe_cell(dst_number),
        _safe_cell(dst_name),
        _safe_cell(f"{where_kind} {where_name}"),
        _local_iso(start_ms, tz),
        _local_iso(answer_ms, tz),
        _local_iso(end_ms, tz),
        f"{((answer_ms if answer_ms is not None else end_ms) - start_ms) / 1000:.3f}",
        f"{(end_ms - answer_ms) / 1000 if answer_ms is not None else 0:.3f}",
        disposition,
        "" if sip_code is None else str(sip_code),
        _safe_cell(sip_reason),
        _safe_cell(codec),
        _num(jitter_ms),
        _num(loss_pct),
        _num(mos),
    ]


__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_PAGE",
    "MAX_ID_CHARS",
    "MAX_PAGE",
    "RECORDS_FILENAME",
    "BusyHour",
    "CursorError",
    "DayFigures",
    "Page",
    "RecordQuery",
    "RecordStore",
    "StoredRecord",
    "Summary",
    "Usage",
    "parse_when",
    "zone",
]
