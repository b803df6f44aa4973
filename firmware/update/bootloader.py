"""Pluggable bootloader backends: where the boot order and attempt counters live.

``uboot`` talks to the U-Boot environment with libubootenv's fw_printenv/fw_setenv
(one ``fw_setenv --script`` call per change, so a redundant environment is switched
in one write); ``grub`` to a GRUB environment block with grub-editenv; ``file`` keeps
the variables in a two-copy record (store.py) and can play the bootloader itself
(``power_on``), which is what the simulator and the tests use.  All three hold the
same variables (state.BootEnv.to_vars) that the boot scripts in image/ read.
"""

from __future__ import annotations

import abc
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from typing import ClassVar

from firmware.update.errors import StateError
from firmware.update.fsio import FileOps, write_atomic
from firmware.update.state import BootChoice, BootEnv, choose_boot
from firmware.update.store import DualStore, Record

TOOL_TIMEOUT_S = 30.0
MAX_TOOL_OUTPUT = 64 * 1024


class Bootloader(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def load(self) -> BootEnv: ...

    @abc.abstractmethod
    def save(self, env: BootEnv) -> None: ...


class FileBootloader(Bootloader):
    """The simulated bootloader: variables in a two-copy record under ``directory``."""

    name = "file"

    def __init__(self, ops: FileOps, directory: str) -> None:
        self.ops = ops
        self.directory = directory
        self.store = DualStore(ops, directory, "bootenv")
        self._last: Record | None = None

    def load(self) -> BootEnv:
        rec = self.store.load()
        if rec is None:
            raise StateError(f"no boot environment in {self.directory}")
        self._last = rec
        return BootEnv.from_bytes(rec.payload)

    def save(self, env: BootEnv) -> None:
        current = self._last if self._last is not None else self.store.load()
        self._last = self.store.save(env.to_bytes(), current)

    def power_on(self) -> BootChoice:
        """Run the boot script: pick a slot, count the attempt, say what was booted."""
        choice = choose_boot(self.load())
        self.save(choice.env)
        write_atomic(self.ops, booted_marker(self.directory), choice.slot.encode() + b"\n")
        return choice


def booted_marker(directory: str) -> str:
    # The simulator's stand-in for the kernel command line (ponte.slot=A).
    return os.path.join(directory, "booted")


def _run(argv: Sequence[str]) -> str:
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StateError(f"{argv[0]} failed: {exc}") from None
    if proc.returncode != 0:
        raise StateError(f"{argv[0]} exited {proc.returncode}: {proc.stderr.strip()[:200]}")
    return proc.stdout[:MAX_TOOL_OUTPUT]


def _parse_lines(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value
    return out


class UBootBootloader(Bootloader):
    name = "uboot"

    def __init__(
        self,
        config: str | None = None,
        default_env: str | None = None,
        printenv: str = "fw_printenv",
        setenv: str = "fw_setenv",
    ) -> None:
        self.config = config
        self.default_env = default_env
        self.printenv = printenv
        self.setenv = setenv

    def _opts(self) -> list[str]:
        opts = ["-c", self.config] if self.config else []
        if self.default_env:
            opts += ["-f", self.default_env]
        return opts

    def variables(self) -> Mapping[str, str]:
        return _parse_lines(_run([self.printenv, *self._opts()]))

    def load(self) -> BootEnv:
        return BootEnv.from_vars(self.variables())

    def save(self, env: BootEnv) -> None:
        # libubootenv's script syntax is name=value, one per line; all are applied in one
        # environment write.
        script = "".join(f"{k}={v}\n" for k, v in sorted(env.to_vars().items()))
        with tempfile.NamedTemporaryFile("w", prefix="ponte-fwenv-", suffix=".txt") as f:
            f.write(script)
            f.flush()
            _run([self.setenv, *self._opts(), "-s", f.name])
        if self.load() != env:
            raise StateError("U-Boot environment did not take the new boot order")


class GrubBootloader(Bootloader):
    name = "grub"

    def __init__(self, envfile: str, editenv: str = "grub-editenv") -> None:
        self.envfile = envfile
        self.editenv = editenv

    def load(self) -> BootEnv:
        return BootEnv.from_vars(_parse_lines(_run([self.editenv, self.envfile, "list"])))

    def save(self, env: BootEnv) -> None:
        if not os.path.exists(self.envfile):
            _run([self.editenv, self.envfile, "create"])
        # grub-editenv rewrites the 1 KiB block through a new file and a rename.
        pairs = [f"{k}={v}" for k, v in sorted(env.to_vars().items())]
        _run([self.editenv, self.envfile, "set", *pairs])
        if self.load() != env:
            raise StateError("GRUB environment did not take the new boot order")


BOOTLOADERS: dict[str, type[Bootloader]] = {
    FileBootloader.name: FileBootloader,
    UBootBootloader.name: UBootBootloader,
    GrubBootloader.name: GrubBootloader,
}
