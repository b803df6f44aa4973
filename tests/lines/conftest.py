"""A tiny clock driver shared by the line tests: feeds events in time order, fires timers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from firmware.lines import FxoPort, FxsPort, Output


class Driver:
    """Runs a port the way the service will: timers fire at their deadline, then events."""

    def __init__(self, port: FxsPort | FxoPort) -> None:
        self.port: Any = port  # FxsPort or FxoPort; tests use either side's attributes
        self.now = 0
        self.out: list[Output] = []

    def until(self, t: int) -> list[Output]:
        """Advance the clock to ``t``, firing every timer due on the way; returns their output."""
        got: list[Output] = []
        while (d := self.port.next_deadline()) is not None and d <= t:
            fired: list[Output] = self.port.handle_timer(max(d, self.now))
            got += fired
            self.now = max(d, self.now)
        self.now = max(self.now, t)
        self.out += got
        return got

    def send(self, event: Any, t: int | None = None) -> list[Output]:
        """Deliver ``event`` at ``t`` (default: now), firing due timers first."""
        if t is not None:
            self.until(t)
        got: list[Output] = self.port.handle(event, self.now)
        self.out += got
        return got

    def state(self) -> Any:
        """The port's state (a call, so that type checkers do not pin it between steps)."""
        return self.port.state

    def take(self) -> list[Output]:
        got, self.out = self.out, []
        return got


@pytest.fixture
def driver() -> Callable[[FxsPort | FxoPort], Driver]:
    return Driver
