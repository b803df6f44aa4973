"""Configuration history: every saved version, its diff, and rollback."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from firmware.api.client import ApiError
from tui.messages import StateChanged
from tui.screens.base import ConsoleScreen, api_message


class HistoryScreen(ConsoleScreen):
    TITLE_TEXT = "Configuration history"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("enter", "diff", "Diff", show=True),
        Binding("r", "rollback", "Roll back to it"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.versions: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield self.header()
        with Vertical(id="history"):
            yield DataTable(id="versions", cursor_type="row")
            yield Static("", id="diff")
        yield self.footer()

    def on_mount(self) -> None:
        table = self.query_one("#versions", DataTable)
        table.add_column("Ver", key="version", width=4)
        table.add_column("When", key="when", width=16)
        table.add_column("Who", key="who", width=17)
        table.add_column("What", key="what", width=30)
        table.focus()
        self.load()

    def on_state_changed(self, message: StateChanged) -> None:
        if message.part == "config":
            self.load()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        try:
            result = await self.console.api.call("config.history", {"limit": 50})
        except ApiError as exc:
            self.query_one("#diff", Static).update(api_message(exc))
            return
        self.versions = result["versions"]
        table = self.query_one("#versions", DataTable)
        table.clear()
        snapshot = self.console.snapshot
        for v in self.versions:
            when = "-" if snapshot else str(v["created_at"])[:16].replace("T", " ")
            what = f"{v['action']}: {v['summary']}" if v["summary"] else v["action"]
            table.add_row(str(v["version"]), when, v["author"], what, key=str(v["version"]))
        self.query_one("#diff", Static).update("Enter shows what a version changed.")

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one("#versions", DataTable)
        if not self.versions or table.cursor_row >= len(self.versions):
            return None
        return self.versions[table.cursor_row]

    @on(DataTable.RowSelected)
    def row_selected(self) -> None:
        self.action_diff()

    @work(exclusive=True, group="diff")
    async def action_diff(self) -> None:
        version = self.selected()
        out = self.query_one("#diff", Static)
        if version is None:
            return
        number = int(version["version"])
        if number <= 1:
            out.update("Version 1 is the factory configuration.")
            return
        try:
            diff = await self.console.api.call("config.diff", {"old": number - 1, "new": number})
        except ApiError as exc:
            out.update(api_message(exc))
            return
        lines = [f"[b]Version {number - 1} -> {number}[/b]"]
        lines += [str(c["text"]) for c in diff["changes"][:12]] or ["no change"]
        if len(diff["changes"]) > 12:
            lines.append(f"... {len(diff['changes']) - 12} more")
        out.update("\n".join(lines))

    @work(exclusive=True, group="rollback")
    async def action_rollback(self) -> None:
        version = self.selected()
        if version is None or not self.versions:
            return
        head = int(self.versions[0]["version"])
        try:
            saved = await self.console.api.call(
                "config.rollback", {"version": int(version["version"]), "base_version": head}
            )
        except ApiError as exc:
            self.query_one("#diff", Static).update(f"Not rolled back: {api_message(exc)}")
            return
        self.notify(f"Version {version['version']} is current again as {saved['version']}.")
        self.load()
