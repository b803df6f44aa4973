"""First run: a new admin password (forced), then country, lines and a trunk."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import ContentSwitcher, Input, Label, Static

from firmware.api.client import ApiError
from tui import tomldoc
from tui.screens.base import ConsoleScreen, api_message, error_list

STEPS = ("step-password", "step-country", "step-lines", "step-trunk")
TITLES = {
    "step-password": "1/4  New admin password",
    "step-country": "2/4  Country",
    "step-lines": "3/4  Phone lines",
    "step-trunk": "4/4  SIP trunk (optional)",
}
MAX_LINES = 32


class WizardScreen(ConsoleScreen):
    TITLE_TEXT = "First-run set-up"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "next", "Next step"),
        Binding("ctrl+b", "previous", "Previous step"),
    ]

    def __init__(self, old_password: str) -> None:
        super().__init__()
        self.old_password = old_password
        self.password_changed = False
        self.doc: dict[str, Any] = {}
        self.base_version = 0
        self.step = 0

    def compose(self) -> ComposeResult:
        yield self.header()
        with Vertical(id="wizard"):
            yield Label(TITLES[STEPS[0]], id="step-title", classes="title")
            with ContentSwitcher(initial=STEPS[0], id="steps"):
                with Vertical(id="step-password"):
                    yield Label("The factory password must be replaced (8 to 128 characters).")
                    yield Input(password=True, placeholder="new password", id="new1")
                    yield Input(password=True, placeholder="the same again", id="new2")
                    yield Static("", id="err-password", classes="error")
                with Vertical(id="step-country"):
                    yield Label("Country of the lines: tones, ringing and caller ID follow it.")
                    yield Label("Examples: GB, DE, FR, IT, US; ITU for the ITU-T defaults.")
                    yield Input(placeholder="country code", id=tomldoc.field_id("system.country"))
                    yield Static(
                        "", id="err-" + tomldoc.field_id("system.country"), classes="error"
                    )
                with VerticalScroll(id="step-lines"):
                    yield Label("Extension number of the phone on each FXS port.")
                with Vertical(id="step-trunk"):
                    yield Label("Leave the name empty to add no trunk. SIP starts later; it is")
                    yield Label("saved now and used once the SIP service runs.")
                    for key, hint in (
                        ("name", "name (e.g. provider)"),
                        ("registrar", "registrar host[:port]"),
                        ("username", "user"),
                        ("password", "password"),
                    ):
                        fid = tomldoc.field_id(f"sip.trunks[0].{key}")
                        yield Input(placeholder=hint, id=fid, password=key == "password")
                        yield Static("", id="err-" + fid, classes="error")
            yield Static("", id="wizard-status")
        yield self.footer()

    def on_mount(self) -> None:
        self.query_one("#new1", Input).focus()

    # -- navigation ------------------------------------------------------------------
    def show_step(self, index: int) -> None:
        self.step = index
        name = STEPS[index]
        self.query_one("#steps", ContentSwitcher).current = name
        self.query_one("#step-title", Label).update(TITLES[name])
        inputs = self.query_one(f"#{name}").query(Input)
        if inputs:
            inputs.first().focus()

    def action_previous(self) -> None:
        if self.step > 1:  # the password step cannot be repeated once done
            self.show_step(self.step - 1)

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        # Enter moves to the next field of the step, and on the last one to the next step.
        step = self.query_one(f"#{STEPS[self.step]}")
        inputs = list(step.query(Input))
        if event.input in inputs and event.input is not inputs[-1]:
            inputs[inputs.index(event.input) + 1].focus()
        else:
            self.action_next()

    def action_next(self) -> None:
        if self.step == 0:
            self.change_password()
        elif self.step < len(STEPS) - 1:
            self.collect()
            self.show_step(self.step + 1)
        else:
            self.collect()
            self.finish()

    # -- the password ------------------------------------------------------------------
    @work(exclusive=True)
    async def change_password(self) -> None:
        new1 = self.query_one("#new1", Input).value
        new2 = self.query_one("#new2", Input).value
        error = self.query_one("#err-password", Static)
        if new1 != new2:
            error.update("The two passwords differ.")
            return
        try:
            await self.console.api.change_password(self.old_password, new1)
            current = await self.console.api.call("config.get")
        except ApiError as exc:
            error.update(exc.message)
            return
        self.password_changed = True
        self.doc = tomldoc.loads(current["toml"])
        self.base_version = int(current["version"])
        self.fill()
        self.show_step(1)

    def fill(self) -> None:
        country = self.query_one("#" + tomldoc.field_id("system.country"), Input)
        country.value = str(self.doc["system"]["country"])
        lines = self.query_one("#step-lines", VerticalScroll)
        for i, line in enumerate(self.doc["lines"]["fxs"][:MAX_LINES]):
            path = f"lines.fxs[{i}].extension"
            fid = tomldoc.field_id(path)
            lines.mount(Label(f"Port {i + 1}"))
            lines.mount(Input(value=str(line.get("extension", "")), id=fid))
            lines.mount(Static("", id="err-" + fid, classes="error"))

    def collect(self) -> None:
        if not self.doc:
            return
        self.doc["system"]["country"] = self._value("system.country").upper()
        for i in range(min(len(self.doc["lines"]["fxs"]), MAX_LINES)):
            self.doc["lines"]["fxs"][i]["extension"] = self._value(f"lines.fxs[{i}].extension")

    def _value(self, path: str) -> str:
        return self.query_one("#" + tomldoc.field_id(path), Input).value.strip()

    # -- saving -------------------------------------------------------------------------
    @work(exclusive=True)
    async def finish(self) -> None:
        doc = dict(self.doc)
        name = self._value("sip.trunks[0].name")
        if name:
            trunk = {
                "name": name,
                "registrar": self._value("sip.trunks[0].registrar"),
                "username": self._value("sip.trunks[0].username"),
                "password": self._value("sip.trunks[0].password"),
            }
            doc["sip"] = {**doc["sip"], "trunks": [trunk, *doc["sip"]["trunks"][1:]]}
        for err in self.query(".error"):
            if isinstance(err, Static):
                err.update("")
        status = self.query_one("#wizard-status", Static)
        try:
            await self.console.api.call(
                "config.apply",
                {
                    "toml": tomldoc.dumps(doc),
                    "base_version": self.base_version,
                    "summary": "first-run wizard",
                },
            )
        except ApiError as exc:
            errors = error_list(exc)
            if not errors:
                status.update(api_message(exc))
                return
            first_step = len(STEPS) - 1
            for e in errors:
                path = str(e.get("path", ""))
                fid = tomldoc.field_id(path)
                found = self.query("#err-" + fid)
                target = found.first() if found else status
                if isinstance(target, Static):
                    target.update(str(e.get("message", "")))
                first_step = min(first_step, _step_of(path))
            status.update(f"{len(errors)} setting(s) to correct.")
            self.show_step(first_step)
            return
        self.console.logged_in_now()


def _step_of(path: str) -> int:
    if path.startswith("system."):
        return 1
    if path.startswith("lines."):
        return 2
    return 3
