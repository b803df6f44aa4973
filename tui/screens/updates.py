"""Firmware updates: the A/B slots as ``update.status`` reports them (read-only)."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Static

from firmware.api.client import ApiError
from tui.screens.base import ConsoleScreen, api_message


class UpdatesScreen(ConsoleScreen):
    TITLE_TEXT = "Firmware updates"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "refresh", "Refresh"),
    ]

    def compose(self) -> ComposeResult:
        yield self.header()
        with Vertical(id="updates"):
            yield Static("Reading...", id="update-status")
            yield Static(
                "Installing a bundle: ponte update install FILE (see docs/updates.md).",
                id="update-help",
            )
        yield self.footer()

    def on_mount(self) -> None:
        self.action_refresh()

    @work(exclusive=True)
    async def action_refresh(self) -> None:
        out = self.query_one("#update-status", Static)
        try:
            s = await self.console.api.call("update.status")
        except ApiError as exc:
            out.update(api_message(exc))
            return
        if not s.get("available"):
            out.update(f"Firmware slots unavailable: {s.get('reason', 'unknown')}")
            return
        lines = [
            f"booted slot     {s['booted']}",
            f"boot order      {' '.join(s['order']) or '(empty)'}",
            f"last good       {s['last_good']}",
            f"rollback floor  security version {s['floor']}",
            "",
        ]
        for name, slot in sorted(s["slots"].items()):
            mark = "*" if name == s["booted"] else " "
            lines.append(
                f"{mark} slot {name}: {slot.get('status', '?'):<10} "
                f"{slot.get('version') or '-':<14}"
                f" security {slot.get('security_version', '?')}"
                f"  attempts left {slot.get('attempts_left', '?')}"
            )
        out.update("\n".join(lines))
