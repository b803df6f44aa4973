"""Call records in the running appliance: recorder -> store, retention, API, events.

:class:`RecordsService` owns the call-record store (``DATA_DIR/records.db``) and a
:class:`firmware.pbx.records.CallRecorder`.  Call control's shell feeds
``service.recorder`` (``started`` / ``answered`` / ``quality`` / ``ended``); every
``FLUSH_INTERVAL_S`` the service collects the finished records and writes them in one
transaction, publishes ``records.added`` for every new row (its own and any another
process wrote), closes legs whose end never came, and applies retention hourly.
``stop()`` ends the legs still in flight and writes everything before it closes the file,
so a clean stop loses no record; a kill loses at most the last interval's records.

:func:`register_records_api` adds ``records.list``, ``records.summary`` and
``records.export`` to the API server (docs/api.md, docs/records.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
import zoneinfo
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Final, Literal

from firmware.api.core import CallContext
from firmware.api.protocol import ApiFault, ErrorCode, JsonValue
from firmware.api.schema import FieldError
from firmware.api.server import ApiServer
from firmware.pbx.records import CallRecorder
from firmware.store import Config, StoreError
from firmware.store.legs import LegRecord, RecordError
from firmware.store.records import (
    DEFAULT_PAGE,
    MAX_PAGE,
    CursorError,
    RecordQuery,
    RecordStore,
    parse_when,
    zone,
)

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S: Final = 1.0  # what a kill may lose; one fsync'd transaction a second at most
PRUNE_INTERVAL_S: Final = 3600.0
MAX_PENDING: Final = 10_000  # records waiting for the disk; past it the oldest are dropped
MAX_EVENTS_PER_FLUSH: Final = 100  # records.added events per interval; a bulk import skips
# The API's messages are at most 1 MiB (firmware.api.protocol.MAX_MESSAGE_BYTES); JSON
# escaping of quotes and CRLFs grows CSV text, so text exports stop well below it.
MAX_EXPORT_TEXT_BYTES: Final = 640 * 1024
EXPORT_DIR: Final = "exports"

Publish = Callable[[str, Any], object]


def _no_publish(topic: str, data: dict[str, Any]) -> None:
    return None


class RecordsService:
    def __init__(
        self,
        data_dir: Path,
        *,
        config: Callable[[], Config | None],
        clock: Callable[[], float] = time.time,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        recorder: CallRecorder | None = None,
    ) -> None:
        self.data_dir = data_dir
        # Call control may own the recorder and hand it in, or use this one.
        self.recorder = recorder if recorder is not None else CallRecorder()
        self.publish: Publish = _no_publish
        self._config = config
        self._clock = clock
        self._interval = flush_interval_s
        self._store: RecordStore | None = None
        self._pending: deque[LegRecord] = deque()
        self._published = 0  # the last seq announced on records.added
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._next_prune = 0.0
        self.dropped = 0

    @property
    def store(self) -> RecordStore:
        if self._store is None:
            raise ApiFault(ErrorCode.INVALID_STATE, "the call-record store is not open")
        return self._store

    def timezone(self) -> tzinfo:
        config = self._config()
        return zone(config.system.timezone if config is not None else "UTC")

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._store = await asyncio.to_thread(RecordStore.open, self.data_dir)
        await self._prune()
        self._published = await asyncio.to_thread(self._store.last_seq)
        self._task = asyncio.create_task(self._run(), name="records")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        closed = self.recorder.close_all(self._clock())
        if closed:
            log.info("call records: %d legs in flight closed at stop", closed)
        if self._store is not None:
            await self.flush()
            self._store.close()
            self._store = None

    def add(self, record: LegRecord) -> None:
        """Queue a finished record for the next write (records not from ``recorder``)."""
        if len(self._pending) >= MAX_PENDING:
            self._pending.popleft()
            self.dropped += 1
            log.error("call records: %d waiting for the disk, dropping the oldest", MAX_PENDING)
        self._pending.append(record)

    async def flush(self) -> int:
        """Write what finished so far; announce new rows.  Returns how many were written."""
        async with self._flush_lock:
            for record in self.recorder.drain():
                self.add(record)
            if self._store is None:
                return 0
            batch = list(self._pending)
            self._pending.clear()
            if batch:
                try:
                    await asyncio.to_thread(self._store.insert, batch)
                except (StoreError, sqlite3.Error, OSError) as exc:
                    # Kept for the next interval (disk full, a locked file): put back in
                    # front of what arrived meanwhile, within the cap.
                    log.error("call records: cannot write %d records: %s", len(batch), exc)
                    self._pending.extendleft(reversed(batch))
                    while len(self._pending) > MAX_PENDING:
                        self._pending.popleft()
                        self.dropped += 1
                    return 0
            try:
                await self._announce()
            except (StoreError, sqlite3.Error) as exc:
                log.error("call records: cannot read new records: %s", exc)
            return len(batch)

    async def _announce(self) -> None:
        assert self._store is not None
        new = await asyncio.to_thread(self._store.after, self._published, MAX_EVENTS_PER_FLUSH + 1)
        if len(new) > MAX_EVENTS_PER_FLUSH:
            last = await asyncio.to_thread(self._store.last_seq)
            log.info(
                "call records: %d added at once, events for the latest only", last - self._published
            )
            self._published = max(self._published, last - MAX_EVENTS_PER_FLUSH)
            new = await asyncio.to_thread(self._store.after, self._published, MAX_EVENTS_PER_FLUSH)
        for stored in new:
            self.publish("records.added", stored.to_json())
            self._published = stored.seq

    async def _prune(self) -> None:
        config = self._config()
        if config is None or self._store is None:
            return
        keep = config.records
        try:
            await asyncio.to_thread(
                self._store.prune,
                self._clock(),
                retention_days=keep.retention_days,
                max_rows=keep.max_rows,
            )
        except StoreError as exc:
            log.error("call records: retention failed: %s", exc)
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_S

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                self.recorder.handle_timer(self._clock())
                await self.flush()
                if time.monotonic() >= self._next_prune:
                    await self._prune()
            except Exception:
                log.exception("call records: flush failed")


# --- API ---------------------------------------------------------------------------------

_TIME_DOC = (
    "ISO 8601 date or date-time (2026-11-25, 2026-11-25T08:00, ...Z or +01:00); "
    "without an offset it is the box's time zone"
)


def _check_time(name: str, value: str | None) -> None:
    if value is None:
        return
    try:
        parse_when(value, UTC)
    except ValueError as exc:
        raise FieldError(name, str(exc)) from None


Dispo = Literal["answered", "busy", "no-answer", "failed", "cancelled", "refused"]
Direct = Literal["inbound", "outbound", "internal"]


@dataclass(frozen=True, slots=True)
class FilterParams:
    since: str | None = field(default=None, metadata={"doc": "from (inclusive); " + _TIME_DOC})
    until: str | None = field(
        default=None, metadata={"doc": "to (exclusive; a bare date includes that day)"}
    )
    port: int | None = field(default=None, metadata={"doc": "only legs on this port", "min": 1})
    trunk: str | None = field(
        default=None, metadata={"doc": "only legs on this trunk", "max_length": 128}
    )
    disposition: Dispo | None = None
    direction: Direct | None = None
    call: str | None = field(
        default=None, metadata={"doc": "only the legs of this call", "max_length": 128}
    )

    def __post_init__(self) -> None:
        _check_time("since", self.since)
        _check_time("until", self.until)


@dataclass(frozen=True, slots=True)
class ListParams(FilterParams):
    limit: int = field(default=DEFAULT_PAGE, metadata={"min": 1, "max": MAX_PAGE})
    cursor: str | None = field(
        default=None, metadata={"doc": "next_cursor of the previous page", "max_length": 64}
    )


@dataclass(frozen=True, slots=True)
class SummaryParams:
    since: str | None = field(default=None, metadata={"doc": "from (inclusive); " + _TIME_DOC})
    until: str | None = field(
        default=None, metadata={"doc": "to (exclusive; a bare date includes that day)"}
    )
    timezone: str | None = field(
        default=None,
        metadata={"doc": "IANA zone for days and hours; default system.timezone", "max_length": 64},
    )

    def __post_init__(self) -> None:
        _check_time("since", self.since)
        _check_time("until", self.until)
        if self.timezone is not None:
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise FieldError("timezone", f"unknown time zone {self.timezone[:64]!r}") from None


@dataclass(frozen=True, slots=True)
class ExportParams(FilterParams):
    to_file: bool = field(
        default=False,
        metadata={"doc": "write DATA_DIR/exports/records-*.csv and return its path"},
    )


def _query(params: FilterParams, tz: tzinfo) -> RecordQuery:
    try:
        return RecordQuery(
            since=None if params.since is None else parse_when(params.since, tz),
            until=None if params.until is None else parse_when(params.until, tz, end_of_day=True),
            port=params.port,
            trunk=params.trunk,
            disposition=params.disposition,
            direction=params.direction,
            call=params.call,
        )
    except RecordError as exc:
        raise ApiFault(ErrorCode.INVALID_PARAMS, str(exc), "params.until") from None


def _write_file(path: Path, store: RecordStore, query: RecordQuery, tz: tzinfo) -> tuple[int, int]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with open(fd, "w", encoding="utf-8", newline="") as f:
        rows = store.export_csv(f, query, tz)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return rows, path.stat().st_size


def register_records_api(server: ApiServer, service: RecordsService) -> None:
    async def records_list(params: ListParams, ctx: CallContext) -> JsonValue:
        store = service.store
        query = _query(params, service.timezone())
        try:
            page = await asyncio.to_thread(
                store.query, query, limit=params.limit, cursor=params.cursor
            )
        except CursorError as exc:
            raise ApiFault(ErrorCode.INVALID_PARAMS, str(exc), "params.cursor") from None
        records: list[JsonValue] = [r.to_json() for r in page.records]
        return {"records": records, "next_cursor": page.next_cursor}

    async def records_summary(params: SummaryParams, ctx: CallContext) -> JsonValue:
        store = service.store
        tz = zone(params.timezone) if params.timezone else service.timezone()
        since = None if params.since is None else parse_when(params.since, tz)
        until = None if params.until is None else parse_when(params.until, tz, end_of_day=True)
        if since is not None and until is not None and until < since:
            raise ApiFault(ErrorCode.INVALID_PARAMS, "until is before since", "params.until")
        summary = await asyncio.to_thread(store.summary, since, until, tz)
        result: JsonValue = summary.to_json()
        return result

    async def records_export(params: ExportParams, ctx: CallContext) -> JsonValue:
        store = service.store
        tz = service.timezone()
        query = _query(params, tz)
        if params.to_file:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            path = service.data_dir / EXPORT_DIR / f"records-{stamp}.csv"
            try:
                rows, size = await asyncio.to_thread(_write_file, path, store, query, tz)
            except OSError as exc:
                raise ApiFault(ErrorCode.INTERNAL_ERROR, f"cannot write {path}: {exc}") from None
            return {"path": str(path), "rows": rows, "bytes": size}
        text, rows = await asyncio.to_thread(store.export_csv_text, query, tz)
        if len(text.encode()) > MAX_EXPORT_TEXT_BYTES:
            raise ApiFault(
                ErrorCode.INVALID_PARAMS,
                f"{rows} records make more than {MAX_EXPORT_TEXT_BYTES // 1024} KiB of CSV: "
                "narrow since/until or ask for to_file",
                "params.to_file",
                {"rows": rows},
            )
        return {"csv": text, "rows": rows}

    server.register(
        "records.list",
        records_list,
        ListParams,
        result="{records: [{seq, id, call, direction, source_number, source_name, "
        "destination_number, destination_name, where, start, answer, end, ring_s, talk_s, "
        "disposition, sip_code, sip_reason, codec, jitter_ms, loss_pct, mos}], next_cursor} "
        "newest first",
        summary="Call records (one per leg), filtered and paged (events: records.added)",
        requires_login=True,
    )
    server.register(
        "records.summary",
        records_summary,
        SummaryParams,
        result="{timezone, since, until, legs, answered_legs, calls, answered_calls, asr_pct, "
        "average_call_s, per_day, busiest_hour, hour_of_day, per_port, per_trunk, ip_peers}",
        summary="Calls per day, answer-seizure ratio, average call duration, busiest hour, "
        "per-port and per-trunk use",
        requires_login=True,
    )
    server.register(
        "records.export",
        records_export,
        ExportParams,
        result="{csv, rows} or, with to_file, {path, rows, bytes}",
        summary="Call records as CSV (RFC 4180, UTF-8, header row), oldest first",
        requires_login=True,
        timeout_s=120.0,
    )


__all__ = [
    "FLUSH_INTERVAL_S",
    "RecordsService",
    "parse_when",
    "register_records_api",
    "zone",
]
