"""Install, boot, mark-good and rollback on the simulated device.

Issue 7 tests 1, 12, 13, 14, 16, 17, 18, 19, 20, 25 and 28.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from firmware.update import install as inst
from firmware.update import state as st
from firmware.update.errors import (
    DigestMismatch,
    FormatError,
    InstallFailed,
    Refused,
    SecurityVersionTooLow,
)
from firmware.update.fsio import Fault, FaultyOps, FileOps
from tests.update.helpers import FACTORY, Sim, payload_bytes


def test_01_valid_bundle_installs_and_booted_slot_untouched(sim: Sim) -> None:
    data = payload_bytes(50_000)
    path = sim.bundle(data)
    ops = FileOps()
    result = sim.install(path, ops)
    assert result.target == "B"
    assert sim.slot_bytes("B") == data
    assert sim.slot_bytes("A") == FACTORY
    assert not any(p == str(sim.slot_path("A")) for _k, p in ops.log)
    s = sim.state()
    assert s.slots["B"].status == st.Status.PENDING and s.slots["B"].version == "2.0"
    assert sim.env().order == ("B", "A")
    assert sim.power_on() == "B"
    sim.mark_good()
    assert sim.state().slots["B"].status == st.Status.GOOD and sim.state().last_good == "B"


@pytest.mark.parametrize("compression", ["none", "gzip", "xz"])
def test_01_every_compression_installs(sim: Sim, compression: str) -> None:
    data = payload_bytes(30_000, 7)
    sim.install(sim.bundle(data, compression=compression))
    assert sim.slot_bytes("B") == data


def test_12_security_version_below_floor_refused_equal_needs_flag(sim: Sim) -> None:
    # The factory image has security version 1, so the floor is 1.
    before = sim.snapshot()
    with pytest.raises(SecurityVersionTooLow, match="below the floor"):
        sim.install(sim.bundle(security_version=0))
    with pytest.raises(SecurityVersionTooLow, match="allow-same-security-version"):
        sim.install(sim.bundle(security_version=1))
    assert sim.snapshot() == before
    sim.install(sim.bundle(security_version=1), allow_equal_security_version=True)
    assert sim.state().slots["B"].status == st.Status.PENDING


def test_13_floor_rises_only_at_mark_good_old_image_boots_when_new_fails(sim: Sim) -> None:
    sim.install(sim.bundle(security_version=7))
    assert sim.state().floor == 1
    for _ in range(sim.config().attempts):
        assert sim.power_on() == "B"  # the health check never passes
        assert sim.state().floor == 1
    assert sim.power_on() == "A"
    assert sim.slot_bytes("A") == FACTORY
    assert sim.state().floor == 1
    assert sim.state().slots["B"].status == st.Status.FAILED
    sim.mark_good()  # the old image's health check
    assert sim.state().floor == 1
    # A fixed release with the same security version can still be installed.
    sim.install(sim.bundle(security_version=7))
    assert sim.power_on() == "B"
    sim.mark_good()
    assert sim.state().floor == 7


def test_14_replaying_an_old_signed_bundle_refused(sim: Sim) -> None:
    old = sim.bundle(version="2.0", security_version=2)
    new = sim.bundle(version="3.0", security_version=3)
    sim.install(old)
    sim.power_on()
    sim.mark_good()
    sim.install(new)
    sim.power_on()
    sim.mark_good()
    before = sim.snapshot()
    with pytest.raises(SecurityVersionTooLow):
        sim.install(old)
    with pytest.raises(SecurityVersionTooLow):
        sim.install(new)  # the same one again needs the explicit flag
    assert sim.snapshot() == before


@pytest.mark.parametrize("rounds", [3])
def test_16_installer_never_writes_the_booted_slot(sim: Sim, rounds: int) -> None:
    for n in range(rounds):
        booted = sim.device().booted()
        ops = FileOps()
        sim.install(sim.bundle(security_version=2 + n), ops)
        written = {p for kind, p in ops.log if kind in ("open-write", "write", "truncate")}
        assert str(sim.slot_path(booted)) not in written
        assert sim.power_on() != booted
        sim.mark_good()
    # An alias of the booted slot (a symlink as the other slot) is caught.
    booted = sim.device().booted()
    booted_path, target_path = sim.slot_path(booted), sim.slot_path(st.other(booted))
    before = booted_path.read_bytes()
    os.unlink(target_path)
    os.symlink(booted_path, target_path)
    with pytest.raises(FormatError, match="share a device"):
        sim.install(sim.bundle(security_version=99))
    assert booted_path.read_bytes() == before


def test_16_no_install_while_the_booted_slot_is_unconfirmed(sim: Sim) -> None:
    sim.install(sim.bundle(security_version=2))
    assert sim.power_on() == "B"  # pending, health check not passed yet
    with pytest.raises(Refused, match="not good"):
        sim.install(sim.bundle(security_version=3))
    assert sim.slot_bytes("A") == FACTORY


def test_17_target_marked_bad_before_first_byte(sim: Sim) -> None:
    ops = FileOps()
    sim.install(sim.bundle(), ops)
    target = str(sim.slot_path("B"))
    first_write = next(i for i, (k, p) in enumerate(ops.log) if p == target)
    renames = [i for i, (k, p) in enumerate(ops.log) if k == "rename"]
    # Two records changed (bootloader env, then boot state) before the slot was opened.
    assert len([i for i in renames if i < first_write]) == 2
    assert "bootenv" in ops.log[renames[0]][1] and "state" in ops.log[renames[1]][1]
    # And if the write dies, the bootloader would not pick the slot.
    crash = FaultyOps([inst_fault(target)])
    with pytest.raises(InstallFailed, match="EIO"):
        sim.install(sim.bundle(security_version=3), crash)
    assert "B" not in sim.env().order and sim.env().left["B"] == 0


def inst_fault(target: str) -> Fault:
    return Fault("write", 0, error=errno.EIO, match=lambda p: p == target)


def test_18_failed_health_checks_boot_the_old_slot(sim: Sim) -> None:
    sim.install(sim.bundle())
    attempts = sim.config().attempts
    booted = [sim.power_on() for _ in range(attempts + 2)]
    assert booted == ["B"] * attempts + ["A", "A"]
    assert sim.state().slots["B"].status == st.Status.FAILED
    assert sim.state().last_good == "A"


def test_19_both_slots_out_of_attempts_fall_back_to_last_good(sim: Sim) -> None:
    sim.install(sim.bundle())
    sim.power_on()
    sim.mark_good()  # B good, last good B
    sim.install(sim.bundle(security_version=3))  # A pending
    # Neither comes up healthy (say the data partition is broken): no mark-good at all.
    seen = [sim.power_on() for _ in range(12)]
    assert set(seen) <= {"A", "B"}
    env = sim.env()
    assert env.last_good == "B"
    # Once A is exhausted, every boot falls back to B with fresh attempts: never halts.
    assert seen[:3] == ["A"] * 3 and all(s == "B" for s in seen[3:])
    choice = st.choose_boot(st.BootEnv(("A", "B"), {"A": 0, "B": 0}, "B"))
    assert choice.slot == "B" and choice.fallback and choice.env.left["B"] > 0


def test_20_mark_good_from_old_slot_after_rollback_refused(sim: Sim) -> None:
    sim.install(sim.bundle(security_version=5))
    for _ in range(sim.config().attempts + 1):
        last = sim.power_on()
    assert last == "A"
    with pytest.raises(Refused, match="running slot is A"):
        sim.mark_good("B")
    assert sim.state().floor == 1
    assert sim.state().slots["B"].status == st.Status.FAILED
    sim.mark_good()  # confirming the running old slot is allowed and keeps the floor
    assert sim.state().floor == 1
    with pytest.raises(Refused):
        inst.rollback(sim.device())  # B is not good: no rollback to it


def test_manual_rollback_to_previous_good_slot(sim: Sim) -> None:
    sim.install(sim.bundle(security_version=2))
    sim.power_on()
    sim.mark_good()
    with pytest.raises(Refused, match="below the floor"):
        inst.rollback(sim.device())
    assert inst.rollback(sim.device(), allow_below_floor=True) == "A"
    assert sim.power_on() == "A"


def test_25_read_back_catches_silent_corruption(sim: Sim) -> None:
    target = str(sim.slot_path("B"))
    lying = FaultyOps(corrupt=lambda p: p == target)
    with pytest.raises(InstallFailed, match="read-back"):
        sim.install(sim.bundle(), lying)
    assert "B" not in sim.env().order
    assert sim.state().slots["B"].status == st.Status.INSTALLING
    assert sim.power_on() == "A"
    sim.install(sim.bundle())  # a healthy disk again: it works
    assert sim.power_on() == "B"


def test_28_replacing_the_file_after_verification_has_no_effect(sim: Sim) -> None:
    good = payload_bytes(40_000, 3)
    path = sim.bundle(good)
    evil = sim.bundle(payload_bytes(40_000, 4), name="evil.pbdl")

    def swap(step: str) -> None:
        if step == "verify":
            os.replace(evil, path)  # rename over the verified file

    inst.Installer(sim.device(), on_step=swap).install(str(path))
    assert sim.slot_bytes("B") == good


def test_28_rewriting_the_file_in_place_after_verification_is_caught(sim: Sim) -> None:
    path = sim.bundle(payload_bytes(40_000, 5), compression="none")
    data = path.read_bytes()

    def tamper(step: str) -> None:
        if step == "verify":
            with open(path, "r+b") as f:
                f.seek(len(data) - 100)
                f.write(b"\xff" * 50)

    with pytest.raises(DigestMismatch, match="changed after verification"):
        inst.Installer(sim.device(), on_step=tamper).install(str(path))
    assert "B" not in sim.env().order
    assert sim.power_on() == "A" and sim.slot_bytes("A") == FACTORY


def test_status_reports_both_slots(sim: Sim) -> None:
    sim.install(sim.bundle())
    s = inst.status(sim.device())
    assert s.booted == "A" and s.state.slots["B"].status == st.Status.PENDING


def test_state_round_trips(tmp_path: Path) -> None:
    s = st.BootState.factory("B", "1", 4)
    assert st.BootState.from_bytes(s.to_bytes()) == s
    e = st.BootEnv.factory("B")
    assert st.BootEnv.from_bytes(e.to_bytes()) == e


def test_fallback_never_points_at_the_slot_being_written(sim: Sim) -> None:
    sim.install(sim.bundle(security_version=2))
    sim.power_on()
    sim.mark_good()  # B good, last good B
    inst.rollback(sim.device(), allow_below_floor=True)  # next boot A; no reboot yet
    assert sim.env().last_good == "A"
    target = str(sim.slot_path("A"))
    with pytest.raises(InstallFailed):
        sim.install(sim.bundle(security_version=3), FaultyOps([inst_fault(target)]))
    env = sim.env()
    assert env.last_good == "B" and env.order == ("B",) and sim.state().last_good == "B"
    # Even with every attempt used up, the fallback is the intact slot.
    for _ in range(10):
        assert sim.power_on() == "B"


def test_one_update_operation_at_a_time(sim: Sim) -> None:
    import fcntl

    with open(sim.root / "state" / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        before = sim.snapshot()
        with pytest.raises(Refused, match="another update operation"):
            sim.install(sim.bundle())
        with pytest.raises(Refused, match="another update operation"):
            sim.mark_good()
        assert sim.snapshot() == before
    sim.install(sim.bundle())  # released


def test_illegal_slot_transitions_raise() -> None:
    with pytest.raises(Refused, match="cannot confirm"):
        st.transition(st.Status.INSTALLING, st.Event.CONFIRM)
    with pytest.raises(Refused, match="cannot activate"):
        st.transition(st.Status.GOOD, st.Event.ACTIVATE)
    assert st.transition(st.Status.PENDING, st.Event.GIVE_UP) == st.Status.FAILED
