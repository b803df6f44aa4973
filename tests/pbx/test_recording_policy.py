"""Which calls are recorded: route first, then the strongest extension policy; the toggle."""

from __future__ import annotations

import dataclasses

import pytest

from firmware.pbx.recording import RecordingPolicyError, RecordToggle, recording_policy
from firmware.store import default_config
from firmware.store.schema import Config, Extension, RecordingPolicy, Route, RouteRecording
from firmware.store.validate import check


def config_with(
    ext_policies: dict[str, RecordingPolicy], route_policy: RouteRecording = "extension"
) -> Config:
    base = default_config(fxs_ports=3, fxo_ports=1)
    exts = tuple(
        dataclasses.replace(e, recording=ext_policies.get(e.number, "never"))
        for e in base.extensions
    )
    routes = tuple(
        dataclasses.replace(r, recording=route_policy) if r.name == "outside" else r
        for r in base.dialplan.routes
    )
    return check(
        dataclasses.replace(
            base, extensions=exts, dialplan=dataclasses.replace(base.dialplan, routes=routes)
        )
    )


def test_the_strongest_extension_policy_wins_between_extensions() -> None:
    config = config_with({"101": "on_demand", "102": "always"})
    assert recording_policy(config, extensions=["101", "103"]) == "on_demand"
    assert recording_policy(config, extensions=["101", "102"]) == "always"
    assert recording_policy(config, extensions=["103"]) == "never"


def test_a_route_policy_overrides_the_extensions() -> None:
    never = config_with({"101": "always"}, "never")
    assert recording_policy(never, extensions=["101"], route="outside") == "never"
    inherit = config_with({"101": "always"})
    assert recording_policy(inherit, extensions=["101"], route="outside") == "always"
    assert recording_policy(inherit, extensions=["101"], route="internal") == "always"
    with pytest.raises(RecordingPolicyError, match="no route named 'nope'"):
        recording_policy(inherit, extensions=[], route="nope")
    with pytest.raises(RecordingPolicyError, match="no extension '555'"):
        recording_policy(inherit, extensions=["555"])


def test_the_toggle_code_starts_and_stops() -> None:
    toggle = RecordToggle("*1")
    assert [toggle.digit(d) for d in "5*21"] == [False, False, False, False]
    assert toggle.digit("*") is False and toggle.digit("1") is True
    states = [toggle.recording]
    assert [toggle.digit(d) for d in "**1"] == [False, False, True]
    states.append(toggle.recording)
    assert states == [True, False]
    with pytest.raises(ValueError, match="empty"):
        RecordToggle("")
    assert Extension().recording == "never" and Route().recording == "extension"
