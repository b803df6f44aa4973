"""Hold by re-INVITE, transfer by REFER (RFC 3515, Replaces RFC 3891), and two SIP legs
bridged by call control (sans-IO: the commands it gives the SIP endpoint)."""

from __future__ import annotations

import dataclasses

from firmware.lines import FxsState
from firmware.pbx.calls import (
    AnswerSip,
    BridgeSip,
    ConnectSip,
    DisconnectSip,
    HangupSip,
    HoldSip,
    PlaceSipCall,
    ResumeSip,
    RingSip,
    SipAnswered,
    SipEnded,
    SipHeld,
    SipReferred,
    SipRinging,
    SipTransferred,
    TransferSip,
)
from firmware.pbx.features import Availability
from tests.pbx.sipbox import CID, Box, sip_config
from tests.pbx.test_features import box3, flash

S = FxsState


def trunk_call_on_port_1(box: Box) -> int:
    leg = box.incoming_call("101")
    box.lift(1)
    assert box.audio.get(leg) == 1
    return leg


def consult(box: Box, number: str = "05551234") -> int:
    """Port 1 flashes and dials an outside number (route 'outside': strip 1, trunk prov)."""
    flash(box, 1)
    box.dial(1, number)
    box.advance(4000)  # the 0[1-9]x.T pattern ends on the inter-digit timer
    return box.placed().leg


def view(box: Box) -> dict[int | None, str]:
    return {row.leg: row.hold for row in box.cc.calls_view()}


def test_flash_holds_the_sip_leg_by_reinvite_and_resumes_it() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    mark = len(box.sent)
    flash(box, 1)
    assert box.since(mark)[:2] == [DisconnectSip(leg, 1), HoldSip(leg)]
    assert leg in box.held and box.st(1) is S.RECALL_DIAL_TONE
    assert view(box)[leg] == "local"
    mark = len(box.sent)
    flash(box, 1)  # nothing dialled: back to the held party
    assert ResumeSip(leg) in box.since(mark)
    assert leg not in box.held and box.audio.get(leg) == 1 and box.st(1) is S.TALKING


def test_a_held_leg_is_resumed_when_the_phone_takes_it_back_after_a_recall() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    flash(box, 1)
    box.hang_up(1)  # with a call on hold: rung back
    assert box.st(1) is S.RINGING and leg in box.held
    box.lift(1)
    assert leg not in box.held and box.audio.get(leg) == 1


def test_the_far_end_holding_us_is_shown_and_keeps_the_call() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    assert box.sip(SipHeld(leg, True)) == []
    assert view(box)[leg] == "remote"
    assert box.audio.get(leg) == 1 and box.st(1) is S.TALKING
    assert box.sip(SipHeld(leg, False)) == []
    assert view(box)[leg] == ""


def test_blind_transfer_to_the_same_trunk_sends_refer_and_drops_our_legs() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    out = consult(box)
    assert box.placed() == PlaceSipCall(out, "prov", "5551234", box.placed().caller)
    mark = len(box.sent)
    box.hang_up(1)  # while the consultation still rings: blind
    sent = box.since(mark)
    assert HangupSip(out) in sent and TransferSip(leg, number="5551234") in sent
    assert out not in box.open_legs and leg in box.open_legs
    assert box.sip(SipTransferred(leg, 100, "Trying", final=False)) == []
    assert box.sip(SipTransferred(leg, 200, "OK")) == [HangupSip(leg)]
    assert box.open_legs == set() and box.cc.sip_legs_in_use == 0
    assert box.cc.calls_view() == []


def test_refused_blind_refer_calls_the_number_here_and_bridges_the_legs() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    consult(box)
    box.hang_up(1)
    sent = box.sip(SipTransferred(leg, 603, "Decline"))
    again = box.placed()
    assert sent == [again] and again.number == "5551234" and again.account == "prov"
    assert box.sip(SipRinging(again.leg)) == []  # the caller talks already: no 180
    assert box.sip(SipAnswered(again.leg)) == [ResumeSip(leg), BridgeSip(leg, again.leg)]
    assert frozenset((leg, again.leg)) in box.bridged and leg not in box.held
    assert box.sip(SipEnded(again.leg, 200)) == [HangupSip(leg)]
    assert box.open_legs == set()


def test_attended_transfer_sends_refer_with_replaces() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    out = consult(box)
    box.sip(SipAnswered(out))
    assert box.audio.get(out) == 1
    mark = len(box.sent)
    box.hang_up(1)
    assert box.since(mark) == [DisconnectSip(out, 1), TransferSip(leg, replaces=out)]
    assert box.st(1) is S.IDLE
    # The far end took over the consultation's dialog: both of ours go.
    assert box.sip(SipTransferred(leg, 200, "OK")) == [HangupSip(leg), HangupSip(out)]
    assert box.open_legs == set()


def test_the_referred_party_leaving_during_an_attended_refer_ends_the_consultation() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    out = consult(box)
    box.sip(SipAnswered(out))
    box.hang_up(1)
    assert box.sip(SipEnded(leg, 200)) == [HangupSip(out)]
    assert box.open_legs == set()
    assert box.sip(SipTransferred(leg, 200, "OK")) == []  # too late: nothing left to do


def test_failed_attended_refer_bridges_the_two_legs_here() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    out = consult(box)
    box.sip(SipAnswered(out))
    box.hang_up(1)
    assert box.sip(SipTransferred(leg, 501, "Not Implemented")) == [
        ResumeSip(leg),
        BridgeSip(leg, out),
    ]
    (row,) = box.cc.calls_view()
    assert row.leg == leg and row.ports == () and row.state == "talking"
    # Either far end hanging up ends the other leg.
    assert box.sip(SipEnded(leg, 200)) == [HangupSip(out)]
    assert box.open_legs == set()


def test_legs_on_different_accounts_are_bridged_without_refer() -> None:
    box = Box(sip_config(fxs=3, accounts=(0,)))
    leg = trunk_call_on_port_1(box)
    out = consult(box, "201")  # port 1's own account takes what the box does not keep
    assert box.placed().account == "port1"
    box.sip(SipAnswered(out))
    mark = len(box.sent)
    box.hang_up(1)
    assert box.since(mark) == [DisconnectSip(out, 1), ResumeSip(leg), BridgeSip(leg, out)]
    assert box.sip(SipEnded(out, 200)) == [HangupSip(leg)]


def test_an_ip_phone_calls_out_through_the_trunk_by_two_bridged_legs() -> None:
    box = box3()
    leg = box.incoming_call("05551234", kind="user", account="local", peer="101")
    out = box.placed()
    assert out.account == "prov" and out.number == "5551234" and out.caller == CID
    assert box.sip(SipRinging(out.leg)) == [RingSip(leg)]
    assert box.sip(SipAnswered(out.leg)) == [AnswerSip(leg), BridgeSip(leg, out.leg)]
    (row,) = box.cc.calls_view()
    assert row.via == "local" and row.state == "talking"
    assert box.sip(SipEnded(out.leg, 200)) == [HangupSip(leg)]
    assert box.cc.sip_legs_in_use == 0


def test_the_trunks_refusal_reaches_the_ip_phone() -> None:
    box = box3()
    leg = box.incoming_call("05551234", kind="user", account="local", peer="101")
    out = box.placed().leg
    assert box.sip(SipEnded(out, 486, "Busy Here")) == [HangupSip(leg, 486)]
    assert box.open_legs == set()


def test_the_ip_phone_hanging_up_cancels_the_second_leg() -> None:
    box = box3()
    leg = box.incoming_call("05551234", kind="user", account="local", peer="101")
    out = box.placed().leg
    assert box.sip(SipEnded(leg, 487)) == [HangupSip(out)]


def test_bridging_respects_the_endpoints_call_limit() -> None:
    box = box3()
    box.incoming_call("05551234", kind="user", account="local", peer="101")
    box.incoming_call("101")
    assert box.cc.sip_legs_in_use == 3
    # The third leg is admitted, but its second leg would be the fifth call: 503.
    last = box.incoming_call("05551236", kind="user", account="local", peer="101")
    assert box.sent[-1] == HangupSip(last, 503)
    assert box.cc.sip_legs_in_use == 3


def test_toll_rules_apply_to_an_ip_phone_going_out() -> None:
    config = sip_config(fxs=3)
    extensions = tuple(
        dataclasses.replace(e, allowed_patterns=("05x.T",)) if e.number == "101" else e
        for e in config.extensions
    )
    box = Box(dataclasses.replace(config, extensions=extensions))
    leg = box.incoming_call("0412345", kind="user", account="local", peer="101")
    assert box.sent[-1] == HangupSip(leg, 403)
    assert not any(isinstance(c, PlaceSipCall) for c in box.sent)


def test_a_trunk_call_forwarded_to_an_outside_number_goes_back_out_bridged() -> None:
    box = box3()
    box.cc.availability["101"] = Availability(forward_all="05551234")
    leg = box.incoming_call("101")
    out = box.placed()
    assert out.account == "prov" and out.number == "5551234"
    assert box.st(1) is S.IDLE  # the extension never rings
    assert box.sip(SipAnswered(out.leg)) == [AnswerSip(leg), BridgeSip(leg, out.leg)]
    box.sip(SipEnded(leg, 200))
    assert box.open_legs == set()


# --- REFER from the far end ------------------------------------------------------------


def test_the_far_end_transfers_us_and_the_new_leg_replaces_the_old_once_answered() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    new = box.cc.new_leg()
    assert box.sip(SipReferred(leg, new, "202")) == []
    assert box.sip(SipRinging(new)) == []  # the phone keeps its call meanwhile
    assert box.audio.get(leg) == 1
    assert box.sip(SipAnswered(new)) == [DisconnectSip(leg, 1), HangupSip(leg), ConnectSip(new, 1)]
    assert box.audio.get(new) == 1 and box.st(1) is S.TALKING
    (row,) = box.cc.calls_view()
    assert row.leg == new and row.to == "202"
    box.hang_up(1)
    assert box.open_legs == set()


def test_the_referrer_hanging_up_first_keeps_the_call_for_the_new_leg() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    new = box.cc.new_leg()
    box.sip(SipReferred(leg, new, "202"))
    assert box.sip(SipEnded(leg, 200)) == []
    assert box.st(1) is S.TALKING
    assert box.sip(SipAnswered(new)) == [ConnectSip(new, 1)]
    assert box.sip(SipEnded(new, 200)) != []  # and that one ending ends the call
    assert box.st(1) is S.BUSY


def test_a_failed_transfer_target_leaves_the_call_with_the_referrer() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    new = box.cc.new_leg()
    box.sip(SipReferred(leg, new, "202"))
    assert box.sip(SipEnded(new, 486, "Busy Here")) == []
    assert box.audio.get(leg) == 1 and box.st(1) is S.TALKING
    assert box.cc.sip_legs_in_use == 1


def test_hanging_up_while_the_transfer_target_rings_ends_both_legs() -> None:
    box = box3()
    leg = trunk_call_on_port_1(box)
    new = box.cc.new_leg()
    box.sip(SipReferred(leg, new, "202"))
    box.hang_up(1)
    assert box.open_legs == set() and box.cc.sip_legs_in_use == 0


def test_a_refer_on_a_bridged_call_is_not_taken() -> None:
    box = box3()
    leg = box.incoming_call("05551234", kind="user", account="local", peer="101")
    new = box.cc.new_leg()
    assert box.sip(SipReferred(leg, new, "202")) == [HangupSip(new)]
