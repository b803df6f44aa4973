"""Call control with SIP legs, against the real line machines: every path of docs/dialplan.md."""

from __future__ import annotations

import dataclasses

import pytest

from firmware.lines import FxoState, FxsState
from firmware.lines import messages as m
from firmware.pbx.calls import (
    FXO_CALLER_ID_WAIT_MS,
    FXO_DIAL_DELAY_MS,
    AnswerSip,
    ConnectSip,
    DisconnectSip,
    HangupSip,
    Join,
    LineEvent,
    PlaceSipCall,
    RingSip,
    SendDtmf,
    SendSipDtmf,
    SipAnswered,
    SipDtmf,
    SipEnded,
    SipIncoming,
    SipRinging,
    Split,
)
from firmware.pbx.legs import SipEventError
from firmware.sip.limits import PJSUA_MAX_CALLS

from .sipbox import CID, Box, sip_config

PORT1 = m.CallerId("101", "Port 1")


def call_out(box: Box, port: int = 1, number: str = "05551234") -> int:
    """Port dials an outside number; returns the leg it went out on."""
    box.lift(port)
    box.dial(port, number)
    box.advance(4000)  # 0[1-9]x.T completes on the inter-digit timer
    return box.placed().leg


# --- outgoing through a trunk -----------------------------------------------------------


def test_trunk_call_rings_answers_carries_dtmf_and_hangs_up() -> None:
    box = Box()
    leg = call_out(box)
    assert box.placed() == PlaceSipCall(leg, "prov", "5551234", PORT1)  # the 0 is stripped
    assert box.st(1) is FxsState.PROCEEDING  # dial tone off, quiet until the far end rings
    assert box.cc.sip_legs_in_use == 1
    box.sip(SipRinging(leg))
    assert box.st(1) is FxsState.ALERTING and box.tone(1) is m.Tone.RINGBACK
    assert box.sip(SipRinging(leg)) == []  # a second 180 changes nothing
    assert box.sip(SipAnswered(leg)) == [LineEvent(1, m.Connect()), ConnectSip(leg, 1)]
    assert box.st(1) is FxsState.TALKING
    mark = len(box.sent)
    box.dial(1, "5#")  # digits dialled in the call go to the far end as DTMF events
    assert box.since(mark) == [SendSipDtmf(leg, "5"), SendSipDtmf(leg, "#")]
    assert box.sip(SipDtmf(leg, "7")) == [SendDtmf(1, "7")]  # and the far end's come back
    mark = len(box.sent)
    box.hang_up(1)
    assert box.since(mark) == [DisconnectSip(leg, 1), HangupSip(leg)]
    assert box.cc.sip_legs_in_use == 0 and box.cc.call_of(1) is None
    assert box.sip(SipEnded(leg, 200, "OK")) == []  # the BYE's answer: the leg is gone already


def test_early_media_cuts_the_far_end_through_and_a_later_180_keeps_it() -> None:
    box = Box()
    leg = call_out(box)
    box.sip(SipRinging(leg))
    assert box.tone(1) is m.Tone.RINGBACK
    assert box.sip(SipRinging(leg, early_media=True)) == [
        ConnectSip(leg, 1),
        LineEvent(1, m.EarlyMedia()),
    ]
    assert box.st(1) is FxsState.EARLY_MEDIA and box.tone(1) is None
    assert box.sip(SipRinging(leg)) == []  # RFC 3960: the far end's audio wins
    assert box.sip(SipRinging(leg, early_media=True)) == []
    mark = len(box.sent)
    box.dial(1, "1")  # an IVR behind early media hears the digit
    assert box.since(mark) == [SendSipDtmf(leg, "1")]
    # On answer the audio is already through: no second ConnectSip.
    assert box.sip(SipAnswered(leg)) == [LineEvent(1, m.Connect())]
    assert box.st(1) is FxsState.TALKING
    view = box.cc.calls_view()
    assert [(v.ports, v.leg, v.state, v.via) for v in view] == [((1,), leg, "talking", "prov")]


def test_early_media_then_failure_gives_the_tone_and_no_disconnect_for_a_dead_leg() -> None:
    box = Box()
    leg = call_out(box)
    box.sip(SipRinging(leg, early_media=True))
    assert box.cc.calls_view()[0].state == "early-media"
    assert box.sip(SipEnded(leg, 480, "Temporarily Unavailable")) == [LineEvent(1, m.Congestion())]
    assert box.st(1) is FxsState.CONGESTION


@pytest.mark.parametrize(
    ("code", "state", "cause"),
    [
        (486, FxsState.BUSY, "Q.850 17 user busy"),
        (600, FxsState.BUSY, "Q.850 17 user busy"),
        (603, FxsState.BUSY, "Q.850 21 call rejected"),
        (404, FxsState.CONGESTION, "Q.850 1 unallocated number"),
        (480, FxsState.CONGESTION, "Q.850 18 no user responding"),
        (484, FxsState.CONGESTION, "Q.850 28 invalid number format"),
        (408, FxsState.CONGESTION, "Q.850 102 recovery on timer expiry"),
        (500, FxsState.CONGESTION, "Q.850 41 temporary failure"),
        (503, FxsState.CONGESTION, "Q.850 41 temporary failure"),
        (499, FxsState.CONGESTION, "Q.850 41 temporary failure"),  # unknown 4xx is 400
        (699, FxsState.BUSY, "Q.850 17 user busy"),  # unknown 6xx is 600 (RFC 3261 s21)
    ],
)
def test_final_responses_map_to_busy_or_congestion(code: int, state: FxsState, cause: str) -> None:
    box = Box()
    leg = call_out(box)
    box.sip(SipRinging(leg))
    box.sip(SipEnded(leg, code, "Because"))
    assert box.st(1) is state
    call = box.cc.call_of(1)
    assert call is not None and call.sip_code == code
    assert call.reason.startswith(f"{code} Because") and cause in call.reason
    assert box.cc.sip_legs_in_use == 0
    assert not any(isinstance(c, HangupSip) for c in box.sent)  # the far end ended it
    box.hang_up(1)
    assert box.cc.call_of(1) is None


def test_far_end_hangs_up_during_the_call() -> None:
    box = Box()
    leg = call_out(box)
    box.sip(SipAnswered(leg))
    assert box.sip(SipEnded(leg, 200, "BYE")) == [LineEvent(1, m.Busy())]
    assert box.st(1) is FxsState.BUSY and box.cc.sip_legs_in_use == 0
    mark = len(box.sent)
    box.hang_up(1)
    assert box.since(mark) == []  # nothing left to hang up


def test_caller_gives_up_while_the_far_end_rings() -> None:
    box = Box()
    leg = call_out(box)
    box.sip(SipRinging(leg))
    mark = len(box.sent)
    box.hang_up(1)
    assert box.since(mark) == [HangupSip(leg)]  # the shell CANCELs it
    assert box.sip(SipEnded(leg, 487, "Request Terminated")) == []
    assert box.sip(SipAnswered(leg)) == []  # a 200 crossing the CANCEL: ignored


def test_shell_failing_to_place_the_call_gives_congestion() -> None:
    box = Box()
    leg = call_out(box)
    box.sip(SipEnded(leg, 503, "all legs in use"))
    assert box.st(1) is FxsState.CONGESTION


def test_emergency_number_through_a_trunk_route() -> None:
    box = Box(sip_config(emergency_to="trunk:prov"))
    box.lift(1)
    box.dial(1, "112")  # complete at once, no timer
    assert box.placed() == PlaceSipCall(box.placed().leg, "prov", "112", PORT1)


def test_emergency_falls_back_to_the_trunk_when_there_is_no_exchange_line() -> None:
    # No exchange line, and the emergency route leads nowhere: the first trunk takes it.
    box = Box(sip_config(fxo=0, fxo_destination="", emergency_to="extensions"))
    box.lift(1)
    box.dial(1, "911")
    placed = box.placed()
    assert (placed.account, placed.number) == ("prov", "911")


# --- admission ----------------------------------------------------------------------------


def test_a_fifth_outgoing_leg_gets_congestion() -> None:
    box = Box(sip_config(fxs=5))
    legs = [call_out(box, port) for port in range(1, 5)]
    assert len(set(legs)) == 4 and box.cc.sip_legs_in_use == PJSUA_MAX_CALLS
    mark = len(box.sent)
    box.lift(5)
    box.dial(5, "05551234")
    box.advance(4000)
    assert not any(isinstance(c, PlaceSipCall) for c in box.since(mark))
    assert box.st(5) is FxsState.CONGESTION
    call = box.cc.call_of(5)
    assert call is not None and call.reason == f"all {PJSUA_MAX_CALLS} SIP legs in use"
    # One leg ends: the next call gets through.
    box.sip(SipEnded(legs[0], 200))
    box.hang_up(1)
    box.hang_up(5)
    call_out(box, 5)
    assert box.cc.sip_legs_in_use == PJSUA_MAX_CALLS


def test_a_fifth_incoming_leg_is_refused_with_503() -> None:
    box = Box(sip_config(fxs=5))
    for port in range(1, 5):
        box.incoming_call(str(100 + port))
    assert box.cc.sip_legs_in_use == 4
    leg = box.cc.new_leg()
    assert box.sip(SipIncoming(leg, "prov", "trunk", "prov", "105", CID)) == [HangupSip(leg, 503)]
    assert box.st(5) is FxsState.IDLE


def test_local_calls_use_no_leg_and_are_not_refused_when_legs_run_out() -> None:
    box = Box(sip_config(fxs=6))
    for port in range(1, 5):
        call_out(box, port)
    box.lift(5)
    box.dial(5, "106")
    assert box.st(6) is FxsState.RINGING
    box.lift(6)
    assert box.st(5) is FxsState.TALKING and Join(5, 6) in box.sent


# --- incoming from a trunk ------------------------------------------------------------------


def test_trunk_call_to_an_extension_rings_it_with_caller_id_and_connects() -> None:
    box = Box()
    leg = box.incoming_call("102")
    assert box.since(0) == [LineEvent(2, m.Alert(CID)), RingSip(leg)]
    assert box.st(2) is FxsState.RINGING
    box.advance(2500)  # Bell 202: caller ID after the first ring
    assert m.SendCallerId(CID) in box.outputs[2]
    mark = len(box.sent)
    box.lift(2)
    assert box.since(mark) == [AnswerSip(leg), ConnectSip(leg, 2)]
    assert box.st(2) is FxsState.TALKING
    mark = len(box.sent)
    box.sip(SipEnded(leg, 200, "BYE"))
    assert box.since(mark) == [LineEvent(2, m.Busy())]


def test_trunk_destination_overrides_the_called_number() -> None:
    box = Box(sip_config(trunk_destination="101"))
    box.incoming_call("4930123456")
    assert box.st(1) is FxsState.RINGING


def test_caller_hangs_up_before_answer_stops_the_ringing() -> None:
    box = Box()
    leg = box.incoming_call("101")
    mark = len(box.sent)
    box.sip(SipEnded(leg, 487, "Request Terminated"))
    assert box.since(mark) == [LineEvent(1, m.CancelAlert())]
    assert box.st(1) is FxsState.IDLE and box.cc.call_of(1) is None


def test_incoming_to_a_busy_extension_is_486_and_to_no_extension_404() -> None:
    box = Box(sip_config(voicemail=False))  # with a box, busy goes to voicemail
    box.lift(1)
    leg = box.incoming_call("101")
    assert box.sent[-1] == HangupSip(leg, 486)
    leg = box.incoming_call("199")
    assert box.sent[-1] == HangupSip(leg, 404)
    leg = box.incoming_call("101", account="other")
    assert box.sent[-1] == HangupSip(leg, 404)  # no such trunk in service
    assert box.cc.sip_legs_in_use == 0 and box.open_legs == set()


def test_incoming_while_the_extension_rings_for_another_call_is_busy() -> None:
    box = Box(sip_config(voicemail=False))  # with a box, busy goes to voicemail
    box.incoming_call("101")
    leg = box.incoming_call("101")
    assert box.sent[-1] == HangupSip(leg, 486)


# --- ATA mode ---------------------------------------------------------------------------


def test_ata_port_sends_what_the_box_does_not_keep_through_its_own_account() -> None:
    box = Box(sip_config(accounts=[0], outside_to=""))
    call_out(box, 1, "0301234")  # no route takes it: out through the port's account
    assert box.placed().account == "port1" and box.placed().number == "0301234"
    box.hang_up(1)
    box.lift(1)
    box.dial(1, "555")  # the 'internal' route matches, but it is no extension
    assert box.placed().number == "555"
    box.hang_up(1)
    box.lift(1)
    box.dial(1, "102")  # an extension stays on the box
    assert box.st(2) is FxsState.RINGING
    box.hang_up(1)
    box.lift(1)
    box.dial(1, "112")  # and so does an emergency call
    assert box.seized(3)
    box.hang_up(1)
    # A port without an account gets what the routes say: nothing for 0301234.
    box.lift(2)
    box.dial(2, "0301234")
    box.advance(4000)
    assert box.st(2) is FxsState.CONGESTION


def test_ata_account_call_rings_its_port() -> None:
    box = Box(sip_config(accounts=[1]))
    leg = box.incoming_call("u2", kind="account", account="port2", peer="port2")
    assert box.since(0) == [LineEvent(2, m.Alert(CID)), RingSip(leg)]
    box.lift(2)
    assert box.sent[-2:] == [AnswerSip(leg), ConnectSip(leg, 2)]
    leg = box.incoming_call("u9", kind="account", account="port9", peer="port9")
    assert box.sent[-1] == HangupSip(leg, 404)


def test_ata_account_on_a_disabled_port_is_480() -> None:
    config = sip_config(accounts=[1])
    lines = dataclasses.replace(
        config.lines,
        fxs=(config.lines.fxs[0], dataclasses.replace(config.lines.fxs[1], enabled=False)),
    )
    box = Box(dataclasses.replace(config, lines=lines))
    leg = box.incoming_call("u2", kind="account", account="port2", peer="port2")
    assert box.sent[-1] == HangupSip(leg, 480)


# --- IP phones ----------------------------------------------------------------------------


def test_ip_phone_calls_an_extension() -> None:
    box = Box()
    caller = m.CallerId("103", "Desk phone")
    leg = box.incoming_call("102", kind="user", account="local", peer="103", caller=caller)
    assert box.since(0) == [LineEvent(2, m.Alert(caller)), RingSip(leg)]
    box.lift(2)
    box.hang_up(2)
    assert box.sent[-2:] == [DisconnectSip(leg, 2), HangupSip(leg)]


def test_ip_phone_calls_out_on_the_exchange_line() -> None:
    box = Box(sip_config(outside_to="fxo:0"))
    leg = box.incoming_call("05551234", kind="user", account="local", peer="102")
    assert box.since(0) == [
        LineEvent(3, m.Originate()),
        AnswerSip(leg),
        ConnectSip(leg, 3),
    ]
    assert box.seized(3)
    box.loop_current(3)
    box.advance(FXO_DIAL_DELAY_MS)
    assert SendDtmf(3, "5551234") in box.sent
    assert box.sip(SipDtmf(leg, "9")) == [
        SendDtmf(3, "9")
    ]  # the IP phone's digits go down the line
    mark = len(box.sent)
    box.far_end_clears(3)
    assert box.since(mark) == [DisconnectSip(leg, 3), HangupSip(leg)]
    assert not box.seized(3)


def test_ip_phone_hangs_up_releases_the_exchange_line() -> None:
    box = Box(sip_config(outside_to="fxo:0"))
    leg = box.incoming_call("05551234", kind="user", account="local", peer="102")
    box.sip(SipEnded(leg, 200, "BYE"))
    assert box.sent[-1] == LineEvent(3, m.Hangup()) and not box.seized(3)


def test_ip_phone_goes_out_through_a_trunk_and_unknown_numbers_are_404() -> None:
    box = Box()
    box.incoming_call("05551234", kind="user", account="local", peer="102")
    assert box.placed().account == "prov"  # a second leg, bridged: test_sip_transfer.py
    leg = box.incoming_call("199", kind="user", account="local", peer="102")
    assert box.sent[-1] == HangupSip(leg, 404)


# --- incoming on an exchange line -------------------------------------------------------


def test_exchange_call_rings_the_destination_extension_and_is_answered_there() -> None:
    box = Box()
    box.ring_line(3)
    assert box.st(1) is FxsState.RINGING  # no caller ID wait configured: at once
    assert box.line_events(1) == [m.Alert(None)]
    mark = len(box.sent)
    box.lift(1)
    assert box.since(mark) == [LineEvent(3, m.AnswerCall()), Join(3, 1)]
    assert box.line(3) is FxoState.CONNECTED
    mark = len(box.sent)
    box.hang_up(1)
    assert box.since(mark) == [Split(3, 1), LineEvent(3, m.Hangup())]
    assert not box.seized(3)


def test_exchange_call_waits_for_caller_id_after_the_first_ring() -> None:
    box = Box(cid_after_ring=True)
    box.ring_line(3, caller_id=CID)
    assert box.line_events(1) == [m.Alert(CID)]
    box.advance(2500)
    assert m.SendCallerId(CID) in box.outputs[1]


def test_exchange_call_without_caller_id_goes_through_after_the_wait() -> None:
    box = Box(cid_after_ring=True)
    box.ring_line(3)
    assert box.st(1) is FxsState.IDLE
    assert box.cc.calls_view()[0].state == "waiting-caller-id"
    box.advance(FXO_CALLER_ID_WAIT_MS)
    assert box.line_events(1) == [m.Alert(None)]


def test_exchange_caller_gives_up_before_answer() -> None:
    box = Box()
    box.ring_line(3)
    box.advance(10_000)  # no further ring: the line machine decides ringing stopped
    assert LineEvent(1, m.CancelAlert()) in box.sent
    assert box.st(1) is FxsState.IDLE and box.cc.call_of(3) is None


def test_exchange_far_end_clears_during_the_call() -> None:
    box = Box()
    box.ring_line(3)
    box.lift(1)
    box.far_end_clears(3)
    assert box.st(1) is FxsState.BUSY and not box.seized(3)


def test_exchange_line_without_destination_is_left_ringing() -> None:
    box = Box(sip_config(fxo_destination=""))
    box.ring_line(3)
    assert box.cc.call_of(3) is None and box.st(1) is FxsState.IDLE
    box.lift(1)
    box.dial(1, "112")  # the line rings: it cannot be seized
    assert box.st(1) is FxsState.CONGESTION


def test_exchange_call_out_through_a_trunk_carries_the_caller_id() -> None:
    box = Box(sip_config(fxo_destination="05551234"), cid_after_ring=True)
    box.ring_line(3, caller_id=CID)
    placed = box.placed()
    assert placed == PlaceSipCall(placed.leg, "prov", "5551234", CID)
    assert box.sip(SipRinging(placed.leg, early_media=True)) == []  # the line stays ringing
    assert box.sip(SipAnswered(placed.leg)) == [
        LineEvent(3, m.AnswerCall()),
        ConnectSip(placed.leg, 3),
    ]
    assert box.line(3) is FxoState.CONNECTED
    mark = len(box.sent)
    box.far_end_clears(3)
    assert box.since(mark) == [DisconnectSip(placed.leg, 3), HangupSip(placed.leg)]


def test_exchange_call_through_a_trunk_far_end_hangs_up() -> None:
    box = Box(sip_config(fxo_destination="05551234"))
    box.ring_line(3)
    leg = box.placed().leg
    box.sip(SipAnswered(leg))
    assert box.sip(SipEnded(leg, 200, "BYE")) == [LineEvent(3, m.Hangup())]
    assert not box.seized(3)


def test_exchange_caller_gives_up_before_the_trunk_answers() -> None:
    box = Box(sip_config(fxo_destination="05551234"))
    box.ring_line(3)
    leg = box.placed().leg
    box.advance(10_000)
    assert box.sent[-1] == HangupSip(leg) and box.cc.sip_legs_in_use == 0


def test_trunk_refusing_an_exchange_call_leaves_the_line_ringing() -> None:
    box = Box(sip_config(fxo_destination="05551234"))
    box.ring_line(3)
    leg = box.placed().leg
    assert box.sip(SipEnded(leg, 486, "Busy Here")) == []
    assert box.line(3) is FxoState.RINGING and box.cc.call_of(3) is None
    box.advance(10_000)
    assert box.line(3) is FxoState.IDLE


def test_exchange_call_to_trunk_when_all_legs_are_in_use_is_not_put_through() -> None:
    box = Box(sip_config(fxs=4, fxo_destination="05551234"))
    for port in range(1, 5):
        call_out(box, port)
    mark = len(box.sent)
    box.ring_line(5)
    assert not any(isinstance(c, PlaceSipCall) for c in box.since(mark))
    assert box.line(5) is FxoState.RINGING


# --- garbage --------------------------------------------------------------------------------


def test_events_for_unknown_legs_and_non_events_are_ignored() -> None:
    box = Box()
    assert box.cc.handle_sip(SipRinging(99), 0) == []
    assert box.cc.handle_sip(SipAnswered(99), 0) == []
    assert box.cc.handle_sip(SipEnded(99, 500), 0) == []
    assert box.cc.handle_sip(SipDtmf(99, "1"), 0) == []
    assert box.cc.handle_sip("INVITE sip:101@box", 0) == []
    assert box.cc.handle_sip(m.OffHook(), 0) == []


def test_the_same_leg_handed_in_twice_is_ignored_and_the_first_call_kept() -> None:
    box = Box()
    leg = box.incoming_call("101")
    assert box.cc.handle_sip(SipIncoming(leg, "prov", "trunk", "prov", "102", CID), 0) == []
    assert box.st(2) is FxsState.IDLE and box.cc.call_of(1) is not None


def test_events_that_make_no_sense_in_the_state_are_ignored() -> None:
    box = Box()
    leg = box.incoming_call("101")
    assert box.sip(SipRinging(leg)) == []  # a 180 on our own incoming leg
    assert box.sip(SipAnswered(leg)) == []  # answered by whom? the phone still rings
    assert box.sip(SipDtmf(leg, "1")) == []  # no audio yet
    assert box.st(1) is FxsState.RINGING


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SipEnded(1, 42), "SipEnded.code"),
        (lambda: SipEnded(-1, 486), "SipEnded.leg"),
        (lambda: SipDtmf(1, "x"), "SipDtmf.digit"),
        (lambda: SipRinging(1, early_media="yes"), "SipRinging.early_media"),  # type: ignore[arg-type]
        (lambda: SipIncoming(1, "prov", "robot", "x", "101"), "SipIncoming.peer_kind"),  # type: ignore[arg-type]
        (lambda: SipIncoming(1, "prov", "trunk", "x", "1" * 65), "SipIncoming.called"),
        (lambda: SipIncoming(1, "prov", "trunk", "x", "1", "101"), "SipIncoming.caller"),  # type: ignore[arg-type]
        (lambda: PlaceSipCall(1, "prov", ""), "PlaceSipCall.number"),
        (lambda: HangupSip(1, 99), "HangupSip.code"),
        (lambda: SendSipDtmf(1, "1x"), "SendSipDtmf.digits"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(build: object, message: str) -> None:
    with pytest.raises(SipEventError, match=message.replace(".", r"\.")):
        build()  # type: ignore[operator]


def test_calls_view_shows_every_call() -> None:
    box = Box(sip_config(fxs=3))
    leg_out = call_out(box, 1)
    box.sip(SipRinging(leg_out))
    leg_in = box.incoming_call("102")
    box.lift(3)
    rows = {r.ports: r for r in box.cc.calls_view()}
    assert rows[(1,)].leg == leg_out and rows[(1,)].state == "remote-ringing"
    assert (rows[(1,)].from_, rows[(1,)].to, rows[(1,)].via) == ("101", "5551234", "prov")
    assert rows[(2,)].leg == leg_in and rows[(2,)].state == "ringing"
    assert (rows[(2,)].from_, rows[(2,)].to) == ("5551234", "102")
    assert rows[(3,)].leg is None and rows[(3,)].state == "dialling"
    assert all(r.since >= r.started for r in rows.values())
