"""Which calls are recorded: route first, then the strongest extension policy; the toggle."""

from __future__ import annotations

import dataclasses

import pytest

from firmware.pbx.recording import (
    FEATURE_DIGIT_TIMEOUT_MS,
    CodeStep,
    OnDemand,
    RecordingPolicyError,
    recording_policy,
)
from firmware.store import default_config
from firmware.store.schema import Config, RecordingPolicy, RouteRecording
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


def test_the_toggle_code_starts_and_stops_and_is_held_back_meanwhile() -> None:
    od = OnDemand("*1", "101", "102")
    assert od.digit(1, "5", 0) == CodeStep()  # not the code: passes in the audio
    assert od.digit(1, "*", 100) == CodeStep(hush=True)
    assert od.next_deadline() == 100 + FEATURE_DIGIT_TIMEOUT_MS
    assert od.digit(1, "1", 200) == CodeStep(hush=False, toggled=True)
    assert od.recording and od.next_deadline() is None
    assert [od.digit(2, d, 300) for d in "*1"] == [CodeStep(hush=True), CodeStep(False, "", True)]
    assert not od.recording  # either party may toggle


def test_digits_that_are_not_the_code_after_all_are_sent_on() -> None:
    od = OnDemand("*12", "101", "102")
    assert od.digit(1, "*", 0) == CodeStep(hush=True)
    assert od.digit(1, "1", 10) == CodeStep()  # still the code so far: still held
    assert od.digit(1, "5", 20) == CodeStep(hush=False, replay="*15")
    assert od.digit(1, "*", 30) == CodeStep(hush=True)
    # Another '*': the first was not the code, the second may begin it.
    assert od.digit(1, "*", 40) == CodeStep(replay="*")
    assert od.handle_timer(39 + FEATURE_DIGIT_TIMEOUT_MS) == []
    assert od.handle_timer(40 + FEATURE_DIGIT_TIMEOUT_MS) == [(1, "*")]
    assert od.next_deadline() is None and not od.recording


def test_a_toggle_code_must_be_a_code() -> None:
    with pytest.raises(ValueError, match="toggle code ''"):
        OnDemand("", "101", "102")
