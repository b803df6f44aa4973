"""Line state machine figures: events per second through FXS and FXO ports."""

from __future__ import annotations

import time

from firmware.lines import (
    Connect,
    FxoPort,
    FxsPort,
    Hangup,
    HookOff,
    HookOn,
    Originate,
    RingVoltage,
    timing_for,
)

CALLS = 5_000


def _fxs_calls() -> tuple[int, float]:
    """Off-hook, pulse-dial 0 (ten pulses), connect, hang up: 23 events and timers a call."""
    port = FxsPort(timing_for("US"))
    t = 0
    events = 0
    started = time.perf_counter()
    for _ in range(CALLS):
        port.handle(HookOff(t), t)
        t += 1000
        for _ in range(10):
            port.handle(HookOn(t), t)
            port.handle(HookOff(t + 60), t + 60)
            t += 100
        t += 500
        port.handle_timer(t)
        port.handle(Connect(), t)
        port.handle(HookOn(t), t)
        t += 2000
        port.handle_timer(t)
        events += 25
    return events, time.perf_counter() - started


def _fxo_calls() -> tuple[int, float]:
    port = FxoPort(timing_for("DE"))
    t = 0
    events = 0
    started = time.perf_counter()
    for _ in range(CALLS):
        port.handle(RingVoltage(True, t), t)
        port.handle(RingVoltage(False, t + 1000), t + 1000)
        t += 8000
        port.handle_timer(t)
        port.handle(Originate(), t)
        port.handle(Hangup(), t + 100)
        t += 2000
        port.handle_timer(t)
        events += 6
    return events, time.perf_counter() - started


def main() -> None:
    for name, run in (("FXS", _fxs_calls), ("FXO", _fxo_calls)):
        events, seconds = run()
        print(
            f"   {name} events and timers   {events / seconds:10.0f} /s"
            f"   {seconds / events * 1e6:6.1f} us each"
        )
