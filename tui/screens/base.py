"""What every console screen shares: the header, the footer with its keys, the app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

if TYPE_CHECKING:
    from tui.app import ConsoleApp


class ConsoleScreen(Screen[Any]):
    """Each screen lists its own keys (the footer shows them); Escape means back."""

    BINDINGS: ClassVar[list[BindingType]] = []

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    TITLE_TEXT: ClassVar[str] = ""

    def header(self) -> Static:
        # A plain title line: no clock (a serial console redraws it every second) and no
        # mount-time work, so screens can be switched as fast as the API answers.
        title = f"Ponte console - {self.TITLE_TEXT}" if self.TITLE_TEXT else "Ponte console"
        return Static(title, classes="titlebar")

    def footer(self) -> Footer:
        return Footer(show_command_palette=False)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


def api_message(exc: Exception) -> str:
    from firmware.api.client import ApiError

    if isinstance(exc, ApiError):
        where = f" ({exc.path})" if exc.path else ""
        return f"{exc.message}{where}"
    return str(exc)


def error_list(exc: Exception) -> list[dict[str, Any]]:
    """The ``data.errors`` of a refused configuration ({path, message} each), else []."""
    from firmware.api.client import ApiError

    if not isinstance(exc, ApiError) or not exc.data:
        return []
    errors: Any = exc.data.get("errors")
    if not isinstance(errors, list):
        return []
    return [e for e in errors if isinstance(e, dict)]
