"""Full disk and I/O errors fail cleanly: issue 7 test 24."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.update import state as st
from firmware.update.device import CONFIG_NAME as CONFIG_NAME_FOR_TESTS
from firmware.update.errors import InstallFailed
from firmware.update.fsio import Fault, FaultyOps
from tests.update.helpers import FACTORY, Sim, payload_bytes


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("where", ["slot", "state", "bootenv"])
def test_24_injected_full_disk_and_io_error(sim: Sim, code: int, where: str) -> None:
    data = payload_bytes(40_000, 2)
    path = sim.bundle(data)
    target = str(sim.slot_path("B"))

    def match(p: str) -> bool:
        return p == target if where == "slot" else f"/{where}." in p

    # Writes to the records happen at mark-bad; fail the second one (activation) for
    # the records so that the slot was already written.
    index = 0 if where == "slot" else 1
    ops = FaultyOps([Fault("write", index, error=code, match=match)])
    with pytest.raises(InstallFailed, match=os.strerror(code)):
        sim.install(path, ops)
    assert ops.fired
    assert sim.slot_bytes("A") == FACTORY
    assert sim.power_on() == "A"
    assert sim.state().slots["A"].status == st.Status.GOOD
    sim.install(path)  # the disk has room again
    assert sim.power_on() == "B" and sim.slot_bytes("B") == data


def test_24_fsync_error_fails_cleanly(sim: Sim) -> None:
    target = str(sim.slot_path("B"))
    ops = FaultyOps([Fault("fsync", 0, error=errno.EIO, match=lambda p: p == target)])
    with pytest.raises(InstallFailed, match="Input/output error"):
        sim.install(sim.bundle(), ops)
    assert "B" not in sim.env().order and sim.power_on() == "A"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs (needs root, as in CI); skipped where mounting is not allowed."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_24_real_full_filesystem(sim: Sim, small_fs: Path) -> None:
    cfg = sim.root / CONFIG_NAME_FOR_TESTS
    slot_b = small_fs / "B.rootfs"
    cfg.write_text(cfg.read_text().replace(str(sim.slot_path("B")), str(slot_b)))
    big = payload_bytes(3 * 1024 * 1024, 4)
    with pytest.raises(InstallFailed, match="No space left on device"):
        sim.install(sim.bundle(big, compression="xz"))
    assert "B" not in sim.env().order
    assert sim.power_on() == "A" and sim.slot_bytes("A") == FACTORY
    small = payload_bytes(200_000, 5)
    sim.install(sim.bundle(small))
    assert sim.power_on() == "B" and slot_b.read_bytes() == small
