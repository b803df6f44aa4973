"""Backup and restore of the configuration, optionally sealed with a passphrase."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from firmware.api.client import ApiError
from tui.screens.base import ConsoleScreen, api_message, error_list

MAX_BACKUP_BYTES = 2 * 1024 * 1024


class BackupScreen(ConsoleScreen):
    TITLE_TEXT = "Backup and restore"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+s", "export", "Export to file"),
        Binding("ctrl+r", "import", "Restore from file"),
    ]

    def compose(self) -> ComposeResult:
        yield self.header()
        default = f"ponte-backup-{dt.date.today():%Y%m%d}.txt"
        with Vertical(id="backup"):
            yield Label("File (on this computer)")
            yield Input(value=default, id="backup-path")
            yield Label("Passphrase (optional; 8+ characters seals the backup)")
            yield Input(password=True, id="backup-passphrase")
            yield Static("", id="backup-status", classes="error")
            yield Static(
                "Ctrl+S writes a backup of the configuration, secrets included.\n"
                "Ctrl+R restores one: it is checked, then saved as a new version.",
                id="backup-help",
            )
        yield self.footer()

    def on_mount(self) -> None:
        self.query_one("#backup-path", Input).focus()

    def status(self, text: str) -> None:
        self.query_one("#backup-status", Static).update(text)

    def _inputs(self) -> tuple[Path, str | None]:
        path = Path(self.query_one("#backup-path", Input).value.strip() or "backup.txt")
        passphrase = self.query_one("#backup-passphrase", Input).value or None
        return path, passphrase

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.status("Ctrl+S to export, Ctrl+R to restore.")

    @work(exclusive=True)
    async def action_export(self) -> None:
        path, passphrase = self._inputs()
        params = {"passphrase": passphrase} if passphrase else {}
        self.status("Exporting...")
        try:
            result = await self.console.api.call("config.export", params)
        except ApiError as exc:
            self.status(f"Not exported: {api_message(exc)}")
            return
        try:
            # Secrets inside: readable by this user only.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(result["text"])
        except OSError as exc:
            self.status(f"Cannot write {path}: {exc.strerror}")
            return
        sealed = "sealed with the passphrase" if result["encrypted"] else "NOT encrypted"
        self.status(f"Version {result['version']} written to {path} ({sealed}).")

    @work(exclusive=True)
    async def action_import(self) -> None:
        path, passphrase = self._inputs()
        try:
            if path.stat().st_size > MAX_BACKUP_BYTES:
                self.status(f"{path} is too large to be a backup.")
                return
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            self.status(f"Cannot read {path}: {exc}")
            return
        params: dict[str, str] = {"text": text}
        if passphrase:
            params["passphrase"] = passphrase
        self.status("Restoring...")
        try:
            result = await self.console.api.call("config.import", params)
        except ApiError as exc:
            errors = error_list(exc)
            detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:3])
            self.status(f"Not restored: {exc.message}" + (f" ({detail})" if detail else ""))
            return
        if result["changed"]:
            self.status(f"Restored as version {result['version']}.")
        else:
            self.status("The backup equals the configuration in force: nothing changed.")
