"""Any mix of phones, exchange lines and SIP far ends: legs stay within pjsua2's 4, every leg
ends in a HangupSip or a SipEnded, and no line machine is ever asked something illegal."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from firmware.lines import FxsState
from firmware.lines import messages as m
from firmware.pbx.calls import ConnectSip, HangupSip, SipAnswered, SipDtmf, SipEnded, SipRinging
from firmware.sip.limits import PJSUA_MAX_CALLS

from .sipbox import CID, Box, sip_config

FXS = [1, 2, 3, 4]
FXO = 5
NUMBERS = ["05551234", "101", "102", "104", "112", "199", "0301"]
CODES = [200, 404, 408, 480, 486, 487, 503, 603]

phone = st.tuples(
    st.sampled_from(["lift", "hang", "dial"]), st.sampled_from(FXS), st.sampled_from(NUMBERS)
)
incoming = st.tuples(
    st.just("in"),
    st.sampled_from(["trunk", "trunk", "account", "user", "nobody"]),
    st.sampled_from(["101", "102", "103", "104", "05551234", "112", "199"]),
)
far_end = st.tuples(
    st.just("far"),
    st.integers(0, 7),
    st.sampled_from(["180", "183", "200", "200", "end", "dtmf"]),
    st.sampled_from(CODES),
)
line = st.tuples(st.just("line"), st.sampled_from(["ring", "ring-cid", "clear"]))
wait = st.tuples(st.just("wait"), st.sampled_from([100, 1000, 5000, 12_000]))
garbage = st.tuples(st.just("garbage"), st.integers(0, 1000))
# Incoming calls and far-end answers weighted up, so that many runs fill all four legs.
steps = st.lists(
    st.one_of(phone, phone, incoming, incoming, far_end, far_end, far_end, line, wait, garbage),
    min_size=20,
    max_size=80,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps,
    st.sampled_from(["101", "05551234"]),
    st.booleans(),
)
def test_legs_never_exceed_four_and_every_leg_ends(
    actions: list[tuple[object, ...]], fxo_destination: str, cid_after_ring: bool
) -> None:
    box = Box(
        sip_config(4, fxo_destination=fxo_destination, accounts=[3]),
        cid_after_ring=cid_after_ring,
    )
    for action in actions:
        match action:
            case ("lift", int(port), _) if box.fxs[port].hook_on:
                box.lift(port)
            case ("hang", int(port), _) if not box.fxs[port].hook_on:
                box.hang_up(port)
            case ("dial", int(port), str(number)) if not box.fxs[port].hook_on:
                box.dial(port, number)
            case ("in", "trunk", str(number)):
                box.incoming_call(number)
            case ("in", "account", str(number)):
                box.incoming_call(number, kind="account", account="port4", peer="port4")
            case ("in", "user", str(number)):
                box.incoming_call(number, kind="user", account="local", peer="102")
            case ("in", "nobody", str(number)):
                box.incoming_call(number, account="unknown-trunk")
            case ("far", int(index), str(what), int(code)) if box.open_legs:
                legs = sorted(box.open_legs)
                leg = legs[index % len(legs)]
                sip_event = {
                    "180": SipRinging(leg),
                    "183": SipRinging(leg, early_media=True),
                    "200": SipAnswered(leg),
                    "end": SipEnded(leg, code),
                    "dtmf": SipDtmf(leg, "5"),
                }[what]
                box.sip(sip_event)
            case ("line", "ring"):
                box.ring_line(FXO)
            case ("line", "ring-cid"):
                box.ring_line(FXO, caller_id=CID)
            case ("line", "clear"):
                box.far_end_clears(FXO)
            case ("wait", int(ms)):
                box.advance(ms)
            case ("garbage", int(leg)):
                box.sip(SipEnded(leg + 100, 500))
                box.sip(SipDtmf(leg + 100, "1"))
        assert box.cc.sip_legs_in_use <= PJSUA_MAX_CALLS
        assert box.cc.sip_legs_in_use == len(box.open_legs)
    assert box.max_in_use <= PJSUA_MAX_CALLS
    event(f"at most {box.max_in_use} legs at once")
    refused = sum(1 for c in box.sent if isinstance(c, HangupSip) and c.code is not None)
    event("some incoming leg refused" if refused else "no incoming leg refused")
    event(
        "a SIP call was answered"
        if any(isinstance(c, ConnectSip) for c in box.sent)
        else "no SIP audio"
    )

    # Everybody goes away: phones hang up, exchange callers give up or clear, IP callers
    # hang up.  Legs we placed must then have been hung up by call control itself.
    for port in FXS:
        if not box.fxs[port].hook_on:
            box.hang_up(port)
    box.advance(15_000)
    if box.seized(FXO):
        box.far_end_clears(FXO)
    for leg in sorted(box.incoming):
        box.sip(SipEnded(leg, 487))
    box.advance(15_000)
    assert box.open_legs == set(), "legs neither hung up nor ended"
    assert box.cc.sip_legs_in_use == 0
    assert box.audio == {} and box.joined == set()
    assert all(box.cc.call_of(p) is None for p in [*FXS, FXO])
    assert all(box.st(p) is FxsState.IDLE for p in FXS)
    assert not box.seized(FXO)
    assert box.cc.calls_view() == []
    assert isinstance(box.cc.handle_sip(m.OffHook(), box.now), list)
