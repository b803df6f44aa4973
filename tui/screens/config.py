"""Configuration screens: one form per section, errors next to the fields, saved at once.

The working copy is the document ``config.get`` returned; nothing reaches the appliance
until Ctrl+S (``config.apply`` with the version the edit started from).
"""

from __future__ import annotations

import copy
import re
from typing import Any, ClassVar, Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, OptionList, Static, Switch
from textual.widgets.option_list import Option

from firmware.api.client import ApiError
from tui import tomldoc
from tui.screens.base import ConsoleScreen, api_message, error_list

# (title, document path); Lines covers country profile, gains and caller ID standard.
SECTIONS: Final = (
    ("Lines", "lines"),
    ("Trunks", "sip.trunks"),
    ("Extensions", "extensions"),
    ("Dial plan", "dialplan"),
    ("Features", "features"),
    ("Security", "security"),
    ("Network", "network"),
    ("System", "system"),
)
HIDDEN: Final = ("system.admin",)  # the password has its own flow
# New items for list sections; the appliance fills in every other default.
TEMPLATES: Final[dict[str, dict[str, Any]]] = {
    "sip.trunks": {"name": "trunk", "registrar": "", "username": "", "password": ""},
    "extensions": {"number": "", "name": ""},
    "dialplan.routes": {"name": "route", "pattern": "", "to": "extensions"},
}
SECRET_KEYS: Final = ("password", "pin", "voicemail_pin", "sip_password")
REDACTED: Final = "<redacted>"
REGISTER_TIMEOUT_S: Final = 10.0  # sip.register_now's default wait for the registrar


class ConfigScreen(ConsoleScreen):
    TITLE_TEXT = "Configuration"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+t", "check", "Check"),
        Binding("ctrl+r", "reload", "Discard"),
        Binding("ctrl+n", "add", "Add item"),
        Binding("ctrl+g", "remove", "Remove last"),
        Binding("ctrl+o", "test_registration", "Test", tooltip="Test registration"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.doc: dict[str, Any] = {}
        self.saved: dict[str, Any] = {}  # the document in force, to tell unsaved trunks
        self.base_version = 0
        self.errors: dict[str, str] = {}
        self.section = SECTIONS[0][1]
        self.dirty = False

    def compose(self) -> ComposeResult:
        yield self.header()
        with Horizontal(id="config"):
            yield OptionList(*[Option(t, id=p) for t, p in SECTIONS], id="sections")
            form = VerticalScroll(id="form")
            form.can_focus = False  # Tab goes from the section list straight to the fields
            yield form
        yield Static("Loading...", id="config-status")
        yield self.footer()

    def on_mount(self) -> None:
        self.query_one("#sections", OptionList).focus()
        self.load()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        try:
            current = await self.console.api.call("config.get")
        except ApiError as exc:
            self.status(f"Cannot read the configuration: {api_message(exc)}")
            return
        self.doc = tomldoc.loads(current["toml"])
        self.saved = copy.deepcopy(self.doc)
        self.base_version = int(current["version"])
        self.errors = {}
        self.dirty = False
        self.status(f"Version {self.base_version}. Edit, then Ctrl+S to save.")
        await self.build()

    def status(self, text: str) -> None:
        self.query_one("#config-status", Static).update(text)

    @on(OptionList.OptionHighlighted, "#sections")
    async def section_chosen(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.section:
            self.section = event.option.id
            self.refresh_bindings()  # "Test" (registration) is for trunks only
            self.rebuild()

    @work(exclusive=True, group="build")
    async def rebuild(self) -> None:
        # Exclusive: holding Down through the list must not interleave two half-built forms.
        await self.build()

    async def build(self) -> None:
        form = self.query_one("#form", VerticalScroll)
        await form.remove_children()
        if not self.doc:
            return
        try:
            node = tomldoc.get(self.doc, self.section)
        except (KeyError, IndexError):
            node = None
        widgets: list[Any] = []
        if isinstance(node, list) and not node:
            widgets.append(Label("(none yet: Ctrl+N adds one)"))
        for path, value in tomldoc.flatten(node, self.section):
            if path.startswith(HIDDEN):
                continue
            fid = tomldoc.field_id(path)
            label = path.removeprefix(self.section).lstrip(".") or path
            editor: Input | Switch
            if isinstance(value, bool):
                editor = Switch(value=value, id=fid)
            else:
                secret = path.rsplit(".", 1)[-1] in SECRET_KEYS
                editor = Input(
                    value=tomldoc.show_value(value),
                    id=fid,
                    placeholder="(empty)",
                    password=secret and value != REDACTED and bool(value),
                    classes="field",
                )
            widgets.append(Horizontal(Label(label, classes="field-label"), editor, classes="row"))
            widgets.append(Static(self.errors.get(path, ""), id="err-" + fid, classes="error"))
        await form.mount_all(widgets)

    # -- editing -------------------------------------------------------------------------
    def _path_of(self, widget_id: str | None) -> str | None:
        if not widget_id:
            return None
        for path, _ in tomldoc.flatten(tomldoc.get(self.doc, self.section), self.section):
            if tomldoc.field_id(path) == widget_id:
                return path
        return None

    @on(Input.Changed, ".field")
    def field_changed(self, event: Input.Changed) -> None:
        path = self._path_of(event.input.id)
        if path is None:
            return
        error = self.query_one("#err-" + (event.input.id or ""), Static)
        try:
            value = tomldoc.parse_value(event.value, tomldoc.get(self.doc, path))
        except ValueError as exc:
            error.update(str(exc))
            return
        error.update("")
        if value != tomldoc.get(self.doc, path):
            tomldoc.set_(self.doc, path, value)
            self.mark_dirty()

    @on(Switch.Changed)
    def switch_changed(self, event: Switch.Changed) -> None:
        path = self._path_of(event.switch.id)
        if path is not None and tomldoc.get(self.doc, path) != event.value:
            tomldoc.set_(self.doc, path, event.value)
            self.mark_dirty()

    def mark_dirty(self) -> None:
        self.dirty = True
        self.status(f"Unsaved changes to version {self.base_version}: Ctrl+S saves.")

    def _list_path(self) -> str | None:
        if self.section in TEMPLATES:
            return self.section
        if self.section == "dialplan":
            return "dialplan.routes"
        return None

    async def action_add(self) -> None:
        path = self._list_path()
        if path is None:
            self.status("This section has no list to add to.")
            return
        items = tomldoc.get(self.doc, path)
        items.append(copy.deepcopy(TEMPLATES[path]))
        self.mark_dirty()
        await self.build()
        fields = self.query_one("#form").query(Input)
        if fields:
            fields.last().focus()

    async def action_remove(self) -> None:
        path = self._list_path()
        if path is None or not tomldoc.get(self.doc, path):
            self.status("Nothing to remove here.")
            return
        tomldoc.get(self.doc, path).pop()
        self.mark_dirty()
        await self.build()

    def action_reload(self) -> None:
        self.load()

    # -- checking and saving -----------------------------------------------------------------
    def show_errors(self, errors: list[dict[str, Any]]) -> None:
        self.errors = {str(e.get("path", "")): str(e.get("message", "")) for e in errors}
        for static in self.query("#form .error"):
            if isinstance(static, Static):
                static.update("")
        elsewhere = []
        for path, message in self.errors.items():
            found = self.query("#err-" + tomldoc.field_id(path))
            if found and isinstance(found.first(), Static):
                found.first(Static).update(message)
            else:
                elsewhere.append(f"{path or 'document'}: {message}")
        summary = f"{len(errors)} error(s), shown next to the fields."
        if elsewhere:
            summary = f"{len(errors)} error(s). In other sections: " + "; ".join(elsewhere[:3])
        self.status(summary)

    @work(exclusive=True, group="save")
    async def action_check(self) -> None:
        try:
            result = await self.console.api.call(
                "config.validate", {"toml": tomldoc.dumps(self.doc)}
            )
        except ApiError as exc:
            self.status(api_message(exc))
            return
        if result["valid"]:
            self.errors = {}
            for static in self.query("#form .error"):
                if isinstance(static, Static):
                    static.update("")
            self.status("No errors. Ctrl+S saves." if self.dirty else "No errors.")
        else:
            self.show_errors(result["errors"])

    @work(exclusive=True, group="save")
    async def action_save(self) -> None:
        if not self.dirty:
            self.status("Nothing to save.")
            return
        try:
            saved = await self.console.api.call(
                "config.apply",
                {
                    "toml": tomldoc.dumps(self.doc),
                    "base_version": self.base_version,
                    "summary": f"console: {self.section}",
                },
            )
        except ApiError as exc:
            errors = error_list(exc)
            if errors:
                self.show_errors(errors)
            elif exc.code == "invalid_state":
                self.status(f"{exc.message} (Ctrl+R reloads; your edits are lost)")
            else:
                self.status(f"Not saved: {api_message(exc)}")
            return
        self.notify(f"Saved as version {saved['version']}.", timeout=3)
        self.load()

    # -- trunks: test registration -----------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Shown (and bound) on the trunks section only: the footer has no room at 80 columns.
        return action != "test_registration" or self.section == "sip.trunks"

    def _trunk_under_cursor(self) -> dict[str, Any] | None:
        trunks = self.doc.get("sip", {}).get("trunks", [])
        if not trunks:
            return None
        focused = self.focused
        path = self._path_of(focused.id) if focused is not None else None
        found = re.match(r"sip\.trunks\[(\d+)\]", path or "")
        index = int(found.group(1)) if found else 0
        trunk: dict[str, Any] = trunks[min(index, len(trunks) - 1)]
        return trunk

    def action_test_registration(self) -> None:
        if self.section != "sip.trunks":
            self.status("Test registration: choose Trunks, then a field of the trunk to test.")
            return
        trunk = self._trunk_under_cursor()
        if trunk is None:
            self.status("No trunk to test: Ctrl+N adds one, Ctrl+S saves it.")
            return
        name = str(trunk.get("name", ""))
        saved = [t for t in self.saved.get("sip", {}).get("trunks", []) if t.get("name") == name]
        # sip.register_now works on the configuration in force, not on this form.
        if not saved:
            note = f"Trunk {name!r} is not saved yet: save it (Ctrl+S) before testing it."
            self.status(note)
            return
        note = ""
        if saved[0] != trunk:
            note = " (unsaved changes are not tested: this is the configuration in force)"
        self.status(f"Registering {name!r}...{note}")
        self.register_now(name, note)

    @work(exclusive=True, group="register")
    async def register_now(self, name: str, note: str) -> None:
        try:
            reg = await self.console.api.call(
                "sip.register_now",
                {"account": name, "timeout_s": REGISTER_TIMEOUT_S},
                timeout=REGISTER_TIMEOUT_S + 5,
            )
        except ApiError as exc:
            self.status(f"Test registration of {name!r}: {api_message(exc)}{note}")
            return
        code = reg.get("code")
        answer = f"{code} {reg.get('reason', '')}".strip() if code else str(reg.get("reason", ""))
        if reg.get("registered"):
            expires = reg.get("expires_s")
            until = f", expires in {expires} s" if expires is not None else ""
            self.status(f"{name}: registered ({answer}){until}.{note}")
        else:
            self.status(f"{name}: NOT registered ({answer or 'no answer'}).{note}")
