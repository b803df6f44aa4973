"""RecordsService: the recorder's legs reach the store, a clean stop loses none of them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from firmware.service.records import RecordsService, parse_when, zone
from firmware.store import default_config
from firmware.store.legs import Party, Place
from firmware.store.records import RecordQuery, RecordStore
from tests.store.record_factory import T0, leg_for


async def _wait(predicate: Any, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_recorded_legs_are_written_and_announced(tmp_path: Path) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    clock = [T0]
    service = RecordsService(
        tmp_path, config=default_config, clock=lambda: clock[0], flush_interval_s=0.05
    )
    await service.start()
    service.publish = lambda topic, data: events.append((topic, data))
    rec = service.recorder
    rec.started(
        "a",
        call="c",
        direction="internal",
        source=Party("101"),
        destination=Party("102"),
        where=Place.port(1),
        now=T0,
    )
    rec.answered("a", T0 + 2)
    rec.ended("a", T0 + 32, "answered")
    await _wait(lambda: events)
    assert events[0][0] == "records.added"
    assert events[0][1]["id"] == "a" and events[0][1]["talk_s"] == 30
    # Legs still in flight at stop are closed and written; so is a record added directly.
    rec.started(
        "b",
        call="d",
        direction="outbound",
        source=Party("101"),
        destination=Party("0301234"),
        where=Place.port(3),
        now=T0 + 40,
    )
    rec.answered("b", T0 + 45)
    service.add(leg_for(7))
    clock[0] = T0 + 100
    await service.stop()
    with RecordStore.open(tmp_path) as store:
        got = {s.record.id: s.record for s in store.query(RecordQuery()).records}
    assert set(got) == {"a", "b", "leg-7"}
    assert got["b"].disposition == "answered" and got["b"].talk_s == 55
    assert "stopping" in got["b"].sip_reason


async def test_retention_applies_at_start(tmp_path: Path) -> None:
    with RecordStore.open(tmp_path) as store:
        store.insert([leg_for(i, start=T0 - 400 * 86400) for i in range(1, 4)])
        store.insert([leg_for(i) for i in range(4, 6)])
    service = RecordsService(tmp_path, config=default_config, clock=lambda: T0)
    await service.start()
    await service.stop()
    with RecordStore.open(tmp_path) as store:  # default retention_days is 365
        assert store.count() == 2


def test_times_and_zones() -> None:
    berlin = zone("Europe/Berlin")
    assert parse_when("2025-11-24", berlin) == T0 - 17 * 3600  # local midnight, UTC+1
    assert parse_when("2025-11-24", berlin, end_of_day=True) == T0 + 7 * 3600
    assert parse_when("2025-11-24T16:00:00Z", berlin) == T0
    assert parse_when("2025-11-24T17:00", berlin) == T0
    assert str(zone("Nowhere/Special")) == "UTC"


async def test_records_wait_out_a_locked_database(tmp_path: Path) -> None:
    import sqlite3

    from firmware.store.records import RECORDS_FILENAME

    service = RecordsService(tmp_path, config=default_config, clock=lambda: T0)
    await service.start()
    assert service._task is not None
    service._task.cancel()  # flushes by hand here
    blocker = sqlite3.connect(tmp_path / RECORDS_FILENAME, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock (5 s busy timeout)
    service.add(leg_for(1))
    assert await service.flush() == 0
    service.add(leg_for(2))  # arrives meanwhile: queued behind the one that waited
    blocker.execute("ROLLBACK")
    blocker.close()
    assert await service.flush() == 2
    await service.stop()
    with RecordStore.open(tmp_path) as store:
        assert [s.record.id for s in store.iterate(RecordQuery())] == ["leg-1", "leg-2"]
