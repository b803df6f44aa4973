"""Driving the console against a real ``ponte run``: waiting, logging in, snapshots."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from tests.service.live import FACTORY_PASSWORD, NEW_PASSWORD, LiveAppliance, login
from tui.app import ConsoleApp

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_ENV = "PONTE_UPDATE_SNAPSHOTS"


async def until(
    pilot: Pilot[Any], predicate: Callable[[], object], timeout: float = 20, show: str = ""
) -> None:
    """Let the app run until ``predicate()`` is true (it talks to a real process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    app: Any = pilot.app
    shown = f"; {show} = {text_of(app, show)!r}" if show else ""
    raise AssertionError(f"timed out waiting on {type(app.screen).__name__}{shown}")


def screen_name(app: ConsoleApp) -> str:
    return type(app.screen).__name__


def text_of(app: ConsoleApp, selector: str) -> str:
    from textual.css.query import NoMatches
    from textual.widgets import Static

    try:
        return str(app.screen.query_one(selector, Static).render())
    except NoMatches:  # the screen is still composing
        return ""


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*text)


async def set_up_password(live: LiveAppliance) -> None:
    """Do the first-run password change through the API (for tests past the wizard)."""
    async with live.client("setup") as api:
        await login(api)


async def log_in(pilot: Pilot[Any], app: ConsoleApp) -> None:
    await until(pilot, lambda: screen_name(app) == "LoginScreen")
    await pilot.press(*NEW_PASSWORD, "enter")
    await until(pilot, lambda: screen_name(app) == "DashboardScreen")
    await until(pilot, lambda: len(app.state.ports) == 6)


async def settle(pilot: Pilot[Any]) -> None:
    await pilot.pause(0.2)
    await pilot.wait_for_scheduled_animations()


def check_snapshot(app: ConsoleApp, name: str) -> None:
    for field in app.screen.query(Input):
        field.cursor_blink = False
    svg = app.export_screenshot(title="Ponte console")
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get(UPDATE_ENV) or not path.exists():
        path.write_text(svg)
        if not os.environ.get(UPDATE_ENV):
            raise AssertionError(f"new snapshot {path} written: check it and commit it")
        return
    if path.read_text() != svg:
        actual = path.with_suffix(".actual.svg")
        actual.write_text(svg)
        raise AssertionError(
            f"{name} differs from {path}; see {actual} (set {UPDATE_ENV}=1 to accept)"
        )


__all__ = ["FACTORY_PASSWORD", "NEW_PASSWORD", "asyncio"]
