"""The ``ponte update`` and ``ponte bundle`` commands in real subprocesses.

Issue 7 test 15 (clock at 1970 and 2099, via libfaketime) and the SIGKILL half of 21.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.update.helpers import COMPAT, payload_bytes

FAKETIME = shutil.which("faketime")


def ponte(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> str:
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "firmware", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def ponte_fails(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "firmware", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


@pytest.fixture
def workshop(tmp_path: Path) -> Path:
    """Keys, a keyring and two bundles made with the offline tools."""
    ponte("bundle", "keygen", str(tmp_path / "rel"))
    ponte("bundle", "keyring", str(tmp_path / "ring.json"), "--key", str(tmp_path / "rel.pub"))
    for v, sv in (("2.0", 2), ("1.5", 1)):
        img = tmp_path / f"rootfs-{v}.img"
        img.write_bytes(payload_bytes(300_000, sv))
        ponte(
            "bundle", "build", str(tmp_path / f"{v}.pbdl"), f"rootfs={img}",
            "--compatible", COMPAT, "--version", v, "--security-version", str(sv),
        )  # fmt: skip
        ponte("bundle", "sign", str(tmp_path / f"{v}.pbdl"), "--key", str(tmp_path / "rel.key"))
    return tmp_path


def device(workshop: Path, name: str, env: dict[str, str] | None = None) -> str:
    root = str(workshop / name)
    ponte(
        "update", "--root", root, "init", "--compatible", COMPAT,
        "--keyring", str(workshop / "ring.json"), "--security-version", "1",
        env=env,
    )  # fmt: skip
    return root


def status(root: str, prefix: tuple[str, ...] = ()) -> dict[str, object]:
    out = ponte("update", "--root", root, "status", "--json", prefix=prefix)
    result: dict[str, object] = json.loads(out)
    return result


def test_cli_install_boot_mark_good_rollback(workshop: Path) -> None:
    root = device(workshop, "dev")
    text = ponte(
        "bundle", "inspect", str(workshop / "2.0.pbdl"), "--keyring", str(workshop / "ring.json")
    )
    assert "verified:   yes" in text
    out = ponte(
        "update", "--root", root, "install", str(workshop / "2.0.pbdl"), "--progress", "lines"
    )
    assert "progress verify" in out and "progress write" in out and "into slot B" in out
    assert "booted slot B" in ponte("update", "--root", root, "simulate-boot")
    assert "floor is now 2" in ponte("update", "--root", root, "mark-good")
    err = ponte_fails("update", "--root", root, "install", str(workshop / "1.5.pbdl"))
    assert "SecurityVersionTooLow" in err
    err = ponte_fails("update", "--root", root, "rollback")
    assert "below the floor" in err
    ponte("update", "--root", root, "rollback", "--allow-below-floor")
    assert "booted slot A" in ponte("update", "--root", root, "simulate-boot")
    human = ponte("update", "--root", root, "status")
    assert "* slot A: good" in human


@pytest.mark.skipif(FAKETIME is None, reason="faketime (Debian package) not installed")
def test_15_clock_at_1970_or_2099_changes_nothing(workshop: Path) -> None:
    results: list[dict[str, object]] = []
    for when in (None, "1970-01-01 00:00:01", "2099-12-31 23:59:00"):
        prefix = () if when is None else (str(FAKETIME), "-f", f"@{when}")
        env = {"PONTE_UPDATE_ROOT": str(workshop / f"dev-{len(results)}")}
        root = env["PONTE_UPDATE_ROOT"]
        device(workshop, f"dev-{len(results)}")
        ponte("update", "install", str(workshop / "2.0.pbdl"), env=env, prefix=prefix)
        ponte("update", "simulate-boot", env=env, prefix=prefix)
        ponte("update", "mark-good", env=env, prefix=prefix)
        proc = subprocess.run(
            [*prefix, sys.executable, "-m", "firmware", "update", "install",
             str(workshop / "1.5.pbdl")],
            capture_output=True, text=True, timeout=120, env={**os.environ, **env}, check=False,
        )  # fmt: skip
        assert proc.returncode == 1 and "SecurityVersionTooLow" in proc.stderr
        results.append(status(root, prefix))
    assert results[0] == results[1] == results[2]


def test_21_sigkill_mid_write_then_reinstall(workshop: Path) -> None:
    root = device(workshop, "dev")
    big = workshop / "big.img"
    big.write_bytes(os.urandom(48 * 1024 * 1024))
    bundle = workshop / "big.pbdl"
    ponte(
        "bundle", "build", str(bundle), f"rootfs={big}", "--compatible", COMPAT,
        "--version", "3.0", "--security-version", "3", "--compression", "none",
        "--key", str(workshop / "rel.key"),
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware", "update", "--root", root, "install", str(bundle),
         "--progress", "lines"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    killed_at = None
    for line in proc.stdout:
        parts = line.split()
        if parts[:2] == ["progress", "write"] and int(parts[2]) >= 4 * 1024 * 1024:
            proc.send_signal(signal.SIGKILL)
            killed_at = int(parts[2])
            break
    proc.wait(timeout=60)
    assert killed_at is not None and proc.returncode == -signal.SIGKILL
    slot_b = Path(root) / "slots" / "B.rootfs"
    assert slot_b.stat().st_size < big.stat().st_size  # really stopped mid-write
    s = status(root)
    assert s["order"] == ["A"]
    assert "booted slot A" in ponte("update", "--root", root, "simulate-boot")
    ponte("update", "--root", root, "install", str(bundle))
    assert "booted slot B" in ponte("update", "--root", root, "simulate-boot")
    assert slot_b.read_bytes() == big.read_bytes()
