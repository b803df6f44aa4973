"""FXO port: ring cadence recognition, caller ID windows, seizure, supervision."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from firmware.lines import (
    AnswerCall,
    AnswerDetected,
    AnswerSignal,
    BusyToneDetected,
    CallerId,
    CallerIdDetected,
    CallerIdReceived,
    DisconnectCause,
    Disconnected,
    FarEndAnswered,
    FxoPort,
    FxoState,
    Hangup,
    IncomingCall,
    LineTiming,
    LocalProtocolError,
    LoopCurrent,
    NoLoopCurrent,
    Originate,
    PolarityReversal,
    Release,
    RemoteProtocolError,
    RingingStopped,
    RingVoltage,
    Seize,
    timing_for,
)
from firmware.lines.fxo import TRANSITIONS, FxoTrigger

if TYPE_CHECKING:
    from tests.lines.conftest import Driver

US = timing_for("US")
DE = timing_for("DE")
GB = timing_for("GB")
S = FxoState
CID = CallerId(number="5551234")


def new(driver: type[Driver], timing: LineTiming = US) -> Driver:
    d = driver(FxoPort(timing))
    d.until(1000)
    return d


def ring(d: Driver, on_ms: int, off_ms: int = 0) -> None:
    t = d.now
    d.send(RingVoltage(True, t), t)
    d.send(RingVoltage(False, t + on_ms), t + on_ms)
    if off_ms:
        d.until(t + on_ms + off_ms)


def reach(driver: type[Driver], state: FxoState, timing: LineTiming = US) -> Driver:
    d = new(driver, timing)
    if state is S.RINGING:
        ring(d, 2000)
    elif state is S.SEIZED:
        d.send(Originate())
        d.send(LoopCurrent(True, d.now + 20), d.now + 20)
    elif state is S.CONNECTED:
        ring(d, 2000)
        d.send(AnswerCall(), d.now + 100)
        d.send(LoopCurrent(True, d.now + 20), d.now + 20)
    elif state is S.GUARD:
        d.send(Originate())
        d.send(Hangup(), d.now + 500)
    assert d.state() is state
    d.take()
    return d


def fire(d: Driver, trigger: FxoTrigger) -> None:
    t = d.now + 10
    if trigger is FxoTrigger.RING:
        d.until(t)
        ring(d, 1000)
    elif trigger is FxoTrigger.CALLER_ID:
        d.send(CallerIdDetected(CID), t)
    elif trigger is FxoTrigger.ORIGINATE:
        d.send(Originate(), t)
    elif trigger is FxoTrigger.ANSWER_CALL:
        d.send(AnswerCall(), t)
    elif trigger is FxoTrigger.HANGUP:
        d.send(Hangup(), t)
    elif trigger is FxoTrigger.ANSWERED:
        d.send(AnswerDetected(), t)
    elif trigger is FxoTrigger.DISCONNECT:
        d.send(BusyToneDetected(), t)
    elif trigger is FxoTrigger.IGNORED_SIGNAL:
        d.send(AnswerDetected() if d.state() is not S.SEIZED else BusyToneDetected(), t)
    elif trigger is FxoTrigger.T_CID_EXPIRE:
        d.send(CallerIdDetected(CID), t)
        d.until(t + d.port.timing.pre_ring_cid_window_ms)
    elif trigger is FxoTrigger.T_NO_LOOP:
        d.port = FxoPort(d.port.timing)  # a seizure that never sees loop current
        d.send(Originate(), d.now)
        d.until(d.now + d.port.timing.seize_loop_timeout_ms)
    else:
        deadline = d.port.next_deadline()
        assert deadline is not None, f"no timer armed for {trigger}"
        d.until(deadline)


@pytest.mark.parametrize(
    ("state", "trigger", "target"),
    [
        pytest.param(s, t, target, id=f"{s.value}-{t.value}")
        for (s, t), target in sorted(TRANSITIONS.items(), key=lambda kv: str(kv[0]))
    ],
)
def test_every_transition(driver, state, trigger, target):
    timing = US
    if trigger is FxoTrigger.T_CID_EXPIRE:
        timing = US.replace(release_guard_ms=US.pre_ring_cid_window_ms + 1000)
    if trigger is FxoTrigger.IGNORED_SIGNAL and state is S.SEIZED:
        timing = US.replace(disconnect_on_busy_tone=False)
    d = reach(driver, state, timing)
    fire(d, trigger)
    assert d.state() is target
    assert d.port.off_hook == (target in (S.SEIZED, S.CONNECTED))


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.IDLE, AnswerCall()),
        (S.SEIZED, AnswerCall()),
        (S.CONNECTED, Originate()),
        (S.RINGING, Originate()),
        (S.GUARD, Originate()),
        (S.RINGING, Hangup()),
        (S.CONNECTED, AnswerCall()),
    ],
)
def test_illegal_call_control_raises_and_changes_nothing(driver, state, event):
    d = reach(driver, state)
    before = (d.state(), d.port.next_deadline())
    with pytest.raises(LocalProtocolError):
        d.send(event)
    assert (d.state(), d.port.next_deadline()) == before


def test_card_timestamps_running_backwards(driver):
    d = new(driver)
    d.send(RingVoltage(True, 1000), 1000)
    with pytest.raises(RemoteProtocolError):
        d.send(RingVoltage(False, 999), 1001)
    assert d.port.ring_voltage


# --- ring detection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("burst", "recognised"),
    [
        (US.ring_burst_min_ms - 1, False),
        (US.ring_burst_min_ms, True),
        (US.ring_burst_max_ms, True),
        (US.ring_burst_max_ms + 1, False),
    ],
)
def test_ring_burst_edges(driver, burst, recognised):
    d = new(driver)
    ring(d, burst)
    assert (d.take() == [IncomingCall(None)]) == recognised


def test_us_cadence_with_caller_id_between_rings(driver):
    d = new(driver)
    ring(d, 2000)
    assert d.take() == [IncomingCall(None)]
    assert d.send(CallerIdDetected(CID), d.now + 1200) == [CallerIdReceived(CID)]
    d.take()
    d.until(d.now + 2800)
    for _ in range(3):
        ring(d, 2000, 4000)
    assert d.state() is S.RINGING and d.take() == []


def test_gb_double_ring_with_caller_id_before_it(driver):
    d = new(driver, GB)
    d.send(PolarityReversal(d.now + 100), d.now + 100)
    d.send(CallerIdDetected(CID), d.now + 400)
    d.until(d.now + 500)
    ring(d, 400, 200)
    ring(d, 400, 2000)
    ring(d, 400, 200)
    assert d.take() == [IncomingCall(CID)]
    assert d.state() is S.RINGING


def test_caller_id_too_long_before_the_ring_is_dropped(driver):
    d = new(driver, GB)
    d.send(CallerIdDetected(CID), d.now)
    d.until(d.now + GB.pre_ring_cid_window_ms)
    ring(d, 400)
    assert d.take() == [IncomingCall(None)]


def test_ringing_stops_after_silence(driver):
    d = new(driver, DE)
    ring(d, 1000)
    end = d.now
    d.take()
    assert d.until(end + DE.ring_silence_max_ms - 1) == []
    assert d.until(end + DE.ring_silence_max_ms) == [RingingStopped()]
    assert d.state() is S.IDLE


def test_no_silence_timeout_while_voltage_is_on(driver):
    d = new(driver)
    ring(d, 2000)
    d.send(RingVoltage(True, d.now + 100), d.now + 100)
    assert d.port.next_deadline() is None


def test_level_events_are_idempotent(driver):
    d = new(driver)
    d.send(RingVoltage(True, 1100), 1100)
    assert d.send(RingVoltage(True, 1200), 1200) == []
    assert d.send(RingVoltage(False, 1400), 1400) == [IncomingCall(None)]
    assert d.send(RingVoltage(False, 1500), 1500) == []
    assert d.send(LoopCurrent(False, 1600), 1600) == []


# --- seizure, answer and disconnect supervision -----------------------------------------------


def test_answer_incoming_and_far_end_busy_tone(driver):
    d = new(driver)
    ring(d, 2000)
    assert d.send(AnswerCall(), d.now + 10) == [Seize()]
    assert d.send(BusyToneDetected(), d.now + 5000) == [
        Release(),
        Disconnected(DisconnectCause.BUSY_TONE),
    ]
    assert d.state() is S.GUARD
    assert d.until(d.now + US.release_guard_ms) == []
    assert d.state() is S.IDLE


def test_outgoing_answer_by_reversal_then_disconnect_by_reversal(driver):
    d = new(driver, DE)
    assert d.send(Originate()) == [Seize()]
    d.send(LoopCurrent(True, d.now + 30), d.now + 30)
    assert d.send(PolarityReversal(d.now + 8000), d.now + 8000) == [
        FarEndAnswered(AnswerSignal.POLARITY_REVERSAL)
    ]
    assert d.send(PolarityReversal(d.now + 60_000), d.now + 60_000) == [
        Release(),
        Disconnected(DisconnectCause.POLARITY_REVERSAL),
    ]


def test_detector_answer_then_late_answer_reversal_is_not_a_disconnect(driver):
    d = new(driver, DE)
    d.send(Originate())
    assert d.send(AnswerDetected(), d.now + 5000) == [FarEndAnswered(AnswerSignal.DETECTOR)]
    assert d.send(PolarityReversal(d.now + 100), d.now + 100) == []
    assert d.state() is S.CONNECTED


def test_us_ignores_polarity_reversal_while_connected(driver):
    d = reach(driver, S.CONNECTED, US)
    assert d.send(PolarityReversal(d.now + 10), d.now + 10) == []
    assert d.state() is S.CONNECTED


@pytest.mark.parametrize("timing", [US, DE], ids=["US", "DE"])
def test_loop_current_drop_edges(driver, timing):
    d = reach(driver, S.CONNECTED, timing)
    t = d.now + 100
    d.send(LoopCurrent(False, t), t)
    # Back just in time: a transient (for example during a reversal), not a disconnect.
    d.send(LoopCurrent(True, t + timing.loop_drop_min_ms - 1), t + timing.loop_drop_min_ms - 1)
    assert d.take() == [] and d.state() is S.CONNECTED
    t += 5000
    d.send(LoopCurrent(False, t), t)
    assert d.until(t + timing.loop_drop_min_ms - 1) == []
    assert d.until(t + timing.loop_drop_min_ms) == [
        Release(),
        Disconnected(DisconnectCause.LOOP_CURRENT_DROP),
    ]


def test_loop_drop_supervision_can_be_switched_off(driver):
    timing = US.replace(disconnect_on_loop_drop=False, disconnect_on_busy_tone=False)
    d = reach(driver, S.CONNECTED, timing)
    d.send(LoopCurrent(False, d.now + 1), d.now + 1)
    d.send(BusyToneDetected(), d.now + 1)
    assert d.until(d.now + 10_000) == []
    assert d.state() is S.CONNECTED


def test_no_loop_current_after_seizing_is_reported_once(driver):
    d = new(driver)
    d.send(Originate())
    d.take()
    assert d.until(d.now + US.seize_loop_timeout_ms) == [NoLoopCurrent()]
    assert d.until(d.now + 60_000) == []
    assert d.state() is S.SEIZED


def test_seize_in_guard_time_is_refused_until_it_ends(driver):
    d = reach(driver, S.GUARD)
    with pytest.raises(LocalProtocolError):
        d.send(Originate())
    d.until(d.now + US.release_guard_ms)
    assert d.send(Originate()) == [Seize()]


def test_ring_during_guard_time_is_a_new_call(driver):
    d = reach(driver, S.GUARD)
    ring(d, 300)
    assert d.take() == [IncomingCall(None)]
