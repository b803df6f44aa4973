"""What every line card must do, checked through the real wire protocol.

Each test names the behaviour a technician can point at in the report.  Timing checks use
the card's own timestamps, so they hold on a loaded host as on a quiet one.
"""

from __future__ import annotations

import os
import time

import pytest

from drivers.linecard import protocol as p
from drivers.linecard.session import LinkDown, LinkUp
from hwtests.rig import CardUnderTest, Rig

FLASH_MS = 500
# A card stamps hook changes with its ms clock; the simulator's stamps are exact, a real
# card's are good to its scan interval (a few ms).  A person's recall button is whatever
# the phone makes it, inside the flash window of Telcordia GR-506-CORE / ETSI ES 201 970.
STAMP_TOLERANCE_MS = 5
MANUAL_FLASH_MS = (60, 1100)
HEARTBEAT_LOSS_S = 1.0  # issue 2: a dead or unplugged card is noticed within one second
LINK_EVENT_TIMEOUT_S = 3.0


def fxs_port(card: CardUnderTest) -> int:
    port = card.port_of(p.PortKind.FXS)
    if port is None:
        pytest.skip("this card has no FXS port")
    return port


def fxo_port(card: CardUnderTest) -> int:
    port = card.port_of(p.PortKind.FXO)
    if port is None:
        pytest.skip("this card has no FXO port")
    return port


def test_handshake_names_version_firmware_and_ports(
    card: CardUnderTest, figures: dict[str, str]
) -> None:
    hello = card.hello
    assert hello is not None
    assert hello.version == p.PROTOCOL_VERSION
    assert 1 <= len(hello.ports) <= p.MAX_PORTS
    assert all(isinstance(k, p.PortKind) for k in hello.ports)
    figures["firmware"] = ".".join(map(str, hello.firmware))
    figures["ports"] = ",".join(k.name for k in hello.ports)
    names = [c.name for c in p.Capability if c and c in hello.capabilities and c.name]
    figures["capabilities"] = "+".join(names) or "none"


def test_every_port_reports_its_status(card: CardUnderTest) -> None:
    for number, kind in enumerate(card.ports, start=1):
        status = card.status(number)
        assert status.kind is kind
        assert not status.flags & p.StatusFlag.FAULT, f"port {number} reports a fault"


def test_hook_off_and_on_are_reported_with_card_timestamps(card: CardUnderTest, rig: Rig) -> None:
    port = fxs_port(card)
    # Only what follows each action counts: a card that rests its ports when a new host
    # session starts may still be reporting that.
    before = time.monotonic()
    rig.lift(port)
    _, off = card.expect(p.HookChange, 30, lambda e: e.port == port and e.off_hook, before)
    before = time.monotonic()
    rig.hang_up(port)
    _, on = card.expect(p.HookChange, 30, lambda e: e.port == port and not e.off_hook, before)
    # A rig can lift and hang up within one card millisecond; stamps must never go back.
    assert on.timestamp_ms >= off.timestamp_ms
    assert card.status(port).flags & p.StatusFlag.OFF_HOOK == 0


def test_flash_is_two_hook_changes_a_flash_apart(
    card: CardUnderTest, rig: Rig, figures: dict[str, str]
) -> None:
    port = fxs_port(card)
    before = time.monotonic()
    rig.lift(port)
    card.expect(p.HookChange, 30, lambda e: e.port == port and e.off_hook, before)
    before = time.monotonic()
    rig.flash(port, FLASH_MS)
    _, down = card.expect(p.HookChange, 30, lambda e: e.port == port and not e.off_hook, before)
    _, up = card.expect(p.HookChange, 5, lambda e: e.port == port and e.off_hook, before)
    measured = up.timestamp_ms - down.timestamp_ms
    figures["flash_ms"] = str(measured)
    if rig.automatic:
        assert abs(measured - FLASH_MS) <= STAMP_TOLERANCE_MS
    else:
        assert MANUAL_FLASH_MS[0] <= measured <= MANUAL_FLASH_MS[1]
    rig.hang_up(port)
    card.expect(p.HookChange, 30, lambda e: e.port == port and not e.off_hook)


def test_ringing_starts_and_stops(card: CardUnderTest, rig: Rig) -> None:
    port = fxs_port(card)
    card.send(p.Ring(port, ((400, 200),)))
    deadline = time.monotonic() + 2
    while not card.status(port).flags & p.StatusFlag.RINGING:
        assert time.monotonic() < deadline, "RINGING never showed in the port status"
    assert rig.phone_rings(port) or _rang_recently(rig, port)
    card.send(p.StopRing(port))
    deadline = time.monotonic() + 2
    while card.status(port).flags & p.StatusFlag.RINGING:
        assert time.monotonic() < deadline, "RINGING still on after StopRing"


def _rang_recently(rig: Rig, port: int) -> bool:
    # A 400 ms burst can fall silent between the status and the question; ask once more.
    time.sleep(0.25)
    return rig.phone_rings(port)


def test_polarity_reverses_and_returns(card: CardUnderTest) -> None:
    port = fxs_port(card)
    card.send(p.SetPolarity(port, p.Polarity.REVERSE))
    assert card.status(port).flags & p.StatusFlag.REVERSED
    card.send(p.SetPolarity(port, p.Polarity.FORWARD))
    assert not card.status(port).flags & p.StatusFlag.REVERSED


def test_seize_draws_loop_current_and_release_drops_it(card: CardUnderTest) -> None:
    port = fxo_port(card)
    card.drain()
    card.send(p.Seize(port))
    card.expect(p.LoopCurrent, 3, lambda e: e.port == port and e.present)
    assert card.status(port).flags & p.StatusFlag.OFF_HOOK
    card.send(p.Release(port))
    # On hook there is no loop to carry current; a card need not report the obvious,
    # but its status must say so.
    flags = card.status(port).flags
    assert not flags & (p.StatusFlag.OFF_HOOK | p.StatusFlag.LOOP_CURRENT)


def test_ringing_voltage_on_the_exchange_line_is_detected(card: CardUnderTest, rig: Rig) -> None:
    port = fxo_port(card)
    card.drain()
    rig.ring_line(port)
    card.expect(p.RingDetect, 60, lambda e: e.port == port and e.active)
    card.expect(p.RingDetect, 10, lambda e: e.port == port and not e.active)
    rig.stop_ringing_line(port)


def test_a_command_for_a_port_that_does_not_exist_is_rejected(card: CardUnderTest) -> None:
    missing = len(card.ports) + 1
    card.drain()
    card.send(p.StopRing(missing))
    _, rejected = card.expect(p.CommandRejected, 3)
    assert rejected.reason is p.RejectReason.UNKNOWN_PORT


def test_heartbeat_loss_is_noticed_within_a_second_and_the_link_recovers(
    card: CardUnderTest, rig: Rig, figures: dict[str, str]
) -> None:
    card.drain()
    started = time.monotonic()
    rig.unplug()
    seen, _ = card.expect(LinkDown, 30 if not rig.automatic else LINK_EVENT_TIMEOUT_S)
    noticed = seen - started
    figures["heartbeat_loss_noticed_s"] = f"{noticed:.3f}"
    if rig.automatic:  # a person's unplugging has no start time worth measuring
        assert noticed <= HEARTBEAT_LOSS_S + 0.25, f"dead card noticed after {noticed:.2f} s"
    rig.plug()
    card.expect(LinkUp, 60 if not rig.automatic else LINK_EVENT_TIMEOUT_S)
    assert card.connected
    card.status(1)


def test_garbage_on_the_line_does_not_break_the_link(card: CardUnderTest, rig: Rig) -> None:
    noise = os.urandom(512) + bytes(range(256)) + b"\x00" * 16
    if not rig.noise_from_card(noise):
        pytest.skip("this rig cannot inject noise from the card side")
    card.send_noise(noise)  # and towards the card: it must survive too
    for number in range(1, len(card.ports) + 1):
        card.status(number)
    assert card.connected
