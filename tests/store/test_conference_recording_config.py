"""The conference and recording sections: limits tied to the bridge, paths in every error."""

from __future__ import annotations

from typing import Any

import pytest

from firmware.sip.limits import PJSUA_MAX_CALLS
from firmware.store import ConfigError, default_config, loads_toml, parse, to_document
from firmware.store.document import set_path
from firmware.store.schema import MAX_SIP_CALLS
from firmware.store.validate import conference_capacity


def problems(doc: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(doc)
    return [str(i) for i in info.value.issues]


def test_the_store_knows_the_sip_cores_call_limit() -> None:
    assert MAX_SIP_CALLS == PJSUA_MAX_CALLS


def test_rooms_and_recording_policies_load_from_toml() -> None:
    text = """
[conference]
mute_toggle = "*5"
[[conference.rooms]]
number = "800"
name = "Sales"
pin = "2468"
max_participants = 4
[recording]
retention_days = 30
max_total_mb = 500
[[extensions]]
number = "101"
recording = "on_demand"
[[extensions]]
number = "102"
recording = "always"
"""
    config = loads_toml(text, default_config())
    assert config.conference.rooms[0].pin == "2468"
    assert config.conference.mute_toggle == "*5"
    assert config.recording.retention_days == 30
    assert [e.recording for e in config.extensions] == ["on_demand", "always"]
    assert config.features.codes.record_toggle == "*1"
    assert config.dialplan.routes[0].recording == "extension"


def test_a_room_larger_than_the_bridge_and_ports_is_refused() -> None:
    config = default_config(fxs_ports=2, fxo_ports=1)
    assert conference_capacity(config) == PJSUA_MAX_CALLS + 3
    doc = to_document(config)
    doc["conference"]["rooms"] = [{"number": "800", "max_participants": 8}]
    [issue] = problems(doc)
    assert issue.startswith("conference.rooms[0].max_participants: 8 participants")
    assert "4 SIP legs" in issue and "(7 at most)" in issue
    doc["conference"]["rooms"][0]["max_participants"] = 7
    assert parse(doc).conference.rooms[0].max_participants == 7


def test_room_numbers_are_unique_and_not_extensions_and_values_are_checked() -> None:
    doc = to_document(default_config())
    doc["conference"]["rooms"] = [
        {"number": "800"},
        {"number": "800"},
        {"number": "101"},
        {"number": "801", "pin": "12", "max_participants": 1},
    ]
    doc = set_path(doc, "extensions[0].recording", "sometimes")
    doc = set_path(doc, "dialplan.routes[1].recording", "maybe")
    doc = set_path(doc, "recording.retention_days", -1)
    out = problems(doc)
    expected = [
        "conference.rooms[1].number: room '800' is defined twice",
        "conference.rooms[2].number: '101' is already an extension number",
        "conference.rooms[3].pin: a PIN is 4 to 12 digits",
        "conference.rooms[3].max_participants: 1 is out of range 2..32",
        "extensions[0].recording: must be one of 'always', 'never', 'on_demand'",
        "dialplan.routes[1].recording: must be one of 'extension'",
        "recording.retention_days: -1 days is out of range 0..3650 days",
    ]
    for prefix in expected:
        assert any(o.startswith(prefix) for o in out), (prefix, out)


def test_the_record_code_is_checked_against_the_other_codes() -> None:
    doc = set_path(to_document(default_config()), "features.codes.record_toggle", "*7")
    out = problems(doc)
    assert any(
        o.startswith("features.codes.record_toggle: '*7' is a prefix of features.codes")
        for o in out
    ), out
