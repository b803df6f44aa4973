"""Property tests: random event sequences never break the line machines.

Whatever arrives, in whatever order and timing: only the machines' own error types are
raised, a rejected event changes nothing, the tones and ringing the outputs switched on are
exactly what the state says, and timers are never left overdue.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.lines import (
    COUNTRY_TIMING,
    Alert,
    AnswerCall,
    AnswerDetected,
    Busy,
    BusyToneDetected,
    CallerId,
    CallerIdDetected,
    CallerIdSent,
    CallWaiting,
    CallWaitingEnd,
    CancelAlert,
    Congestion,
    Connect,
    DialMethod,
    DigitDialled,
    DtmfDigit,
    EarlyMedia,
    FxoEvent,
    FxoPort,
    FxoState,
    FxsPort,
    FxsState,
    Hangup,
    HookOff,
    HookOn,
    HungUp,
    IncomingCall,
    LineError,
    LoopCurrent,
    OffHook,
    Originate,
    PolarityReversal,
    Proceed,
    RecallDialTone,
    Release,
    RemoteRinging,
    RingingStopped,
    RingVoltage,
    Seize,
    SendCallerId,
    StartRinging,
    StartTone,
    StopCallerId,
    StopRinging,
    StopTone,
    timing_for,
)
from firmware.lines.fxs import ON_HOOK_STATES, STATE_TONE
from firmware.lines.messages import PULSE_MAX

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CID = CallerId(number="123", name="X")
countries = st.sampled_from(sorted(COUNTRY_TIMING))
# Mostly short gaps (pulses, flashes, bounces), sometimes long ones (timeouts).
gaps = st.one_of(st.integers(0, 150), st.integers(0, 1500), st.integers(0, 70_000))

FXS_SIMPLE = [
    CallerIdSent(),
    Alert(),
    Alert(caller_id=CID),
    CancelAlert(),
    Proceed(),
    RemoteRinging(),
    EarlyMedia(),
    Connect(),
    Busy(),
    Congestion(),
    RecallDialTone(),
    CallWaiting(),
    CallWaiting(caller_id=CID),
    CallWaitingEnd(),
    DtmfDigit("5"),
    DtmfDigit("#"),
]
fxs_steps = st.lists(
    st.tuples(
        gaps,
        st.one_of(
            st.sampled_from(["on", "off", "on", "off", "timer", "stale-hook"]),
            st.sampled_from(FXS_SIMPLE),
        ),
    ),
    max_size=60,
)


def _state_of(port: Any) -> dict[str, Any]:
    return dict(vars(port))


@SETTINGS
@given(country=countries, steps=fxs_steps)
def test_fxs_random_sequences(country: str, steps: list[tuple[int, Any]]) -> None:
    port = FxsPort(timing_for(country))
    now = 0
    tone = None
    ringing = False
    cid_sending = False
    for gap, what in steps:
        now += gap
        before = _state_of(port)
        prev_state = port.state
        try:
            if what == "timer":
                out = port.handle_timer(now)
            elif what in ("on", "off"):
                event = HookOn(now) if what == "on" else HookOff(now)
                out = port.handle(event, now)
            elif what == "stale-hook":
                event = HookOn(max(0, now - 500)) if port.hook_on else HookOff(max(0, now - 500))
                out = port.handle(event, now)
            else:
                out = port.handle(what, now)
        except LineError:
            assert _state_of(port) == before, "a rejected event changed the port"
            continue
        for o in out:
            if isinstance(o, StartTone):
                assert tone is None, f"{o} over {tone}"
                tone = o.tone
            elif isinstance(o, StopTone):
                assert tone is not None
                tone = None
            elif isinstance(o, StartRinging):
                assert not ringing
                ringing = True
            elif isinstance(o, StopRinging):
                assert ringing
                ringing = False
            elif isinstance(o, SendCallerId):
                cid_sending = True
            elif isinstance(o, StopCallerId):
                assert cid_sending
                cid_sending = False
            elif isinstance(o, OffHook):
                assert prev_state is FxsState.IDLE or HungUp() in out
            elif isinstance(o, HungUp):
                assert prev_state not in ON_HOOK_STATES or OffHook() in out
        assert tone is port.tone is STATE_TONE.get(port.state)
        assert ringing == port.ringing == (port.state is FxsState.RINGING)
        if isinstance(what, CallerIdSent):  # after the outputs of timers that fired first
            cid_sending = False
        assert cid_sending == port.caller_id_sending
        if cid_sending:  # only the states that send it may leave it running
            assert port.state in (FxsState.CALLER_ID, FxsState.RINGING, FxsState.CALL_WAITING)
        if port.state in ON_HOOK_STATES:
            assert port.hook_on
        assert 0 <= port.pulses <= PULSE_MAX + 1
        deadline = port.next_deadline()
        assert deadline is None or deadline > port._clock  # nothing left overdue


@SETTINGS
@given(
    digits=st.lists(st.integers(1, 10), min_size=1, max_size=12),
    pps=st.floats(8.0, 12.0),
    ratio=st.floats(0.58, 0.64),
    pauses=st.lists(st.integers(150, 3000), min_size=12, max_size=12),
    dtmf_every=st.integers(0, 4),
)
def test_fxs_pulse_and_dtmf_numbers_decode_exactly(
    digits: list[int], pps: float, ratio: float, pauses: list[int], dtmf_every: int
) -> None:
    port = FxsPort(timing_for("US"))
    out = port.handle(HookOff(0), 0)
    t = 1000.0
    expected = []
    period = 1000.0 / pps
    for i, digit in enumerate(digits):
        if dtmf_every and i % dtmf_every == 0:
            out += port.handle_timer(round(t))
            out += port.handle(DtmfDigit(str(digit % 10)), round(t))
            expected.append(DigitDialled(str(digit % 10), DialMethod.DTMF))
            t += pauses[i]
            continue
        for _ in range(digit):
            out += port.handle(HookOn(round(t)), round(t))
            out += port.handle(HookOff(round(t + period * ratio)), round(t + period * ratio))
            t += period
        t += period * ratio - period + pauses[i]
        expected.append(DigitDialled(str(digit % 10), DialMethod.PULSE))
    out += port.handle_timer(round(t) + 1000)
    assert [o for o in out if isinstance(o, DigitDialled)] == expected


FXO_SIMPLE = [
    CallerIdDetected(CID),
    BusyToneDetected(),
    AnswerDetected(),
    Originate(),
    AnswerCall(),
    Hangup(),
]
fxo_steps = st.lists(
    st.tuples(
        gaps,
        st.one_of(
            st.sampled_from(
                ["ring-on", "ring-off", "ring", "loop-on", "loop-off", "reverse", "timer"]
            ),
            st.sampled_from(FXO_SIMPLE),
        ),
    ),
    max_size=60,
)


@SETTINGS
@given(country=countries, steps=fxo_steps)
def test_fxo_random_sequences(country: str, steps: list[tuple[int, Any]]) -> None:
    port = FxoPort(timing_for(country))
    now = 0
    off_hook = False
    ringing = False
    for gap, what in steps:
        now += gap
        before = _state_of(port)
        try:
            if what == "timer":
                out = port.handle_timer(now)
            elif what == "ring":  # a whole burst of a plausible length
                out = port.handle(RingVoltage(True, now), now)
                now += 400 + gap
                out += port.handle(RingVoltage(False, now), now)
            elif what.__class__ is str:
                events: dict[str, FxoEvent] = {
                    "ring-on": RingVoltage(True, now),
                    "ring-off": RingVoltage(False, now),
                    "loop-on": LoopCurrent(True, now),
                    "loop-off": LoopCurrent(False, now),
                    "reverse": PolarityReversal(now),
                }
                out = port.handle(events[what], now)
            else:
                out = port.handle(what, now)
        except LineError:
            assert _state_of(port) == before, "a rejected event changed the port"
            continue
        for o in out:
            if isinstance(o, Seize):
                assert not off_hook
                off_hook = True
                ringing = False  # answered (or glare)
            elif isinstance(o, Release):
                assert off_hook
                off_hook = False
                ringing = False
            elif isinstance(o, IncomingCall):
                assert not ringing
                ringing = True
            elif isinstance(o, RingingStopped):
                assert ringing
                ringing = False
        assert off_hook == port.off_hook
        assert ringing == (port.state is FxoState.RINGING)
        deadline = port.next_deadline()
        assert deadline is None or deadline > port._clock  # nothing left overdue
