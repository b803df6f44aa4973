"""The last log records in memory, for ``logs.tail``, and each new one on the ``logs`` topic.

Installed as one more root handler next to the journal/stderr one.  Records may be
emitted on any thread (executors, the media threads): they are queued to the event loop
with ``call_soon_threadsafe`` and published there, never from the emitting thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

MAX_RECORDS: Final = 2000  # about 200 KiB of text: enough to scroll back through a failure
MAX_MESSAGE_CHARS: Final = 2000  # one record must stay far below the API's message cap
LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Records from the publishing path itself would publish again for ever.
_QUIET_LOGGERS: Final = ("firmware.api", "asyncio")


@dataclass(frozen=True, slots=True)
class LogRecord:
    seq: int
    time: float
    level: str
    name: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "level": self.level,
            "name": self.name,
            "message": self.message,
        }

    def matches(self, min_level: str, contains: str) -> bool:
        if LEVELS.index(self.level) < LEVELS.index(min_level):
            return False
        if not contains:
            return True
        needle = contains.lower()
        return needle in self.message.lower() or needle in self.name.lower()


def _level_name(levelno: int) -> str:
    for name in reversed(LEVELS):
        if levelno >= logging.getLevelName(name):
            return name
    return "DEBUG"


class LogRing(logging.Handler):
    """A bounded ring of formatted records that hands each new one to ``publish``."""

    def __init__(self, capacity: int = MAX_RECORDS) -> None:
        super().__init__(logging.DEBUG)
        self.records: deque[LogRecord] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publish: Callable[[LogRecord], None] | None = None

    def attach(self, loop: asyncio.AbstractEventLoop, publish: Callable[[LogRecord], None]) -> None:
        self._loop, self._publish = loop, publish

    def detach(self) -> None:
        self._loop, self._publish = None, None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        except Exception:  # a bad %-format in someone's log call must not kill the logger
            self.handleError(record)
            return
        with self._lock:
            self._seq += 1
            item = LogRecord(
                self._seq,
                record.created or time.time(),
                _level_name(record.levelno),
                record.name,
                message[:MAX_MESSAGE_CHARS],
            )
            self.records.append(item)
        loop, publish = self._loop, self._publish
        if loop is None or publish is None or record.name.startswith(_QUIET_LOGGERS):
            return
        try:
            loop.call_soon_threadsafe(publish, item)
        except RuntimeError:  # the loop closed while we were shutting down
            pass

    def tail(self, count: int, min_level: str = "DEBUG", contains: str = "") -> list[LogRecord]:
        with self._lock:
            items = list(self.records)
        picked = [r for r in items if r.matches(min_level, contains)]
        return picked[-count:] if count else []
