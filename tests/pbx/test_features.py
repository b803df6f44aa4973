"""Hook-flash features, feature codes, forwarding, DND, pickup and the toll-fraud rules,
driven through the real FXS/FXO line machines (tests/pbx/sipbox.py)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.lines import FxsState
from firmware.lines import messages as m
from firmware.pbx.apps import LeaveMessage, StartApp
from firmware.pbx.calls import (
    ConnectSip,
    DisconnectSip,
    Join,
    LineEvent,
    Mix,
    PlaceSipCall,
    SipAnswered,
    SipEnded,
    Unmix,
)
from firmware.pbx.features import (
    MAX_FORWARDS,
    Availability,
    AvailabilityChanged,
    Feature,
    apply,
    parse_code,
)
from firmware.store.schema import FeatureCodes
from tests.pbx.sipbox import Box, sip_config

S = FxsState


def box3(**kwargs: object) -> Box:
    """Extensions 101, 102, 103 on FXS ports 1, 2, 3; exchange line on port 4; trunk 'prov'."""
    return Box(sip_config(fxs=3, **kwargs))  # type: ignore[arg-type]


def flash(box: Box, port: int) -> None:
    box._run(port, box.fxs[port].handle(m.HookOn(at=box.now), box.now))
    box.advance(500)  # US flash: 300 to 1100 ms (GR-506-CORE)
    box._run(port, box.fxs[port].handle(m.HookOff(at=box.now), box.now))
    box.advance(300)


def call(box: Box, caller: int, number: str, answer: int | None = None) -> None:
    box.lift(caller)
    box.dial(caller, number)
    if answer is not None:
        assert box.st(answer) is S.RINGING
        box.lift(answer)


def talking(box: Box, a: int, b: int) -> bool:
    return frozenset((a, b)) in box.joined and box.st(a) is S.TALKING


# --- call waiting and swap ------------------------------------------------------------------


def test_call_waiting_flash_answers_swaps_and_recall_after_hang_up() -> None:
    box = box3()
    call(box, 1, "102", answer=2)
    assert talking(box, 1, 2)
    call(box, 3, "102")
    # 102 hears the call-waiting tone and the type II caller ID of 103; 103 hears ringback.
    assert box.st(2) is S.CALL_WAITING and box.tone(2) is m.Tone.CALL_WAITING
    sent = [o for o in box.outputs[2] if isinstance(o, m.SendCallerId)]
    assert sent[-1].off_hook and sent[-1].caller_id.number == "103"
    assert box.st(3) is S.ALERTING
    flash(box, 2)  # hold 101, answer 103
    assert talking(box, 2, 3) and box.st(3) is S.TALKING
    assert frozenset((1, 2)) not in box.joined and box.st(1) is S.TALKING
    flash(box, 2)  # swap back to 101
    assert talking(box, 1, 2) and frozenset((2, 3)) not in box.joined
    flash(box, 2)  # and to 103 again
    assert talking(box, 2, 3)
    box.hang_up(2)  # 101 is on hold: 102 is rung back for it
    assert box.st(2) is S.RINGING and box.st(1) is S.TALKING
    box.lift(2)
    assert talking(box, 1, 2)
    assert box.st(3) is S.BUSY  # 103's call ended when 102 hung up on it


def test_waiting_caller_gives_up_and_held_party_hangs_up() -> None:
    box = box3()
    call(box, 1, "102", answer=2)
    call(box, 3, "102")
    assert box.st(2) is S.CALL_WAITING
    box.hang_up(3)
    assert box.st(2) is S.TALKING and talking(box, 1, 2)
    assert box.cc.call_of(2) is box.cc.call_of(1)
    # Again, this time answered; then the held party (101) hangs up: 102 stays with 103.
    call(box, 3, "102")
    flash(box, 2)
    box.hang_up(1)
    assert talking(box, 2, 3)
    assert box.st(1) is S.IDLE
    flash(box, 2)  # nobody on hold any more: a flash now consults
    assert box.st(2) is S.RECALL_DIAL_TONE and frozenset((2, 3)) not in box.joined


def test_hang_up_with_a_call_waiting_rings_for_it() -> None:
    box = box3()
    call(box, 1, "102", answer=2)
    call(box, 3, "102")
    box.hang_up(2)
    assert box.st(1) is S.BUSY
    assert box.st(2) is S.RINGING
    box.lift(2)
    assert talking(box, 2, 3)


def test_star70_and_the_setting_turn_call_waiting_off() -> None:
    box = box3(voicemail=False)  # busy, not voicemail
    box.lift(1)
    box.dial(1, "*70")
    assert box.st(1) is S.RECALL_DIAL_TONE  # stutter: dial the number
    box.dial(1, "102")
    box.lift(2)
    assert talking(box, 1, 2)
    call(box, 3, "102")
    assert box.st(3) is S.BUSY and box.st(2) is S.TALKING
    off = sip_config(fxs=3, voicemail=False)
    off = dataclasses.replace(off, features=dataclasses.replace(off.features, call_waiting=False))
    box = Box(off)
    call(box, 1, "102", answer=2)
    call(box, 3, "102")
    assert box.st(3) is S.BUSY


# --- consultation, three-way, transfer ------------------------------------------------------


def test_flash_consults_then_three_way_then_drops_the_last_party() -> None:
    box = box3()
    call(box, 1, "102", answer=2)
    flash(box, 1)
    assert box.st(1) is S.RECALL_DIAL_TONE and box.tone(1) is m.Tone.RECALL_DIAL
    assert frozenset((1, 2)) not in box.joined and box.st(2) is S.TALKING
    box.dial(1, "103")
    box.lift(3)
    assert talking(box, 1, 3)
    mark = len(box.sent)
    flash(box, 1)
    assert Mix((1, 2, 3)) in box.since(mark)
    mark = len(box.sent)
    flash(box, 1)  # drops 103, back to 102
    assert Unmix((1, 2, 3)) in box.since(mark)
    assert box.st(3) is S.BUSY and talking(box, 1, 2)


def test_three_way_party_leaving_leaves_the_other_two_talking() -> None:
    for leaver, stay in ((3, 2), (2, 3)):
        box = box3()
        call(box, 1, "102", answer=2)
        flash(box, 1)
        box.dial(1, "103")
        box.lift(3)
        flash(box, 1)
        mark = len(box.sent)
        box.hang_up(leaver)
        assert Unmix((1, 2, 3)) in box.since(mark)
        assert talking(box, 1, stay), leaver
        assert box.st(1) is S.TALKING


def test_controller_hanging_up_in_three_way_joins_the_others() -> None:
    box = box3()
    call(box, 1, "102", answer=2)
    flash(box, 1)
    box.dial(1, "103")
    box.lift(3)
    flash(box, 1)
    mark = len(box.sent)
    box.hang_up(1)
    assert Unmix((1, 2, 3)) in box.since(mark)
    assert Join(2, 3) in box.since(mark)
    assert box.st(2) is S.TALKING and box.st(3) is S.TALKING and box.st(1) is S.IDLE


def test_attended_transfer_joins_the_other_two() -> None:
    box = box3()
    call(box, 1, "102", answer=2)
    flash(box, 1)
    box.dial(1, "103")
    box.lift(3)
    box.hang_up(1)
    assert talking(box, 2, 3)
    assert frozenset((1, 3)) not in box.joined and box.st(1) is S.IDLE
    box.hang_up(3)
    assert box.st(2) is S.BUSY
    assert box.cc.call_of(2) is None and box.cc.call_of(3) is None


def test_blind_transfer_while_it_rings() -> None:
    box = box3()
    call(box, 1, "102", answer=2)
    flash(box, 1)
    box.dial(1, "103")
    assert box.st(3) is S.RINGING
    box.hang_up(1)
    assert box.st(3) is S.RINGING and box.st(2) is S.TALKING
    box.lift(3)
    assert talking(box, 2, 3)


def test_consulting_a_busy_number_then_flash_goes_back() -> None:
    box = box3(voicemail=False)  # busy, not voicemail
    call(box, 1, "102", answer=2)
    box.lift(3)  # 103 is off hook: busy
    flash(box, 1)
    box.dial(1, "103")
    assert box.st(1) is S.BUSY
    flash(box, 1)
    assert talking(box, 1, 2)


def test_transfer_disabled_rings_the_controller_back() -> None:
    config = sip_config(fxs=3)
    config = dataclasses.replace(
        config, features=dataclasses.replace(config.features, transfer=False)
    )
    box = Box(config)
    call(box, 1, "102", answer=2)
    flash(box, 1)
    box.dial(1, "103")
    box.lift(3)
    box.hang_up(1)
    assert box.st(3) is S.BUSY
    assert box.st(1) is S.RINGING  # recall for the held 102
    box.lift(1)
    assert talking(box, 1, 2)


def test_sip_leg_is_held_and_transferred_to_a_port() -> None:
    box = box3()
    leg = box.incoming_call("101")
    box.lift(1)
    assert box.audio.get(leg) == 1
    mark = len(box.sent)
    flash(box, 1)
    assert DisconnectSip(leg, 1) in box.since(mark)  # on hold: muted
    box.dial(1, "103")
    box.lift(3)
    mark = len(box.sent)
    box.hang_up(1)
    assert ConnectSip(leg, 3) in box.since(mark)
    assert box.audio.get(leg) == 3 and box.st(3) is S.TALKING
    box.sip(SipEnded(leg, 200))
    assert box.st(3) is S.BUSY


def test_port_transferred_to_an_outgoing_sip_call() -> None:
    box = box3()
    call(box, 1, "102", answer=2)
    flash(box, 1)
    box.dial(1, "05551234")
    box.advance(4000)
    leg = box.placed().leg
    box.sip(SipAnswered(leg))
    assert box.audio.get(leg) == 1
    box.hang_up(1)
    assert box.audio.get(leg) == 2 and box.st(2) is S.TALKING


# Transfers between two SIP legs (REFER, or bridged here): tests/pbx/test_sip_transfer.py


# --- feature codes: forwarding, DND, pickup, last call return ------------------------------


def set_code(box: Box, port: int, code: str, number: str = "") -> list[AvailabilityChanged]:
    mark = len(box.sent)
    box.lift(port)
    box.dial(port, code)
    if number:
        assert box.st(port) is S.RECALL_DIAL_TONE
        box.dial(port, number)
    box.advance(4000)
    assert box.st(port) in (S.RECALL_DIAL_TONE, S.PERMANENT_SIGNAL)  # the confirmation
    box.hang_up(port)
    return [c for c in box.since(mark) if isinstance(c, AvailabilityChanged)]


def test_forward_all_by_code_and_off_again() -> None:
    box = box3()
    changed = set_code(box, 2, "*72", "103")
    assert changed == [AvailabilityChanged("102", Availability(forward_all="103"))]
    call(box, 1, "102")
    assert box.st(2) is S.IDLE and box.st(3) is S.RINGING and box.st(1) is S.ALERTING
    box.lift(3)
    assert talking(box, 1, 3)
    box.hang_up(1)
    box.hang_up(3)
    assert set_code(box, 2, "*73") == [AvailabilityChanged("102", Availability())]
    call(box, 1, "102")
    assert box.st(2) is S.RINGING


def test_dnd_gives_busy_and_forward_busy_takes_over() -> None:
    box = box3(voicemail=False)  # busy, not voicemail
    set_code(box, 2, "*78")
    call(box, 1, "102")
    assert box.st(1) is S.BUSY and box.st(2) is S.IDLE
    box.hang_up(1)
    set_code(box, 2, "*90", "103")
    call(box, 1, "102")
    assert box.st(3) is S.RINGING  # DND counts as busy for forward-on-busy
    box.hang_up(1)
    set_code(box, 2, "*79")
    set_code(box, 2, "*91")
    call(box, 1, "102")
    assert box.st(2) is S.RINGING


def test_forward_on_busy_when_talking_without_call_waiting() -> None:
    box = Box(sip_config(fxs=4))
    box.cc.availability["102"] = Availability(forward_busy="104")
    box.lift(1)
    box.dial(1, "*70")
    box.dial(1, "102")
    box.lift(2)
    call(box, 3, "102")
    assert box.st(4) is S.RINGING and box.st(2) is S.TALKING
    box.lift(4)
    assert talking(box, 3, 4)


def test_forward_on_no_answer_after_the_timer() -> None:
    box = box3()
    set_code(box, 2, "*92", "103")
    call(box, 1, "102")
    assert box.st(2) is S.RINGING
    box.advance(box.config.features.no_answer_timeout_s * 1000 - 1000)
    assert box.st(2) is S.RINGING and box.st(3) is S.IDLE
    box.advance(1500)
    assert box.st(2) is S.IDLE and box.st(3) is S.RINGING
    box.lift(3)
    assert talking(box, 1, 3)


def test_forwarding_loop_is_cut() -> None:
    box = box3()
    box.cc.availability["102"] = Availability(forward_all="103")
    box.cc.availability["103"] = Availability(forward_all="102")
    call(box, 1, "102")
    assert box.st(1) is S.CONGESTION
    call_ = box.cc.call_of(1)
    assert call_ is not None and f"more than {MAX_FORWARDS}" in call_.reason


def test_forward_to_an_unknown_number_is_refused_at_once() -> None:
    box = box3()
    box.lift(2)
    box.dial(2, "*72")
    box.dial(2, "555")
    assert box.st(2) is S.CONGESTION
    assert "102" not in box.cc.availability


def test_forward_to_an_external_number_goes_out_on_the_trunk() -> None:
    box = box3()
    box.cc.availability["102"] = Availability(forward_all="05551234")
    call(box, 1, "102")
    placed = box.placed()
    assert (placed.account, placed.number) == ("prov", "5551234")


def test_forward_to_voicemail_takes_the_box_and_is_refused_without_one() -> None:
    box = box3()
    box.cc.availability["102"] = Availability(forward_all="voicemail")
    call(box, 1, "102")
    assert box.st(1) is S.TALKING and box.st(2) is S.IDLE
    assert StartApp(1, LeaveMessage("102", "unavailable", "101", "Port 1")) in box.sent
    box = box3(voicemail=False)
    box.cc.availability["102"] = Availability(forward_all="voicemail")
    call(box, 1, "102")
    assert box.st(1) is S.CONGESTION
    c = box.cc.call_of(1)
    assert c is not None and c.reason == "voicemail of 102 is not available"


def test_busy_and_dnd_go_to_voicemail_without_forward_busy() -> None:
    box = box3()
    box.lift(2)
    call(box, 1, "102")
    assert box.st(1) is S.TALKING
    assert StartApp(1, LeaveMessage("102", "busy", "101", "Port 1")) in box.sent
    box = box3()
    set_code(box, 2, "*78")
    call(box, 1, "102")
    assert box.st(1) is S.TALKING and box.st(2) is S.IDLE  # DND: busy
    assert StartApp(1, LeaveMessage("102", "busy", "101", "Port 1")) in box.sent


def test_forwarded_to_voicemail_on_busy_or_dnd_greets_busy_on_no_answer_unavailable() -> None:
    box = box3()
    box.cc.availability["102"] = Availability(forward_busy="voicemail")
    box.lift(2)
    call(box, 1, "102")
    assert StartApp(1, LeaveMessage("102", "busy", "101", "Port 1")) in box.sent
    box = box3()
    box.cc.availability["102"] = Availability(forward_busy="voicemail", dnd=True)
    call(box, 1, "102")
    assert StartApp(1, LeaveMessage("102", "busy", "101", "Port 1")) in box.sent
    box = box3()
    box.cc.availability["102"] = Availability(forward_no_answer="voicemail")
    call(box, 1, "102")
    box.advance(25_000)
    assert StartApp(1, LeaveMessage("102", "unavailable", "101", "Port 1")) in box.sent


def test_incoming_sip_call_follows_forwarding() -> None:
    box = box3()
    box.cc.availability["101"] = Availability(forward_all="103")
    box.incoming_call("101")
    assert box.st(3) is S.RINGING and box.st(1) is S.IDLE


def test_pickup_takes_the_ringing_call() -> None:
    box = box3()
    call(box, 1, "102")
    assert box.st(2) is S.RINGING
    box.lift(3)
    box.dial(3, "*88")
    assert box.st(2) is S.IDLE
    assert talking(box, 1, 3) and box.st(1) is S.TALKING


def test_pickup_with_nothing_ringing_is_congestion() -> None:
    box = box3()
    box.lift(3)
    box.dial(3, "*88")
    assert box.st(3) is S.CONGESTION


def test_last_call_return_calls_the_last_caller() -> None:
    box = box3()
    call(box, 1, "102")
    box.hang_up(1)
    box.lift(2)
    box.dial(2, "*69")
    assert box.st(1) is S.RINGING
    box.hang_up(2)
    box.lift(3)
    box.dial(3, "*69")
    assert box.st(3) is S.CONGESTION  # nobody called 103


# --- toll fraud -----------------------------------------------------------------------------


def toll_box(**rules: object) -> Box:
    config = sip_config(fxs=3, max_external_calls=int(rules.pop("max_external_calls", 4)))  # type: ignore[call-overload]
    toll = dataclasses.replace(config.security.toll_fraud, **rules)  # type: ignore[arg-type]
    security = dataclasses.replace(config.security, toll_fraud=toll)
    return Box(dataclasses.replace(config, security=security))


def test_international_numbers_are_refused_unless_allowed() -> None:
    box = toll_box(international_prefix="44")
    call(box, 1, "0441234")
    box.advance(4000)
    assert box.st(1) is S.CONGESTION
    assert not any(isinstance(c, PlaceSipCall) for c in box.sent)
    box = toll_box(international_prefix="44", allow_international=True)
    call(box, 1, "0441234")
    box.advance(4000)
    assert box.placed().number == "441234"


def test_external_call_limit() -> None:
    box = toll_box(max_external_calls=1)
    call(box, 1, "05551234")
    box.advance(4000)
    first = box.placed()
    call(box, 2, "05551235")
    box.advance(4000)
    assert box.st(2) is S.CONGESTION and box.placed() == first
    reason = box.cc.call_of(2).reason  # type: ignore[union-attr]
    assert "max_external_calls is 1" in reason
    # Emergency calls are never limited.
    box.lift(3)
    box.dial(3, "911")
    assert box.seized(4)


def test_pin_before_external_calls() -> None:
    box = toll_box(pin="4321")
    call(box, 1, "05551234")
    box.advance(4000)
    assert box.st(1) is S.RECALL_DIAL_TONE
    assert not any(isinstance(c, PlaceSipCall) for c in box.sent)
    box.dial(1, "4321#")
    assert box.placed().number == "5551234"
    call(box, 2, "05551234")
    box.advance(4000)
    box.dial(2, "1111#")
    assert box.st(2) is S.CONGESTION
    assert len([c for c in box.sent if isinstance(c, PlaceSipCall)]) == 1
    # Internal calls need no PIN.
    call(box, 3, "101")
    assert not any(
        isinstance(c, LineEvent) and c.port == 3 and c.event == m.RecallDialTone() for c in box.sent
    )


# --- the pure parts ----------------------------------------------------------------------


def test_codes_parse_and_apply() -> None:
    codes = FeatureCodes()
    assert parse_code(codes, "*72") is Feature.FORWARD_ALL_ON
    assert parse_code(codes, "102") is None
    a = apply(Availability(), Feature.FORWARD_BUSY_ON, "103")
    assert a == Availability(forward_busy="103")
    assert apply(apply(a, Feature.DND_ON), Feature.FORWARD_BUSY_OFF) == Availability(dnd=True)
    with pytest.raises(ValueError, match="pickup does not change"):
        apply(a, Feature.PICKUP)
    assert Availability.from_json(Availability(forward_all="5", dnd=True).to_json()) == (
        Availability(forward_all="5", dnd=True)
    )
    with pytest.raises(ValueError, match="dnd must be true or false"):
        Availability.from_json({"dnd": "yes"})
    with pytest.raises(ValueError, match="forward_all must be a string"):
        Availability.from_json({"forward_all": 102})


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["lift", "hang", "dial", "flash", "wait", "long"]),
        st.sampled_from([1, 2, 3]),
        st.sampled_from(
            ["101", "102", "103", "*72103", "*73", "*78", "*79", "*88", "*69", "*92101", "*90103"]
        ),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(ACTIONS)
def test_any_sequence_with_flashes_keeps_machines_and_calls_consistent(
    actions: list[tuple[str, int, str]],
) -> None:
    # Every command call control sends must be one the line machine takes (a refused one
    # raises here), and a port on hook in IDLE is in no call but one ringing it.
    box = box3()
    for what, port, digits in actions:
        on_hook = box.fxs[port].hook_on
        if what == "lift" and on_hook:
            box.lift(port)
        elif what == "hang" and not on_hook:
            box.hang_up(port)
        elif what == "dial" and not on_hook:
            box.dial(port, digits)
        elif what == "flash" and not on_hook:
            flash(box, port)
        elif what == "long":
            box.advance(box.config.features.no_answer_timeout_s * 1000)
        else:
            box.advance(3000)
    for port, fxs in box.fxs.items():
        if fxs.hook_on and fxs.state is S.IDLE:
            c = box.cc.call_of(port)
            assert c is None or c.callee == port, (port, c)


def test_forwarded_external_call_needs_no_pin_but_keeps_the_limits() -> None:
    box = toll_box(pin="4321", international_prefix="44")
    box.cc.availability["102"] = Availability(forward_all="05551234")
    call(box, 1, "102")
    assert box.placed().number == "5551234" and box.st(1) is S.PROCEEDING
    box.hang_up(1)
    box.cc.availability["102"] = Availability(forward_all="0441234")
    call(box, 1, "102")
    box.advance(100)
    assert box.st(1) is S.CONGESTION  # international, not allowed


def test_no_answer_forward_to_an_outside_number_keeps_the_caller_ringing() -> None:
    box = box3()
    box.cc.availability["102"] = Availability(forward_no_answer="05551234")
    call(box, 1, "102")
    box.advance(box.config.features.no_answer_timeout_s * 1000 + 500)
    placed = box.placed()
    assert placed.number == "5551234" and box.st(2) is S.IDLE
    assert box.st(1) is S.ALERTING  # ringback goes on until the far end answers
    box.sip(SipAnswered(placed.leg))
    assert box.st(1) is S.TALKING and box.audio.get(placed.leg) == 1


def test_forward_to_voicemail_by_dialling_the_voicemail_code() -> None:
    box = box3()
    changed = set_code(box, 2, "*92", "*98")
    assert changed == [AvailabilityChanged("102", Availability(forward_no_answer="voicemail"))]
    call(box, 1, "102")
    box.advance(box.config.features.no_answer_timeout_s * 1000 + 500)
    assert box.st(1) is S.TALKING and box.st(2) is S.IDLE
    assert StartApp(1, LeaveMessage("102", "unavailable", "101", "Port 1")) in box.sent
    box.hang_up(1)
    box = box3(voicemail=False)  # forwarded there, but 102 has no box
    set_code(box, 2, "*92", "*98")
    call(box, 1, "102")
    box.advance(box.config.features.no_answer_timeout_s * 1000 + 500)
    c = box.cc.call_of(1)
    assert c is not None and c.reason == "voicemail of 102 is not available"


def test_per_extension_allowed_patterns() -> None:
    config = sip_config(fxs=3)
    extensions = tuple(
        dataclasses.replace(e, allowed_patterns=("05x.T",)) if e.number == "101" else e
        for e in config.extensions
    )
    box = Box(dataclasses.replace(config, extensions=extensions))
    call(box, 1, "0412345")
    box.advance(4000)
    assert box.st(1) is S.CONGESTION
    reason = box.cc.call_of(1).reason  # type: ignore[union-attr]
    assert reason == "0412345 is not among the allowed patterns of extension 101 ('05x.T')"
    box.hang_up(1)
    call(box, 1, "0551234")
    box.advance(4000)
    assert box.placed().number == "551234"
    call(box, 2, "0412345")  # 102 has no patterns: anything the other rules allow
    box.advance(4000)
    assert box.placed().number == "412345"
    box.lift(3)
    box.dial(3, "911")
    assert box.seized(4)
