"""Call records from call control's calls: real line machines and call control (tests/pbx/
sipbox.py), the CallLog watching after every step, the records checked as the store gets them."""

from __future__ import annotations

from firmware.pbx.calllog import CallLog
from firmware.pbx.calls import CallCommand, SipAnswered, SipEnded, SipRinging
from firmware.pbx.records import CallRecorder
from firmware.store.legs import LegRecord
from firmware.store.schema import Config
from tests.pbx.sipbox import CID, Box

T0 = 1_700_000_000.0  # wall-clock seconds at box time 0


class LoggedBox(Box):
    """A Box whose call control is watched by a CallLog after every batch of commands."""

    def __init__(self, config: Config | None = None) -> None:
        super().__init__(config)
        self.recorder = CallRecorder()
        self.log = CallLog(self.recorder, self.cc.ports)
        self.records: list[LegRecord] = []

    def _commands(self, commands: list[CallCommand]) -> None:
        self.log.observe(
            self.cc.active_calls(), self.cc.drain_closed(), self.now, T0 + self.now / 1000
        )
        super()._commands(commands)
        self.log.observe(
            self.cc.active_calls(), self.cc.drain_closed(), self.now, T0 + self.now / 1000
        )
        self.records += self.recorder.drain()

    def by_where(self) -> dict[str, LegRecord]:
        return {str(r.where): r for r in self.records}


def test_an_answered_local_call_leaves_two_answered_internal_legs() -> None:
    box = LoggedBox()
    box.lift(1)
    box.dial(1, "102")
    start = box.now
    box.advance(3000)
    box.lift(2)
    answer = box.now
    box.advance(5000)
    box.hang_up(2)
    box.hang_up(1)
    legs = box.by_where()
    assert set(legs) == {"port 1", "port 2"}
    a, b = legs["port 1"], legs["port 2"]
    assert a.call == b.call
    for leg in (a, b):
        assert leg.direction == "internal"
        assert leg.disposition == "answered"
        assert leg.source.number == "101" and leg.destination.number == "102"
        assert leg.answer is not None and abs(leg.answer - (T0 + answer / 1000)) < 0.6
        assert leg.talk_s > 4.5
    assert abs(a.start - (T0 + start / 1000)) < 1.0
    assert box.recorder.in_flight == 0 and not box.recorder.anomalies


def test_busy_given_up_and_nothing_dialled() -> None:
    box = LoggedBox()
    box.lift(2)  # port 2 off hook: busy
    box.lift(1)
    box.dial(1, "102")
    box.hang_up(1)
    box.hang_up(2)  # port 2 dialled nothing: no record for it
    # 102 has voicemail: the busy call went there (answered by the application).
    assert [(str(r.where), r.disposition) for r in box.records] == [("port 1", "answered")]
    box.records.clear()
    box.lift(1)
    box.dial(1, "102")
    box.advance(2000)
    box.hang_up(1)  # gave up while 102 rang
    assert {str(r.where): r.disposition for r in box.records} == {
        "port 1": "cancelled",
        "port 2": "cancelled",
    }


def test_sip_calls_out_and_in() -> None:
    box = LoggedBox()
    box.lift(1)
    box.dial(1, "05551234")
    box.advance(4000)
    leg = box.placed().leg
    box.sip(SipRinging(leg))
    box.advance(1000)
    box.sip(SipAnswered(leg))
    assert box.log.leg_id_of_sip(leg) is not None
    box.advance(2000)
    box.sip(SipEnded(leg, 200, "BYE"))
    box.hang_up(1)
    legs = box.by_where()
    assert set(legs) == {"port 1", "trunk prov"}
    assert {r.direction for r in legs.values()} == {"outbound"}
    assert legs["trunk prov"].disposition == "answered"
    assert legs["trunk prov"].sip_code == 200
    assert legs["port 1"].sip_code is None
    box.records.clear()

    # An incoming call to a number that is no extension is refused at once: one record.
    box.incoming_call("999")
    assert [(str(r.where), r.disposition, r.sip_code) for r in box.records] == [
        ("trunk prov", "failed", 404)
    ]
    assert box.records[0].source.number == CID.number


def test_an_incoming_trunk_call_answered_by_a_phone() -> None:
    box = LoggedBox()
    leg = box.incoming_call("101")
    box.advance(1000)
    box.lift(1)
    box.advance(3000)
    box.sip(SipEnded(leg, 200, "BYE"))
    box.hang_up(1)
    legs = box.by_where()
    assert set(legs) == {"trunk prov", "port 1"}
    assert all(r.direction == "inbound" and r.disposition == "answered" for r in legs.values())
    assert legs["trunk prov"].source.number == "5551234"
    assert not box.recorder.anomalies


def test_an_ip_phone_bridged_out_through_the_trunk_leaves_a_record_per_leg() -> None:
    box = LoggedBox()
    leg = box.incoming_call("05551234", kind="user", account="local", peer="102")
    out = box.placed().leg
    box.sip(SipRinging(out))
    box.advance(2000)
    box.sip(SipAnswered(out))
    box.advance(5000)
    box.sip(SipEnded(leg, 200))
    legs = {(str(r.where), r.disposition) for r in box.records}
    assert legs == {("trunk local", "answered"), ("trunk prov", "answered")}, box.records
    assert len({r.call for r in box.records}) == 1
    assert all(r.talk_s > 4.5 for r in box.records)
    assert box.recorder.in_flight == 0 and not box.recorder.anomalies
