"""The dashboard: ports, trunks, alarms and the system, live from the event stream."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from firmware.api.client import ApiError
from tui import tomldoc
from tui.messages import Connection, StateChanged
from tui.screens.base import ConsoleScreen

COLUMNS = ("port", "kind", "hook", "ring", "state", "tone", "since")
WIDTHS = (4, 4, 8, 4, 16, 12, 8)


def hook_state(port: dict[str, Any]) -> str:
    state = str(port.get("state", ""))
    if port.get("kind") == "FXO":
        return "seized" if state not in ("idle", "ringing") else "idle"
    return "on-hook" if state in ("idle", "ringing", "alerting") else "off-hook"


def since_text(since: object, now: float) -> str:
    if not isinstance(since, int | float) or since <= 0:
        return "-"
    seconds = max(0, int(now - since))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def bytes_text(value: object) -> str:
    if not isinstance(value, int | float):
        return "?"
    return f"{value / 2**20:.0f} MiB"


class DashboardScreen(ConsoleScreen):
    TITLE_TEXT = "Dashboard"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "open('config')", "Config"),
        Binding("h", "open('history')", "History"),
        Binding("l", "open('logs')", "Logs"),
        Binding("t", "open('tests')", "Tests"),
        Binding("b", "open('backup')", "Backup"),
        Binding("u", "open('updates')", "Updates"),
        Binding("q", "app.quit", "Quit", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield self.header()
        with Vertical(id="dashboard"):
            table: DataTable[str] = DataTable(id="ports", cursor_type="row", zebra_stripes=False)
            yield table
            with Horizontal(id="panels"):
                with Vertical(id="left-panel"):
                    yield Static("", id="trunks")
                    yield Static("", id="alarms")
                yield Static("", id="system")
        yield self.footer()

    def on_mount(self) -> None:
        table = self.query_one("#ports", DataTable)
        for label, width in zip(COLUMNS, WIDTHS, strict=True):
            table.add_column(label.title(), key=label, width=width)
        self.refresh_all()
        self.load_trunks()
        if not self.console.snapshot:
            self.set_interval(1.0, self.refresh_ports)

    def on_screen_resume(self) -> None:
        self.refresh_all()
        self.load_trunks()

    def refresh_all(self) -> None:
        self.refresh_ports()
        self.refresh_alarms()
        self.refresh_system()

    def on_state_changed(self, message: StateChanged) -> None:
        if message.part == "ports":
            self.refresh_ports()
        elif message.part == "alarms":
            self.refresh_alarms()
        elif message.part == "system":
            self.refresh_system()
        elif message.part == "config":
            self.load_trunks()

    def on_connection(self, message: Connection) -> None:
        self.refresh_system()

    def refresh_ports(self) -> None:
        table = self.query_one("#ports", DataTable)
        now = time.time()
        snapshot = self.console.snapshot
        rows = []
        for number, port in sorted(self.console.state.ports.items()):
            state = str(port.get("state", "?"))
            rows.append(
                (
                    str(number),
                    str(port.get("kind", "?")),
                    hook_state(port),
                    "yes" if "ring" in state else "",
                    state,
                    str(port.get("tone") or ""),
                    "-" if snapshot else since_text(port.get("since"), now),
                )
            )
        keys = [row[0] for row in rows]
        if [str(k.value) for k in table.rows] == keys:
            # Same ports as drawn: change cells in place (no flicker, the cursor stays).
            for row in rows:
                for column, value in zip(COLUMNS, row, strict=True):
                    table.update_cell(row[0], column, value)
            return
        table.clear()
        for row in rows:
            table.add_row(*row, key=row[0])

    def refresh_alarms(self) -> None:
        alarms = sorted(self.console.state.alarms.values(), key=lambda a: str(a.get("id")))
        lines = ["[b]Alarms[/b]"]
        if not alarms:
            lines.append("none")
        for alarm in alarms[:6]:
            severity = str(alarm.get("severity", "")).upper()
            lines.append(f"[reverse]{severity}[/reverse] {alarm.get('text', '')}")
        if len(alarms) > 6:
            lines.append(f"... and {len(alarms) - 6} more")
        self.query_one("#alarms", Static).update("\n".join(lines))

    def refresh_system(self) -> None:
        app = self.console
        info = app.state.system
        update = app.state.update
        snapshot = app.snapshot
        cpu = info.get("cpu") or {}
        memory = info.get("memory") or {}
        slot = update.get("booted") if update.get("available") else "-"
        link = app.state.linecard if app.connected else "no API connection"
        if snapshot:
            cpu_text = mem_text = up_text = "-"
        else:
            cpu_text = f"{cpu.get('percent', '?')} % of {cpu.get('count', '?')}"
            avail = bytes_text(memory.get("available_bytes"))
            mem_text = f"{avail} free of {bytes_text(memory.get('total_bytes'))}"
            up_text = since_text(time.time() - float(info.get("uptime_s") or 0), time.time())
        lines = [
            "[b]System[/b]",
            f"firmware  {info.get('version', '?')}  slot {slot}",
            f"host      {'-' if snapshot else info.get('hostname', '?')}",
            f"line card {link}",
            f"CPU       {cpu_text}",
            f"memory    {mem_text}",
            f"uptime    {up_text}",
        ]
        self.query_one("#system", Static).update("\n".join(lines))

    @work(exclusive=True, group="trunks")
    async def load_trunks(self) -> None:
        text = ["[b]Trunks[/b]"]
        try:
            current = await self.console.api.call("config.get")
            trunks = tomldoc.loads(current["toml"]).get("sip", {}).get("trunks", [])
        except (ApiError, ValueError) as exc:
            text.append(f"unknown ({exc})")
            trunks = []
        else:
            if not trunks:
                text.append("none configured")
        for trunk in trunks[:4]:
            # SIP is not running yet (issue 4): registrations are shown once it reports them.
            text.append(f"{trunk.get('name', '?')} {trunk.get('registrar', '')}: not registered")
        self.query_one("#trunks", Static).update("\n".join(text))

    def action_open(self, name: str) -> None:
        from tui.screens import backup, config, diagnostics, history, updates

        screens = {
            "config": config.ConfigScreen,
            "history": history.HistoryScreen,
            "logs": diagnostics.LogsScreen,
            "tests": diagnostics.HwtestScreen,
            "backup": backup.BackupScreen,
            "updates": updates.UpdatesScreen,
        }
        self.app.push_screen(screens[name]())

    def action_back(self) -> None:
        pass  # the dashboard is the bottom screen
