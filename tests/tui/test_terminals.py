"""Serial consoles: TERM=vt100 and TERM=linux with 16 colours, keyboard only, 80x24."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import textual.constants

from tests.service.live import LiveAppliance
from tests.tui.helpers import log_in, screen_name, set_up_password, until
from tui.app import ConsoleApp

SCREENS = {
    "c": "ConfigScreen",
    "h": "HistoryScreen",
    "l": "LogsScreen",
    "t": "HwtestScreen",
    "b": "BackupScreen",
    "u": "UpdatesScreen",
    "m": "SipMessagesScreen",
    "a": "LevelsScreen",
}


@pytest.fixture(scope="module")
def live() -> Iterator[LiveAppliance]:
    appliance = LiveAppliance()
    asyncio.run(set_up_password(appliance))
    yield appliance
    appliance.close()


@pytest.mark.parametrize("term", ["vt100", "linux"])
async def test_every_screen_on_a_16_colour_terminal(
    live: LiveAppliance, term: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", term)
    monkeypatch.setenv("TEXTUAL_COLOR_SYSTEM", "standard")
    # Textual reads the variable once at import; the app takes it from here.
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "standard")
    app = ConsoleApp(str(live.socket), snapshot=True)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.console.color_system == "standard"
        await log_in(pilot, app)
        for key, name in SCREENS.items():
            await pilot.press(key)
            await until(pilot, lambda name=name: screen_name(app) == name)  # type: ignore[misc]
            # Every screen names its keys in the footer, Escape among them.
            footer = " ".join(
                b.binding.description for b in app.active_bindings.values() if b.binding.show
            )
            assert "Back" in footer, (name, footer)
            await pilot.press("escape")
            await until(pilot, lambda: screen_name(app) == "DashboardScreen")
        footer = " ".join(
            b.binding.description for b in app.active_bindings.values() if b.binding.show
        )
        for word in (
            "Config",
            "History",
            "Logs",
            "Tests",
            "Backup",
            "Updates",
            "SIP msgs",
            "Levels",
            "Quit",
        ):
            assert word in footer
