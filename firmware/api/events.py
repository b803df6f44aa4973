"""The event bus: services publish ``(topic, payload)``; subscribed clients receive it.

Topics are dotted lower-case names (``calls.ringing``, ``ports.hook``, ``jobs.progress``).
A subscription to ``calls`` receives ``calls`` and every ``calls.*`` topic; ``*`` receives
everything.  Publishing never blocks and never waits for a client: each event is encoded
once and offered to every matching sink, which queues it or drops and counts it
(see :class:`firmware.api.protocol.OutboundQueue`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final, Protocol

from firmware.api.protocol import MAX_MESSAGE_BYTES, JsonValue, ProtocolBug, encode_event

TOPIC_RE: Final = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*\Z")
PATTERN_RE: Final = re.compile(r"(?:\*|[a-z0-9_]+(?:\.[a-z0-9_]+)*)\Z")
MAX_TOPIC_CHARS: Final = 64
MAX_SUBSCRIPTIONS: Final = 64  # per client; more is a client bug, not a use case
ALL: Final = "*"

# The topics Ponte's own services publish (docs/api.md describes each payload).
# Services may publish others; these are listed so that clients can discover them.
WELL_KNOWN_TOPICS: Final = (
    "ports",
    "calls",
    "registrations",
    "alarms",
    "jobs",
    "system",
    "records",
    "voicemail",
)


def valid_topic(topic: str) -> bool:
    return len(topic) <= MAX_TOPIC_CHARS and TOPIC_RE.match(topic) is not None


def valid_pattern(pattern: str) -> bool:
    return len(pattern) <= MAX_TOPIC_CHARS and PATTERN_RE.match(pattern) is not None


def matches(pattern: str, topic: str) -> bool:
    return pattern == ALL or topic == pattern or topic.startswith(pattern + ".")


class EventSink(Protocol):
    """Something that receives encoded events: a client connection, a webhook, a test."""

    def offer_event(self, topic: str, line: bytes, seq: int) -> None: ...


class EventBus:
    """Fan-out of published events to sinks by topic pattern."""

    def __init__(self) -> None:
        self._subs: dict[EventSink, set[str]] = {}
        self._seq = 0
        self.published = 0

    @property
    def seq(self) -> int:
        """Sequence number of the last event published (0 before any)."""
        return self._seq

    def subscribe(self, sink: EventSink, patterns: Iterable[str]) -> frozenset[str]:
        pats = list(patterns)
        for p in pats:
            if not valid_pattern(p):
                raise ValueError(f"invalid topic pattern {p!r}")
        current = self._subs.setdefault(sink, set())
        if len(current | set(pats)) > MAX_SUBSCRIPTIONS:
            raise ValueError(f"at most {MAX_SUBSCRIPTIONS} subscriptions per client")
        current.update(pats)
        return frozenset(current)

    def unsubscribe(self, sink: EventSink, patterns: Iterable[str] | None = None) -> frozenset[str]:
        """Drop ``patterns`` (all when None); returns what remains."""
        current = self._subs.get(sink)
        if current is None:
            return frozenset()
        if patterns is None:
            current.clear()
        else:
            current.difference_update(patterns)
        if not current:
            del self._subs[sink]
            return frozenset()
        return frozenset(current)

    def subscriptions(self, sink: EventSink) -> frozenset[str]:
        return frozenset(self._subs.get(sink, ()))

    def remove(self, sink: EventSink) -> None:
        self._subs.pop(sink, None)

    def publish(self, topic: str, payload: JsonValue = None) -> int:
        """Send ``payload`` to every subscriber of ``topic``; returns the event's seq.

        Raises ProtocolBug for a malformed topic or a payload that is not JSON or too
        large to send: that is the publishing service's bug, caught where it happens.
        """
        if not valid_topic(topic):
            raise ProtocolBug(f"invalid topic {topic!r}: dotted lower-case names only")
        line = encode_event(topic, payload, self._seq + 1)
        if len(line) > MAX_MESSAGE_BYTES:
            raise ProtocolBug(f"event on {topic!r} is {len(line)} bytes, over {MAX_MESSAGE_BYTES}")
        self._seq += 1  # only now: a refused event must not leave a gap subscribers see
        self.published += 1
        for sink, patterns in list(self._subs.items()):
            if any(matches(p, topic) for p in patterns):
                sink.offer_event(topic, line, self._seq)
        return self._seq


Publisher = Callable[[str, JsonValue], int]
