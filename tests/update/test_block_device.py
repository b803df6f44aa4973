"""Slots on real block devices (loop devices; needs root as in CI, skipped otherwise)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.update.device import CONFIG_NAME
from firmware.update.errors import FormatError, Incompatible
from tests.update.helpers import Sim, payload_bytes

SLOT_BYTES = 1024 * 1024


@pytest.fixture
def loop_slot(tmp_path: Path) -> Iterator[str]:
    backing = tmp_path / "slot-b.img"
    backing.write_bytes(b"\xee" * SLOT_BYTES)
    proc = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.skip(f"no loop devices here: {proc.stderr.strip()}")
    dev = proc.stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "--detach", dev], check=False)


def use_block_slot(sim: Sim, dev: str) -> None:
    cfg = sim.root / CONFIG_NAME
    cfg.write_text(cfg.read_text().replace(str(sim.slot_path("B")), dev))


def test_block_device_slot_installs_and_reads_back(sim: Sim, loop_slot: str) -> None:
    use_block_slot(sim, loop_slot)
    data = payload_bytes(300_000, 21)
    sim.install(sim.bundle(data))
    with open(loop_slot, "rb") as f:
        assert f.read(len(data)) == data
        assert f.read(16) == b"\xee" * 16  # a block device is never truncated or grown
    assert sim.power_on() == "B"


def test_block_device_too_small_refused_before_writing(sim: Sim, loop_slot: str) -> None:
    use_block_slot(sim, loop_slot)
    before = sim.snapshot()
    with pytest.raises(Incompatible, match=f"holds {SLOT_BYTES}"):
        sim.install(sim.bundle(payload_bytes(SLOT_BYTES + 1, 22)))
    assert sim.snapshot() == before
    with open(loop_slot, "rb") as f:
        assert f.read(64) == b"\xee" * 64


def test_config_errors_are_named(sim: Sim) -> None:
    cfg = sim.root / CONFIG_NAME
    text = cfg.read_text()
    cfg.write_text(text.replace('bootloader = "file"', 'bootloader = "lilo"'))
    with pytest.raises(FormatError, match="unknown bootloader 'lilo'"):
        sim.config()
    cfg.write_text(text.replace("[slots.B]", "[slots.C]"))
    with pytest.raises(FormatError, match="slots"):
        sim.config()
    cfg.write_text("this is = not toml [")
    with pytest.raises(FormatError, match="invalid"):
        sim.config()
