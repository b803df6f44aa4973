"""Ring groups and queues: the strategies alone (firmware.pbx.groups), then through call
control with the real FXS/FXO line machines (tests/pbx/sipbox.py)."""

from __future__ import annotations

import dataclasses

import pytest

from firmware.lines import FxsState
from firmware.lines import messages as m
from firmware.pbx.apps import APP_PORTS, LeaveMessage, StartApp, StopApp, WaitInQueue
from firmware.pbx.calls import (
    AnswerSip,
    ConnectSip,
    DisconnectSip,
    HangupSip,
    Join,
    LineEvent,
    RingSip,
    SipEnded,
)
from firmware.pbx.features import Availability
from firmware.pbx.groups import (
    QUEUE_RETRY_MS,
    AgentChanged,
    AnnouncePosition,
    Groups,
    parse_destination,
)
from firmware.store.ivrconfig import GoExtension
from firmware.store.schema import Config, IvrConfig, IvrMenu, IvrOption, Queue, RingGroup
from firmware.store.validate import ConfigError, check
from tests.pbx.sipbox import Box, sip_config

S = FxsState
APP = APP_PORTS[0]
MEMBERS = ("102", "103", "104")


def config(
    *groups: RingGroup | Queue, fxo_destination: str = "101", trunk_destination: str = ""
) -> Config:
    """Extensions 101-104 on FXS ports 1-4, an exchange line on port 5, trunk 'prov'."""
    base = sip_config(fxs=4)
    trunks = tuple(dataclasses.replace(t, destination=trunk_destination) for t in base.sip.trunks)
    fxo = tuple(dataclasses.replace(f, destination=fxo_destination) for f in base.lines.fxo)
    return check(
        dataclasses.replace(
            base,
            lines=dataclasses.replace(base.lines, fxo=fxo),
            sip=dataclasses.replace(base.sip, trunks=trunks),
            ring_groups=tuple(g for g in groups if isinstance(g, RingGroup)),
            queues=tuple(q for q in groups if isinstance(q, Queue)),
        )
    )


def group(strategy: str = "simultaneous", **kw: object) -> RingGroup:
    return RingGroup(number="600", members=MEMBERS, strategy=strategy, **kw)  # type: ignore[arg-type]


def queue(**kw: object) -> Queue:
    fields: dict[str, object] = {"number": "700", "members": MEMBERS, "strategy": "sequential"}
    fields.update(kw)
    return Queue(**fields)  # type: ignore[arg-type]


# --- the strategies alone ---------------------------------------------------------------------

PORTS = {"102": 2, "103": 3, "104": 4}


def free(*busy: str) -> object:
    return lambda ext: None if ext in busy else PORTS[ext]


def test_simultaneous_picks_every_free_member() -> None:
    g = Groups(config(group()))
    hunt = g.start("600", 0)
    assert g.pick(hunt, 0, free("103")) == {2: "102", 4: "104"}  # type: ignore[arg-type]
    assert hunt.ring_until is None and hunt.ends_at == 60_000


def test_sequential_goes_in_order_skips_busy_and_starts_over() -> None:
    g = Groups(config(group("sequential", ring_s=10)))
    hunt = g.start("600", 0)
    picks = [g.pick(hunt, t, free("103")) for t in (0, 10_000, 20_000)]  # type: ignore[arg-type]
    assert picks == [{2: "102"}, {4: "104"}, {2: "102"}]
    assert hunt.ring_until == 30_000


def test_round_robin_continues_after_the_last_member_tried() -> None:
    g = Groups(config(group("round_robin")))
    first = g.start("600", 0)
    assert g.pick(first, 0, free()) == {2: "102"}  # type: ignore[arg-type]
    second = g.start("600", 1)
    assert g.pick(second, 1, free()) == {3: "103"}  # type: ignore[arg-type]
    third = g.start("600", 2)
    assert g.pick(third, 2, free("104")) == {2: "102"}  # type: ignore[arg-type]


def test_least_recent_rings_the_member_idle_longest() -> None:
    g = Groups(config(group("least_recent")))
    g.last_answered.update({"102": 500, "104": 100})
    hunt = g.start("600", 1000)
    assert g.pick(hunt, 1000, free()) == {3: "103"}  # type: ignore[arg-type]  # never answered
    g.answered(hunt, "103", 1000)
    hunt = g.start("600", 2000)
    assert g.pick(hunt, 2000, free()) == {4: "104"}  # type: ignore[arg-type]


def test_queue_rings_logged_in_agents_only_and_keeps_callers_in_order() -> None:
    g = Groups(config(queue(max_callers=2)), agents=["103", "999"])
    assert g.agents == {"103"}  # 999 is no member: forgotten
    a, b = g.start("700", 0), g.start("700", 5)
    assert (g.enqueue(a, "101", 0), g.enqueue(b, "105", 5)) == (1, 2)
    assert g.full("700")
    assert g.pick(a, 0, free()) == {3: "103"}  # type: ignore[arg-type]
    assert g.pick(b, 0, free("103")) == {}  # type: ignore[arg-type]
    assert b.retry_at == QUEUE_RETRY_MS
    g.answered(a, "103", 100)
    assert g.position(b) == 1 and not g.full("700")
    assert [w.caller for w in g.waiting()] == ["105"]
    assert g.log_out("103") and not g.log_in("101")  # 101 is in no queue
    assert g.members(b) == ()


def test_destinations_parse() -> None:
    assert parse_destination("hangup") == ("hangup", "")
    assert parse_destination("voicemail:102") == ("voicemail", "102")
    assert parse_destination("700") == ("number", "700")


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"number": "102"}, "ring_groups[0].number", "already an extension"),
        ({"members": ("102", "199")}, "ring_groups[0].members[1]", "not defined"),
        ({"no_answer": "voicemail:199"}, "ring_groups[0].no_answer", "no voicemail box"),
        ({"no_answer": "650"}, "ring_groups[0].no_answer", "neither an extension"),
        ({"no_answer": "600"}, "ring_groups[0].no_answer", "own number"),
        ({"no_answer": "extension 1"}, "ring_groups[0].no_answer", "not a destination"),
        ({"members": ("102", "102")}, "ring_groups[0].members", "listed twice"),
    ],
)
def test_bad_groups_are_refused_naming_the_key(
    changes: dict[str, object], path: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config(dataclasses.replace(group(), **changes))  # type: ignore[arg-type]
    assert any(i.path == path and words in i.message for i in info.value.issues), info.value


def test_a_queue_may_not_take_a_group_number_and_trunks_may_ring_groups() -> None:
    with pytest.raises(ConfigError) as info:
        config(group(), queue(number="600"))
    assert any(i.path == "queues[0].number" for i in info.value.issues)
    assert config(group(), trunk_destination="600").sip.trunks[0].destination == "600"


# --- ring groups through call control ---------------------------------------------------------


def test_simultaneous_group_first_to_answer_wins_the_others_stop() -> None:
    box = Box(config(group()))
    box.lift(1)
    box.dial(1, "600")
    assert [box.st(p) for p in (2, 3, 4)] == [S.RINGING] * 3
    assert box.tone(1) is m.Tone.RINGBACK
    view = box.cc.calls_view()[0]
    assert view.group == "group 600" and set(view.ports) == {1, 2, 3, 4}
    box.lift(3)
    assert frozenset((1, 3)) in box.joined
    assert box.st(2) is S.IDLE and box.st(4) is S.IDLE
    assert box.cc.call_of(2) is None and box.cc.call_of(4) is None
    assert box.cc.groups.last_answered["103"] == box.now - 500


def test_caller_giving_up_stops_every_member_ringing() -> None:
    box = Box(config(group()))
    box.lift(1)
    box.dial(1, "600")
    box.hang_up(1)
    assert [box.st(p) for p in (2, 3, 4)] == [S.IDLE] * 3
    assert box.cc.calls_view() == []


def test_sequential_group_rings_one_after_another_then_voicemail() -> None:
    box = Box(config(group("sequential", ring_s=10, timeout_s=25, no_answer="voicemail:104")))
    box.lift(1)
    box.dial(1, "600")
    assert (box.st(2), box.st(3)) == (S.RINGING, S.IDLE)
    box.advance(10_000)
    assert (box.st(2), box.st(3)) == (S.IDLE, S.RINGING)
    box.advance(10_000)
    assert (box.st(3), box.st(4)) == (S.IDLE, S.RINGING)
    box.advance(6_000)  # 25 s in all
    assert box.st(4) is S.IDLE
    starts = [c for c in box.sent if isinstance(c, StartApp)]
    assert starts[-1] == StartApp(1, LeaveMessage("104", "unavailable", "101", "Port 1"))
    assert box.st(1) is S.TALKING


def test_busy_and_dnd_members_are_skipped_no_answer_rings_an_extension() -> None:
    cfg = config(group("sequential", ring_s=5, timeout_s=5, no_answer="104"))
    box = Box(cfg)
    box.cc.availability["102"] = Availability(dnd=True)
    box.lift(3)  # 103 is busy (dialling)
    box.lift(1)
    box.dial(1, "600")
    assert (box.st(2), box.st(4)) == (S.IDLE, S.RINGING)
    box.advance(5_000)  # the group's time is up: 104 is rung as the extension itself
    assert box.st(4) is S.RINGING
    assert box.cc.call_of(4) is box.cc.call_of(1) and box.cc.calls_view()[0].group == ""
    box.lift(4)
    assert frozenset((1, 4)) in box.joined


def test_group_with_nobody_free_goes_to_its_destination_at_once() -> None:
    box = Box(config(group(no_answer="hangup")))
    for p in (2, 3, 4):
        box.lift(p)
    box.lift(1)
    box.dial(1, "600")
    assert box.tone(1) is m.Tone.BUSY


def test_round_robin_group_over_two_calls() -> None:
    box = Box(config(group("round_robin")))
    for expect in (2, 3):
        box.lift(1)
        box.dial(1, "600")
        assert box.st(expect) is S.RINGING
        assert [p for p in (2, 3, 4) if box.st(p) is S.RINGING] == [expect]
        box.hang_up(1)


def test_exchange_line_and_trunk_calls_ring_the_group() -> None:
    box = Box(config(group(), fxo_destination="600", trunk_destination="600"))
    box.ring_line(5, m.CallerId(number="5550000"))
    assert [box.st(p) for p in (2, 3, 4)] == [S.RINGING] * 3
    box.lift(2)
    assert frozenset((5, 2)) in box.joined
    leg = box.incoming_call("")
    assert RingSip(leg) in box.sent and box.st(3) is S.RINGING and box.st(4) is S.RINGING
    box.lift(4)
    assert box.audio[leg] == 4 and box.st(3) is S.IDLE


def test_a_trunk_caller_waits_in_a_queue_on_an_application_port_until_an_agent_answers() -> None:
    box = Box(config(queue(position_period_s=20), trunk_destination="700"))
    leg = box.incoming_call("")
    assert box.sent[-3:] == [
        AnswerSip(leg),
        ConnectSip(leg, APP),
        StartApp(APP, WaitInQueue("700")),
    ]
    box.advance(100)
    assert AnnouncePosition(APP, "700", 1) in box.sent  # spoken on the application port
    assert [(w.queue, w.position, w.caller) for w in box.cc.groups.waiting()] == [
        ("700", 1, "5551234")
    ]
    box.lift(3)
    box.dial(3, "*45")
    box.hang_up(3)
    box.advance(QUEUE_RETRY_MS)
    assert box.st(3) is S.RINGING and box.audio == {leg: APP}
    mark = len(box.sent)
    box.lift(3)
    sent = box.since(mark)
    # The music stops, the leg leaves the application port for the agent's line; no second 200.
    assert sent.index(StopApp(APP)) < sent.index(DisconnectSip(leg, APP))
    assert sent.index(DisconnectSip(leg, APP)) < sent.index(ConnectSip(leg, 3))
    assert box.audio == {leg: 3} and box.sent.count(AnswerSip(leg)) == 1
    assert box.st(3) is S.TALKING and box.cc.groups.waiting() == []
    leg2 = box.incoming_call("")  # the application port is free for the next caller
    assert ConnectSip(leg2, APP) in box.sent
    box.sip(SipEnded(leg, 200, "BYE"))
    assert box.st(3) is not S.TALKING


def test_a_sip_caller_hanging_up_in_a_queue_frees_its_application_port() -> None:
    box = Box(config(queue(), trunk_destination="700"))
    box.cc.groups.agents.add("102")
    leg = box.incoming_call("")
    assert box.st(2) is S.RINGING
    mark = len(box.sent)
    box.sip(SipEnded(leg, 200, "BYE"))
    assert box.since(mark) == [LineEvent(2, m.CancelAlert()), StopApp(APP)]
    assert box.cc.groups.waiting() == [] and box.st(2) is S.IDLE
    leg2 = box.incoming_call("")
    assert box.audio == {leg2: APP}


def test_callers_beyond_the_application_ports_are_refused_by_the_queue() -> None:
    box = Box(config(queue(), trunk_destination="700"))
    box.cc.app_ports = APP_PORTS[:2]  # fewer ports than legs: the queue's own check refuses
    legs = [box.incoming_call("") for _ in range(2)]
    assert box.audio == dict(zip(legs, APP_PORTS[:2], strict=True))
    box.cc.groups.agents.add("102")
    extra = box.incoming_call("")
    assert box.sent[-1] == HangupSip(extra, 503)
    assert len(box.cc.groups.waiting()) == 2 and extra not in box.audio
    assert box.st(2) is S.IDLE  # the refused caller rang no agent


@pytest.mark.parametrize("overflow", ["104", "voicemail:102", "hangup", "600"])
def test_a_sip_queue_caller_overflowing(overflow: str) -> None:
    box = Box(config(queue(max_wait_s=30, overflow=overflow), group(), trunk_destination="700"))
    leg = box.incoming_call("")
    mark = len(box.sent)
    box.advance(30_000)
    sent = box.since(mark)
    assert StopApp(APP) in sent and box.cc.groups.waiting() == []
    if overflow == "voicemail:102":  # on the same application port
        assert StartApp(APP, LeaveMessage("102", "unavailable", "5551234", "Far End")) in sent
        assert box.audio == {leg: APP} and DisconnectSip(leg, APP) not in sent
        return
    assert DisconnectSip(leg, APP) in sent and APP not in box.cc._app_calls
    if overflow == "hangup":
        assert box.sent[-1] == HangupSip(leg) and leg not in box.open_legs
        return
    assert box.st(4) is S.RINGING and box.audio == {}
    box.lift(4)
    assert box.audio == {leg: 4} and box.sent.count(AnswerSip(leg)) == 1


def test_the_ivr_sends_a_sip_caller_to_a_queue_on_its_application_port() -> None:
    base = config(queue())
    menu = IvrMenu(name="main", options=(IvrOption(digit="1", to="extension:700"),))
    ivr = dataclasses.replace(base.ivr, enabled=True, number="500", open_menu="main", menus=(menu,))
    trunks = tuple(dataclasses.replace(t, destination="500") for t in base.sip.trunks)
    sip = dataclasses.replace(base.sip, trunks=trunks)
    box = Box(check(dataclasses.replace(base, ivr=ivr, sip=sip)))
    leg = box.incoming_call("")
    assert box.audio == {leg: APP}
    mark = len(box.sent)
    box._commands(box.cc.app_transfer(APP, GoExtension("700"), box.now))
    # The leg stays where it is: no second 200, no reconnection, the music starts there.
    assert box.since(mark)[0] == StartApp(APP, WaitInQueue("700"))
    assert not any(isinstance(c, AnswerSip | ConnectSip | DisconnectSip) for c in box.since(mark))
    box.cc.groups.agents.add("102")
    box.advance(QUEUE_RETRY_MS)
    box.lift(2)
    assert box.audio == {leg: 2} and StopApp(APP) in box.sent


# --- queues through call control --------------------------------------------------------------


def test_queue_caller_waits_agent_logs_in_and_is_connected() -> None:
    box = Box(config(queue(position_period_s=20)))
    box.lift(1)
    box.dial(1, "700")
    assert box.st(1) is S.TALKING  # answered: the music plays
    assert StartApp(1, WaitInQueue("700")) in box.sent
    assert AnnouncePosition(1, "700", 1) in box.sent
    assert all(box.st(p) is S.IDLE for p in (2, 3, 4))  # nobody logged in
    box.lift(3)
    box.dial(3, "*45")
    assert AgentChanged("103", True) in box.sent
    assert box.tone(3) is m.Tone.RECALL_DIAL
    box.hang_up(3)
    box.advance(QUEUE_RETRY_MS)
    assert box.st(3) is S.RINGING
    view = box.cc.groups.waiting()
    assert [(w.queue, w.position, w.ringing) for w in view] == [("700", 1, ("103",))]
    box.lift(3)
    assert StopApp(1) in box.sent and Join(1, 3) in box.sent
    assert box.cc.groups.waiting() == []


def test_second_caller_hears_position_two_periodically_and_full_queue_overflows() -> None:
    box = Box(config(queue(max_callers=2, position_period_s=10, overflow="104")))
    box.lift(1)
    box.dial(1, "700")
    box.lift(2)
    box.dial(2, "700")
    assert AnnouncePosition(2, "700", 2) in box.sent
    mark = len(box.sent)
    box.advance(10_000)
    assert AnnouncePosition(2, "700", 2) in box.since(mark)
    box.lift(3)
    box.dial(3, "700")  # full: straight to 104
    assert box.st(4) is S.RINGING and box.tone(3) is m.Tone.RINGBACK
    assert box.cc.call_of(4) is box.cc.call_of(3)
    box.hang_up(1)  # the first caller gives up: the second moves up
    mark = len(box.sent)
    box.advance(10_000)
    assert AnnouncePosition(2, "700", 1) in box.since(mark)


def test_max_wait_sends_the_caller_to_overflow_and_hangup_clears_it() -> None:
    box = Box(config(queue(max_wait_s=30, overflow="voicemail:102")))
    box.lift(1)
    box.dial(1, "700")
    box.advance(30_000)
    assert StopApp(1) in box.sent
    assert StartApp(1, LeaveMessage("102", "unavailable", "101", "Port 1")) in box.sent
    box.hang_up(1)
    box2 = Box(config(queue(max_wait_s=30, overflow="hangup")))
    box2.lift(1)
    box2.dial(1, "700")
    box2.advance(30_000)
    assert box2.tone(1) is m.Tone.BUSY and box2.cc.groups.waiting() == []


def test_agent_ringing_without_answer_passes_to_the_next_agent() -> None:
    box = Box(config(queue(ring_s=5)))
    box.cc.groups.agents.update({"102", "104"})
    box.lift(1)
    box.dial(1, "700")
    assert box.st(2) is S.RINGING
    box.advance(5_000)
    assert (box.st(2), box.st(4)) == (S.IDLE, S.RINGING)
    box.lift(4)
    assert Join(1, 4) in box.sent


def test_logout_and_a_non_member_code() -> None:
    box = Box(config(queue()))
    box.cc.groups.agents.add("102")
    box.lift(2)
    box.dial(2, "*46")
    assert AgentChanged("102", False) in box.sent and "102" not in box.cc.groups.agents
    box.hang_up(2)
    box.lift(1)
    box.dial(1, "*45")
    assert box.tone(1) is m.Tone.CONGESTION


def test_the_ivr_sends_callers_to_a_queue_and_to_a_group() -> None:
    base = config(group(), queue())
    menu = IvrMenu(
        name="main",
        options=(
            IvrOption(digit="1", to="extension:700"),
            IvrOption(digit="2", to="extension:600"),
        ),
    )
    ivr = IvrConfig(enabled=True, number="500", open_menu="main", menus=(menu,))
    box = Box(check(dataclasses.replace(base, ivr=ivr)))
    box.lift(1)
    box.dial(1, "500")
    mark = len(box.sent)
    box._commands(box.cc.app_transfer(1, GoExtension("700"), box.now))
    box.advance(1)
    assert box.since(mark) == [StartApp(1, WaitInQueue("700")), AnnouncePosition(1, "700", 1)]
    box.hang_up(1)
    box.lift(1)
    box.dial(1, "500")
    box._commands(box.cc.app_transfer(1, GoExtension("600"), box.now))
    assert [box.st(p) for p in (2, 3, 4)] == [S.RINGING] * 3
    box.lift(2)
    assert frozenset((1, 2)) in box.joined and box.st(3) is S.IDLE


def test_an_exchange_caller_the_queue_answered_is_let_go_on_overflow() -> None:
    cfg = config(queue(max_wait_s=10, overflow="hangup"), fxo_destination="700")
    box = Box(cfg, cid_after_ring=True)  # Bell 202: the call waits for the caller ID
    box.ring_line(5, m.CallerId(number="5550000"))
    assert box.seized(5)  # answered: the music plays to the exchange caller
    assert box.cc.groups.waiting()[0].caller == "5550000"
    box.advance(10_000)
    assert not box.seized(5) and box.cc.calls_view() == []


def test_queues_passing_callers_in_a_loop_end_it() -> None:
    a = queue(number="700", max_wait_s=10, overflow="710")
    b = queue(number="710", max_wait_s=10, overflow="700")
    box = Box(config(a, b))
    box.lift(1)
    box.dial(1, "700")
    box.advance(60_000)
    assert box.tone(1) is m.Tone.BUSY and box.cc.groups.waiting() == []
    assert "a loop?" in box.cc.drain_closed()[-1].reason


def test_an_extension_forwarded_to_a_group_rings_the_group() -> None:
    box = Box(config(dataclasses.replace(group(), members=("103", "104"))))
    box.lift(2)
    box.dial(2, "*72")
    box.dial(2, "600")  # accepted: the route to extensions takes the group's number
    assert box.cc.availability["102"].forward_all == "600"
    box.hang_up(2)
    box.lift(1)
    box.dial(1, "102")
    assert (box.st(2), box.st(3), box.st(4)) == (S.IDLE, S.RINGING, S.RINGING)
    box.lift(4)
    assert frozenset((1, 4)) in box.joined


def test_pickup_answers_a_group_call_ringing_elsewhere() -> None:
    box = Box(config(dataclasses.replace(group(), members=("102", "103"))))
    box.lift(1)
    box.dial(1, "600")
    box.lift(4)
    box.dial(4, "*88")
    assert (box.st(2), box.st(3)) == (S.IDLE, S.IDLE)
    assert frozenset((1, 4)) in box.joined and box.st(1) is S.TALKING
    assert box.cc.calls_view()[0].ports == (1, 4)


def test_queue_caller_hanging_up_while_an_agent_rings_stops_both() -> None:
    box = Box(config(queue()))
    box.cc.groups.agents.add("103")
    box.lift(1)
    box.dial(1, "700")
    assert box.st(3) is S.RINGING
    mark = len(box.sent)
    box.hang_up(1)
    assert StopApp(1) in box.since(mark) and box.st(3) is S.IDLE
    assert box.cc.groups.waiting() == [] and box.cc.calls_view() == []
    box.lift(2)  # and the queue takes the next caller as before
    box.dial(2, "700")
    assert box.st(3) is S.RINGING and box.cc.groups.waiting()[0].position == 1


def test_a_sip_caller_a_group_does_not_answer_leaves_a_message_on_an_application_port() -> None:
    box = Box(config(group(timeout_s=10, no_answer="voicemail:102"), trunk_destination="600"))
    leg = box.incoming_call("")
    assert RingSip(leg) in box.sent and box.st(2) is S.RINGING
    mark = len(box.sent)
    box.advance(10_000)
    sent = box.since(mark)
    assert sent[-3:] == [
        AnswerSip(leg),
        ConnectSip(leg, APP),
        StartApp(APP, LeaveMessage("102", "unavailable", "5551234", "Far End")),
    ]
    assert all(box.st(p) is S.IDLE for p in (2, 3, 4)) and box.audio == {leg: APP}
