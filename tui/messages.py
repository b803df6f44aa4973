"""Messages from the event pump to the screens.  High-rate ones merge in the queue."""

from __future__ import annotations

from textual.message import Message


class StateChanged(Message):
    """Part of ``app.state`` changed; queued ones of the same part merge into one."""

    def __init__(self, part: str) -> None:
        super().__init__()
        self.part = part

    def can_replace(self, message: Message) -> bool:
        # A burst of port changes (a ringing cadence, a dialled number) redraws once.
        return isinstance(message, StateChanged) and message.part == self.part


class Connection(Message):
    def __init__(self, up: bool, detail: str = "") -> None:
        super().__init__()
        self.up = up
        self.detail = detail
