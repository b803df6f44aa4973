"""Map the line card's event timestamps onto the host clock (sans-IO).

The line-card protocol stamps hook, ring, polarity and loop-current events with the card's
millisecond clock, a 32-bit counter that wraps every 49.7 days (drivers/linecard).  The line
machines need those instants on the host's monotonic millisecond clock, so that hook breaks
are measured without UART or event-loop jitter and timers agree with ``now``.

Each event gives one sample ``host_now - card_time`` = constant offset + transport delay.
The delay is never negative, so the smallest sample is the best estimate of the offset; it
may creep upwards by :data:`MAX_DRIFT_PPM` of the elapsed time so that a card crystal slower
than the host's is followed instead of lagging further and further.
"""

from __future__ import annotations

import math

from firmware.lines.errors import InvalidValue

CARD_CLOCK_MODULO = 1 << 32  # drivers/linecard: timestamp_ms is a u32 that wraps
HALF_RANGE = CARD_CLOCK_MODULO // 2  # a backwards step smaller than this is a card reset
MAX_DRIFT_PPM = 1000  # crystals are within +/-100 ppm; ten times that for margin


class CardClock:
    """One per line card.  Not thread-safe: use it where the card's events are handled."""

    def __init__(self) -> None:
        self._epoch = 0  # card time of the last sample, unwrapped
        self._last_raw: int | None = None
        self._offset = 0.0  # host ms minus unwrapped card ms, estimated (fractional: creep)
        self._last_host = 0
        self._last_at = 0
        self.resets = 0  # times the card's clock restarted (a card reset)

    def reset(self) -> None:
        """Forget the card's clock (after a new handshake with a restarted card)."""
        self._last_raw = None

    def to_host(self, card_ms: int, now: int) -> int:
        """The host time of an event stamped ``card_ms`` on the card and received at ``now``.

        Never later than ``now`` and never earlier than a previous result.
        """
        if isinstance(card_ms, bool) or not isinstance(card_ms, int):
            raise InvalidValue(f"card timestamp must be an int, got {card_ms!r}")
        if not 0 <= card_ms < CARD_CLOCK_MODULO:
            raise InvalidValue(f"card timestamp {card_ms} outside the 32-bit range")
        if isinstance(now, bool) or not isinstance(now, int) or now < 0:
            raise InvalidValue(f"now must be a non-negative int of ms, got {now!r}")
        if self._last_raw is None:
            self._epoch = card_ms
            self._offset = float(now - card_ms)
        else:
            step = (card_ms - self._last_raw) % CARD_CLOCK_MODULO
            if step >= HALF_RANGE:
                # The card's clock went backwards: it restarted.  Start over from here.
                self.resets += 1
                self._epoch = card_ms
                self._offset = float(now - card_ms)
            else:
                self._epoch += step
                sample = now - self._epoch
                creep = max(0, now - self._last_host) * MAX_DRIFT_PPM * 1e-6
                self._offset = min(float(sample), self._offset + creep)
        self._last_raw = card_ms
        self._last_host = max(self._last_host, now)
        at = min(self._epoch + math.floor(self._offset), now)
        at = max(at, self._last_at)
        self._last_at = at
        return at
