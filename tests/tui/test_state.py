"""The console's state merging and document editing, without a terminal."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui import tomldoc
from tui.state import MAX_LOG_LINES, ConsoleState


def test_port_events_merge_by_port() -> None:
    state = ConsoleState()
    assert state.apply("ports.state", 1, {"port": 2, "state": "idle", "kind": "FXS"}) == "ports"
    assert state.apply("ports.state", 2, {"port": 2, "state": "dialling", "tone": "dial"})
    assert state.ports == {2: {"port": 2, "state": "dialling", "kind": "FXS", "tone": "dial"}}


def test_alarms_raise_and_clear_idempotently() -> None:
    state = ConsoleState()
    alarm = {"id": "port.1.thermal", "text": "hot"}
    state.apply("alarms.raised", 1, alarm)
    state.apply("alarms.raised", 2, alarm)
    assert list(state.alarms) == ["port.1.thermal"]
    state.apply("alarms.cleared", 3, alarm)
    state.apply("alarms.cleared", 4, alarm)
    assert state.alarms == {}


def test_gaps_and_drops_are_counted_and_ask_for_a_resync() -> None:
    state = ConsoleState()
    state.apply("logs.record", 10, {"seq": 1, "message": "a"})
    state.apply("logs.record", 13, {"seq": 2, "message": "b"})
    assert state.missed == 2
    assert state.apply("api.events_dropped", 14, {"count": 5}) == "resync"
    assert state.missed == 7


def test_log_buffer_is_bounded_and_skips_replays() -> None:
    state = ConsoleState()
    for i in range(1, MAX_LOG_LINES + 50):
        state.apply("logs.record", i, {"seq": i, "message": str(i)})
    state.apply("logs.record", 0, {"seq": 3, "message": "replayed"})
    assert len(state.logs) == MAX_LOG_LINES
    assert state.logs[-1]["message"] == str(MAX_LOG_LINES + 49)


@given(st.text(max_size=40), st.integers(), st.one_of(st.none(), st.integers(), st.text()))
def test_garbage_events_never_raise(topic: str, seq: int, data: Any) -> None:
    ConsoleState().apply(topic, seq, data)


def test_document_paths() -> None:
    doc: dict[str, Any] = {"lines": {"fxs": [{"gain_tx": 0.0, "enabled": True}]}, "x": [1, 2]}
    assert tomldoc.get(doc, "lines.fxs[0].gain_tx") == 0.0
    tomldoc.set_(doc, "lines.fxs[0].gain_tx", -3.5)
    assert doc["lines"]["fxs"][0]["gain_tx"] == -3.5
    assert tomldoc.flatten(doc, "") == [
        ("lines.fxs[0].gain_tx", -3.5),
        ("lines.fxs[0].enabled", True),
        ("x", [1, 2]),
    ]
    assert tomldoc.field_id("lines.fxs[0].gain_tx") == "f-lines_fxs_0__gain_tx"


@pytest.mark.parametrize(
    ("text", "like", "value"),
    [("12", 3, 12), (" -1.5 ", 0.0, -1.5), ("a, b,,c ", ["x"], ["a", "b", "c"]), ("x", "", "x")],
)
def test_values_keep_their_type(text: str, like: Any, value: Any) -> None:
    assert tomldoc.parse_value(text, like) == value


@pytest.mark.parametrize(("text", "like"), [("1.5", 3), ("ten", 0.0)])
def test_bad_numbers_say_why(text: str, like: Any) -> None:
    with pytest.raises(ValueError, match="number"):
        tomldoc.parse_value(text, like)


def test_registration_events_replace_by_account_and_calls_events_ask_for_a_reread() -> None:
    state = ConsoleState()
    state.sip = {"running": True, "registrations": [{"account": "b", "registered": True}]}
    reg = {"account": "a", "registered": False, "code": 403, "reason": "Forbidden"}
    assert state.apply("sip.registration", 1, reg) == "calls"
    assert state.apply("sip.registration", 2, {**reg, "registered": True, "code": 200}) == "calls"
    assert [(r["account"], r["registered"]) for r in state.sip["registrations"]] == [
        ("a", True),
        ("b", True),
    ]
    assert state.sip["running"] is True
    assert state.apply("calls.state", 3, {"leg": "x", "state": "confirmed"}) == "calls"


def test_calls_panel_shows_quality_legs_and_local_calls() -> None:
    from tui.screens.dashboard import calls_lines, registration_text
    from tui.screens.sipdiag import meter

    sip = {"running": True, "legs_in_use": 1, "legs_max": 4}
    call = {
        "port": 1,
        "direction": "out",
        "remote": "sip:201@example.net",
        "account": "provider",
        "state": "confirmed",
        "answered": 1000.0,
        "quality": {"codec": "PCMA", "rx_jitter_ms": 2.4, "rx_loss_pct": 0.0, "mos": 4.38},
    }
    local = [
        {"ports": [2, 3], "leg": None, "from": "102", "to": "103", "state": "talking", "age_s": 5}
    ]
    lines = calls_lines([call], local, sip, 1075.0, snapshot=False)
    assert lines[0] == "[b]Calls[/b]  SIP legs 1/4"
    assert lines[1] == (
        "port 1 -> sip:201@example.net via provider confirmed 1:15  "
        "PCMA jitter 2 ms loss 0.0% MOS 4.4"
    )
    assert lines[2] == "ports 2+3 102 -> 103 talking 0:05"
    assert calls_lines([], [], {}, 0, snapshot=True) == ["[b]Calls[/b]  SIP not running", "none"]
    assert registration_text({"registered": False, "code": 403, "reason": "Forbidden"}) == (
        "NOT registered (403 Forbidden)"
    )
    assert meter(-60.0, -60.0, width=10) == "[----------]"
    assert meter(3.14, 3.14, width=10) == "[=========|]"
    assert meter(-28.4, -12.6, width=10) == "[=====--|--]"
