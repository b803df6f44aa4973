"""Power loss and torn records: issue 7 tests 21, 22 and 23."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as hs

from firmware.update import state as st
from firmware.update.errors import StateError
from firmware.update.fsio import KINDS, Fault, FaultyOps, FileOps, SimulatedCrash
from firmware.update.store import DualStore
from tests.update.helpers import FACTORY, Sim, payload_bytes

PAYLOAD = payload_bytes(2 * 1024 * 1024 + 5000, 9)  # three write chunks


def clone(template: Sim, dest: Path) -> Sim:
    shutil.copytree(template.root, dest)
    # Paths in the config are absolute: rewrite them for the copy.
    cfg = dest / "update.toml"
    cfg.write_text(cfg.read_text().replace(str(template.root), str(dest)))
    return Sim(dest, template.signers, template.keyring, template.counter)


def count_ops(sim: Sim, action: str) -> dict[str, int]:
    ops = FaultyOps()
    if action == "install":
        sim.install(sim.root / "new.pbdl", ops)
    else:
        from firmware.update import install as inst

        inst.mark_good(sim.device(ops))
    return {k: sum(1 for kind, _p in ops.log if kind == k) for k in KINDS}


def crash_points(counts: dict[str, int]) -> list[tuple[str, int]]:
    return [(k, i) for k in KINDS for i in range(counts[k])]


@pytest.fixture
def template(tmp_path: Path, signing_keys: list[Ed25519PrivateKey]) -> Sim:
    sim = Sim.create(tmp_path / "template", signing_keys[:1])
    sim.bundle(PAYLOAD, compression="none", name="new.pbdl")
    return sim


@pytest.mark.parametrize("power_loss", [False, True], ids=["process-dies", "power-lost"])
def test_21_crash_at_every_write_fsync_and_rename_during_install(
    template: Sim, tmp_path: Path, power_loss: bool
) -> None:
    points = crash_points(count_ops(clone(template, tmp_path / "count"), "install"))
    assert len(points) >= 15
    for n, (kind, index) in enumerate(points):
        sim = clone(template, tmp_path / f"c{n}")
        ops = FaultyOps([Fault(kind, index, torn=kind == "write")], power_loss=power_loss)
        with pytest.raises(SimulatedCrash):
            sim.install(sim.root / "new.pbdl", ops)
        assert ops.fired
        # Power comes back: the device boots an intact image.
        booted = sim.power_on()
        expected = FACTORY if booted == "A" else PAYLOAD
        assert sim.slot_bytes(booted) == expected, (kind, index, booted)
        rec = sim.state().slots[booted]
        assert rec.status in (st.Status.GOOD, st.Status.PENDING), (kind, index)
        if rec.status == st.Status.PENDING:
            sim.mark_good()
        # And a reinstall succeeds and boots.
        again = sim.bundle(payload_bytes(10_000, n), security_version=3)
        result = sim.install(again)
        assert sim.power_on() == result.target
        assert sim.slot_bytes(result.target) == payload_bytes(10_000, n)


def test_22_torn_state_copy_falls_back_to_the_other(sim: Sim) -> None:
    sim.install(sim.bundle())
    store = DualStore(FileOps(), str(sim.root / "state"), "state")
    newest = store.load()
    assert newest is not None
    path = Path(store.paths[newest.copy])
    whole = path.read_bytes()
    for cut in (0, 1, 20, len(whole) // 2, len(whole) - 1):
        path.write_bytes(whole[:cut])
        older = store.load()
        assert older is not None and older.generation == newest.generation - 1
        # The older copy is the state before activation: B still installing, not booted.
        assert st.BootState.from_bytes(older.payload).slots["A"].status == st.Status.GOOD
    path.write_bytes(whole[:-1] + bytes([whole[-1] ^ 1]))
    assert store.load().generation == newest.generation - 1  # type: ignore[union-attr]
    # The boot environment is kept the same way.
    env_store = DualStore(FileOps(), str(sim.root / "state"), "bootenv")
    env_newest = env_store.load()
    assert env_newest is not None
    Path(env_store.paths[env_newest.copy]).write_bytes(b"\0" * 100)
    assert sim.power_on() == "A"  # the older environment: B not yet in the order
    # Both copies damaged: a clear error, not a silent reset.
    for p in store.paths:
        Path(p).write_bytes(b"garbage")
    with pytest.raises(StateError, match="both copies"):
        sim.state()


@settings(max_examples=60, deadline=None)
@given(hs.integers(0, 10_000), hs.integers(1, 255), hs.booleans())
def test_22_any_damage_to_one_copy_never_loses_both(
    tmp_path_factory: pytest.TempPathFactory, pos: int, xor: int, second: bool
) -> None:
    d = tmp_path_factory.mktemp("dual")
    store = DualStore(FileOps(), str(d), "s")
    r1 = store.save(b"one", None)
    r2 = store.save(b"two" * 30, r1)
    victim = Path(store.paths[r2.copy if second else r1.copy])
    data = bytearray(victim.read_bytes())
    data[pos % len(data)] ^= xor
    victim.write_bytes(bytes(data))
    got = store.load()
    assert got is not None
    assert got.payload == (b"one" if second else b"two" * 30)


def test_23_crash_during_mark_good_leaves_state_consistent(template: Sim, tmp_path: Path) -> None:
    base = clone(template, tmp_path / "base")
    base.install(base.root / "new.pbdl")
    assert base.power_on() == "B"
    points = crash_points(count_ops(clone(base, tmp_path / "count"), "mark-good"))
    assert len(points) >= 6
    for n, (kind, index) in enumerate(points):
        sim = clone(base, tmp_path / f"m{n}")
        from firmware.update import install as inst

        ops = FaultyOps([Fault(kind, index, torn=kind == "write")], power_loss=True)
        with pytest.raises(SimulatedCrash):
            inst.mark_good(sim.device(ops))
        s = sim.state()  # loads: one copy or the other
        assert s.floor in (1, 2)
        assert s.slots["B"].status in (st.Status.PENDING, st.Status.GOOD)
        assert (s.floor == 2) == (s.slots["B"].status == st.Status.GOOD)
        assert sim.power_on() == "B"  # still has attempts: the check runs again
        sim.mark_good()
        assert sim.state().floor == 2 and sim.env().left["B"] == sim.config().attempts


def test_crash_leaves_no_temp_file_that_breaks_the_next_save(tmp_path: Path) -> None:
    store = DualStore(FaultyOps([Fault("rename", 0)]), str(tmp_path), "s")
    with pytest.raises(SimulatedCrash):
        store.save(b"x", None)
    assert os.path.exists(str(tmp_path / "s.0.tmp"))
    assert DualStore(FileOps(), str(tmp_path), "s").load() is None
    good = DualStore(FileOps(), str(tmp_path), "s")
    good.save(b"y", None)
    assert good.load() is not None
