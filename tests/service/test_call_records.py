"""Every call leaves its legs in the call records: a real ``ponte run``, calls made with the
simulator's handsets (and baresip through kamailio), read back with ``records.list``."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware.api.client import ApiClient
from firmware.store import ConfigStore, default_config
from tests.service.live import login
from tests.service.sipsite import Site
from tests.service.test_local_calls import wait_status
from tests.service.test_run import Appliance


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Appliance]:
    # No voicemail: a busy extension gives busy tone (with it, the call goes to voicemail).
    store = ConfigStore.open(tmp_path / "data", defaults=default_config(2, 1))
    try:
        config = store.current().config
        extensions = tuple(dataclasses.replace(e, voicemail=False) for e in config.extensions)
        store.apply(
            dataclasses.replace(config, extensions=extensions), author="test", summary="no vm"
        )
    finally:
        store.close()
    app = Appliance(tmp_path, "--fxs", "2", "--fxo", "1", "--stderr")
    app.wait_notify("READY=1")
    app.wait_log("control API listening")  # records are attached before the API starts
    yield app
    app.close()


async def records_of(data: Path, want: int, timeout: float = 30) -> list[dict[str, Any]]:
    """``records.list`` once it holds ``want`` records (they are written once a second)."""
    async with ApiClient(data / "api.sock", client_name="test", timeout=30) as api:
        await login(api)
        deadline = time.monotonic() + timeout
        while True:
            page = await api.call("records.list", {"limit": 100})
            records: list[dict[str, Any]] = page["records"]
            if len(records) >= want or time.monotonic() > deadline:
                return records
            await asyncio.sleep(0.3)


def test_a_local_call_and_a_busy_one_are_recorded(box: Appliance) -> None:
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="102")
    wait_status(box, 2, "ringing", True)
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("audio of ports 1 and 2 connected")
    time.sleep(1.0)
    box.sim(target="handset", number=2, action="on-hook")
    box.wait_log("port 2 left")
    box.sim(target="handset", number=1, action="on-hook")
    box.wait_log("port 1: HungUp")
    # Port 2 lifted and dialling nothing: port 1 calling it hears busy.
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("port 2: OffHook")
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="102")
    box.wait_log("port 2 is busy")
    box.sim(target="handset", number=1, action="on-hook")
    box.sim(target="handset", number=2, action="on-hook")

    records = asyncio.run(records_of(box.data, 3))
    rows = sorted((r["where"], r["disposition"], r["direction"]) for r in records)
    assert rows == [
        ("port 1", "answered", "internal"),
        ("port 1", "busy", "internal"),
        ("port 2", "answered", "internal"),
    ], records
    answered = [r for r in records if r["disposition"] == "answered"]
    assert answered[0]["call"] == answered[1]["call"]
    assert all(r["talk_s"] >= 0.5 for r in answered)
    assert {r["destination_number"] for r in records} == {"102"}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.close()


def test_a_sip_call_is_recorded_with_its_trunk_leg(site: Site) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="8201")
    phone.wait_event("CALL_INCOMING", timeout=20)
    phone.command("accept")
    phone.wait_event("CALL_ESTABLISHED", timeout=15)
    box.wait_log("audio of port 1 and SIP leg", timeout=15)
    time.sleep(1.0)
    phone.command("hangup")
    box.wait_log("ended by the far end", timeout=15)
    box.sim(target="handset", number=1, action="on-hook")

    records = asyncio.run(records_of(box.data, 2))
    by_where = {r["where"]: r for r in records}
    assert set(by_where) == {"port 1", "trunk provider"}, records
    trunk = by_where["trunk provider"]
    assert trunk["direction"] == "outbound" and trunk["disposition"] == "answered"
    assert trunk["destination_number"] == "201"
    assert trunk["codec"] in ("PCMA", "PCMU", "G722", "opus"), trunk
    assert trunk["call"] == by_where["port 1"]["call"]
