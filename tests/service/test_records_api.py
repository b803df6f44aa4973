"""records.* on a real ``ponte run --simulate``: the records come from its data directory's
store (written here through the store API, as another process would), the answers and the
``records.added`` events from the running appliance."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware.api.client import ApiClient, ApiError
from firmware.store.legs import LegRecord, Party, Place
from firmware.store.records import CSV_COLUMNS, RecordStore
from tests.service.live import LiveAppliance, login
from tests.store.record_factory import T0, leg_for

DAY = 86400.0


@pytest.fixture(scope="module")
def live() -> Iterator[LiveAppliance]:
    appliance = LiveAppliance("--fxs", "2", "--fxo", "1")
    yield appliance
    appliance.close()


@pytest.fixture
async def api(live: LiveAppliance) -> AsyncIterator[ApiClient]:
    async with live.client() as client:
        await login(client)
        yield client


def _count(live: LiveAppliance) -> int:
    with RecordStore.open(live.data) as store:
        return store.count()


def _insert(live: LiveAppliance, records: list[LegRecord]) -> list[int]:
    with RecordStore.open(live.data) as store:
        return store.insert(records)


async def _added(api: ApiClient, want: set[str], timeout: float = 30) -> dict[str, Any]:
    got: dict[str, Any] = {}
    async with asyncio.timeout(timeout):
        while not want <= got.keys():
            event = await api.next_event()
            if event.topic == "records.added":
                got[event.data["id"]] = event.data
    return got


async def test_records_need_a_login(live: LiveAppliance) -> None:
    async with live.client() as anonymous:
        for method in ("records.list", "records.summary", "records.export"):
            with pytest.raises(ApiError) as err:
                await anonymous.call(method)
            assert err.value.code in ("login_required", "password_change_required"), method


async def test_inserted_records_are_listed_announced_and_summarised(
    live: LiveAppliance, api: ApiClient
) -> None:
    await api.subscribe("records")
    trunk_leg = LegRecord(
        id="api-trunk",
        call="api-call",
        direction="inbound",
        source=Party("+4930123456", 'Smith, "Bob"'),
        destination=Party("101", "Port 1"),
        where=Place.trunk("office"),
        start=T0 + 10 * DAY,
        answer=T0 + 10 * DAY + 3,
        end=T0 + 10 * DAY + 123,
        disposition="answered",
        sip_code=200,
        codec="PCMA",
    )
    port_leg = LegRecord(
        id="api-port",
        call="api-call",
        direction="inbound",
        source=Party("+4930123456", 'Smith, "Bob"'),
        destination=Party("101", "Port 1"),
        where=Place.port(1),
        start=T0 + 10 * DAY + 1,
        answer=T0 + 10 * DAY + 3,
        end=T0 + 10 * DAY + 123,
        disposition="answered",
    )
    busy = [leg_for(i, start=T0 + 10 * DAY + 1000) for i in range(3, 13, 3)]  # 4 busy legs
    await asyncio.to_thread(_insert, live, [trunk_leg, port_leg, *busy])

    events = await _added(api, {"api-trunk", "api-port", "leg-3", "leg-12"})
    assert events["api-trunk"]["where"] == "trunk office"
    assert events["api-trunk"]["talk_s"] == 120 and events["api-trunk"]["seq"] >= 1

    page = await api.call("records.list", {"trunk": "office"})
    assert [r["id"] for r in page["records"]] == ["api-trunk"]
    assert page["records"][0]["source_name"] == 'Smith, "Bob"'
    assert page["records"][0]["answer"].startswith("2025-12-04T16:00:03")
    assert page["next_cursor"] is None

    # Paging by cursor, newest first, within one day.
    day = "2025-12-04"
    first = await api.call("records.list", {"since": day, "until": day, "limit": 4})
    assert len(first["records"]) == 4 and first["next_cursor"]
    rest = await api.call(
        "records.list", {"since": day, "until": day, "limit": 4, "cursor": first["next_cursor"]}
    )
    ids = [r["id"] for r in first["records"] + rest["records"]]
    assert ids == ["leg-12", "leg-9", "leg-6", "leg-3", "api-port", "api-trunk"]
    busy_only = await api.call("records.list", {"disposition": "busy", "port": 1})
    assert {r["id"] for r in busy_only["records"]} == {"leg-12"}  # leg_for(N): port 1 + N % 4

    summary = await api.call("records.summary", {"since": day, "until": day})
    assert summary["timezone"] == "UTC"
    assert summary["legs"] == 6 and summary["answered_legs"] == 2
    assert summary["asr_pct"] == pytest.approx(33.33, abs=0.01)  # 2 of 6 seizures answered
    # api-call and the busy legs' calls (leg_for(N) is call (N + 1) // 2): 2, 3, 5, 6.
    assert summary["calls"] == 5 and summary["answered_calls"] == 1
    assert summary["average_call_s"] == 120
    assert summary["per_trunk"] == [{"trunk": "office", "legs": 1, "answered": 1, "minutes": 2.0}]
    assert summary["busiest_hour"]["start"].startswith("2025-12-04T16:00")
    berlin = await api.call(
        "records.summary", {"since": day, "until": day, "timezone": "Europe/Berlin"}
    )
    assert berlin["busiest_hour"]["start"].startswith("2025-12-04T17:00:00+01:00")


async def test_export_as_text_and_as_a_file(live: LiveAppliance, api: ApiClient) -> None:
    await asyncio.to_thread(
        _insert, live, [leg_for(i, start=T0 + 20 * DAY) for i in range(100, 110)]
    )
    day = {"since": "2025-12-14", "until": "2025-12-14"}
    text = await api.call("records.export", day)
    assert text["rows"] == 10
    rows = list(csv.reader(io.StringIO(text["csv"], newline="")))
    assert rows[0] == list(CSV_COLUMNS) and len(rows) == 11
    assert text["csv"].count("\r\n") == 11

    saved = await api.call("records.export", {**day, "to_file": True})
    path = Path(saved["path"])
    assert path.parent == live.data / "exports" and saved["rows"] == 10
    assert path.read_bytes().decode("utf-8") == text["csv"]
    assert saved["bytes"] == path.stat().st_size


async def test_a_text_export_too_big_for_a_message_points_to_a_file(
    live: LiveAppliance, api: ApiClient
) -> None:
    many = [leg_for(i, start=T0 + 40 * DAY) for i in range(1, 6001)]
    await asyncio.to_thread(_insert, live, many)
    day = {"since": "2026-01-03", "until": "2026-01-03"}
    with pytest.raises(ApiError) as err:
        await api.call("records.export", day)
    assert err.value.code == "invalid_params" and err.value.path == "params.to_file"
    saved = await api.call("records.export", {**day, "to_file": True})
    assert saved["rows"] == 6000


async def test_bad_parameters_name_the_field(api: ApiClient) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"since": "yesterday"}, "params.since", "ISO 8601"),
        ({"until": "2026-13-01"}, "params.until", "ISO 8601"),
        ({"cursor": "12;drop"}, "params.cursor", "cursor"),
        ({"disposition": "lost"}, "params.disposition", ""),
        ({"port": 0}, "params.port", ""),
        ({"limit": 5000}, "params.limit", ""),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "params.until", "before"),
    ]
    for params, path, words in cases:
        with pytest.raises(ApiError) as err:
            await api.call("records.list", params)
        assert err.value.code == "invalid_params", params
        assert err.value.path == path, (params, err.value.path)
        assert words in err.value.message, err.value.message
    with pytest.raises(ApiError) as err:
        await api.call("records.summary", {"timezone": "Mars/Olympus"})
    assert err.value.path == "params.timezone" and "Mars/Olympus" in err.value.message


async def test_zz_a_clean_stop_leaves_the_store_whole(live: LiveAppliance) -> None:
    # Last in this module (pytest keeps file order): it stops the shared appliance.  Under
    # xdist the other tests may have run elsewhere: count what is written here.
    before = await asyncio.to_thread(_count, live)
    await asyncio.to_thread(
        _insert, live, [leg_for(i, start=T0 + 40 * DAY) for i in range(9000, 9200)]
    )
    assert await asyncio.to_thread(live.terminate) == 0, live.log_text()
    assert "Traceback" not in live.log_text()
    with RecordStore.open(live.data) as store:
        assert store.db.integrity_check() == ["ok"]
        assert store.count() >= before + 200
