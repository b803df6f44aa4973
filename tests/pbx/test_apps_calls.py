"""Call control putting calls through to voicemail: real line machines (tests/pbx/sipbox.py)."""

from __future__ import annotations

import dataclasses

from firmware.lines import FxsState
from firmware.lines import messages as m
from firmware.pbx.apps import (
    AppDigit,
    CheckMailbox,
    JoinConference,
    LeaveMessage,
    RunIvr,
    StartApp,
    StopApp,
)
from firmware.pbx.calls import LineEvent
from firmware.store.ivrconfig import GoExtension
from firmware.store.schema import ConferenceRoom, Config, IvrMenu, IvrOption
from tests.pbx.sipbox import Box, sip_config

NO_ANSWER_MS = sip_config().features.no_answer_timeout_s * 1000


def test_no_answer_goes_to_voicemail_and_the_digits_follow() -> None:
    box = Box()
    box.lift(1)
    box.dial(1, "102")
    assert box.st(2) is FxsState.RINGING
    box.advance(NO_ANSWER_MS - 1000)
    assert box.st(2) is FxsState.RINGING  # not yet
    mark = len(box.sent)
    box.advance(2000)
    assert LineEvent(2, m.CancelAlert()) in box.since(mark)
    assert StartApp(1, LeaveMessage("102", "unavailable", "101", "Port 1")) in box.since(mark)
    assert box.st(1) is FxsState.TALKING and box.st(2) is FxsState.IDLE
    assert box.cc.call_of(2) is None
    mark = len(box.sent)
    box.dial(1, "#")
    assert box.since(mark) == [AppDigit(1, "#")]
    box.hang_up(1)
    assert StopApp(1) in box.since(mark)
    assert box.cc.call_of(1) is None


def test_busy_goes_to_voicemail_and_without_a_box_busy_tone() -> None:
    box = Box()
    box.lift(2)
    box.lift(1)
    box.dial(1, "102")
    assert StartApp(1, LeaveMessage("102", "busy", "101", "Port 1")) in box.sent
    config = sip_config()
    extensions = tuple(dataclasses.replace(e, voicemail=False) for e in config.extensions)
    box = Box(dataclasses.replace(config, extensions=extensions))
    box.lift(1)
    box.dial(1, "102")
    box.advance(NO_ANSWER_MS + 1000)
    assert box.st(2) is FxsState.RINGING  # rings on: no box to go to
    assert not any(isinstance(c, StartApp) for c in box.sent)


def test_voicemail_code_reaches_the_own_box_and_the_app_hangs_up() -> None:
    box = Box()
    box.lift(2)
    box.dial(2, "*98")
    box.advance(5000)  # *xx or *xxx: complete on the inter-digit timer
    assert StartApp(2, CheckMailbox("102")) in box.sent
    assert box.st(2) is FxsState.TALKING
    mark = len(box.sent)
    box._commands(box.cc.app_finished(2, box.now))  # goodbye said
    assert LineEvent(2, m.Busy()) in box.since(mark)
    assert box.st(2) is FxsState.BUSY and box.cc.call_of(2) is None
    assert box.cc.app_finished(2, box.now) == []  # once only


def test_a_room_number_joins_the_conference_room() -> None:
    config = sip_config()
    rooms = (ConferenceRoom(number="800", name="Team"),)
    box = Box(
        dataclasses.replace(config, conference=dataclasses.replace(config.conference, rooms=rooms))
    )
    box.lift(1)
    box.dial(1, "800")
    assert StartApp(1, JoinConference("800")) in box.sent
    assert box.st(1) is FxsState.TALKING
    mark = len(box.sent)
    box.dial(1, "*6")
    assert box.since(mark) == [AppDigit(1, "*"), AppDigit(1, "6")]


def ivr_config() -> Config:
    config = sip_config()
    menu = IvrMenu(name="main", options=(IvrOption(digit="1", to="extension:102"),))
    ivr = dataclasses.replace(
        config.ivr, enabled=True, number="500", open_menu="main", menus=(menu,)
    )
    return dataclasses.replace(config, ivr=ivr)


def test_the_ivr_number_starts_the_attendant_and_it_transfers_to_an_extension() -> None:
    box = Box(ivr_config())
    box.lift(1)
    box.dial(1, "500")
    assert StartApp(1, RunIvr()) in box.sent
    assert box.st(1) is FxsState.TALKING
    box._commands(box.cc.app_transfer(1, GoExtension("102"), box.now))
    assert box.st(2) is FxsState.RINGING
    assert box.st(1) is FxsState.TALKING  # answered by the IVR already
    box.lift(2)
    assert box.st(1) is FxsState.TALKING and box.st(2) is FxsState.TALKING
    assert frozenset((1, 2)) in box.joined
