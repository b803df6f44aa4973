"""Time bookkeeping shared by the FXS and FXO machines.

Both machines run on one host monotonic clock in integer milliseconds.  Hardware events carry
the time they happened (``at``: the card's timestamp mapped onto the host clock by the service),
which may lie a little in the past of ``now`` because the UART and the event loop add delay.
Timers that fell due before an event's time fire before the event, so the outcome depends
only on the timestamps, never on when the service happened to call :meth:`handle_timer`.
"""

from __future__ import annotations

import copy
from typing import Any

from firmware.lines.errors import InvalidValue, LineError, LocalProtocolError, RemoteProtocolError
from firmware.lines.messages import Output


def check_now(now: int) -> None:
    if isinstance(now, bool) or not isinstance(now, int) or now < 0:
        raise InvalidValue(f"now must be a non-negative int of ms, got {now!r}")


class TimedMachine:
    """Clock and rollback handling; subclasses implement ``_run_timers`` and ``_dispatch``."""

    def __init__(self) -> None:
        self._clock = 0  # latest time processed
        self._last_hw_at = 0  # latest hardware timestamp seen

    def _run_timers(self, until: int) -> list[Output]:
        raise NotImplementedError

    def _dispatch(self, event: Any, t: int) -> list[Output]:
        raise NotImplementedError

    def _handle(self, event: Any, at: int | None, now: int) -> list[Output]:
        """Feed one event (``at``: its hardware timestamp, if it has one); returns the
        outputs.  Raises and changes nothing if the event is illegal."""
        saved = self._snapshot()
        try:
            t = self._event_time(at, now)
            out = self._run_timers(t)
            out += self._dispatch(event, t)
            # The event may have made a timer due at once (a ring burst that ended too long
            # after the last ring, for instance): never leave one overdue.
            out += self._run_timers(t)
        except LineError:
            self._restore(saved)
            raise
        self._clock = t
        if at is not None:
            self._last_hw_at = at
        return out

    def handle_timer(self, now: int) -> list[Output]:
        """Fire every timer due at or before ``now``."""
        saved = self._snapshot()
        try:
            self._event_time(None, now)
            out = self._run_timers(now)
        except LineError:
            self._restore(saved)
            raise
        self._clock = now
        return out

    def _event_time(self, at: int | None, now: int) -> int:
        """The time an event is processed at, after checking the clocks agree."""
        check_now(now)
        if now < self._clock:
            raise LocalProtocolError(f"time went backwards: now={now} ms after {self._clock} ms")
        if at is None:
            return now
        if at > now:
            raise LocalProtocolError(f"event stamped {at} ms is in the future of now={now} ms")
        if at < self._last_hw_at:
            raise RemoteProtocolError(
                f"line card timestamps went backwards: {at} ms after {self._last_hw_at} ms"
            )
        # An event older than timers already handled is processed at the time of the last of
        # them: the machine cannot undo what it already told the world.
        return max(at, self._clock)

    def _snapshot(self) -> dict[str, Any]:
        # Every attribute is an immutable value (ints, enums, frozen dataclasses, tuples), so a
        # shallow copy is a complete snapshot.
        return copy.copy(self.__dict__)

    def _restore(self, saved: dict[str, Any]) -> None:
        self.__dict__.clear()
        self.__dict__.update(saved)


__all__ = ["LineError", "TimedMachine", "check_now"]
