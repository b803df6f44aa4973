"""A small office's IVR configuration, validated the way the box validates it."""

from __future__ import annotations

import copy
from typing import Any

from firmware.store.schema import Config
from firmware.store.validate import parse

OFFICE: dict[str, Any] = {
    "system": {"country": "DE", "timezone": "Europe/Berlin"},
    "lines": {
        "fxs": [{"extension": "201"}, {"extension": "202"}, {"extension": "203"}],
        "fxo": [{"destination": "500"}],
    },
    "extensions": [
        {"number": "201", "name": "Reception"},
        {"number": "202", "name": "Sales"},
        {"number": "203", "name": "Store", "voicemail": False},
    ],
    "ivr": {
        "enabled": True,
        "number": "500",
        "open_menu": "main",
        "closed_menu": "closed",
        "holiday_menu": "holiday",
        "office_hours": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "17:00"},
            {"days": ["sat"], "start": "09:00", "end": "12:30"},
        ],
        "holidays": ["12-25", "2026-04-06"],
        "menus": [
            {
                "name": "main",
                "prompts": ["welcome", "enter-extension-or-wait"],
                "options": [
                    {"digit": "1", "to": "menu:sales"},
                    {"digit": "0", "to": "extension:201"},
                    {"digit": "9", "to": "voicemail:201"},
                    {"digit": "8", "to": "dial:0301234567"},
                    {"digit": "*", "to": "repeat"},
                    {"digit": "#", "to": "hangup"},
                ],
                "direct_dial": "2xx",
                "timeout_s": 5,
                "max_retries": 2,
                "invalid": "hangup",
                "timeout": "extension:201",
            },
            {
                "name": "sales",
                "prompts": ["please-hold"],
                "options": [{"digit": "1", "to": "extension:202"}],
                "timeout_s": 4,
                "max_retries": 1,
                "timeout": "menu:main",
                "invalid": "hangup",
            },
            {
                "name": "closed",
                "prompts": ["office-closed"],
                "max_retries": 0,
                "timeout": "voicemail:201",
            },
            {"name": "holiday", "prompts": ["holiday"], "max_retries": 0},
        ],
    },
}


def office_doc() -> dict[str, Any]:
    return copy.deepcopy(OFFICE)


def office_config(**ivr_changes: Any) -> Config:
    doc = office_doc()
    doc["ivr"].update(ivr_changes)
    return parse(doc)
