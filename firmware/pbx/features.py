"""Feature codes, per-extension availability and the toll-fraud rules (sans-IO, pure).

Call control (:mod:`firmware.pbx.calls`) asks this module three things:

- what a dialled string means when it is a feature code (:func:`parse_code`);
- where a call to an extension goes given that extension's :class:`Availability`
  (forwarding, do not disturb);
- whether an external call may go out (:class:`TollRules`).

Availability changes leave call control as :class:`AvailabilityChanged` commands: the shell
stores them (firmware.service.availability, one SQLite table) and hands the stored state back
to ``CallControl`` at start, so that a forwarding survives a restart.  docs/features.md
describes every code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final

from firmware.store.digitmap import compile_digit_map
from firmware.store.schema import Config, FeatureCodes

# A forwarded call may be forwarded again (101 forwards to 102, which forwards to 103); a loop
# (101 -> 102 -> 101) is stopped after this many hops.  Asterisk's app_dial stops call
# forwarding after 20 hops; a box with a handful of extensions needs far fewer.
MAX_FORWARDS: Final = 5


class Feature(enum.Enum):
    FORWARD_ALL_ON = "forward_all_on"
    FORWARD_ALL_OFF = "forward_all_off"
    FORWARD_BUSY_ON = "forward_busy_on"
    FORWARD_BUSY_OFF = "forward_busy_off"
    FORWARD_NO_ANSWER_ON = "forward_no_answer_on"
    FORWARD_NO_ANSWER_OFF = "forward_no_answer_off"
    DND_ON = "dnd_on"
    DND_OFF = "dnd_off"
    LAST_CALL_RETURN = "last_call_return"
    VOICEMAIL = "voicemail"
    PICKUP = "pickup"
    CALL_WAITING_OFF = "call_waiting_off"
    QUEUE_LOGIN = "queue_login"  # firmware.pbx.groups: agents
    QUEUE_LOGOUT = "queue_logout"


# Codes after which the phone hears stutter dial tone and dials a number.
TAKES_NUMBER: Final = frozenset(
    {
        Feature.FORWARD_ALL_ON,
        Feature.FORWARD_BUSY_ON,
        Feature.FORWARD_NO_ANSWER_ON,
        Feature.CALL_WAITING_OFF,
    }
)

# What a forwarding destination may say instead of a number: the extension's voicemail.
VOICEMAIL_TARGET: Final = "voicemail"


def parse_code(codes: FeatureCodes, dialled: str) -> Feature | None:
    for feature in Feature:
        if getattr(codes, feature.value) == dialled:
            return feature
    return None


@dataclass(frozen=True, slots=True)
class Availability:
    """One extension's forwarding and do-not-disturb state ("" : not forwarded)."""

    forward_all: str = ""
    forward_busy: str = ""
    forward_no_answer: str = ""
    dnd: bool = False

    def to_json(self) -> dict[str, str | bool]:
        return {
            "forward_all": self.forward_all,
            "forward_busy": self.forward_busy,
            "forward_no_answer": self.forward_no_answer,
            "dnd": self.dnd,
        }

    @classmethod
    def from_json(cls, raw: object) -> Availability:
        if not isinstance(raw, dict):
            raise ValueError(f"availability must be an object, got {raw!r}")
        targets: dict[str, str] = {}
        for key in ("forward_all", "forward_busy", "forward_no_answer"):
            value = raw.get(key, "")
            if not isinstance(value, str):
                raise ValueError(f"availability {key} must be a string, got {value!r}")
            targets[key] = value
        dnd = raw.get("dnd", False)
        if not isinstance(dnd, bool):
            raise ValueError(f"availability dnd must be true or false, got {dnd!r}")
        return cls(
            forward_all=targets["forward_all"],
            forward_busy=targets["forward_busy"],
            forward_no_answer=targets["forward_no_answer"],
            dnd=dnd,
        )


def apply(availability: Availability, feature: Feature, number: str = "") -> Availability:
    """The availability after dialling ``feature`` (with ``number`` for the forward codes)."""
    match feature:
        case Feature.FORWARD_ALL_ON:
            return replace(availability, forward_all=number)
        case Feature.FORWARD_ALL_OFF:
            return replace(availability, forward_all="")
        case Feature.FORWARD_BUSY_ON:
            return replace(availability, forward_busy=number)
        case Feature.FORWARD_BUSY_OFF:
            return replace(availability, forward_busy="")
        case Feature.FORWARD_NO_ANSWER_ON:
            return replace(availability, forward_no_answer=number)
        case Feature.FORWARD_NO_ANSWER_OFF:
            return replace(availability, forward_no_answer="")
        case Feature.DND_ON:
            return replace(availability, dnd=True)
        case Feature.DND_OFF:
            return replace(availability, dnd=False)
    raise ValueError(f"{feature.value} does not change availability")


@dataclass(frozen=True, slots=True)
class AvailabilityChanged:
    """Command: store extension ``extension``'s new availability."""

    extension: str
    availability: Availability


# --- toll fraud ---------------------------------------------------------------------------


class TollRules:
    """security.toll_fraud, for calls that leave the box (exchange lines and trunks)."""

    def __init__(self, config: Config) -> None:
        rules = config.security.toll_fraud
        self.international_prefix = rules.international_prefix
        self.allow_international = rules.allow_international
        self.max_external_calls = rules.max_external_calls
        self.pin = rules.pin
        self._emergency = frozenset(config.dialplan.emergency_numbers)
        self._allowed = {
            e.number: [(text, compile_digit_map(text)) for text in e.allowed_patterns]
            for e in config.extensions
            if e.allowed_patterns
        }

    def refuse(self, dialled: str, number: str, external_in_use: int) -> str | None:
        """Why an external call to ``number`` (``dialled`` before strip/prefix) is refused,
        or None.  Emergency numbers always go."""
        if dialled in self._emergency:
            return None
        prefix = self.international_prefix
        if not self.allow_international and prefix and number.startswith(prefix):
            return (
                f"{number} is international (prefix {prefix}) and "
                "security.toll_fraud.allow_international is off"
            )
        if external_in_use >= self.max_external_calls:
            return (
                f"{external_in_use} external calls in progress, "
                f"security.toll_fraud.max_external_calls is {self.max_external_calls}"
            )
        return None

    def refuse_for(self, extension: str, dialled: str) -> str | None:
        """Why ``extension`` may not call ``dialled`` by its allowed patterns, or None."""
        allowed = self._allowed.get(extension)
        if not allowed or dialled in self._emergency:
            return None
        if any(pattern.fullmatch(dialled) for _, pattern in allowed):
            return None
        texts = ", ".join(repr(text) for text, _ in allowed)
        return f"{dialled} is not among the allowed patterns of extension {extension} ({texts})"

    def needs_pin(self, dialled: str) -> bool:
        return bool(self.pin) and dialled not in self._emergency
