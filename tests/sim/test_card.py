"""The simulated card core against a real host session, on a fake clock (exact timing)."""

from __future__ import annotations

import pytest

from drivers.linecard import protocol as p
from drivers.linecard.session import DownReason, LinkDown, LinkUp
from drivers.sim import co as co_mod
from drivers.sim import handset as hs_mod
from drivers.sim.co import CoLine, CoState
from drivers.sim.endpoint import SimError
from drivers.sim.tones import DtmfDetector, dtmf, sines
from tests.sim.harness import Bench, tone_power


def state(line: CoLine) -> CoState:
    return line.state  # a call, so that mypy does not carry narrowing across steps


def hooks(bench: Bench, port: int = 1) -> list[tuple[bool, int]]:
    return [(m.off_hook, m.timestamp_ms) for m in bench.received(p.HookChange) if m.port == port]


def test_handshake_describes_the_card() -> None:
    bench = Bench(fxs=4, fxo=2)
    bench.run(0.05)
    (up,) = bench.link_events(LinkUp)
    assert isinstance(up, LinkUp)
    assert up.card.ports == (p.PortKind.FXS,) * 4 + (p.PortKind.FXO,) * 2
    assert up.card.capabilities & p.Capability.DTMF_DETECT
    assert up.card.boot_id == bench.card.boot_id


def test_hook_events_carry_card_timestamps() -> None:
    bench = Bench()
    bench.at(1.0, bench.card.handsets[0].off_hook)
    bench.at(3.5, bench.card.handsets[0].on_hook)
    bench.run(0.1)
    assert hooks(bench) == [(True, 1000), (False, 3500)]


def test_pulse_dialling_has_true_make_break_timing() -> None:
    bench = Bench()
    handset = bench.card.handsets[0]
    bench.at(1.0, handset.off_hook)
    bench.at(2.0, lambda: handset.dial("20", pulse=True))
    bench.run(3.0)
    edges = hooks(bench)[1:]
    breaks = [t for off, t in edges if not off]
    makes = [t for off, t in edges if off]
    assert len(breaks) == len(makes) == 12  # 2 + 10 pulses
    assert all(m - b == hs_mod.PULSE_BREAK_MS for b, m in zip(breaks, makes, strict=True))
    # Within a digit a pulse period is 100 ms; between digits the inter-digit pause.
    assert breaks[1] - breaks[0] == hs_mod.PULSE_BREAK_MS + hs_mod.PULSE_MAKE_MS
    assert breaks[2] - makes[1] == hs_mod.PULSE_INTERDIGIT_MS + hs_mod.PULSE_MAKE_MS
    assert breaks[0] == 2000
    assert handset.is_off_hook and not handset.busy


def test_flash_uses_country_duration_and_can_be_given() -> None:
    bench = Bench(country="GB")
    handset = bench.card.handsets[0]
    bench.at(0.5, handset.off_hook)
    bench.at(1.0, handset.flash)
    bench.at(2.0, lambda: handset.flash(750))
    bench.run(1.0)
    assert hooks(bench) == [(True, 500), (False, 1000), (True, 1100), (False, 2000), (True, 2750)]


def test_handset_refuses_impossible_actions() -> None:
    bench = Bench()
    handset = bench.card.handsets[0]
    with pytest.raises(SimError, match="must be off hook to dial"):
        handset.dial("1")
    handset.off_hook()
    with pytest.raises(SimError, match="already off hook"):
        handset.off_hook()
    with pytest.raises(SimError, match="cannot dial 'x'"):
        handset.dial("1x")
    handset.dial("1", pulse=True)
    with pytest.raises(SimError, match="still dialling"):
        handset.flash()
    bench.run(2.0)
    with pytest.raises(SimError, match="pulse dialling sends 0-9"):
        handset.dial("*", pulse=True)


def test_ring_cadence_reaches_the_handset_and_stops() -> None:
    bench = Bench()
    bench.run(0.05)
    handset = bench.card.handsets[1]
    bench.send(p.Ring(2, ((400, 200), (400, 2000)), 25))
    bench.run(6.5)
    bursts = [(round((b.end - b.start) * 1000), b.start) for b in handset.ring_log if b.end]
    assert [d for d, _ in bursts[:4]] == [400, 400, 400, 400]
    gaps = [
        round((handset.ring_log[i + 1].start - handset.ring_log[i].end) * 1000)  # type: ignore[operator]
        for i in range(3)
    ]
    assert gaps == [200, 2000, 200]
    bench.send(p.StopRing(2))
    count = len(handset.ring_log)
    bench.run(3.0)
    assert len(handset.ring_log) == count and not handset.ringing


def test_answering_trips_the_ringing() -> None:
    bench = Bench()
    bench.run(0.05)
    handset = bench.card.handsets[0]
    bench.send(p.Ring(1, ((2000, 4000),)))
    bench.run(0.5)
    assert handset.ringing
    handset.off_hook()
    bench.run(5.0)
    assert not bench.card.handsets[0].ringing  # ring trip
    assert len(handset.ring_log) == 1
    status = bench.send(p.StatusRequest(1))
    bench.run(0.05)
    (st,) = bench.received(p.PortStatus)
    assert st.flags & p.StatusFlag.OFF_HOOK and not st.flags & p.StatusFlag.RINGING
    assert status >= 0


def test_commands_the_card_cannot_carry_out_are_rejected() -> None:
    bench = Bench()
    bench.run(0.05)
    bench.card.handsets[0].off_hook()
    busy = bench.send(p.Ring(1, ((1000, 1000),)))
    wrong = bench.send(p.Ring(3, ((1000, 1000),)))
    seize_fxs = bench.send(p.Seize(1))
    unknown = bench.send(p.StopRing(9))
    bench.run(0.1)
    rejected = {
        (r.command_seq, r.command_type, r.port, r.reason) for r in bench.received(p.CommandRejected)
    }
    assert rejected == {
        (busy, p.Ring.TYPE, 1, p.RejectReason.BUSY),
        (wrong, p.Ring.TYPE, 3, p.RejectReason.WRONG_PORT_KIND),
        (seize_fxs, p.Seize.TYPE, 1, p.RejectReason.WRONG_PORT_KIND),
        (unknown, p.StopRing.TYPE, 9, p.RejectReason.UNKNOWN_PORT),
    }


def test_polarity_on_hook_transmission_line_test_and_faults() -> None:
    bench = Bench()
    bench.run(0.05)
    handset = bench.card.handsets[0]
    bench.send(p.SetPolarity(1, p.Polarity.REVERSE))
    bench.send(p.OnHookTransmission(1, True))
    bench.send(p.SetLineParams(1, p.SetLineParams.country_code("DE"), p.Impedance.R370_620_310NF))
    bench.host_audio[1] = sines((1200,), 1600, level_dbm0=-10)
    bench.run(0.5)
    assert handset.polarity is p.Polarity.REVERSE
    assert tone_power(handset.heard(500), 1200) > 0.9  # heard on hook (caller ID path)
    bench.send(p.LineTest(1, 42))
    bench.card.raise_fault(2, p.FaultKind.THERMAL)
    bench.run(0.1)
    (result,) = bench.received(p.LineTestResult)
    assert (result.tag, result.outcome, result.loop_resistance_ohm) == (
        42,
        p.LineTestOutcome.PASS,
        p.LOOP_OPEN,
    )
    (fault,) = bench.received(p.Fault)
    assert (fault.port, fault.kind, fault.active) == (2, p.FaultKind.THERMAL, True)
    assert bench.card.ports[0].params is not None


def test_card_detects_dtmf_from_the_handset() -> None:
    bench = Bench()
    bench.run(0.05)
    handset = bench.card.handsets[0]
    handset.off_hook()
    handset.dial("5#9")
    bench.run(1.0)
    digits = bench.received(p.Digit)
    assert "".join(d.char for d in digits) == "5#9"
    assert all(60 <= d.duration_ms <= 100 for d in digits)
    detector = DtmfDetector()  # the tones also went to the host on the PCM stream
    found = [d for frame in bench.to_host[1] for d, _ in detector.feed(frame)]
    assert "".join(found) == "5#9"


def test_card_without_dtmf_detection_says_so() -> None:
    bench = Bench(card_dtmf=False)
    bench.run(0.05)
    (up,) = bench.link_events(LinkUp)
    assert isinstance(up, LinkUp) and not up.card.capabilities & p.Capability.DTMF_DETECT
    bench.card.handsets[0].off_hook()
    bench.card.handsets[0].dial("1")
    bench.run(0.5)
    assert not bench.received(p.Digit)


def test_card_reset_makes_host_handshake_again() -> None:
    bench = Bench()
    bench.run(0.05)
    bench.send(p.Ring(1, ((1000, 1000),)))
    bench.run(0.1)
    old = bench.card.boot_id
    bench.card.reset()
    bench.run(0.5)
    downs = bench.link_events(LinkDown)
    assert [d.reason for d in downs] == [DownReason.PEER_RESET]  # type: ignore[union-attr]
    ups = bench.link_events(LinkUp)
    assert [u.card.boot_id for u in ups][-1] == bench.card.boot_id != old  # type: ignore[union-attr]
    assert not bench.card.handsets[0].ringing


def test_card_puts_ports_to_rest_when_host_goes_silent() -> None:
    bench = Bench()
    bench.run(0.05)
    bench.send(p.Ring(1, ((1000, 1000),)))
    bench.send(p.Seize(3))
    bench.run(0.2)
    bench.cut = True  # the host goes silent
    bench.run(1.5)
    assert not bench.card.ports[0].ring_command  # type: ignore[union-attr]
    assert bench.card.co.lines[0].state is CoState.IDLE


# --- central office -------------------------------------------------------------------


def test_seize_gives_loop_current_and_dial_tone() -> None:
    bench = Bench()
    bench.run(0.05)
    bench.send(p.Seize(3))
    bench.run(0.5)
    (lc,) = bench.received(p.LoopCurrent)
    assert (lc.port, lc.present) == (3, True)
    heard = bench.heard_by_host(3, 400)
    assert tone_power(heard, 350) + tone_power(heard, 440) > 0.9  # US dial tone


def test_co_collects_dtmf_digits_rings_back_answers_and_disconnects_by_tone() -> None:
    bench = Bench()
    line = bench.card.co.line(1)
    bench.run(0.05)
    bench.send(p.Seize(3))
    bench.run(0.3)
    bench.host_audio[3] = dtmf("102")
    bench.run(1.0)
    assert line.digits == "102" and state(line) is CoState.COLLECTING
    assert tone_power(bench.heard_by_host(3, 200), 350) < 0.01  # dial tone stopped
    bench.run(co_mod.DIAL_TIMEOUT_S)
    assert state(line) is CoState.RINGBACK and list(line.dialled) == ["102"]
    assert tone_power(bench.heard_by_host(3, 1000), 440) > 0.2
    line.answer()
    line.play_tone((1000,))
    bench.run(0.3)
    assert tone_power(bench.heard_by_host(3, 200), 1000) > 0.9
    line.disconnect("tone")
    bench.run(1.0)
    heard = bench.heard_by_host(3, 1000)
    assert tone_power(heard, 480) + tone_power(heard, 620) > 0.9  # US busy tone
    bench.send(p.Release(3))
    bench.run(0.6)
    assert state(line) is CoState.IDLE


def test_co_disconnect_by_polarity_reversal_and_answer_supervision() -> None:
    bench = Bench()
    line = bench.card.co.line(1)
    line.answer_reversal = True
    line.auto_answer_s = 1.0
    bench.run(0.05)
    bench.send(p.Seize(3))
    bench.host_audio[3] = dtmf("7")
    bench.run(co_mod.DIAL_TIMEOUT_S + 1.5)
    assert state(line) is CoState.CONNECTED
    line.disconnect("reversal")
    bench.run(0.1)
    assert [m.polarity for m in bench.received(p.PolarityChange)] == [
        p.Polarity.REVERSE,
        p.Polarity.FORWARD,
    ]


def test_co_disconnect_by_loop_current_drop() -> None:
    bench = Bench()
    line = bench.card.co.line(1)
    bench.run(0.05)
    bench.send(p.Seize(3))
    bench.run(0.2)
    bench.at(1.0, lambda: line.disconnect("loop-drop"))
    bench.run(1.5)
    changes = [(m.present, m.timestamp_ms) for m in bench.received(p.LoopCurrent)]
    assert [c[0] for c in changes] == [True, False, True]
    assert changes[2][1] - changes[1][1] == co_mod.LOOP_DROP_MS
    with pytest.raises(SimError, match="disconnect mode 'hang'"):
        line.disconnect("hang")


def test_co_counts_pulse_digits_from_hook_breaks() -> None:
    bench = Bench()
    line = bench.card.co.line(1)
    bench.run(0.05)
    bench.send(p.Seize(3))
    bench.run(0.5)
    for digit in (3, 1):
        for _ in range(digit):
            bench.send(p.Release(3))
            bench.run(0.06)
            bench.send(p.Seize(3))
            bench.run(0.04)
        bench.run(0.7)
    assert line.digits == "31"
    bench.send(p.Flash(3, 250))
    bench.run(0.5)
    assert line.flashes == 1 and line.digits == "31"


def test_co_rings_with_country_cadence_and_port_answers() -> None:
    bench = Bench(country="GB")
    line = bench.card.co.line(1)
    bench.run(0.05)
    bench.at(1.0, lambda: line.ring(caller_id="5551234"))
    bench.run(3.1)
    edges = [(m.active, m.timestamp_ms) for m in bench.received(p.RingDetect)]
    assert edges[:5] == [(True, 1000), (False, 1400), (True, 1600), (False, 2000), (True, 4000)]
    assert line.caller_id == "5551234" and state(line) is CoState.RINGING
    bench.send(p.Seize(3))
    bench.run(5.0)
    assert state(line) is CoState.CONNECTED
    assert bench.received(p.RingDetect)[-1].active is False
    line.play_tone((600,))
    bench.host_audio[3] = sines((1500,), 1600, level_dbm0=-10)
    bench.run(0.4)
    assert tone_power(bench.heard_by_host(3, 200), 600) > 0.9
    # The exchange dates what it hears: the appliance's tone started within a frame.
    started = line.first_sound_after(bench.now - 0.5)
    assert started is not None and started <= bench.now - 0.4 + 0.021
    assert tone_power(line.heard(400), 1500) > 0.9
    with pytest.raises(SimError, match="cannot ring while connected"):
        line.ring()


def test_co_cancel_and_bad_caller_id() -> None:
    bench = Bench()
    line = bench.card.co.line(1)
    bench.run(0.05)
    with pytest.raises(SimError, match="caller ID"):
        line.ring(caller_id="55-12")
    line.ring()
    bench.run(0.5)
    line.cancel()
    bench.run(0.1)
    assert state(line) is CoState.IDLE
    assert [m.active for m in bench.received(p.RingDetect)] == [True, False]


def test_handset_dates_the_first_sound_it_hears() -> None:
    # The pattern of the off-hook-to-dial-tone measurement, on the simulated clock: the
    # host answers the HookChange with tone on the port's PCM; the handset dates it.
    bench = Bench()
    handset = bench.card.handsets[0]
    bench.at(1.0, handset.off_hook)
    bench.pump()
    assert bench.received(p.HookChange)  # delivered at once on this instant wire
    bench.host_audio[1] = sines((350, 440), 800, level_dbm0=-13)
    bench.run(0.2)
    heard = handset.first_sound_after(1.0)
    assert heard is not None and 1.0 < heard <= 1.0 + 0.02  # the next 20 ms PCM frame
    assert handset.first_sound_after(1.0, threshold_dbm0=0.0) is None  # -10 dBm0 total
