"""Pilot tests: every console screen against a real ``ponte run`` in simulation."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, ProgressBar, RichLog

from tests.service.live import NEW_PASSWORD, LiveAppliance
from tests.tui.helpers import (
    FACTORY_PASSWORD,
    log_in,
    screen_name,
    set_up_password,
    text_of,
    until,
)
from tui.app import ConsoleApp
from tui.screens.diagnostics import HwtestScreen


@pytest.fixture(scope="module")
def live() -> Iterator[LiveAppliance]:
    appliance = LiveAppliance()
    asyncio.run(set_up_password(appliance))
    yield appliance
    appliance.close()


def _cell(app: ConsoleApp, row: int, column: str) -> str:
    from textual.css.query import NoMatches
    from textual.widgets.data_table import CellDoesNotExist

    try:
        table = app.screen.query_one("#ports", DataTable)
        return str(table.get_cell(str(row), column))
    except (NoMatches, CellDoesNotExist):  # not drawn yet
        return ""


async def _config(live: LiveAppliance) -> dict[str, object]:
    async with live.client("check") as api:
        await api.login(NEW_PASSWORD)
        current = await api.call("config.get")
    return tomllib.loads(current["toml"])


async def test_first_run_wizard_lock_out_and_dashboard() -> None:
    live = LiveAppliance()
    try:
        app = ConsoleApp(str(live.socket), snapshot=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: screen_name(app) == "LoginScreen")
            await until(pilot, lambda: len(app.screen.query("Label")) > 1)
            assert "factory password" in str(app.screen.query("Label").nodes[1].render())
            await pilot.press(*"wrong-one", "enter")
            await until(pilot, lambda: "Wrong password" in text_of(app, "#error"))
            await pilot.press(*FACTORY_PASSWORD, "enter")
            await until(pilot, lambda: screen_name(app) == "WizardScreen")

            await pilot.press(*"new-password-1", "enter", *"different-2", "enter")
            await until(pilot, lambda: "differ" in text_of(app, "#err-password"))
            app.screen.query_one("#new2", Input).value = "new-password-1"
            await pilot.press("ctrl+n")
            await until(pilot, lambda: "2/4" in text_of(app, "#step-title"))
            country = app.screen.query_one("#f-system_country", Input)
            country.value = "XX"
            await pilot.press("ctrl+n")  # to lines
            await pilot.press("ctrl+n")  # to the trunk
            await pilot.press(*"provider", "enter", *"sip.example.net", "enter")
            await pilot.press(*"1234", "enter", *"s3cret-pw", "enter")
            # The unknown country is refused by the appliance and shown next to its field.
            await until(pilot, lambda: "unknown country" in text_of(app, "#err-f-system_country"))
            assert "2/4" in text_of(app, "#step-title")
            country.value = "GB"
            for _ in range(3):
                await pilot.press("ctrl+n")
            await until(pilot, lambda: screen_name(app) == "DashboardScreen")
            await until(pilot, lambda: "provider" in text_of(app, "#trunks"))
            # sip.example.net does not resolve: not registered, soon with the reason why
            assert "not registered" in text_of(app, "#trunks").lower()
            await until(pilot, lambda: len(app.state.ports) == 6)
            await until(pilot, lambda: _cell(app, 5, "kind") == "FXO")

        config = await _config_with(live, "new-password-1")
        assert config["system"]["country"] == "GB"  # type: ignore[index]
        assert config["sip"]["trunks"][0]["registrar"] == "sip.example.net"  # type: ignore[index]

        # Lock-out: five failures, then the console says how long to wait.
        app = ConsoleApp(str(live.socket), snapshot=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: screen_name(app) == "LoginScreen")
            for _ in range(6):
                await pilot.press(*"not-it-at-all", "enter")
                await pilot.pause(0.3)
            await until(pilot, lambda: "try again in" in text_of(app, "#error"), timeout=30)
    finally:
        live.close()


async def _config_with(live: LiveAppliance, password: str) -> dict[str, object]:
    async with live.client("check") as api:
        await api.login(password)
        current = await api.call("config.get")
    return tomllib.loads(current["toml"])


async def test_dashboard_is_live(live: LiveAppliance) -> None:
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, app)
        await until(pilot, lambda: _cell(app, 1, "hook") == "on-hook")
        await asyncio.to_thread(live.sim, target="handset", number=1, action="off-hook")
        await until(pilot, lambda: _cell(app, 1, "hook") == "off-hook")
        await until(pilot, lambda: _cell(app, 1, "tone") == "dial")
        await asyncio.to_thread(live.sim, target="handset", number=1, action="on-hook")
        await until(pilot, lambda: _cell(app, 1, "hook") == "on-hook")

        await asyncio.to_thread(live.sim, target="card", action="fault", port=3, kind="thermal")
        await until(pilot, lambda: "port 3: thermal fault" in text_of(app, "#alarms"))
        await asyncio.to_thread(
            live.sim, target="card", action="fault", port=3, kind="thermal", active=False
        )
        await until(pilot, lambda: "none" in text_of(app, "#alarms"))
        await until(pilot, lambda: "line card up" in text_of(app, "#system"))
        assert "firmware  0.1.0" in text_of(app, "#system")


async def test_configuration_errors_next_to_fields_then_save(live: LiveAppliance) -> None:
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, app)
        await pilot.press("c")
        await until(pilot, lambda: screen_name(app) == "ConfigScreen")
        await until(pilot, lambda: "Version" in text_of(app, "#config-status"))
        for _ in range(6):  # down to Network
            await pilot.press("down")
        await until(pilot, lambda: app.screen.query("#f-network_mode"))
        await pilot.press("tab", *"static", "tab", *"10.0.0.300/24")
        await pilot.press("ctrl+t")
        await until(pilot, lambda: text_of(app, "#err-f-network_address") != "")
        assert "in static mode" in text_of(app, "#err-f-network_gateway")
        # Nothing was applied: the appliance still has DHCP.
        assert (await _config(live))["network"]["mode"] == "dhcp"  # type: ignore[index]
        field = app.screen.query_one("#f-network_address", Input)
        field.value = "10.0.0.30/24"
        app.screen.query_one("#f-network_gateway", Input).value = "10.0.0.1"
        app.screen.query_one("#f-network_dns", Input).value = "10.0.0.1, 9.9.9.9"
        await pilot.press("ctrl+s")
        await until(
            pilot,
            lambda: (
                "Version" in text_of(app, "#config-status")
                and "Unsaved" not in text_of(app, "#config-status")
            ),
            show="#config-status",
        )
        net = (await _config(live))["network"]
        assert net["mode"] == "static" and net["address"] == "10.0.0.30/24"  # type: ignore[index]
        assert net["dns"] == ["10.0.0.1", "9.9.9.9"]  # type: ignore[index]
        written = (live.data / "network" / "10-ponte.network").read_text()
        assert "Address=10.0.0.30/24" in written and "DNS=9.9.9.9" in written

        # Trunks: add one; a bad registrar is refused at its field.
        for _ in range(5):
            await pilot.press("up")
        await until(
            pilot, lambda: "none yet" in str(app.screen.query("#form Label").first().render())
        )
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.query("#f-sip_trunks_0__registrar"))
        app.screen.query_one("#f-sip_trunks_0__registrar", Input).value = "bad host name!"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: text_of(app, "#err-f-sip_trunks_0__registrar") != "")
        assert "required to register" in text_of(app, "#err-f-sip_trunks_0__username")
        app.screen.query_one("#f-sip_trunks_0__registrar", Input).value = "sip.example.org"
        app.screen.query_one("#f-sip_trunks_0__username", Input).value = "4711"
        await pilot.press("ctrl+s")
        await until(
            pilot,
            lambda: text_of(app, "#config-status").startswith("Version"),
            show="#config-status",
        )
        trunks = (await _config(live))["sip"]["trunks"]  # type: ignore[index]
        assert trunks[0]["registrar"] == "sip.example.org"


async def test_history_diff_and_rollback(live: LiveAppliance) -> None:
    async with live.client("setup") as api:
        await api.login(NEW_PASSWORD)
        current = await api.call("config.get")
        doc = current["toml"].replace('hostname = "ponte"', 'hostname = "front-desk"')
        await api.call("config.apply", {"toml": doc, "base_version": current["version"]})
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, app)
        await pilot.press("h")
        await until(pilot, lambda: screen_name(app) == "HistoryScreen")
        table = app.screen.query_one("#versions", DataTable)
        await until(pilot, lambda: table.row_count >= 2)
        await pilot.press("enter")
        await until(pilot, lambda: "front-desk" in text_of(app, "#diff"))
        await pilot.press("down", "r")  # roll back to the version before
        await until(pilot, lambda: str(table.get_cell_at(Coordinate(0, 3))).startswith("rollback"))
    assert (await _config(live))["system"]["hostname"] != "front-desk"  # type: ignore[index]


async def test_logs_follow_and_filter(live: LiveAppliance) -> None:
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, app)
        await pilot.press("l")
        await until(pilot, lambda: screen_name(app) == "LogsScreen")
        log = app.screen.query_one("#log", RichLog)
        await pilot.press(*"port 4")
        await asyncio.to_thread(live.sim, target="handset", number=4, action="off-hook")
        await until(pilot, lambda: any("port 4: OffHook" in str(line.text) for line in log.lines))
        assert all("port 4" in str(line.text).lower() for line in log.lines)
        await asyncio.to_thread(live.sim, target="handset", number=4, action="on-hook")
        await pilot.press("ctrl+l")
        await until(pilot, lambda: any("control API" in str(line.text) for line in log.lines))


async def test_hardware_tests_progress_and_saved_report(
    live: LiveAppliance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, app)
        await pilot.press("t")
        await until(pilot, lambda: screen_name(app) == "HwtestScreen")
        app.pop_screen()
        # The same screen, on a quick subset of the suite.
        app.push_screen(HwtestScreen(k="hello or garbage"))
        await until(pilot, lambda: screen_name(app) == "HwtestScreen")
        await pilot.press("r")
        bar = app.screen.query_one("#hwtest-progress", ProgressBar)
        await until(pilot, lambda: "Done" in text_of(app, "#hwtest-status"), timeout=90)
        assert bar.progress == 1.0
        assert "CARD PASSES" in text_of(app, "#hwtest-report")
        await pilot.press("s")
        await until(pilot, lambda: list(tmp_path.glob("hwtest-report-*.txt")))
        saved = next(tmp_path.glob("hwtest-report-*.txt")).read_text()
        assert "Ponte line-card test report" in saved


async def test_backup_and_restore_with_a_passphrase(live: LiveAppliance, tmp_path: Path) -> None:
    backup = tmp_path / "box.backup"
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, app)
        await pilot.press("b")
        await until(pilot, lambda: screen_name(app) == "BackupScreen")
        app.screen.query_one("#backup-path", Input).value = str(backup)
        app.screen.query_one("#backup-passphrase", Input).value = "long passphrase"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "sealed" in text_of(app, "#backup-status"))
        assert '"ponte-backup"' in backup.read_text()
        assert backup.stat().st_mode & 0o077 == 0

        async with live.client("setup") as api:
            await api.login(NEW_PASSWORD)
            current = await api.call("config.get")
            doc = current["toml"].replace('timezone = "UTC"', 'timezone = "Europe/Rome"')
            await api.call("config.apply", {"toml": doc, "base_version": current["version"]})

        app.screen.query_one("#backup-passphrase", Input).value = "not the passphrase"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "wrong passphrase" in text_of(app, "#backup-status"))
        app.screen.query_one("#backup-passphrase", Input).value = "long passphrase"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "Restored as version" in text_of(app, "#backup-status"))
    assert (await _config(live))["system"]["timezone"] == "UTC"  # type: ignore[index]


async def test_updates_screen(live: LiveAppliance) -> None:
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await log_in(pilot, app)
        await pilot.press("u")
        await until(pilot, lambda: screen_name(app) == "UpdatesScreen")
        await until(pilot, lambda: "unavailable" in text_of(app, "#update-status"))
        assert "no update configuration" in text_of(app, "#update-status")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(app) == "DashboardScreen")
