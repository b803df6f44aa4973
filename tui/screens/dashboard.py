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


def duration_text(start: object, now: float) -> str:
    if not isinstance(start, int | float) or start <= 0:
        return "-"
    seconds = max(0, int(now - start))
    return f"{seconds // 60}:{seconds % 60:02d}"


def quality_text(quality: object) -> str:
    if not isinstance(quality, dict):
        return "no quality figures yet"

    def num(key: str, fmt: str) -> str:
        value = quality.get(key)
        return format(value, fmt) if isinstance(value, int | float) else "?"

    return (
        f"{quality.get('codec', '?')} jitter {num('rx_jitter_ms', '.0f')} ms "
        f"loss {num('rx_loss_pct', '.1f')}% MOS {num('mos', '.1f')}"
    )


def calls_lines(
    calls: list[dict[str, Any]],
    local: list[dict[str, Any]],
    sip: dict[str, Any],
    now: float,
    snapshot: bool,
) -> list[str]:
    """The dashboard's calls panel: each SIP leg with its port, far end, time and quality,
    then the calls between lines (which have no SIP leg)."""
    if sip.get("running"):
        legs = f"SIP legs {sip.get('legs_in_use', 0)}/{sip.get('legs_max', 0)}"
    else:
        legs = "SIP not running"
    lines = [f"[b]Calls[/b]  {legs}"]
    for call in calls:
        port = call.get("port")
        where = f"port {port}" if port is not None else "no port"
        arrow = "->" if call.get("direction") == "out" else "<-"
        since = call.get("answered") or call.get("started")
        took = "-" if snapshot else duration_text(since, now)
        lines.append(
            f"{where} {arrow} {call.get('remote', '?')} via {call.get('account', '?')} "
            f"{call.get('state', '')} {took}  {quality_text(call.get('quality'))}"
        )
    for row in local:
        if row.get("leg") is not None:
            continue  # shown above with its SIP leg
        ports = "+".join(str(p) for p in row.get("ports", []))
        age = row.get("age_s")
        took = (
            "-" if snapshot or not isinstance(age, int | float) else duration_text(now - age, now)
        )
        lines.append(
            f"ports {ports} {row.get('from', '?')} -> {row.get('to', '?')} "
            f"{row.get('state', '')} {took}"
        )
    if len(lines) == 1:
        lines.append("none")
    return lines


def registration_text(reg: dict[str, Any]) -> str:
    if reg.get("registered"):
        expires = reg.get("expires_s")
        until = f", expires in {expires} s" if isinstance(expires, int | float) else ""
        return f"registered{until}"
    code = reg.get("code")
    why = f"{code} {reg.get('reason', '')}".strip() if code else str(reg.get("reason") or "")
    return f"NOT registered{f' ({why})' if why else ''}"


class DashboardScreen(ConsoleScreen):
    TITLE_TEXT = "Dashboard"
    trunk_error = ""  # why the configuration could not be read, if it could not
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "open('config')", "Config"),
        Binding("h", "open('history')", "History"),
        Binding("l", "open('logs')", "Logs"),
        Binding("t", "open('tests')", "Tests"),
        Binding("b", "open('backup')", "Backup"),
        Binding("u", "open('updates')", "Updates"),
        Binding("m", "open('messages')", "SIP msgs"),
        Binding("a", "open('levels')", "Levels"),
        Binding("q", "app.quit", "Quit", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield self.header()
        with Vertical(id="dashboard"):
            table: DataTable[str] = DataTable(id="ports", cursor_type="row", zebra_stripes=False)
            yield table
            yield Static("", id="calls")
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
        self.refresh_calls()

    def on_state_changed(self, message: StateChanged) -> None:
        if message.part == "ports":
            self.refresh_ports()
        elif message.part == "alarms":
            self.refresh_alarms()
        elif message.part == "system":
            self.refresh_system()
        elif message.part == "config":
            self.load_trunks()
        elif message.part == "calls":
            self.refresh_calls()
            self.show_trunks()

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

    def refresh_calls(self) -> None:
        state = self.console.state
        lines = calls_lines(
            state.calls, state.local_calls, state.sip, time.time(), self.console.snapshot
        )
        self.query_one("#calls", Static).update("\n".join(lines))

    @work(exclusive=True, group="trunks")
    async def load_trunks(self) -> None:
        try:
            current = await self.console.api.call("config.get")
            trunks = tomldoc.loads(current["toml"]).get("sip", {}).get("trunks", [])
        except (ApiError, ValueError) as exc:
            self.trunk_error = str(exc)
        else:
            self.trunk_error = ""
            self.console.state.trunks = [t for t in trunks if isinstance(t, dict)]
        self.show_trunks()

    def show_trunks(self) -> None:
        text = ["[b]Trunks[/b]"]
        trunks = self.console.state.trunks
        if self.trunk_error:
            text.append(f"unknown ({self.trunk_error})")
        elif not trunks:
            text.append("none configured")
        regs = {str(r.get("account")): r for r in self.console.state.sip.get("registrations", [])}
        for trunk in trunks[:4]:
            name = str(trunk.get("name", "?"))
            reg = regs.get(name)
            shown = registration_text(reg) if reg else "not registered"
            text.append(f"{name} {trunk.get('registrar', '')}: {shown}")
        self.query_one("#trunks", Static).update("\n".join(text))

    def action_open(self, name: str) -> None:
        from tui.screens import backup, config, diagnostics, history, sipdiag, updates

        screens = {
            "config": config.ConfigScreen,
            "history": history.HistoryScreen,
            "logs": diagnostics.LogsScreen,
            "tests": diagnostics.HwtestScreen,
            "backup": backup.BackupScreen,
            "updates": updates.UpdatesScreen,
            "messages": sipdiag.SipMessagesScreen,
            "levels": sipdiag.LevelsScreen,
        }
        self.app.push_screen(screens[name]())

    def action_back(self) -> None:
        pass  # the dashboard is the bottom screen
