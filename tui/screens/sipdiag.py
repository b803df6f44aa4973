"""Diagnostics that need the SIP bridge and the media loop: SIP messages, line levels."""

from __future__ import annotations

import time
from typing import Any, ClassVar, Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from firmware.api.client import ApiError
from tui.screens.base import ConsoleScreen, api_message

MESSAGES_LIMIT: Final = 200  # sip.messages keeps at most 200
MESSAGE_COLUMNS: Final = (("time", 8), ("dir", 3), ("remote", 21), ("first line", 60))


class SipMessagesScreen(ConsoleScreen):
    """The last SIP messages the appliance sent and received, filtered by text."""

    TITLE_TEXT = "SIP messages"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+r", "reload", "Refresh"),
        Binding("ctrl+l", "clear_filter", "Clear filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield self.header()
        yield Input(
            placeholder="only messages containing (e.g. REGISTER, a number)", id="sip-filter"
        )
        table: DataTable[str] = DataTable(id="sip-messages", cursor_type="row")
        yield table
        with VerticalScroll(id="sip-message-box"):
            yield Static("", id="sip-message", markup=False)
        yield Static("", id="sip-status")
        yield self.footer()

    def on_mount(self) -> None:
        table = self.query_one("#sip-messages", DataTable)
        for label, width in MESSAGE_COLUMNS:
            table.add_column(label.title(), key=label, width=width)
        self.query_one("#sip-filter", Input).focus()
        self.reload()

    @on(Input.Changed, "#sip-filter")
    def filter_changed(self) -> None:
        self.reload()

    @on(Input.Submitted, "#sip-filter")
    def filter_submitted(self) -> None:
        self.action_focus_list()

    def action_reload(self) -> None:
        self.reload()

    def action_clear_filter(self) -> None:
        self.query_one("#sip-filter", Input).value = ""

    def action_focus_list(self) -> None:
        self.query_one("#sip-messages", DataTable).focus()

    @work(exclusive=True, group="sip-messages")
    async def reload(self) -> None:
        needle = self.query_one("#sip-filter", Input).value.strip()
        try:
            result = await self.console.api.call(
                "sip.messages", {"limit": MESSAGES_LIMIT, "contains": needle}
            )
        except ApiError as exc:
            self.messages = []
            self.show_list()
            self.status(f"Cannot read SIP messages: {api_message(exc)}")
            return
        # Newest first: what the installer just caused is at the top.
        self.messages = list(reversed(result.get("messages", [])))
        self.show_list()
        shown = f"{len(self.messages)} message(s)"
        self.status(
            f"{shown}{f' containing {needle!r}' if needle else ''}, newest first. "
            "Enter in the filter goes to the list."
        )

    def status(self, text: str) -> None:
        self.query_one("#sip-status", Static).update(text)

    def show_list(self) -> None:
        table = self.query_one("#sip-messages", DataTable)
        table.clear()
        snapshot = self.console.snapshot
        for i, message in enumerate(self.messages):
            stamp = (
                "--:--:--"
                if snapshot
                else time.strftime("%H:%M:%S", time.localtime(float(message.get("time", 0))))
            )
            table.add_row(
                stamp,
                str(message.get("direction", "?")),
                "-" if snapshot else str(message.get("remote", "")),
                str(message.get("first_line", "")),
                key=str(i),
            )
        self.show_message(0)

    @on(DataTable.RowHighlighted, "#sip-messages")
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.show_message(int(event.row_key.value))

    def show_message(self, index: int) -> None:
        box = self.query_one("#sip-message", Static)
        if not 0 <= index < len(self.messages):
            box.update("(no message)")
            return
        message = self.messages[index]
        way = "sent to" if message.get("direction") == "tx" else "received from"
        head = f"{way} {message.get('remote', '?')} over {message.get('transport', '?')}"
        box.update(f"{head}\n{message.get('text', '')}")


# --- live audio levels -------------------------------------------------------------------

LEVELS_POLL_S: Final = 0.25  # four readings a second: a meter that follows speech
METER_MIN_DBM0: Final = -60.0  # the left end of the bar; quieter reads as empty
METER_MAX_DBM0: Final = 3.14  # G.711's full-scale sine (firmware.dsp.levels.DBM0_MAX_SINE)
METER_WIDTH: Final = 40  # characters: fits 80 columns with the labels


def meter(level: float, peak: float, width: int = METER_WIDTH) -> str:
    """An ASCII bar (a serial console has no block characters): '=' level, '|' peak."""
    span = METER_MAX_DBM0 - METER_MIN_DBM0

    def cells(dbm0: float) -> int:
        return max(0, min(width, round((dbm0 - METER_MIN_DBM0) / span * width)))

    filled = cells(level)
    bar = ["="] * filled + ["-"] * (width - filled)
    held = cells(peak)
    if held > 0:
        bar[held - 1] = "|"
    return "[" + "".join(bar) + "]"


def level_text(value: object) -> str:
    if not isinstance(value, int | float) or value <= METER_MIN_DBM0:
        return "  quiet"
    return f"{value:5.1f} dBm0"


class LevelsScreen(ConsoleScreen):
    """A line's live audio levels: what it hears from the phone or exchange and what it
    plays to it, read from ``ports.levels`` a few times a second."""

    TITLE_TEXT = "Line levels"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("left", "port(-1)", "Previous port"),
        Binding("right", "port(1)", "Next port"),
    ]

    def __init__(self, port: int = 1) -> None:
        super().__init__()
        self.port = port
        self.reading: dict[str, Any] = {}
        self.error = ""

    def compose(self) -> ComposeResult:
        yield self.header()
        with Vertical(id="levels"):
            yield Static("", id="levels-port")
            yield Static("", id="levels-meters")
            yield Static(
                f"Scale {METER_MIN_DBM0:.0f} to +{METER_MAX_DBM0:.0f} dBm0; '|' is the peak "
                "held 1.5 s. A handset's speech is around -20 dBm0, tones -10 to -13.",
                id="levels-help",
            )
        yield self.footer()

    def on_mount(self) -> None:
        self.draw()
        self.poll()
        self.set_interval(LEVELS_POLL_S, self.poll)

    def ports(self) -> list[int]:
        return sorted(self.console.state.ports) or [self.port]

    def action_port(self, step: int) -> None:
        ports = self.ports()
        at = ports.index(self.port) if self.port in ports else 0
        self.port = ports[(at + step) % len(ports)]
        self.reading = {}
        self.draw()
        self.poll()

    @work(exclusive=True, group="levels")
    async def poll(self) -> None:
        try:
            self.reading = await self.console.api.call("ports.levels", {"port": self.port})
            self.error = ""
        except ApiError as exc:
            self.reading = {}
            self.error = api_message(exc)
        self.draw()

    def draw(self) -> None:
        port = self.console.state.ports.get(self.port, {})
        kind = port.get("kind", "?")
        who = "the exchange" if kind == "FXO" else "the phone"
        self.query_one("#levels-port", Static).update(
            f"[b]Port {self.port}[/b] ({kind}, {port.get('state', '?')})  <- and -> choose the port"
        )
        if self.error:
            self.query_one("#levels-meters", Static).update(f"Cannot read levels: {self.error}")
            return
        r = self.reading
        rows = []
        for label, key in ((f"hears from {who}", "rx"), (f"plays to {who}", "tx")):
            level = r.get(f"{key}_dbm0")
            peak = r.get(f"{key}_peak_dbm0")
            lvl = float(level) if isinstance(level, int | float) else METER_MIN_DBM0
            pk = float(peak) if isinstance(peak, int | float) else METER_MIN_DBM0
            peak_text = level_text(peak).strip()
            rows.append(f"{label}\n{meter(lvl, pk)} {level_text(level)}  (peak {peak_text})")
        self.query_one("#levels-meters", Static).update("\n\n".join(rows) + "\n")
