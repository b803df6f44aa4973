"""Diagnostics: the log (follow and filter) and the line-card hardware tests."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any, ClassVar, Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, ProgressBar, RichLog, Select, Static

from firmware.api.client import ApiError
from tui.messages import StateChanged
from tui.screens.base import ConsoleScreen, api_message

LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


class LogsScreen(ConsoleScreen):
    TITLE_TEXT = "Logs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+f", "follow", "Follow on/off"),
        Binding("ctrl+l", "clear_filter", "Clear filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.follow = True
        self.shown_seq = 0

    def compose(self) -> ComposeResult:
        yield self.header()
        with Horizontal(id="log-filters"):
            yield Input(placeholder="filter text", id="log-filter")
            yield Select(
                [(name.title(), name) for name in LEVELS],
                value="INFO",
                allow_blank=False,
                id="log-level",
            )
        yield RichLog(id="log", max_lines=2000, wrap=True, markup=False)
        yield Static("", id="log-status")
        yield self.footer()

    def on_mount(self) -> None:
        self.query_one("#log-filter", Input).focus()
        self.redraw()

    def matches(self, record: dict[str, Any]) -> bool:
        level = str(self.query_one("#log-level", Select).value)
        if LEVELS.index(_level(record)) < LEVELS.index(level):
            return False
        needle = self.query_one("#log-filter", Input).value.strip().lower()
        text = f"{record.get('name', '')} {record.get('message', '')}".lower()
        return not needle or needle in text

    def line(self, record: dict[str, Any]) -> str:
        if self.console.snapshot:
            stamp = "--:--:--"
        else:
            stamp = time.strftime("%H:%M:%S", time.localtime(float(record.get("time", 0))))
        return f"{stamp} {_level(record)[:4]:<4} {record.get('name', '')}: {record.get('message')}"

    def redraw(self) -> None:
        log = self.query_one("#log", RichLog)
        log.clear()
        self.shown_seq = 0
        self.append_new()

    def append_new(self) -> None:
        log = self.query_one("#log", RichLog)
        shown = 0
        for record in self.console.state.logs:
            seq = int(record.get("seq", 0))
            if seq <= self.shown_seq:
                continue
            self.shown_seq = seq
            if self.matches(record):
                log.write(self.line(record), scroll_end=self.follow)
                shown += 1
        mode = "following" if self.follow else "paused"
        self.query_one("#log-status", Static).update(
            f"{len(self.console.state.logs)} records, {mode}. Type to filter; Ctrl+F pauses."
        )

    def on_state_changed(self, message: StateChanged) -> None:
        if message.part == "logs":
            self.append_new()

    @on(Input.Changed, "#log-filter")
    @on(Select.Changed, "#log-level")
    def filter_changed(self) -> None:
        self.redraw()

    def action_follow(self) -> None:
        self.follow = not self.follow
        self.query_one("#log", RichLog).auto_scroll = self.follow
        self.append_new()

    def action_clear_filter(self) -> None:
        self.query_one("#log-filter", Input).value = ""


def _level(record: dict[str, Any]) -> str:
    level = str(record.get("level", "INFO"))
    return "ERROR" if level == "CRITICAL" else level if level in LEVELS else "INFO"


class HwtestScreen(ConsoleScreen):
    TITLE_TEXT = "Hardware tests"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "run", "Run tests"),
        Binding("s", "save", "Save report"),
        Binding("x", "cancel", "Cancel"),
    ]

    def __init__(self, k: str = "") -> None:
        super().__init__()
        self.k = k
        self.job: str | None = None
        self.report = ""

    def compose(self) -> ComposeResult:
        yield self.header()
        with Vertical(id="hwtest"):
            yield Label("Line-card contract tests (the simulator's card when simulating).")
            yield ProgressBar(total=1.0, show_eta=False, id="hwtest-progress")
            yield Static("Press R to run the tests.", id="hwtest-status")
            with VerticalScroll(id="hwtest-report-box"):
                yield Static("", id="hwtest-report")
        yield self.footer()

    @work(exclusive=True, group="hwtest")
    async def action_run(self) -> None:
        if self.job is not None:
            return
        try:
            result = await self.console.api.call("hwtest.run", {"k": self.k})
        except ApiError as exc:
            self.query_one("#hwtest-status", Static).update(f"Cannot start: {api_message(exc)}")
            return
        self.job = str(result["job"])
        self.report = ""
        self.query_one("#hwtest-report", Static).update("")
        self.query_one("#hwtest-progress", ProgressBar).update(progress=0.0)
        self.query_one("#hwtest-status", Static).update("Starting...")

    def on_state_changed(self, message: StateChanged) -> None:
        if message.part != "jobs" or self.job is None:
            return
        job = self.console.state.jobs.get(self.job)
        if job is None:
            return
        bar = self.query_one("#hwtest-progress", ProgressBar)
        status = self.query_one("#hwtest-status", Static)
        if job.get("progress") is not None:
            bar.update(progress=float(job["progress"]))
        state = job.get("state")
        if state == "running":
            status.update(str(job.get("message") or "running"))
            return
        self.job = None
        if state == "succeeded":
            result = job.get("result") or {}
            self.report = str(result.get("report", ""))
            verdict = "all passed" if result.get("passed") else "SOME FAILED"
            status.update(f"Done: {verdict}. S saves the report here.")
            self.query_one("#hwtest-report", Static).update(self.report)
        else:
            status.update(f"Tests {state}: {job.get('error') or job.get('message') or ''}")

    def action_cancel(self) -> None:
        if self.job is not None:
            self.cancel_job(self.job)

    @work(group="hwtest-cancel")
    async def cancel_job(self, job: str) -> None:
        try:
            await self.console.api.call("jobs.cancel", {"job": job})
        except ApiError as exc:
            self.notify(api_message(exc), severity="error")

    def action_save(self) -> None:
        if not self.report:
            self.notify("No report yet: press R to run the tests.")
            return
        path = Path(f"hwtest-report-{dt.datetime.now():%Y%m%d-%H%M%S}.txt")
        try:
            path.write_text(self.report)
        except OSError as exc:
            self.notify(f"Cannot save: {exc}", severity="error")
            return
        self.notify(f"Report saved to {path.resolve()}")
        self.query_one("#hwtest-status", Static).update(f"Report saved to {path}")
