"""Snapshots of the console at 80x24 and 120x40 (SVG, committed under snapshots/).

Snapshot mode hides what changes between runs (clocks, uptime, CPU, host name); the
appliance is a fresh simulated one, so what remains is deterministic.  After an intended
change of the screens: ``PONTE_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py``,
then look at the SVGs and commit them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.service.live import LiveAppliance
from tests.tui.helpers import (
    check_snapshot,
    log_in,
    screen_name,
    set_up_password,
    settle,
    text_of,
    until,
)
from tui.app import ConsoleApp

SIZES = [(80, 24), (120, 40)]


@pytest.fixture(scope="module")
def live() -> Iterator[LiveAppliance]:
    appliance = LiveAppliance()
    asyncio.run(set_up_password(appliance))
    yield appliance
    appliance.close()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_login(live: LiveAppliance, size: tuple[int, int]) -> None:
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: screen_name(app) == "LoginScreen")
        await settle(pilot)
        check_snapshot(app, f"login-{size[0]}x{size[1]}")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_dashboard(live: LiveAppliance, size: tuple[int, int]) -> None:
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=size) as pilot:
        await log_in(pilot, app)
        await until(pilot, lambda: "none configured" in text_of(app, "#trunks"))
        await until(pilot, lambda: "line card up" in text_of(app, "#system"))
        await settle(pilot)
        check_snapshot(app, f"dashboard-{size[0]}x{size[1]}")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_configuration_network(live: LiveAppliance, size: tuple[int, int]) -> None:
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=size) as pilot:
        await log_in(pilot, app)
        await pilot.press("c")
        await until(pilot, lambda: screen_name(app) == "ConfigScreen")
        await until(pilot, lambda: "Version" in text_of(app, "#config-status"))
        for _ in range(6):
            await pilot.press("down")
        await until(pilot, lambda: app.screen.query("#f-network_ntp"))
        await settle(pilot)
        check_snapshot(app, f"config-network-{size[0]}x{size[1]}")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_line_levels(live: LiveAppliance, size: tuple[int, int]) -> None:
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=size) as pilot:
        await log_in(pilot, app)
        await pilot.press("a")
        await until(pilot, lambda: screen_name(app) == "LevelsScreen")
        # an idle port: both directions read quiet, the meters are empty
        await until(pilot, lambda: text_of(app, "#levels-meters").count("quiet") == 4)
        await settle(pilot)
        check_snapshot(app, f"levels-{size[0]}x{size[1]}")


async def test_sip_messages(live: LiveAppliance) -> None:
    # No trunk configured: nothing sent or received, the screen says so.
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, app)
        await pilot.press("m")
        await until(pilot, lambda: screen_name(app) == "SipMessagesScreen")
        await until(pilot, lambda: "0 message(s)" in text_of(app, "#sip-status"))
        await settle(pilot)
        check_snapshot(app, "sip-messages-80x24")


async def test_configuration_trunks(live: LiveAppliance) -> None:
    # The trunks section adds its "Test" (registration) key to the footer, which fits 80.
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, app)
        await pilot.press("c")
        await until(pilot, lambda: screen_name(app) == "ConfigScreen")
        await until(pilot, lambda: "Version" in text_of(app, "#config-status"))
        await pilot.press("down")
        await until(pilot, lambda: app.screen.query("#form Label"))
        await pilot.press("ctrl+o")
        await until(pilot, lambda: "No trunk to test" in text_of(app, "#config-status"))
        await settle(pilot)
        check_snapshot(app, "config-trunks-80x24")
