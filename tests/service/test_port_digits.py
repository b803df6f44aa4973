"""Digits through ``PortController``: FXO keys reach call control; the type II ACK does not."""

from __future__ import annotations

from collections.abc import Sequence

from drivers.linecard import protocol as p
from firmware.dsp.profiles import get_profile
from firmware.lines import messages as m
from firmware.lines.cardclock import CardClock
from firmware.lines.fxo import FxoPort
from firmware.service.ports import ACK_GUARD_OPEN, PortController, Report


def reports(actions: Sequence[object]) -> list[m.Report]:
    return [a.report for a in actions if isinstance(a, Report)]


def test_fxo_digits_are_reported_while_the_line_is_seized() -> None:
    controller = PortController(3, p.PortKind.FXO, get_profile("ITU"), CardClock())
    assert controller.on_digit("1", 1000) == []  # on hook: nobody pressed anything
    machine = controller.machine
    assert isinstance(machine, FxoPort)
    machine.handle(m.Originate(), 1100)  # seized (an outgoing call, or an answered one)
    assert controller.on_digit("1", 1200) == [Report(3, m.DigitDialled("1", m.DialMethod.DTMF))]


def off_hook_fxs() -> PortController:
    controller = PortController(1, p.PortKind.FXS, get_profile("US"), CardClock())
    assert reports(controller.on_card(p.HookChange(1, True, 0), 1000)) == [m.OffHook()]
    return controller


def card_digit(controller: PortController, digit: str, now: int) -> list[m.Report]:
    return reports(controller.on_card(p.Digit(1, ord(digit), 60, 0), now))


def dialled(digit: str) -> list[m.Report]:
    return [m.DigitDialled(digit, m.DialMethod.DTMF)]


def test_the_ack_digit_is_kept_from_call_control_while_type_ii_runs() -> None:
    controller = off_hook_fxs()
    controller.guard_acknowledgement(ACK_GUARD_OPEN)
    assert controller.acknowledgement_guarded
    assert reports(controller.on_digit("D", 2000)) == []  # the media loop's receiver
    assert card_digit(controller, "A", 2100) == []  # or the card's
    assert reports(controller.on_digit("5", 2200)) == dialled("5")  # other keys go through
    # Over: a late report of the ACK is still the ACK, until the guard's time.
    controller.guard_acknowledgement(3000)
    assert card_digit(controller, "D", 2900) == []
    assert card_digit(controller, "D", 3100) == dialled("D")
    assert reports(controller.on_digit("D", 3200)) == dialled("D")


def test_without_type_ii_a_and_d_are_ordinary_keys() -> None:
    controller = off_hook_fxs()
    assert not controller.acknowledgement_guarded
    assert reports(controller.on_digit("D", 2000)) == dialled("D")
    assert card_digit(controller, "A", 2100) == dialled("A")
