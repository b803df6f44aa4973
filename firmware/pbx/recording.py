"""Which calls are recorded, sans-IO: the policy for a call, and the in-call toggle code.

Policy: a route's own setting wins (``always``/``never``/``on_demand``); a route set to
``extension`` (the default), or a call that takes no route (extension to extension), is
recorded by the strongest policy among the extensions in it: ``always`` over
``on_demand`` over ``never``.  So a sales line set to ``always`` is recorded whoever it
talks to, and an emergency route set to ``never`` is never recorded.

On demand: a party of an ``on_demand`` call dials ``features.codes.record_toggle`` during
the call to start recording and again to stop.  :class:`RecordToggle` watches that party's
digits for the code.
"""

from __future__ import annotations

from collections.abc import Iterable
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


class RecordToggle:
    """Digits of one party during a call in; True when they completed the toggle code."""

    def __init__(self, code: str) -> None:
        if not code:
            raise ValueError("empty toggle code")
        self.code = code
        self._seen = ""
        self.recording = False

    def digit(self, d: str) -> bool:
        self._seen += d
        if not self.code.startswith(self._seen):
            self._seen = d if self.code.startswith(d) else ""
            return False
        if self._seen != self.code:
            return False
        self._seen = ""
        self.recording = not self.recording
        return True
