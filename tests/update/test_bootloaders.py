"""The U-Boot and GRUB backends against the real tools on environment files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from firmware.update import state as st
from firmware.update.bootloader import GrubBootloader, UBootBootloader
from firmware.update.errors import StateError

needs_uboot = pytest.mark.skipif(
    shutil.which("fw_setenv") is None, reason="libubootenv-tool not installed"
)
needs_grub = pytest.mark.skipif(
    shutil.which("grub-editenv") is None, reason="grub-common not installed"
)


def walk(bl: UBootBootloader | GrubBootloader) -> None:
    env = st.BootEnv.factory("A")
    bl.save(env)
    assert bl.load() == env
    s = st.BootState.factory("A", "1", 1)
    s, env = st.mark_installing(s, env, "B")
    bl.save(env)
    s, env = st.activate(s, env, "B", st.SlotRecord(version="2", security_version=2))
    bl.save(env)
    assert bl.load().order == ("B", "A")
    choice = st.choose_boot(bl.load())  # what the boot script does
    bl.save(choice.env)
    assert choice.slot == "B" and bl.load().left["B"] == st.DEFAULT_ATTEMPTS - 1
    s, env = st.mark_good(s, bl.load(), "B")
    bl.save(env)
    assert bl.load().last_good == "B" and bl.load().left["B"] == st.DEFAULT_ATTEMPTS


@needs_uboot
def test_uboot_environment_with_fw_setenv(tmp_path: Path) -> None:
    copies = [tmp_path / "env0", tmp_path / "env1"]
    for c in copies:
        c.write_bytes(b"\0" * 0x4000)
    cfg = tmp_path / "fw_env.config"
    cfg.write_text("".join(f"{c} 0x0 0x4000\n" for c in copies))
    default = tmp_path / "default.env"
    default.write_text("".join(f"{k}={v}\n" for k, v in st.BootEnv.factory("A").to_vars().items()))
    walk(UBootBootloader(str(cfg), str(default)))


@needs_grub
def test_grub_environment_with_grub_editenv(tmp_path: Path) -> None:
    walk(GrubBootloader(str(tmp_path / "grubenv")))
    assert (tmp_path / "grubenv").stat().st_size == 1024  # GRUB's fixed block


@needs_grub
def test_grub_missing_variables_is_a_clear_error(tmp_path: Path) -> None:
    bl = GrubBootloader(str(tmp_path / "grubenv"))
    import subprocess

    subprocess.run(["grub-editenv", str(tmp_path / "grubenv"), "create"], check=True)
    with pytest.raises(StateError, match="incomplete"):
        bl.load()


def test_missing_tool_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="failed"):
        UBootBootloader(printenv=str(tmp_path / "no-such-tool")).load()
