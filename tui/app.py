"""The installer console: a Textual app over the control API client, nothing else.

Everything the console shows comes from ``firmware.api.client`` (import-linter enforces
it).  Calls run in ``@work`` workers; one worker pumps the event stream into
``ConsoleState`` and posts merged ``StateChanged`` messages to the screen on top.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar, Final

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from firmware.api.client import ApiClient, ApiError
from tui.messages import Connection, StateChanged
from tui.state import ConsoleState

TOPICS: Final = ("ports", "alarms", "logs", "jobs", "config", "calls", "sip")
SYSTEM_POLL_S: Final = 2.0
RECONNECT_S: Final = 2.0
SNAPSHOT_ENV: Final = "PONTE_CONSOLE_SNAPSHOT"


class ConsoleApp(App[None]):
    CSS_PATH = "console.tcss"
    TITLE = "Ponte console"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, socket_path: str | None = None, *, snapshot: bool | None = None) -> None:
        super().__init__()
        self.api = ApiClient(socket_path, client_name="console", auto_reconnect=True)
        self.state = ConsoleState()
        # Snapshot mode hides what changes on every run (clocks, uptime, CPU, pids).
        self.snapshot = bool(os.environ.get(SNAPSHOT_ENV)) if snapshot is None else snapshot
        self.logged_in = False
        self.connected = False

    # -- start-up --------------------------------------------------------------------
    def on_mount(self) -> None:
        from tui.screens.login import ConnectingScreen

        self.push_screen(ConnectingScreen())
        self.start()

    @work(exclusive=True, group="connect")
    async def start(self) -> None:
        from tui.screens.login import LoginScreen

        while True:
            try:
                await self.api.connect()
                await self.api.subscribe(*TOPICS)
                status = await self.api.call("auth.status")
                break
            except ApiError as exc:
                self.post_to_screen(Connection(False, f"{exc.message}"))
                await asyncio.sleep(RECONNECT_S)
        self.connected = True
        self.pump_events()
        self.poll_system()
        await self.resync()
        self.switch_screen(LoginScreen(first_run=bool(status.get("first_run"))))

    def post_to_screen(self, message: Any) -> None:
        self.screen.post_message(message)

    async def resync(self) -> None:
        """Read the state events describe (after subscribing, so nothing is missed)."""
        try:
            ports = await self.api.call("ports.list")
            alarms = await self.api.call("alarms.list")
            logs = await self.api.call("logs.tail", {"lines": 500})
        except ApiError:
            return
        self.state.ports = {p["port"]: p for p in ports["ports"]}
        self.state.linecard = ports["linecard"]
        self.state.alarms = {a["id"]: a for a in alarms["alarms"]}
        self.state.logs.clear()
        self.state.logs.extend(logs["records"])
        for part in ("ports", "alarms", "logs"):
            self.post_to_screen(StateChanged(part))

    @work(exclusive=True, group="events")
    async def pump_events(self) -> None:
        while True:
            try:
                event = await self.api.next_event()
            except ApiError as exc:
                self.connected = False
                self.post_to_screen(Connection(False, exc.message))
                await asyncio.sleep(RECONNECT_S)
                try:
                    await self.api.connect()
                except ApiError:
                    continue
                self.connected = True
                self.post_to_screen(Connection(True))
                await self.resync()
                continue
            part = self.state.apply(event.topic, event.seq, event.data)
            if part == "resync":
                await self.resync()
            elif part == "calls":
                self.post_to_screen(StateChanged(part))
                self.refresh_calls()
            elif part is not None:
                self.post_to_screen(StateChanged(part))

    @work(exclusive=True, group="system")
    async def poll_system(self) -> None:
        while True:
            try:
                self.state.system = await self.api.call("system.info")
                self.state.update = await self.api.call("update.status")
                ports = await self.api.call("ports.list")
                self.state.linecard = ports["linecard"]
                self.post_to_screen(StateChanged("system"))
                await self.read_calls()
            except ApiError:
                pass
            await asyncio.sleep(SYSTEM_POLL_S)

    async def read_calls(self) -> None:
        """calls.list and sip.status into the state (quality changes without an event)."""
        calls = await self.api.call("calls.list")
        self.state.sip = await self.api.call("sip.status")
        self.state.calls = list(calls.get("calls", []))
        self.state.local_calls = list(calls.get("local", []))
        self.post_to_screen(StateChanged("calls"))

    @work(exclusive=True, group="calls")
    async def refresh_calls(self) -> None:
        try:
            await self.read_calls()
        except ApiError:
            pass

    # -- after login -----------------------------------------------------------------
    def logged_in_now(self) -> None:
        from tui.screens.dashboard import DashboardScreen

        self.logged_in = True
        self.switch_screen(DashboardScreen())

    def open_screen(self, screen: Screen[Any]) -> None:
        self.push_screen(screen)

    async def on_unmount(self) -> None:
        await self.api.close()


def run(socket_path: str | None) -> int:
    ConsoleApp(socket_path).run()
    return 0
