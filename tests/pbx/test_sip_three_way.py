"""Three-way calls by hook flash with SIP parties (sans-IO): each SIP party's audio moves from
the line to an application port of its own, mixed with the lines; every way out of the
three-way call gives the ports back and the SIP audio back to a line."""

from __future__ import annotations

import dataclasses

from firmware.lines import FxsState
from firmware.pbx.apps import APP_PORTS
from firmware.pbx.calls import (
    Call,
    CallState,
    ConnectSip,
    DisconnectSip,
    HangupSip,
    HoldSip,
    Join,
    Mix,
    ResumeSip,
    SipAnswered,
    SipEnded,
    Unmix,
)
from tests.pbx.sipbox import Box, sip_config
from tests.pbx.test_features import box3, flash
from tests.pbx.test_sip_transfer import consult, trunk_call_on_port_1

S = FxsState
A1, A2 = APP_PORTS[0], APP_PORTS[1]


def sip_held_line_consulted(box: Box) -> int:
    """Port 1 talks to a trunk caller, flashes, calls 102 (port 2), flashes again."""
    leg = trunk_call_on_port_1(box)
    flash(box, 1)
    box.dial(1, "102")
    box.lift(2)
    mark = len(box.sent)
    flash(box, 1)
    sent = box.since(mark)
    assert sent[:2] == [ConnectSip(leg, A1), ResumeSip(leg)], sent
    assert Mix((1, A1, 2)) in sent and box.audio == {leg: A1}
    assert leg not in box.held and box.st(1) is S.TALKING
    return leg


def line_held_sip_consulted(box: Box) -> int:
    """Port 1 talks to 102 (port 2), flashes, calls out through the trunk, flashes again."""
    box.lift(1)
    box.dial(1, "102")
    box.lift(2)
    out = consult(box)
    box.sip(SipAnswered(out))
    assert box.audio == {out: 1}
    mark = len(box.sent)
    flash(box, 1)
    sent = box.since(mark)
    assert [DisconnectSip(out, 1), ConnectSip(out, A1)] == sent[:2], sent
    assert Mix((1, 2, A1)) in sent and box.audio == {out: A1}
    return out


def two_sip_parties(box: Box) -> tuple[int, int]:
    leg = trunk_call_on_port_1(box)
    out = consult(box)
    box.sip(SipAnswered(out))
    mark = len(box.sent)
    flash(box, 1)
    sent = box.since(mark)
    assert Mix((1, A1, A2)) in sent and box.audio == {leg: A1, out: A2}
    assert leg not in box.held
    return leg, out


def no_app_port_taken(box: Box) -> bool:
    return all(box.cc._app_calls.get(p) is None for p in APP_PORTS)


def test_flash_again_drops_the_line_and_the_sip_party_talks_to_the_phone_again() -> None:
    box = box3()
    leg = sip_held_line_consulted(box)
    mark = len(box.sent)
    flash(box, 1)
    sent = box.since(mark)
    assert Unmix((1, A1, 2)) in sent
    assert box.st(2) is S.BUSY and box.audio == {leg: 1} and box.st(1) is S.TALKING
    assert sent.index(DisconnectSip(leg, A1)) < sent.index(ConnectSip(leg, 1))
    assert no_app_port_taken(box)


def test_flash_again_drops_the_sip_consultation() -> None:
    box = box3()
    out = line_held_sip_consulted(box)
    mark = len(box.sent)
    flash(box, 1)
    sent = box.since(mark)
    assert Unmix((1, 2, A1)) in sent and HangupSip(out) in sent
    assert out not in box.open_legs and box.audio == {}
    assert frozenset((1, 2)) in box.joined and box.st(1) is S.TALKING
    assert no_app_port_taken(box)


def test_the_sip_party_hanging_up_leaves_the_two_lines_talking() -> None:
    box = box3()
    leg = sip_held_line_consulted(box)
    sent = box.sip(SipEnded(leg, 200))
    assert Unmix((1, A1, 2)) in sent and Join(1, 2) in sent
    assert box.st(1) is S.TALKING and box.st(2) is S.TALKING
    assert no_app_port_taken(box) and box.cc.sip_legs_in_use == 0


def test_the_line_hanging_up_leaves_the_phone_with_the_sip_party() -> None:
    for maker, line in ((sip_held_line_consulted, 2), (line_held_sip_consulted, 2)):
        box = box3()
        leg = maker(box)
        mark = len(box.sent)
        box.hang_up(line)
        assert any(isinstance(c, Unmix) for c in box.since(mark))
        assert box.audio == {leg: 1} and box.st(1) is S.TALKING and leg not in box.held
        assert no_app_port_taken(box)


def test_the_sip_consultation_hanging_up_leaves_the_phone_with_the_held_line() -> None:
    box = box3()
    out = line_held_sip_consulted(box)
    sent = box.sip(SipEnded(out, 200))
    assert Unmix((1, 2, A1)) in sent
    assert frozenset((1, 2)) in box.joined and box.st(1) is S.TALKING
    assert box.audio == {} and no_app_port_taken(box)


def test_the_phone_hanging_up_joins_the_line_and_the_sip_party() -> None:
    for maker in (sip_held_line_consulted, line_held_sip_consulted):
        box = box3()
        leg = maker(box)
        mark = len(box.sent)
        box.hang_up(1)
        assert any(isinstance(c, Unmix) for c in box.since(mark))
        assert box.audio == {leg: 2} and box.st(2) is S.TALKING and box.st(1) is S.IDLE
        assert no_app_port_taken(box)
        box.sip(SipEnded(leg, 200))
        assert box.st(2) is S.BUSY and box.cc.calls_view() == []


def test_without_transfer_the_phone_hanging_up_rings_back_for_the_held_sip_party() -> None:
    config = sip_config(fxs=3)
    box = Box(
        dataclasses.replace(config, features=dataclasses.replace(config.features, transfer=False))
    )
    leg = sip_held_line_consulted(box)
    mark = len(box.sent)
    box.hang_up(1)
    assert HoldSip(leg) in box.since(mark) and leg in box.held and box.audio == {}
    assert box.st(2) is S.BUSY and box.st(1) is S.RINGING and no_app_port_taken(box)
    box.lift(1)
    assert box.audio == {leg: 1} and leg not in box.held


def test_two_sip_parties_each_on_an_application_port() -> None:
    box = box3()
    leg, out = two_sip_parties(box)
    mark = len(box.sent)
    flash(box, 1)  # drops the consultation, back to the first
    sent = box.since(mark)
    assert Unmix((1, A1, A2)) in sent and HangupSip(out) in sent
    assert box.audio == {leg: 1} and no_app_port_taken(box)


def test_either_sip_party_leaving_leaves_the_other_with_the_phone() -> None:
    for leaving in (0, 1):
        box = box3()
        legs = two_sip_parties(box)
        box.sip(SipEnded(legs[leaving], 200))
        stays = legs[1 - leaving]
        assert box.audio == {stays: 1} and stays not in box.held, leaving
        assert box.st(1) is S.TALKING and no_app_port_taken(box)


def test_the_phone_hanging_up_hands_two_sip_parties_to_each_other() -> None:
    box = box3()
    leg, out = two_sip_parties(box)
    box.hang_up(1)
    assert box.audio == {} and no_app_port_taken(box) and box.st(1) is S.IDLE
    assert out in box.open_legs and leg in box.open_legs  # REFER with Replaces, or bridged


def test_without_free_application_ports_the_flash_drops_the_consultation_as_before() -> None:
    box = box3()
    for port in APP_PORTS[1:]:  # taken by other SIP callers' applications
        box.cc._app_calls[port] = Call(None, CallState.TALKING)
    leg = trunk_call_on_port_1(box)
    out = consult(box)
    box.sip(SipAnswered(out))
    mark = len(box.sent)
    flash(box, 1)  # two SIP parties, one application port: no three-way call
    sent = box.since(mark)
    assert not any(isinstance(c, Mix) for c in sent) and HangupSip(out) in sent
    assert box.audio == {leg: 1} and box.st(1) is S.TALKING
