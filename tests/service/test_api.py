"""The control API as ``ponte run`` serves it: a real appliance, its simulator, the client."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import tomli_w

from firmware.api.client import ApiClient, ApiError, Event
from firmware.api.protocol import JsonValue
from tests.service.live import LiveAppliance, login


@pytest.fixture(scope="module")
def live() -> Iterator[LiveAppliance]:
    appliance = LiveAppliance()
    yield appliance
    appliance.close()


@pytest.fixture
async def api(live: LiveAppliance) -> AsyncIterator[ApiClient]:
    async with live.client() as client:
        yield client


async def _event(api: ApiClient, topic: str, match: dict[str, Any], timeout: float = 15) -> Event:
    async with asyncio.timeout(timeout):
        while True:
            event = await api.next_event()
            if event.topic == topic and all(event.data.get(k) == v for k, v in match.items()):
                return event


async def _edit(api: ApiClient, **changes: Any) -> tuple[int, str]:
    current = await api.call("config.get")
    doc = tomllib.loads(current["toml"])
    for path, value in changes.items():
        node = doc
        *parents, leaf = path.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return current["version"], tomli_w.dumps(doc)


async def test_ports_list_and_events_follow_the_handset(
    live: LiveAppliance, api: ApiClient
) -> None:
    result = await api.call("ports.list")
    assert result["linecard"] == "up"
    assert [(p["port"], p["kind"]) for p in result["ports"]] == [
        (1, "FXS"), (2, "FXS"), (3, "FXS"), (4, "FXS"), (5, "FXO"), (6, "FXO"),
    ]  # fmt: skip
    await api.subscribe("ports")
    await asyncio.to_thread(live.sim, target="handset", number=2, action="off-hook")
    event = await _event(api, "ports.state", {"port": 2, "tone": "dial"})
    assert event.data["kind"] == "FXS" and event.data["state"] != "idle"
    ports = {p["port"]: p for p in (await api.call("ports.list"))["ports"]}
    assert ports[2]["tone"] == "dial" and ports[2]["since"] >= ports[1]["since"]
    await asyncio.to_thread(live.sim, target="handset", number=2, action="on-hook")
    await _event(api, "ports.state", {"port": 2, "state": "idle"})


async def test_changing_methods_need_a_login(api: ApiClient) -> None:
    calls: list[tuple[str, dict[str, JsonValue]]] = [
        ("config.get", {}),
        ("config.apply", {"toml": "", "base_version": 1}),
        ("config.export", {}),
        ("hwtest.run", {}),
    ]
    for method, params in calls:
        with pytest.raises(ApiError) as err:
            await api.call(method, params)
        assert err.value.code in ("login_required", "password_change_required"), method
    # read-only status needs none
    assert "ports" in await api.call("ports.list")
    assert "available" in await api.call("update.status")


async def test_validate_reports_every_error_with_its_path(api: ApiClient) -> None:
    await login(api)
    _, text = await _edit(api, **{"system.country": "XX"})
    doc = tomllib.loads(text)
    doc["network"]["mode"] = "static"
    doc["network"]["address"] = "not-an-address"
    result = await api.call("config.validate", {"toml": tomli_w.dumps(doc)})
    assert not result["valid"]
    paths = {e["path"] for e in result["errors"]}
    assert {"system.country", "network.address"} <= paths, result
    garbage = await api.call("config.validate", {"toml": "[system\ncountry ="})
    assert not garbage["valid"] and "TOML" in garbage["errors"][0]["message"]
    good = await api.call("config.validate", {"toml": (await api.call("config.get"))["toml"]})
    assert good == {"valid": True, "errors": []}


async def test_apply_history_diff_rollback(live: LiveAppliance, api: ApiClient) -> None:
    await login(api)
    await api.subscribe("config")
    base, text = await _edit(api, **{"system.country": "GB", "network.ntp": ["ntp.example.org"]})
    saved = await api.call(
        "config.apply", {"toml": text, "base_version": base, "summary": "to the UK"}
    )
    assert saved["changed"] and saved["version"] == base + 1
    assert saved["author"] == "admin via test" and saved["summary"] == "to the UK"
    await _event(api, "config.changed", {"version": base + 1})
    # The network settings reach the file the OS network tool reads.
    network = (live.data / "network" / "10-ponte.network").read_text()
    assert "DHCP=yes" in network and "NTP=ntp.example.org" in network

    # Optimistic concurrency: an edit based on the old version is refused, not merged.
    _, stale = await _edit(api, **{"system.country": "DE"})
    with pytest.raises(ApiError) as err:
        await api.call("config.apply", {"toml": stale, "base_version": base})
    assert err.value.code == "invalid_state" and err.value.path == "params.base_version"
    assert err.value.data["current_version"] == base + 1

    bad = await _edit(api, **{"system.country": "XX"})
    with pytest.raises(ApiError) as err:
        await api.call("config.apply", {"toml": bad[1], "base_version": bad[0]})
    assert err.value.code == "invalid_params" and err.value.path == "params.toml"
    errors: Any = err.value.data
    assert errors["errors"][0]["path"] == "system.country"

    history = (await api.call("config.history", {"limit": 5}))["versions"]
    assert history[0]["version"] == base + 1 and history[0]["author"] == "admin via test"
    diff = await api.call("config.diff", {"old": base, "new": base + 1})
    texts = [c["text"] for c in diff["changes"]]
    assert "system.country: 'ITU' -> 'GB'" in texts or any("GB" in t for t in texts), texts
    with pytest.raises(ApiError) as err:
        await api.call("config.diff", {"old": 9999})
    assert err.value.code == "not_found" and err.value.path == "params.old"

    back = await api.call("config.rollback", {"version": base, "base_version": base + 1})
    assert back["action"] == "rollback" and back["version"] == base + 2
    current = tomllib.loads((await api.call("config.get"))["toml"])
    assert current["system"]["country"] != "GB"
    with pytest.raises(ApiError) as err:
        await api.call("config.rollback", {"version": 9999})
    assert err.value.code == "not_found" and err.value.path == "params.version"


async def test_export_import_plain_and_sealed(api: ApiClient) -> None:
    await login(api)
    plain = await api.call("config.export")
    assert not plain["encrypted"] and "[system]" in plain["text"]
    sealed = await api.call("config.export", {"passphrase": "a long passphrase"})
    assert sealed["encrypted"] and "[system]" not in sealed["text"]
    assert '"ponte-backup"' in sealed["text"]

    with pytest.raises(ApiError) as err:
        await api.call("config.import", {"text": sealed["text"], "passphrase": "wrong one!"})
    assert err.value.code == "invalid_params" and "wrong passphrase" in err.value.message
    with pytest.raises(ApiError) as err:
        await api.call("config.import", {"text": sealed["text"]})
    assert err.value.path == "params.passphrase" and "encrypted" in err.value.message
    with pytest.raises(ApiError) as err:
        await api.call("config.export", {"passphrase": "short"})
    assert err.value.path == "params.passphrase"

    # Change something, then restore the sealed backup: the old value is back.
    base, text = await _edit(api, **{"system.hostname": "changed-box"})
    await api.call("config.apply", {"toml": text, "base_version": base})
    restored = await api.call(
        "config.import", {"text": sealed["text"], "passphrase": "a long passphrase"}
    )
    assert restored["action"] == "import" and restored["changed"]
    current = tomllib.loads((await api.call("config.get"))["toml"])
    assert current["system"]["hostname"] != "changed-box"

    with pytest.raises(ApiError) as err:
        await api.call("config.import", {"text": "[system]\ncountry = 'XX'\n"})
    assert err.value.code == "invalid_params" and err.value.path == "params.text"


async def test_logs_tail_filter_and_follow(live: LiveAppliance, api: ApiClient) -> None:
    records = (await api.call("logs.tail", {"lines": 500}))["records"]
    assert any("control API listening" in r["message"] for r in records)
    warnings = (await api.call("logs.tail", {"level": "warning"}))["records"]
    assert all(r["level"] in ("WARNING", "ERROR", "CRITICAL") for r in warnings)
    found = (await api.call("logs.tail", {"contains": "LINE CARD"}))["records"]
    assert found and all("line card" in r["message"].lower() for r in found)
    with pytest.raises(ApiError) as err:
        await api.call("logs.tail", {"level": "loud"})
    assert err.value.path == "params.level"

    await api.subscribe("logs")
    await asyncio.to_thread(live.sim, target="handset", number=3, action="off-hook")
    event = await _event(api, "logs.record", {"message": "port 3: OffHook"})
    assert event.data["level"] == "INFO"
    await asyncio.to_thread(live.sim, target="handset", number=3, action="on-hook")


async def test_alarms_for_port_faults(live: LiveAppliance, api: ApiClient) -> None:
    await api.subscribe("alarms")
    await asyncio.to_thread(live.sim, target="card", action="fault", port=4, kind="thermal")
    raised = await _event(api, "alarms.raised", {"id": "port.4.thermal"})
    assert raised.data["severity"] == "major" and "port 4" in raised.data["text"]
    assert [a["id"] for a in (await api.call("alarms.list"))["alarms"]] == ["port.4.thermal"]
    await asyncio.to_thread(
        live.sim, target="card", action="fault", port=4, kind="thermal", active=False
    )
    await _event(api, "alarms.cleared", {"id": "port.4.thermal"})
    assert (await api.call("alarms.list"))["alarms"] == []


async def test_hwtest_job_reports_progress_and_a_report(api: ApiClient) -> None:
    await login(api)
    await api.subscribe("jobs")
    job = (await api.call("hwtest.run", {"k": "hello or garbage"}))["job"]
    progress: list[float] = []
    async with asyncio.timeout(120):
        while True:
            event = await api.next_event()
            if not event.topic.startswith("jobs.") or event.data["job"] != job:
                continue
            if event.topic == "jobs.progress" and event.data["progress"] is not None:
                progress.append(event.data["progress"])
            if event.topic == "jobs.finished":
                break
    assert event.data["state"] == "succeeded", event.data
    result = event.data["result"]
    assert "Ponte line-card test report" in result["report"] and result["passed"]
    assert "CARD PASSES" in result["report"]
    # Progress events are rate-limited by the job runner; they never go backwards.
    assert progress and progress == sorted(progress) and event.data["progress"] == 1.0


async def test_sigterm_stops_in_order_and_removes_the_socket() -> None:
    live = LiveAppliance()
    try:
        async with live.client() as api:
            await api.subscribe("ports")
            assert await asyncio.to_thread(live.terminate) == 0
            with pytest.raises(ApiError) as err:
                await api.call("ports.list")
            assert err.value.code in ("connection_lost", "not_connected")
        assert not live.socket.exists()
        log = live.log_text()
        assert log.index("control API stopped") < log.index("ponte: stopped")
    finally:
        live.close()
