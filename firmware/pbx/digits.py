"""Collecting dialled digits against the digit map (sans-IO).

The map (``112|911|[1-9]xx|0[1-9]x.T``, parsed by :mod:`firmware.store.digitmap`) is
compiled once per configuration into a :class:`DigitMap`; each off-hook gets a
:class:`DigitCollector` that is fed digits and ``now`` and answers with a :class:`Verdict`:

- ``INCOMPLETE``: more digits may come; ``deadline`` is when the inter-digit timer runs out.
- ``COMPLETE``: dial now.  Without waiting when the number matches an alternative without
  ``T`` and no alternative could take another digit (a unique match, RFC 3435 §2.1.5);
  on the inter-digit timer when it matches but could still grow, or matches a ``T`` one;
  at once for an emergency number, whatever the map says.
- ``INVALID``: no alternative can match any more (or the timer ran out on a partial number).

Matching runs a small NFA over the parsed elements, so a ``.`` repeat never backtracks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from firmware.store.digitmap import Alternative, DigitMapError, parse_digit_map
from firmware.store.schema import DialPlanConfig

DIALLABLE: Final = frozenset("0123456789*#ABCD")  # ITU-T Q.23: the 16 DTMF signals
# ITU-T E.164 §6: an international number has at most 15 digits; with an international
# prefix, a trunk prefix and a feature code in front, 32 is beyond any real number.
MAX_DIGITS: Final = 32

_Position = tuple[int, int]  # (alternative, element index)


class DialError(Exception):
    """Base of the collector's errors."""


class CollectorMisuse(DialError):
    """We broke it: a digit or timer after the number was already decided."""


class BadDigit(DialError, ValueError):
    """The line reported something that is not a dialling symbol."""


class Outcome(enum.Enum):
    INCOMPLETE = "incomplete"
    COMPLETE = "complete"
    INVALID = "invalid"


class Completion(enum.Enum):
    UNIQUE_MATCH = "unique match"  # immediately, on the last digit
    TIMEOUT = "inter-digit timeout"  # matched, but could have grown (or ends in T)
    EMERGENCY = "emergency number"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    digits: str
    deadline: int | None = None  # INCOMPLETE only: when the inter-digit timer expires
    completion: Completion | None = None  # COMPLETE only
    reason: str = ""  # INVALID only: why, for the log

    def __post_init__(self) -> None:
        if (self.outcome is Outcome.INCOMPLETE) != (self.deadline is not None):
            raise ValueError("an incomplete verdict, and only that, has a deadline")
        if (self.outcome is Outcome.COMPLETE) != (self.completion is not None):
            raise ValueError("a complete verdict, and only that, says how it completed")
        if (self.outcome is Outcome.INVALID) != bool(self.reason):
            raise ValueError("an invalid verdict, and only that, has a reason")


class DigitMap:
    """A digit map compiled once; :meth:`collector` starts one dialling."""

    def __init__(
        self,
        text: str,
        *,
        inter_digit_timeout_ms: int,
        emergency_numbers: tuple[str, ...] = (),
    ) -> None:
        self.text = text
        self.alternatives: tuple[Alternative, ...] = parse_digit_map(text)
        if inter_digit_timeout_ms <= 0:
            raise DigitMapError(f"inter-digit timeout must be positive: {inter_digit_timeout_ms}")
        self.inter_digit_timeout_ms = inter_digit_timeout_ms
        self.emergency_numbers = frozenset(emergency_numbers)

    @classmethod
    def from_config(cls, plan: DialPlanConfig) -> DigitMap:
        return cls(
            plan.digit_map,
            inter_digit_timeout_ms=plan.inter_digit_timeout_ms,
            emergency_numbers=plan.emergency_numbers,
        )

    def collector(self) -> DigitCollector:
        return DigitCollector(self)

    # --- the NFA ---------------------------------------------------------------------

    def _closure(self, positions: set[_Position]) -> frozenset[_Position]:
        # A repeated element may match nothing: its position also stands for the next one.
        out = set(positions)
        todo = list(positions)
        while todo:
            a, i = todo.pop()
            elements = self.alternatives[a].elements
            if i < len(elements) and elements[i].repeat and (a, i + 1) not in out:
                out.add((a, i + 1))
                todo.append((a, i + 1))
        return frozenset(out)

    def start(self) -> frozenset[_Position]:
        return self._closure({(a, 0) for a in range(len(self.alternatives))})

    def step(self, positions: frozenset[_Position], digit: str) -> frozenset[_Position]:
        moved: set[_Position] = set()
        for a, i in positions:
            elements = self.alternatives[a].elements
            if i < len(elements) and digit in elements[i].symbols:
                moved.add((a, i) if elements[i].repeat else (a, i + 1))
        return self._closure(moved)


class DigitCollector:
    """One number being dialled.  Drive it from one thread."""

    def __init__(self, digit_map: DigitMap) -> None:
        self._map = digit_map
        self._positions = digit_map.start()
        self._digits = ""
        self._verdict: Verdict | None = None  # set once decided (complete or invalid)
        self._deadline: int | None = None
        self._on_timeout = Outcome.INVALID

    @property
    def digits(self) -> str:
        return self._digits

    @property
    def decided(self) -> bool:
        return self._verdict is not None

    def next_deadline(self) -> int | None:
        return None if self._verdict is not None else self._deadline

    def feed(self, digit: str, now: int) -> Verdict:
        if self._verdict is not None:
            raise CollectorMisuse(f"digit {digit!r} after the number was {self._verdict.outcome}")
        if not isinstance(digit, str) or len(digit) != 1 or digit not in DIALLABLE:
            raise BadDigit(f"{digit!r} is not a dialling symbol (0-9, *, #, A-D)")
        self._digits += digit
        m = self._map
        if self._digits in m.emergency_numbers:
            return self._decide(Outcome.COMPLETE, completion=Completion.EMERGENCY)
        if len(self._digits) > MAX_DIGITS:
            return self._decide(Outcome.INVALID, reason=f"more than {MAX_DIGITS} digits")
        self._positions = m.step(self._positions, digit)
        if not self._positions:
            if not any(e.startswith(self._digits) for e in m.emergency_numbers):
                return self._decide(Outcome.INVALID, reason="matches no pattern of the digit map")
            # Still on the way to an emergency number the map does not cover.
            self._deadline = now + m.inter_digit_timeout_ms
            self._on_timeout = Outcome.INVALID
            return Verdict(Outcome.INCOMPLETE, self._digits, deadline=self._deadline)
        matched_now = matched_timer = can_grow = False
        for a, i in self._positions:
            alt = m.alternatives[a]
            if i == len(alt.elements):
                if alt.timer:
                    matched_timer = True
                else:
                    matched_now = True
            else:
                can_grow = True
        if matched_now and not can_grow:
            return self._decide(Outcome.COMPLETE, completion=Completion.UNIQUE_MATCH)
        self._deadline = now + m.inter_digit_timeout_ms
        self._on_timeout = Outcome.COMPLETE if matched_now or matched_timer else Outcome.INVALID
        return Verdict(Outcome.INCOMPLETE, self._digits, deadline=self._deadline)

    def handle_timer(self, now: int) -> Verdict | None:
        """The inter-digit timer: a decision if it ran out, else None."""
        if self._verdict is not None or self._deadline is None or now < self._deadline:
            return None
        if self._on_timeout is Outcome.COMPLETE:
            return self._decide(Outcome.COMPLETE, completion=Completion.TIMEOUT)
        return self._decide(Outcome.INVALID, reason="incomplete number: inter-digit timeout")

    def _decide(
        self, outcome: Outcome, *, completion: Completion | None = None, reason: str = ""
    ) -> Verdict:
        self._verdict = Verdict(outcome, self._digits, completion=completion, reason=reason)
        self._deadline = None
        return self._verdict
