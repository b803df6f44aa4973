"""The call recorder: events in, finished leg records out, whatever order events come in."""

from __future__ import annotations

import random

import pytest

from firmware.pbx.records import (
    SETUP_TIMEOUT_S,
    CallRecorder,
    LegRecord,
    Party,
    Place,
    RecordError,
    estimate_mos,
    r_to_mos,
)

T0 = 1_764_000_000.0  # 2025-11-24, a plausible wall clock


def start(rec: CallRecorder, leg: str, now: float = T0, **kw: object) -> bool:
    args: dict[str, object] = {
        "call": "c1",
        "direction": "internal",
        "source": Party("101", "Ada"),
        "destination": Party("102", "Bob"),
        "where": Place.port(1),
        "now": now,
    }
    args.update(kw)
    return rec.started(leg, **args)  # type: ignore[arg-type]


def test_an_answered_leg_becomes_one_record() -> None:
    rec = CallRecorder()
    assert start(rec, "a", where=Place.trunk("office"), direction="inbound")
    assert rec.answered("a", T0 + 4, codec="PCMA")
    assert rec.quality("a", jitter_ms=3.5, loss_pct=0.5, rtt_ms=40)
    assert rec.drain() == []  # nothing is finished yet
    assert rec.ended("a", T0 + 64, "failed", sip_code=200, reason="BYE")
    [r] = rec.drain()
    assert r.id == "a" and r.call == "c1" and r.direction == "inbound"
    assert r.where == Place.trunk("office") and str(r.where) == "trunk office"
    assert (r.start, r.answer, r.end) == (T0, T0 + 4, T0 + 64)
    # Answered is how the setup ended, whatever the end event said.
    assert r.disposition == "answered" and r.sip_code == 200 and r.sip_reason == "BYE"
    assert r.ring_s == 4 and r.talk_s == 60
    assert r.codec == "PCMA" and r.quality is not None
    assert r.quality.jitter_ms == 3.5 and r.quality.loss_pct == 0.5
    assert 4.0 < r.quality.mos < 4.41
    assert rec.in_flight == 0 and rec.drain() == []


@pytest.mark.parametrize("disposition", ["busy", "no-answer", "failed", "cancelled", "refused"])
def test_an_unanswered_leg_keeps_its_disposition(disposition: str) -> None:
    rec = CallRecorder()
    start(rec, "a")
    rec.ended("a", T0 + 20, disposition, sip_code=486)  # type: ignore[arg-type]
    [r] = rec.drain()
    assert r.disposition == disposition and r.answer is None
    assert r.ring_s == 20 and r.talk_s == 0 and r.quality is None


def test_out_of_order_events_are_ignored_and_counted() -> None:
    rec = CallRecorder()
    assert not rec.answered("ghost", T0)
    assert not rec.ended("ghost", T0, "failed")
    assert not rec.quality("ghost", jitter_ms=1, loss_pct=0)
    start(rec, "a")
    assert not start(rec, "a", now=T0 + 1)  # a second start keeps the first
    rec.answered("a", T0 + 2)
    assert not rec.answered("a", T0 + 3)  # the first answer stands
    rec.ended("a", T0 + 10, "answered")
    assert not rec.ended("a", T0 + 11, "answered")  # ended twice
    assert not rec.answered("a", T0 + 12)  # a 200 OK that crossed the BYE
    [r] = rec.drain()
    assert (r.start, r.answer, r.end) == (T0, T0 + 2, T0 + 10)
    assert rec.anomalies["started twice"] == 1
    assert rec.anomalies["answered twice"] == 1
    assert rec.anomalies["answer for an unknown or ended leg"] == 2
    assert rec.anomalies["end for an unknown or ended leg"] == 2


def test_a_clock_running_backwards_is_clamped() -> None:
    rec = CallRecorder()
    start(rec, "a", now=T0 + 100)
    rec.answered("a", T0 + 50)  # before the start: NTP stepped the clock back
    rec.ended("a", T0 + 40, "answered")
    [r] = rec.drain()
    assert r.start == r.answer == r.end == T0 + 100
    assert rec.anomalies["clock ran backwards"] == 2


def test_garbage_values_are_refused_with_what_was_wrong() -> None:
    rec = CallRecorder()
    with pytest.raises(RecordError, match="direction 'sideways'"):
        start(rec, "a", direction="sideways")
    with pytest.raises(RecordError, match="now must be finite"):
        start(rec, "a", now=float("nan"))
    with pytest.raises(RecordError, match="Party"):
        start(rec, "a", source="101")
    with pytest.raises(RecordError, match="leg id"):
        start(rec, "")
    start(rec, "a")
    with pytest.raises(RecordError, match="disposition 'gone'"):
        rec.ended("a", T0, "gone")  # type: ignore[arg-type]
    # Unusable RTCP figures are the network's fault: ignored, not raised.
    assert not rec.quality("a", jitter_ms=-1, loss_pct=0)
    assert not rec.quality("a", jitter_ms=float("inf"), loss_pct=0)
    assert not rec.quality("a", jitter_ms=1, loss_pct=float("nan"))
    rec.ended("a", T0 + 1, "failed", sip_code=9999)  # not a SIP code: dropped, counted
    [r] = rec.drain()
    assert r.sip_code is None and rec.anomalies["bad SIP code"] == 1
    assert rec.anomalies["unusable quality figures"] == 3


def test_names_from_the_network_lose_control_characters_and_length() -> None:
    party = Party.clean("0301234\x00", "\x1b[31mEve" + "x" * 500)
    assert party.number == "0301234 " and party.name.startswith(" [31mEve")
    assert len(party.name) == 128
    with pytest.raises(RecordError, match="longer than"):
        Party("1" * 500)


def test_in_flight_legs_are_bounded_the_oldest_closed_first() -> None:
    rec = CallRecorder(max_in_flight=3)
    for i in range(5):
        start(rec, f"leg{i}", now=T0 + i)
    assert rec.in_flight == 3
    evicted = rec.drain()
    assert [r.id for r in evicted] == ["leg0", "leg1"]
    assert all(r.disposition == "failed" and "too many legs" in r.sip_reason for r in evicted)
    assert evicted[0].end == T0 + 3  # closed when the 4th leg pushed it out
    assert rec.anomalies["evicted"] == 2


def test_finished_records_nobody_collects_are_bounded() -> None:
    rec = CallRecorder(max_finished=4)
    for i in range(10):
        start(rec, f"l{i}")
        rec.ended(f"l{i}", T0 + 1, "busy")
    assert [r.id for r in rec.drain()] == ["l6", "l7", "l8", "l9"]
    assert rec.dropped == 6


def test_a_leg_whose_end_never_comes_times_out_unless_answered() -> None:
    rec = CallRecorder()
    assert rec.next_deadline() is None
    start(rec, "ringing", now=T0)
    start(rec, "talking", now=T0 + 5)
    rec.answered("talking", T0 + 6)
    assert rec.next_deadline() == T0 + SETUP_TIMEOUT_S
    assert rec.handle_timer(T0 + SETUP_TIMEOUT_S - 1) == 0
    assert rec.handle_timer(T0 + SETUP_TIMEOUT_S) == 1
    [r] = rec.drain()
    assert r.id == "ringing" and r.disposition == "failed" and "in time" in r.sip_reason
    assert rec.next_deadline() is None and rec.in_flight == 1  # a long call is not cut


def test_close_all_loses_nothing_at_shutdown() -> None:
    rec = CallRecorder()
    start(rec, "a")
    start(rec, "b")
    rec.answered("b", T0 + 1)
    assert rec.close_all(T0 + 30) == 2
    records = {r.id: r for r in rec.drain()}
    assert records["a"].disposition == "failed" and records["b"].disposition == "answered"
    assert records["b"].talk_s == 29


def test_random_event_soup_never_breaks_the_recorder() -> None:
    rng = random.Random(5)
    rec = CallRecorder(max_in_flight=8)
    legs = [f"l{i}" for i in range(20)]
    out: list[LegRecord] = []
    now = T0
    for _ in range(5000):
        now += rng.uniform(-2, 5)  # a wobbly clock
        now = max(now, 0.0)
        leg = rng.choice(legs)
        action = rng.randrange(5)
        if action == 0:
            start(rec, leg, now=now, call=f"c{rng.randrange(5)}")
        elif action == 1:
            rec.answered(leg, now, codec=rng.choice(["PCMU", "G722", ""]))
        elif action == 2:
            rec.quality(leg, jitter_ms=rng.uniform(-1, 80), loss_pct=rng.uniform(-1, 120))
        elif action == 3:
            rec.ended(leg, now, rng.choice(["busy", "failed", "cancelled"]))
        else:
            rec.handle_timer(now)
        out += rec.drain()
    assert rec.in_flight <= 8
    for r in out:  # every record that came out passed LegRecord's own checks
        assert r.start <= r.end
        assert (r.answer is not None) == (r.disposition == "answered")
        if r.quality is not None:
            assert 0 <= r.quality.loss_pct <= 100 and 1 <= r.quality.mos <= 4.5


def test_mos_estimate_follows_the_e_model() -> None:
    # G.107 defaults give R = 93.2, MOS 4.41 (Annex B).
    assert r_to_mos(93.2) == pytest.approx(4.41, abs=0.01)
    assert r_to_mos(-5) == 1.0 and r_to_mos(120) == 4.5
    clean = estimate_mos("PCMA", 0, 0)
    assert clean == pytest.approx(4.41, abs=0.01)
    # Loss and delay only ever lower it; a compressing codec starts lower.
    assert estimate_mos("PCMA", 0, 2) < clean
    assert estimate_mos("PCMA", 0, 10) < estimate_mos("PCMA", 0, 2)
    assert estimate_mos("PCMA", 60, 0, rtt_ms=300) < clean
    assert estimate_mos("GSM", 0, 0) < clean
    assert estimate_mos("PCMU", 0, 100) < 1.5  # nothing gets through
    # G.113 App. I: G.711 with PLC, Bpl 25.1: 1 % random loss costs Ie,eff = 95/26.1 = 3.64.
    assert estimate_mos("PCMU", 0, 1) == pytest.approx(r_to_mos(93.2 - 95 / 26.1), abs=0.01)


def test_a_leg_record_checks_itself() -> None:
    base: dict[str, object] = {
        "id": "a",
        "call": "c",
        "direction": "outbound",
        "source": Party("101"),
        "destination": Party("0301234"),
        "where": Place.port(5),
        "start": T0,
        "answer": None,
        "end": T0 + 1,
        "disposition": "busy",
    }
    LegRecord(**base)  # type: ignore[arg-type]
    cases: list[tuple[dict[str, object], str]] = [
        ({"end": T0 - 1}, "ends"),
        ({"disposition": "answered"}, "answer time"),
        ({"answer": T0 + 0.5}, "cannot be 'busy'"),
        ({"answer": T0 + 5, "disposition": "answered"}, "outside the leg"),
        ({"sip_code": 42}, "SIP code"),
        ({"start": -1.0}, "after 1970"),
        ({"call": ""}, "call id"),
    ]
    for change, message in cases:
        with pytest.raises(RecordError, match=message):
            LegRecord(**{**base, **change})  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="port"):
        Place("port", "zero")
    with pytest.raises(RecordError, match="'port N'"):
        Place.parse("desk 4")
    assert Place.parse("ip 192.0.2.7") == Place.ip("192.0.2.7")
