"""Connecting, and the admin login (with the lock-out's wait shown)."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical
from textual.widgets import Input, Label, Static

from firmware.api.client import ApiError
from tui.messages import Connection
from tui.screens.base import ConsoleScreen

FACTORY_HINT = "First start: type the factory password printed on the label, then Enter."


class ConnectingScreen(ConsoleScreen):
    TITLE_TEXT = "Connecting"

    def compose(self) -> ComposeResult:
        yield self.header()
        with Center(), Vertical(id="dialog"):
            yield Label("Connecting to the appliance...", id="connecting")
            yield Static("", id="detail")
        yield self.footer()

    def on_connection(self, message: Connection) -> None:
        self.query_one("#detail", Static).update(
            f"Cannot reach the appliance: {message.detail}\nRetrying..."
        )


class LoginScreen(ConsoleScreen):
    TITLE_TEXT = "Login"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "login", "Log in", show=True),
    ]

    def __init__(self, first_run: bool = False) -> None:
        super().__init__()
        self.first_run = first_run

    def compose(self) -> ComposeResult:
        yield self.header()
        with Center(), Vertical(id="dialog"):
            yield Label("Administrator login", classes="title")
            yield Label(FACTORY_HINT if self.first_run else "Type the admin password, then Enter.")
            yield Input(password=True, placeholder="password", id="password", max_length=128)
            yield Static("", id="error", classes="error")
        yield self.footer()

    def on_mount(self) -> None:
        self.query_one("#password", Input).focus()
        self.check_lockout()

    @work(exclusive=True)
    async def check_lockout(self) -> None:
        try:
            status = await self.console.api.call("auth.status")
        except ApiError:
            return
        if status.get("locked_for_s"):
            self.show_error(_locked(status["locked_for_s"]))

    def show_error(self, text: str) -> None:
        self.query_one("#error", Static).update(text)

    @on(Input.Submitted, "#password")
    def submitted(self) -> None:
        self.action_login()

    def action_login(self) -> None:
        password = self.query_one("#password", Input).value
        if not password:
            self.show_error("Type the password, then Enter.")
            return
        self.login(password)

    @work(exclusive=True)
    async def login(self, password: str) -> None:
        api = self.console.api
        self.show_error("Checking...")
        try:
            result = await api.login(password)
        except ApiError as exc:
            self.query_one("#password", Input).value = ""
            retry = (exc.data or {}).get("retry_after_s")
            if exc.code == "locked_out" or retry:
                self.show_error(_locked(retry))
            elif exc.code == "auth_failed":
                self.show_error("Wrong password.")
            else:
                self.show_error(f"Cannot log in: {exc.message}")
            return
        if result.get("must_change_password"):
            from tui.screens.wizard import WizardScreen

            self.app.switch_screen(WizardScreen(old_password=password))
            return
        self.console.logged_in_now()


def _locked(seconds: object) -> str:
    wait = int(float(seconds)) + 1 if isinstance(seconds, int | float) else "a few"
    return f"Too many failed attempts. Locked out: try again in {wait} s."
