"""Waiting for SIP core events in tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from firmware.sip.endpoint import SipEndpoint
from firmware.sip.events import SipEvent

E = TypeVar("E")


async def wait_event(
    ep: SipEndpoint,
    kind: type[E],
    pred: Callable[[E], bool] = lambda _e: True,
    timeout: float = 10.0,
    seen: list[SipEvent] | None = None,
) -> E:
    """The first event of ``kind`` satisfying ``pred``; others are kept in ``seen``."""
    async with asyncio.timeout(timeout):
        while True:
            event = await ep.next_event()
            if seen is not None:
                seen.append(event)
            if isinstance(event, kind) and pred(event):
                return event
