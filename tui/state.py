"""What the console knows about the appliance, kept current from the event stream.

Plain data with no Textual in it, so the merging rules can be tested on their own: events
are applied idempotently (by port, alarm id, job id), as docs/api.md asks.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

MAX_LOG_LINES: Final = 2000  # the console's own scroll-back; the appliance keeps 2000 too


@dataclass
class ConsoleState:
    ports: dict[int, dict[str, Any]] = field(default_factory=dict)
    linecard: str = "unknown"
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    system: dict[str, Any] = field(default_factory=dict)
    update: dict[str, Any] = field(default_factory=dict)
    trunks: list[dict[str, Any]] = field(default_factory=list)
    # calls.list and sip.status as last read (re-read on calls.* / sip.* events and polled,
    # since call quality changes without an event)
    calls: list[dict[str, Any]] = field(default_factory=list)
    local_calls: list[dict[str, Any]] = field(default_factory=list)
    sip: dict[str, Any] = field(default_factory=dict)
    last_seq: int = 0
    missed: int = 0  # events the server dropped for us, or a gap in seq

    def apply(self, topic: str, seq: int, data: Any) -> str | None:
        """Fold one event in; returns which view changed ("ports", "alarms", ...)."""
        if topic == "api.events_dropped":
            self.missed += int(data.get("count", 0)) if isinstance(data, dict) else 1
            return "resync"
        if seq and self.last_seq and seq > self.last_seq + 1:
            self.missed += seq - self.last_seq - 1
        self.last_seq = max(self.last_seq, seq)
        if not isinstance(data, dict):
            return None
        if topic == "ports.state" and isinstance(data.get("port"), int):
            self.ports[data["port"]] = {**self.ports.get(data["port"], {}), **data}
            return "ports"
        if topic == "alarms.raised" and "id" in data:
            self.alarms[str(data["id"])] = data
            return "alarms"
        if topic == "alarms.cleared" and "id" in data:
            self.alarms.pop(str(data["id"]), None)
            return "alarms"
        if topic == "logs.record":
            if not self.logs or data.get("seq", 0) > self.logs[-1].get("seq", 0):
                self.logs.append(data)
            return "logs"
        if topic.startswith("jobs.") and "job" in data:
            self.jobs[str(data["job"])] = data
            return "jobs"
        if topic == "config.changed":
            return "config"
        if topic == "sip.registration" and "account" in data:
            regs = [
                r for r in self.sip.get("registrations", []) if r.get("account") != data["account"]
            ]
            regs.append(data)
            regs.sort(key=lambda r: str(r.get("account")))
            self.sip = {**self.sip, "registrations": regs}
            return "calls"
        if topic.startswith("calls."):
            return "calls"
        return None
