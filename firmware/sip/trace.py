"""The last SIP messages sent and received, for the console's diagnostics (sans-IO parsing).

pjsua logs every SIP message it sends or receives at pjlib level 4 (``logConfig.msgLogging``,
pjsua_core.c ``logging_on_tx_msg`` / ``logging_on_rx_msg``) as::

    TX 1198 bytes Request msg INVITE/cseq=1 (tdta0x...) to UDP 127.0.0.1:5060:
    INVITE sip:x@127.0.0.1 SIP/2.0
    ...
    --end msg--

The endpoint's log writer hands such entries to :func:`parse_message_log` and keeps the
results in a :class:`TraceRing`; all other level-4 entries stay out of Python logging.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

TRACE_CAP = 200  # messages kept
MAX_TEXT_CHARS = 4096  # a message's text is cut here (pjlib's log line is 4000 at most)
END_MARK = "\n--end msg--"

Direction = Literal["tx", "rx"]

_HEAD = re.compile(r"^(TX|RX) \d+ bytes .*? (to|from) (\w+) (\S+):\n")


@dataclass(frozen=True)
class SipTrace:
    time: float  # seconds, the clock the caller passed in (wall clock for the console)
    direction: Direction
    transport: str  # "UDP", "TCP", "TLS" (pjsip's names)
    remote: str  # "host:port" or "[v6]:port"
    first_line: str
    text: str  # the whole message, at most MAX_TEXT_CHARS


def parse_message_log(entry: str, now: float) -> SipTrace | None:
    """A pjsua message-log entry as a trace record; None for any other log text."""
    if not entry.startswith(("TX ", "RX ")):
        return None
    m = _HEAD.match(entry)
    if m is None:
        return None
    kind, _word, transport, remote = m.groups()
    body = entry[m.end() :]
    end = body.rfind(END_MARK)
    if end >= 0:
        body = body[:end]
    first = body.split("\r\n", 1)[0].split("\n", 1)[0]
    direction: Direction = "tx" if kind == "TX" else "rx"
    return SipTrace(now, direction, transport, remote, first[:200], body[:MAX_TEXT_CHARS])


class TraceRing:
    """Bounded, thread-safe: pjsip logs from its own threads, the console reads from asyncio."""

    def __init__(self, cap: int = TRACE_CAP) -> None:
        self._ring: deque[SipTrace] = deque(maxlen=cap)
        self._lock = threading.Lock()

    def add(self, trace: SipTrace) -> None:
        with self._lock:
            self._ring.append(trace)

    def snapshot(self) -> tuple[SipTrace, ...]:
        with self._lock:
            return tuple(self._ring)

    def clear(self) -> None:
        with self._lock:
            self._ring.clear()
