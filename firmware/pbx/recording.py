"""Which calls are recorded, sans-IO: the policy for a call, and the in-call toggle code.

Policy: a route's own setting wins (``always``/``never``/``on_demand``); a route set to
``extension`` (the default), or a call that takes no route (extension to extension), is
recorded by the strongest policy among the extensions in it: ``always`` over
``on_demand`` over ``never``.  So a sales line set to ``always`` is recorded whoever it
talks to, and an emergency route set to ``never`` is never recorded.

On demand: a party of an ``on_demand`` call dials ``features.codes.record_toggle`` during
the call to start recording and again to stop.  :class:`OnDemand` watches the parties'
digits for the code, holding back from the other party the digits that may be part of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from firmware.store.schema import Config, RecordingPolicy

# Played to both parties when a recording starts (many jurisdictions require the notice);
# by its name in the prompt catalogue (branch ivr).
PROMPT_RECORDED: Final = "call-recorded"
PROMPTS_USED: Final = (PROMPT_RECORDED,)

_STRENGTH: Final[dict[str, int]] = {"never": 0, "on_demand": 1, "always": 2}


class RecordingPolicyError(ValueError):
    """A call names an extension or route the configuration does not have."""


def recording_policy(
    config: Config, *, extensions: Iterable[str], route: str | None = None
) -> RecordingPolicy:
    """The policy of a call between ``extensions`` (internal numbers in it) over ``route``."""
    if route is not None:
        match = [r for r in config.dialplan.routes if r.name == route]
        if not match:
            raise RecordingPolicyError(f"no route named {route!r}")
        own = match[0].recording
        if own != "extension":
            return own
    known = {e.number: e.recording for e in config.extensions}
    policy: RecordingPolicy = "never"
    for number in extensions:
        if number not in known:
            raise RecordingPolicyError(f"no extension {number!r}")
        if _STRENGTH[known[number]] > _STRENGTH[policy]:
            policy = known[number]
    return policy


# How long the digits of a code dialled during a call may be apart before they are taken as
# ordinary digits after all: Asterisk features.conf ``featuredigittimeout``, 1000 ms by default.
FEATURE_DIGIT_TIMEOUT_MS: Final = 1000
MAX_CODE_DIGITS: Final = 16  # the store's feature codes are shorter (checks.feature_code)


@dataclass(frozen=True, slots=True)
class CodeStep:
    """What one digit of a party did to the in-call code.

    ``hush``: True, the code began, the other party stops hearing this one (its audio is
    replaced by silence, so the code's tones do not reach it); False, it hears it again;
    None, no change.  ``replay``: digits that were held back and turned out not to be the
    code; they go on to the other party as DTMF.  ``toggled``: the code is complete."""

    hush: bool | None = None
    replay: str = ""
    toggled: bool = False


class OnDemand:
    """One ``on_demand`` call's record toggle (sans-IO): the parties' digits and ``now`` in.

    Like Asterisk's automixmon: once a party's digits begin the code they are held back from
    the other party; when they complete it the recording toggles, and when they turn out to
    be something else (another digit, or nothing for :data:`FEATURE_DIGIT_TIMEOUT_MS`) they
    are sent on, late but whole.  ``recording`` is what the call should be doing now.
    """

    def __init__(
        self,
        code: str,
        caller: str,
        callee: str,
        *,
        timeout_ms: int = FEATURE_DIGIT_TIMEOUT_MS,
    ) -> None:
        if not code or len(code) > MAX_CODE_DIGITS:
            raise ValueError(f"toggle code {code!r}: 1 to {MAX_CODE_DIGITS} digits")
        self.code = code
        self.caller = caller  # the parties as the recording's index names them
        self.callee = callee
        self.timeout_ms = timeout_ms
        self.recording = False
        self._seen: dict[int, str] = {}  # port -> digits of the code held back so far
        self._until: dict[int, int] = {}  # port -> when its held digits are let go

    def digit(self, port: int, d: str, now: int) -> CodeStep:
        held = self._seen.pop(port, "")
        self._until.pop(port, None)
        seen = held + d
        if seen == self.code:
            self.recording = not self.recording
            return CodeStep(hush=False, toggled=True)
        if self.code.startswith(seen):
            self._hold(port, seen, now)
            return CodeStep(hush=True) if not held else CodeStep()
        if not held:
            return CodeStep()
        # Not the code after all: what was held goes on; this digit may begin the code anew.
        if self.code.startswith(d):
            self._hold(port, d, now)
            return CodeStep(replay=held)
        return CodeStep(hush=False, replay=seen)

    def _hold(self, port: int, seen: str, now: int) -> None:
        self._seen[port] = seen
        self._until[port] = now + self.timeout_ms

    def next_deadline(self) -> int | None:
        return min(self._until.values()) if self._until else None

    def handle_timer(self, now: int) -> list[tuple[int, str]]:
        """(port, digits) of each party whose held digits are let go now."""
        out: list[tuple[int, str]] = []
        for port, until in list(self._until.items()):
            if now >= until:
                del self._until[port]
                out.append((port, self._seen.pop(port)))
        return out
