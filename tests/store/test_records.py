"""The call-record store: round trips, paging, filters, retention, CSV, summary figures."""

from __future__ import annotations

import csv
import io
import random
import sqlite3
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from firmware.store import ConfigStore, StoreCorruptError, StoreVersionError
from firmware.store.legs import LegRecord, Party, Place, Quality
from firmware.store.records import (
    CSV_COLUMNS,
    RECORDS_FILENAME,
    CursorError,
    RecordQuery,
    RecordStore,
)

from .record_factory import T0, leg_for, random_leg


@pytest.fixture
def store(tmp_path: Path):
    with RecordStore.open(tmp_path) as s:
        yield s


def test_records_come_back_as_they_went_in_and_survive_reopening(tmp_path: Path) -> None:
    rich = LegRecord(
        id="sip-7",
        call="c-1",
        direction="inbound",
        source=Party("+4930123456", "Zoë 東京"),
        destination=Party("101", "Reception"),
        where=Place.trunk("office"),
        start=T0 + 0.123,
        answer=T0 + 5.5,
        end=T0 + 65.25,
        disposition="answered",
        sip_code=200,
        sip_reason="Normal call clearing",
        codec="G722",
        quality=Quality(4.5, 0.25, 4.32),
    )
    records = [rich, *(leg_for(i) for i in range(1, 6))]
    with RecordStore.open(tmp_path) as store:
        assert store.insert(records) == [1, 2, 3, 4, 5, 6]
        assert store.db.schema_version == 1
    with RecordStore.open(tmp_path) as store:
        got = {s.record.id: s for s in store.query(RecordQuery()).records}
        assert got["sip-7"].record == rich and got["sip-7"].seq == 1
        assert [got[f"leg-{i}"].record for i in range(1, 6)] == records[1:]
        assert store.count() == 6
    assert (tmp_path / RECORDS_FILENAME).stat().st_mode & 0o077 == 0  # personal data


def test_paging_sees_every_record_once_even_while_records_are_added(store: RecordStore) -> None:
    store.insert([leg_for(i) for i in range(1, 251)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.query(RecordQuery(), limit=100, cursor=cursor)
        seen += [s.record.id for s in page.records]
        pages += 1
        if pages == 1:  # newer records arrive between pages: they do not shift the pages
            store.insert([leg_for(i) for i in range(251, 261)])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert seen == [f"leg-{i}" for i in range(250, 0, -1)]  # newest first, no repeats
    with pytest.raises(CursorError, match="cursor"):
        store.query(RecordQuery(), cursor="drop table leg")
    with pytest.raises(ValueError, match="limit"):
        store.query(RecordQuery(), limit=0)


def test_filters_by_time_port_trunk_disposition(store: RecordStore) -> None:
    rng = random.Random(7)
    records = [random_leg(rng, i, T0, 86400) for i in range(400)]
    store.insert(records)

    def ids(q: RecordQuery) -> set[str]:
        return {s.record.id for s in store.query(q, limit=1000).records}

    lo, hi = T0 + 3600, T0 + 7200
    assert ids(RecordQuery(since=lo, until=hi)) == {r.id for r in records if lo <= r.start < hi}
    assert ids(RecordQuery(port=2)) == {r.id for r in records if r.where == Place.port(2)}
    assert ids(RecordQuery(trunk="office")) == {
        r.id for r in records if r.where == Place.trunk("office")
    }
    assert ids(RecordQuery(disposition="busy", port=1)) == {
        r.id for r in records if r.disposition == "busy" and r.where == Place.port(1)
    }
    assert store.count(RecordQuery(direction="inbound")) == sum(
        r.direction == "inbound" for r in records
    )
    with pytest.raises(ValueError, match="disposition 'lost'"):
        RecordQuery(disposition="lost")
    with pytest.raises(ValueError, match="until is before since"):
        RecordQuery(since=hi, until=lo)


def test_retention_drops_old_records_then_keeps_the_newest_rows(store: RecordStore) -> None:
    day = 86400.0
    old = [leg_for(i, start=T0 - 40 * day) for i in range(1, 11)]
    recent = [leg_for(i, start=T0 - day) for i in range(11, 41)]
    store.insert(old + recent)
    assert store.prune(T0, retention_days=30, max_rows=1_000_000) == 10
    assert store.count() == 30
    assert store.prune(T0, retention_days=0, max_rows=12) == 18
    left = [s.record.id for s in store.query(RecordQuery()).records]
    assert left == [f"leg-{i}" for i in range(40, 28, -1)]  # the 12 inserted last
    assert store.prune(T0, retention_days=30, max_rows=12) == 0
    # seq numbers are never reused after a prune: events and exports stay unambiguous.
    assert store.prune(T0, retention_days=0, max_rows=0) == 12
    assert store.insert([leg_for(99)]) == [41]


def test_csv_is_rfc4180_and_survives_hostile_names(store: RecordStore) -> None:
    names = [
        'Smith, "Bob"',
        "two\r\nlines",
        '=HYPERLINK("http://evil")',
        "Zoë 東京",
        "",
    ]
    records = [
        LegRecord(
            id=f"l{i}",
            call="c",
            direction="inbound",
            source=Party("+4930123456" if i == 0 else "-2+3", name),
            destination=Party("101"),
            where=Place.port(1),
            start=T0 + i,
            answer=None,
            end=T0 + i + 3,
            disposition="no-answer",
        )
        for i, name in enumerate(names)
    ]
    store.insert(records)
    text, rows = store.export_csv_text(RecordQuery(), ZoneInfo("Europe/Berlin"))
    assert rows == len(names)
    # RFC 4180 section 2: CRLF between records, fields with CR, LF, quotes or commas quoted,
    # quotes doubled; section 3: a header row.
    assert text.startswith(",".join(CSV_COLUMNS) + "\r\n")
    assert '"Smith, ""Bob"""' in text and '"two\r\nlines"' in text
    assert text.encode("utf-8").decode("utf-8") == text
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == list(CSV_COLUMNS)
    body = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in parsed[1:]]
    got = [row["source_name"] for row in body]
    assert got == ['Smith, "Bob"', "two\r\nlines", '\'=HYPERLINK("http://evil")', "Zoë 東京", ""]
    assert body[0]["source_number"] == "+4930123456"  # a phone number is not a formula
    assert body[1]["source_number"] == "'-2+3"  # but a number that computes is
    assert body[0]["start"] == "2025-11-24T17:00:00.000+01:00"  # Berlin time, offset given
    assert body[0]["answer"] == "" and body[0]["talk_s"] == "0.000"
    assert body[0]["ring_s"] == "3.000" and body[0]["where"] == "port 1"


def test_export_of_many_records_streams_in_order(store: RecordStore) -> None:
    rng = random.Random(3)
    store.insert([random_leg(rng, i, T0, 10 * 86400) for i in range(5000)])
    out = io.StringIO(newline="")
    assert store.export_csv(out, RecordQuery()) == 5000
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    starts = [row["start"] for row in rows]
    assert starts == sorted(starts) and len({row["seq"] for row in rows}) == 5000


def test_summary_of_an_empty_store(store: RecordStore) -> None:
    s = store.summary(tz=ZoneInfo("Europe/Berlin"))
    assert (s.legs, s.calls, s.answered_calls) == (0, 0, 0)
    assert s.asr_pct is None and s.average_call_s is None and s.busiest_hour is None
    assert s.per_day == [] and s.per_port == {} and s.per_trunk == {}
    assert s.hour_of_day == [0] * 24
    doc = s.to_json()
    assert doc["asr_pct"] is None and doc["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kathmandu", "America/St_Johns"])
def test_summary_matches_a_record_by_record_count(store: RecordStore, zone: str) -> None:
    """The store groups in SQL by UTC quarter-hour; an independent count, one record at a
    time in local time, must agree (offsets of +05:45 and -03:30, DST changes in range)."""
    tz = ZoneInfo(zone)
    rng = random.Random(11)
    # 2025-10-20 .. 2025-11-09 spans the European and American DST ends.
    records = [random_leg(rng, i, 1_760_918_400.0, 20 * 86400) for i in range(3000)]
    store.insert(records)
    since, until = 1_760_918_400.0 + 86400, 1_760_918_400.0 + 18 * 86400
    s = store.summary(since, until, tz)

    chosen = [r for r in records if since <= r.start < until]
    calls: dict[str, list[LegRecord]] = defaultdict(list)
    for r in chosen:
        calls[r.call].append(r)
    per_day: Counter[str] = Counter()
    per_hour: Counter[datetime] = Counter()
    hour_of_day = [0] * 24
    answered_calls, talk = 0, 0.0
    for legs in calls.values():
        first = datetime.fromtimestamp(min(r.start for r in legs), tz)
        per_day[first.date().isoformat()] += 1
        per_hour[first.replace(minute=0, second=0, microsecond=0)] += 1
        hour_of_day[first.hour] += 1
        answers = [r for r in legs if r.answer is not None]
        if answers:
            answered_calls += 1
            talk += max(r.end for r in answers) - min(r.answer for r in answers if r.answer)
    assert s.legs == len(chosen)
    assert s.answered_legs == sum(r.answer is not None for r in chosen)
    assert s.asr_pct == pytest.approx(100 * s.answered_legs / s.legs)
    assert s.calls == len(calls) and s.answered_calls == answered_calls
    assert s.average_call_s == pytest.approx(talk / answered_calls, abs=0.01)
    assert {d.day.isoformat(): d.calls for d in s.per_day} == dict(per_day)
    assert s.hour_of_day == hour_of_day
    best = max(per_hour.values())
    assert s.busiest_hour is not None and s.busiest_hour.calls == best
    assert s.busiest_hour.start == min(h for h, n in per_hour.items() if n == best)
    for port in (1, 2, 5):
        mine = [r for r in chosen if r.where == Place.port(port)]
        usage = s.per_port[port]
        assert usage.legs == len(mine)
        assert usage.answered == sum(r.answer is not None for r in mine)
        assert usage.minutes == pytest.approx(sum(r.talk_s for r in mine) / 60, abs=0.01)
    trunk = [r for r in chosen if r.where.kind == "trunk"]
    assert s.per_trunk["office"].legs == len(trunk)
    assert s.to_json()["ip_peers"]["legs"] == sum(r.where.kind == "ip" for r in chosen)


def test_a_records_file_and_the_configuration_file_are_never_confused(tmp_path: Path) -> None:
    RecordStore.open(tmp_path).close()
    (tmp_path / RECORDS_FILENAME).rename(tmp_path / "ponte.db")
    with pytest.raises(StoreCorruptError, match="application_id"):
        ConfigStore.open(tmp_path)
    (tmp_path / "ponte.db").rename(tmp_path / RECORDS_FILENAME)
    ConfigStore.open(tmp_path).close()
    (tmp_path / RECORDS_FILENAME).unlink()
    (tmp_path / "ponte.db").rename(tmp_path / RECORDS_FILENAME)
    with pytest.raises(StoreCorruptError, match="application_id"):
        RecordStore.open(tmp_path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    RecordStore.open(tmp_path).close()
    with sqlite3.connect(tmp_path / RECORDS_FILENAME) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(StoreVersionError, match="newer"):
        RecordStore.open(tmp_path)


def test_a_garbage_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / RECORDS_FILENAME
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreCorruptError, match="not a SQLite database"):
        RecordStore.open(tmp_path)
    assert path.read_bytes() == b"not a database at all" * 100


def test_only_records_are_stored(store: RecordStore) -> None:
    with pytest.raises(ValueError, match="LegRecord"):
        store.insert([{"id": "x"}])  # type: ignore[list-item]
    assert store.count() == 0
    assert datetime.fromtimestamp(T0, UTC).hour == 16  # the factory's epoch, for readers
