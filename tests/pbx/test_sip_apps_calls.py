"""Call control putting SIP callers through to applications on application ports: voicemail,
the IVR, conference rooms, and the recording of line <-> SIP calls (tests/pbx/sipbox.py)."""

from __future__ import annotations

import dataclasses

from firmware.lines import FxsState
from firmware.pbx.apps import (
    APP_PORTS,
    AppDigit,
    CheckMailbox,
    JoinConference,
    LeaveMessage,
    RecordCall,
    RunIvr,
    StartApp,
    StopApp,
)
from firmware.pbx.calls import (
    AnswerSip,
    BridgeSip,
    ConnectSip,
    DisconnectSip,
    HangupSip,
    PlaceSipCall,
    RingSip,
    SendSipDtmf,
    SipAnswered,
    SipDtmf,
    SipEnded,
    SipRinging,
)
from firmware.store.ivrconfig import GoDial, GoExtension, GoVoicemail
from firmware.store.schema import ConferenceRoom, Config, Extension, IvrMenu, IvrOption
from firmware.store.validate import check
from tests.pbx.sipbox import CID, Box, sip_config
from tests.pbx.test_calllog import LoggedBox

NO_ANSWER_MS = sip_config().features.no_answer_timeout_s * 1000
APP = APP_PORTS[0]
FAR_NUMBER, FAR_NAME = "5551234", "Far End"  # sipbox.CID


def ivr_config(trunk_destination: str = "") -> Config:
    """The attendant on 500; the trunk's calls go to ``trunk_destination``."""
    config = sip_config()
    menu = IvrMenu(name="main", options=(IvrOption(digit="1", to="extension:102"),))
    ivr = dataclasses.replace(
        config.ivr, enabled=True, number="500", open_menu="main", menus=(menu,)
    )
    trunks = tuple(dataclasses.replace(t, destination=trunk_destination) for t in config.sip.trunks)
    sip = dataclasses.replace(config.sip, trunks=trunks)
    return check(dataclasses.replace(config, ivr=ivr, sip=sip))


def test_a_trunk_caller_to_the_ivr_is_answered_on_an_application_port() -> None:
    box = Box(ivr_config("500"))
    leg = box.incoming_call("4930123456")
    assert box.sent[-3:] == [AnswerSip(leg), ConnectSip(leg, APP), StartApp(APP, RunIvr())]
    assert box.audio == {leg: APP}
    # RFC 4733 digits drive the attendant
    assert box.sip(SipDtmf(leg, "1")) == [AppDigit(APP, "1")]
    # It transfers to 102: the leg leaves the application port, the phone rings, no 180
    # after the 200 the attendant answered with.
    mark = len(box.sent)
    box._commands(box.cc.app_transfer(APP, GoExtension("102"), box.now))
    sent = box.since(mark)
    assert DisconnectSip(leg, APP) in sent and not any(isinstance(c, RingSip) for c in sent)
    assert box.st(2) is FxsState.RINGING and box.audio == {}
    box.lift(2)
    assert box.audio == {leg: 2} and box.st(2) is FxsState.TALKING
    # The application port is free again for the next caller.
    leg2 = box.incoming_call("4930123456")
    assert ConnectSip(leg2, APP) in box.sent


def test_a_caller_the_extension_does_not_answer_leaves_a_message() -> None:
    box = Box()
    leg = box.incoming_call("101")
    assert box.st(1) is FxsState.RINGING
    mark = len(box.sent)
    box.advance(NO_ANSWER_MS + 100)
    sent = box.since(mark)
    assert StartApp(APP, LeaveMessage("101", "unavailable", FAR_NUMBER, FAR_NAME)) in sent
    assert AnswerSip(leg) in sent and box.audio == {leg: APP}
    assert box.st(1) is FxsState.IDLE
    # The caller hangs up: the application stops, the port is free.
    mark = len(box.sent)
    box.sip(SipEnded(leg, 200, "BYE"))
    assert box.since(mark) == [StopApp(APP)]
    assert box.cc.call_of_leg(leg) is None


def test_a_busy_extension_gives_the_busy_greeting_and_the_app_ends_the_call() -> None:
    box = Box()
    box.lift(1)
    leg = box.incoming_call("101")
    assert StartApp(APP, LeaveMessage("101", "busy", FAR_NUMBER, FAR_NAME)) in box.sent
    mark = len(box.sent)
    box._commands(box.cc.app_finished(APP, box.now))
    assert box.since(mark) == [DisconnectSip(leg, APP), HangupSip(leg)]
    assert box.cc.app_finished(APP, box.now) == []  # once only


def test_the_ivr_sends_a_sip_caller_to_voicemail_on_the_same_port() -> None:
    box = Box(ivr_config("500"))
    leg = box.incoming_call("4930123456")
    mark = len(box.sent)
    box._commands(box.cc.app_transfer(APP, GoVoicemail("102"), box.now))
    assert box.since(mark) == [
        StartApp(APP, LeaveMessage("102", "unavailable", FAR_NUMBER, FAR_NAME))
    ]
    assert box.audio == {leg: APP}


def test_callers_beyond_the_pool_are_refused_with_503() -> None:
    box = Box(ivr_config("500"))
    legs = [box.incoming_call("1") for _ in APP_PORTS]
    assert sorted(box.audio.values()) == list(APP_PORTS)
    # The pool is as big as pjsua's call limit: the next caller finds no leg either.
    extra = box.incoming_call("1")
    assert box.sent[-1] == HangupSip(extra, 503)
    box.sip(SipEnded(legs[1], 200, "BYE"))
    again = box.incoming_call("1")
    assert box.audio[again] == APP_PORTS[1]


def phones_config() -> Config:
    """Extension 201 is an IP phone with a mailbox; room 800 exists."""
    config = sip_config()
    rooms = (ConferenceRoom(number="800", name="Team"),)
    phone = Extension(number="201", name="Desk", voicemail=True, sip_password="secret201")
    return dataclasses.replace(
        config,
        extensions=(*config.extensions, phone),
        conference=dataclasses.replace(config.conference, rooms=rooms),
    )


def test_an_ip_phone_reaches_its_mailbox_a_room_and_a_busy_box() -> None:
    box = Box(phones_config())
    leg = box.incoming_call("*98", kind="user", account="local", peer="201")
    assert StartApp(APP, CheckMailbox("201")) in box.sent
    box.sip(SipEnded(leg, 200, "BYE"))
    leg = box.incoming_call("800", kind="user", account="local", peer="201")
    assert StartApp(APP, JoinConference("800")) in box.sent
    assert box.sip(SipDtmf(leg, "*")) == [AppDigit(APP, "*")]
    # An IP phone without a box dialling *98 is refused, not put anywhere.
    other = box.incoming_call("*98", kind="user", account="local", peer="101x")
    assert box.sent[-1] == HangupSip(other, 404)


def recorded_config() -> Config:
    config = sip_config()
    extensions = tuple(
        dataclasses.replace(e, recording="always") if e.number == "101" else e
        for e in config.extensions
    )
    return dataclasses.replace(config, extensions=extensions)


def test_a_recorded_extension_records_its_sip_calls_both_ways() -> None:
    box = Box(recorded_config())
    leg = box.incoming_call("101")
    box.lift(1)
    assert box.audio == {leg: 1}
    assert RecordCall(1, FAR_NUMBER, "101") in box.sent
    box.sip(SipEnded(leg, 200, "BYE"))
    # Outgoing: 101 calls out through the trunk; recorded once the far end answers.
    box.hang_up(1)
    box.lift(1)
    box.dial(1, "0301234")
    box.advance(5000)
    out = box.placed().leg
    box.sip(SipRinging(out, early_media=False))
    assert not any(isinstance(c, RecordCall) and c.callee == "301234" for c in box.sent)
    box.sip(SipAnswered(out))
    assert RecordCall(1, "101", "301234") in box.sent
    # 102 is not recorded
    box.hang_up(1)
    mark = len(box.sent)
    leg = box.incoming_call("102")
    box.lift(2)
    assert box.audio == {leg: 2}
    assert not any(isinstance(c, RecordCall) for c in box.since(mark))


def test_the_records_of_a_sip_caller_the_ivr_puts_through() -> None:
    box = LoggedBox(ivr_config("500"))
    leg = box.incoming_call("4930123456")
    box.advance(3000)
    box._commands(box.cc.app_transfer(APP, GoExtension("102"), box.now))
    box.advance(2000)
    box.lift(2)  # answered after the attendant: its own answer time
    box.advance(5000)
    box.sip(SipEnded(leg, 200, "BYE"))
    box.hang_up(2)
    legs = box.by_where()
    assert legs["trunk prov"].disposition == legs["port 2"].disposition == "answered"
    assert legs["port 2"].answer is not None and legs["trunk prov"].answer is not None
    assert legs["port 2"].answer > legs["trunk prov"].answer
    # Put through, but the caller gave up while 102 rang: that leg was not answered.
    box.records.clear()
    leg = box.incoming_call("4930123456")
    box._commands(box.cc.app_transfer(APP, GoExtension("102"), box.now))
    box.advance(2000)
    box.sip(SipEnded(leg, 200, "BYE"))
    legs = box.by_where()
    assert legs["trunk prov"].disposition == "answered"
    assert legs["port 2"].disposition == "cancelled" and legs["port 2"].answer is None
    assert not box.recorder.anomalies


def test_the_ivr_dials_out_for_a_sip_caller_on_an_exchange_line() -> None:
    box = Box(ivr_config("500"))
    leg = box.incoming_call("4930123456")
    answers = box.sent.count(AnswerSip(leg))
    box._commands(box.cc.app_transfer(APP, GoDial("112"), box.now))  # emergency: fxo:0
    assert box.seized(3) and box.audio == {leg: 3}
    assert box.sent.count(AnswerSip(leg)) == answers  # no second 200
    box.sip(SipEnded(leg, 200, "BYE"))
    assert box.audio == {} and not box.open_legs


def test_the_ivr_sends_a_sip_caller_out_through_a_trunk_bridged_without_a_reinvite() -> None:
    box = Box(ivr_config("500"))
    leg = box.incoming_call("4930123456")
    assert box.cc.app_transfer(APP_PORTS[1], GoDial("0301234"), box.now) == []  # nobody there
    mark = len(box.sent)
    box._commands(box.cc.app_transfer(APP, GoDial("0301234"), box.now))
    out = box.placed()
    assert box.since(mark) == [
        DisconnectSip(leg, APP),
        PlaceSipCall(out.leg, "prov", "301234", CID),
    ]
    assert box.audio == {} and APP not in box.cc._app_calls
    # The caller was answered by the IVR and never held: no 180, no second 200, no re-INVITE
    # (ResumeSip) when the far end answers, only the bridge.
    assert box.sip(SipRinging(out.leg)) == []
    assert box.sip(SipAnswered(out.leg)) == [BridgeSip(leg, out.leg)]
    assert box.bridged == {frozenset((leg, out.leg))}
    assert box.sip(SipDtmf(leg, "5")) == [SendSipDtmf(out.leg, "5")]
    assert box.sip(SipEnded(out.leg, 200, "BYE")) == [HangupSip(leg)]
    assert not box.open_legs


def test_a_trunk_refusing_the_ivr_s_sip_caller_ends_its_call() -> None:
    box = Box(ivr_config("500"))
    leg = box.incoming_call("4930123456")
    box._commands(box.cc.app_transfer(APP, GoDial("0301234"), box.now))
    out = box.placed()
    assert box.sip(SipEnded(out.leg, 486, "Busy Here")) == [HangupSip(leg, 486)]
    assert not box.open_legs and box.cc.call_of_leg(leg) is None
    again = box.incoming_call("4930123456")
    assert box.audio == {again: APP}


def test_a_waiting_sip_caller_goes_to_voicemail_after_the_other_call_ended() -> None:
    box = Box()
    box.lift(1)
    box.dial(1, "102")
    box.lift(2)  # 101 talks to 102
    leg = box.incoming_call("101")  # waits on 101
    assert box.st(1) is FxsState.CALL_WAITING
    box.hang_up(2)  # 101 hears busy now, the SIP caller still waits
    mark = len(box.sent)
    box.advance(NO_ANSWER_MS + 100)
    assert StartApp(APP, LeaveMessage("101", "unavailable", FAR_NUMBER, FAR_NAME)) in box.since(
        mark
    )
    assert box.audio == {leg: APP}
