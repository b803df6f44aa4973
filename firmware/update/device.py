"""The device description (slots, bootloader, keyring) and its persistent records.

A real appliance reads ``/etc/ponte/update.toml``, whose slots name block devices; the
simulator keeps the same file under a data directory (``ponte update --root DIR`` or
``PONTE_UPDATE_ROOT``), whose slots are plain files and whose bootloader is ``file``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import struct
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from firmware.update.bootloader import (
    BOOTLOADERS,
    Bootloader,
    FileBootloader,
    GrubBootloader,
    UBootBootloader,
    booted_marker,
)
from firmware.update.bundle import (
    Envelope,
    Manifest,
    bytes_reader,
    read_envelope_unverified,
    verify_envelope,
)
from firmware.update.errors import FormatError, Refused, Rejected, StateError
from firmware.update.fsio import FileOps, write_atomic
from firmware.update.keyring import Keyring
from firmware.update.state import DEFAULT_ATTEMPTS, MAX_ATTEMPTS, SLOTS, BootEnv, BootState
from firmware.update.store import DualStore, Record

DEFAULT_CONFIG = "/etc/ponte/update.toml"
CONFIG_NAME = "update.toml"
ROOT_ENV = "PONTE_UPDATE_ROOT"
CMDLINE = "/proc/cmdline"
_CMDLINE_SLOT = re.compile(r"(?:^|\s)(?:ponte|rauc)\.slot=([AB])(?:\s|$)")
MAX_CONFIG_BYTES = 64 * 1024
MAX_KEYRING_FILE = 64 * 1024
TRUST_CHAIN_NAME = "keyring-chain"
MAX_TRUST_LINKS = 32
MAX_TRUST_CHAIN_BYTES = MAX_TRUST_LINKS * 80 * 1024  # a link is a header + manifest + sigs


@dataclass(frozen=True)
class DeviceConfig:
    compatible: str
    slots: Mapping[str, Mapping[str, str]]  # slot -> image name -> device or file
    state_dir: str
    keyring: str  # the anchor keyring shipped in the read-only root
    bootloader: str = "file"
    bootloader_options: Mapping[str, str] = field(default_factory=dict)
    booted_from: str = "cmdline"  # or "marker" (the simulator's file in state_dir)
    attempts: int = DEFAULT_ATTEMPTS
    slot_capacity: int = 0  # bytes per image for file-backed slots; 0 = no limit
    # [health]: what the boot health check probes (health.py)
    health_trunks: tuple[str, ...] = ()  # "host" or "host:port", SIP over UDP
    health_commands: tuple[tuple[str, ...], ...] = ()  # each must exit 0
    api_socket: str = ""  # the control API's Unix socket must accept

    def __post_init__(self) -> None:
        if set(self.slots) != set(SLOTS):
            raise FormatError(f"config must define slots {SLOTS}, got {sorted(self.slots)}")
        names = {frozenset(m) for m in self.slots.values()}
        if len(names) != 1 or not next(iter(names)):
            raise FormatError("every slot must hold the same, non-empty set of images")
        paths = [os.path.realpath(p) for m in self.slots.values() for p in m.values()]
        if len(set(paths)) != len(paths):
            raise FormatError("two slot images share a device")
        if self.bootloader not in BOOTLOADERS:
            raise FormatError(f"unknown bootloader {self.bootloader!r}")
        if self.booted_from not in ("cmdline", "marker"):
            raise FormatError(f"booted_from must be cmdline or marker, not {self.booted_from!r}")
        if not 1 <= self.attempts <= MAX_ATTEMPTS:
            raise FormatError(f"attempts must be 1..{MAX_ATTEMPTS}")

    @classmethod
    def load(cls, path: str) -> DeviceConfig:
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise FormatError(f"cannot read update config {path}: {exc.strerror}") from None
        if len(raw) > MAX_CONFIG_BYTES:
            raise FormatError(f"update config {path} is larger than {MAX_CONFIG_BYTES} bytes")
        try:
            obj: dict[str, Any] = tomllib.loads(raw.decode())
            base = os.path.dirname(os.path.abspath(path))
            health = obj.get("health", {})

            def rel(p: str) -> str:
                return p if os.path.isabs(p) else os.path.join(base, p)

            return cls(
                compatible=str(obj["compatible"]),
                slots={
                    s: {name: rel(str(dev)) for name, dev in images.items()}
                    for s, images in obj["slots"].items()
                },
                state_dir=rel(str(obj["state_dir"])),
                keyring=rel(str(obj["keyring"])),
                bootloader=str(obj.get("bootloader", "file")),
                bootloader_options={
                    k: rel(str(v)) for k, v in obj.get("bootloader_options", {}).items()
                },
                booted_from=str(obj.get("booted_from", "cmdline")),
                attempts=int(obj.get("attempts", DEFAULT_ATTEMPTS)),
                slot_capacity=int(obj.get("slot_capacity", 0)),
                health_trunks=tuple(str(t) for t in health.get("trunks", [])),
                health_commands=tuple(tuple(str(a) for a in c) for c in health.get("commands", [])),
                api_socket=str(health.get("api_socket", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError) as exc:
            raise FormatError(f"update config {path} is invalid: {exc}") from None

    def to_toml(self) -> str:
        return tomli_w.dumps(
            {
                "compatible": self.compatible,
                "state_dir": self.state_dir,
                "keyring": self.keyring,
                "bootloader": self.bootloader,
                "bootloader_options": dict(self.bootloader_options),
                "booted_from": self.booted_from,
                "attempts": self.attempts,
                "slot_capacity": self.slot_capacity,
                "slots": {s: dict(m) for s, m in self.slots.items()},
                "health": {
                    "trunks": list(self.health_trunks),
                    "commands": [list(c) for c in self.health_commands],
                    "api_socket": self.api_socket,
                },
            }
        )


def config_path(root: str | None, config: str | None) -> str:
    root = root or os.environ.get(ROOT_ENV)
    if config:
        return config
    if root:
        return os.path.join(root, CONFIG_NAME)
    return DEFAULT_CONFIG


class Device:
    """Opens what a DeviceConfig names; every write goes through ``ops``."""

    def __init__(self, config: DeviceConfig, ops: FileOps | None = None) -> None:
        self.config = config
        self.ops = ops or FileOps()
        self.state_store = DualStore(self.ops, config.state_dir, "state")
        self._state_rec: Record | None = None
        self.bootloader = self._make_bootloader()

    def _make_bootloader(self) -> Bootloader:
        opts = self.config.bootloader_options
        if self.config.bootloader == "file":
            return FileBootloader(self.ops, self.config.state_dir)
        if self.config.bootloader == "uboot":
            return UBootBootloader(
                config=opts.get("fw_env_config"),
                default_env=opts.get("default_env"),
                printenv=opts.get("fw_printenv", "fw_printenv"),
                setenv=opts.get("fw_setenv", "fw_setenv"),
            )
        return GrubBootloader(
            opts.get("grubenv", "/boot/grub/grubenv"), opts.get("grub_editenv", "grub-editenv")
        )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One updater operation at a time (the boot check, an install, a mark-good)."""
        path = os.path.join(self.config.state_dir, "lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Refused(f"another update operation is running ({path} is locked)") from None
            yield
        finally:
            os.close(fd)  # also releases the lock; a killed process releases it too

    # --- which slot is running --------------------------------------------------------

    def booted(self) -> str:
        if self.config.booted_from == "marker":
            path = booted_marker(self.config.state_dir)
            try:
                with open(path, encoding="ascii") as f:
                    slot = f.read(16).strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise StateError(f"cannot tell the booted slot from {path}: {exc}") from None
        else:
            try:
                with open(CMDLINE, encoding="utf-8", errors="replace") as f:
                    found = _CMDLINE_SLOT.search(f.read(MAX_CONFIG_BYTES))
            except OSError as exc:
                raise StateError(f"cannot read {CMDLINE}: {exc.strerror}") from None
            slot = found.group(1) if found else ""
        if slot not in SLOTS:
            raise StateError(f"booted slot {slot!r} is not one of {SLOTS}")
        return slot

    def slot_identity(self, slot: str) -> set[tuple[int, int]]:
        """(device, inode) or (0, rdev) of a slot's images, to catch aliases."""
        ids: set[tuple[int, int]] = set()
        for path in self.config.slots[slot].values():
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            ids.add((0, st.st_rdev) if stat.S_ISBLK(st.st_mode) else (st.st_dev, st.st_ino))
        return ids

    # --- records ----------------------------------------------------------------------

    def load_state(self) -> BootState:
        rec = self.state_store.load()
        if rec is None:
            raise StateError(f"no boot state in {self.config.state_dir}")
        self._state_rec = rec
        return BootState.from_bytes(rec.payload)

    def save_state(self, state: BootState) -> None:
        current = self._state_rec if self._state_rec is not None else self.state_store.load()
        self._state_rec = self.state_store.save(state.to_bytes(), current)

    def load_env(self) -> BootEnv:
        return self.bootloader.load()

    def save_env(self, env: BootEnv) -> None:
        self.bootloader.save(env)

    # --- trust ----------------------------------------------------------------------
    #
    # The anchor keyring ships in the read-only root.  Rotations are kept in the data
    # partition as the chain of signed manifests that carried each new keyring; the
    # effective keyring is re-derived from the anchor through that chain at every use,
    # so writing the data partition cannot add a trusted key.

    def trust_chain_path(self) -> str:
        return os.path.join(self.config.state_dir, TRUST_CHAIN_NAME)

    def _anchor(self) -> Keyring:
        try:
            with open(self.config.keyring, "rb") as f:
                return Keyring.from_bytes(f.read(MAX_KEYRING_FILE))
        except OSError as exc:
            raise StateError(f"cannot read keyring {self.config.keyring}: {exc.strerror}") from None

    def _chain(self) -> list[bytes]:
        try:
            with open(self.trust_chain_path(), "rb") as f:
                data = f.read(MAX_TRUST_CHAIN_BYTES + 1)
        except FileNotFoundError:
            return []
        if len(data) > MAX_TRUST_CHAIN_BYTES:
            raise StateError("keyring chain is larger than any chain we write")
        links, offset = [], 0
        while offset < len(data):
            if offset + 4 > len(data):
                raise StateError("keyring chain is truncated")
            (n,) = struct.unpack_from("<I", data, offset)
            link = data[offset + 4 : offset + 4 + n]
            if len(link) != n:
                raise StateError("keyring chain is truncated")
            links.append(link)
            offset += 4 + n
        return links

    def keyring(self) -> Keyring:
        current = self._anchor()
        for n, link in enumerate(self._chain()):
            try:
                envelope = read_envelope_unverified(bytes_reader(link))
                claimed = Manifest.from_bytes_unverified(envelope.manifest_bytes).keyring
                if claimed is None or claimed.version <= current.version:
                    continue  # superseded, e.g. by a newer anchor in a newer image
                verified = verify_envelope(envelope, current)
            except Rejected as exc:
                raise StateError(f"keyring chain link {n} does not verify: {exc}") from None
            if verified.manifest.keyring is None:  # parsed the same bytes above
                raise StateError(f"keyring chain link {n} carries no keyring")
            current = verified.manifest.keyring
        return current

    def append_trust(self, envelope: Envelope) -> None:
        """Keep the verified manifest that carried a new keyring."""
        links = [*self._chain(), envelope.to_bytes()]
        if len(links) > MAX_TRUST_LINKS:
            raise StateError(f"more than {MAX_TRUST_LINKS} key rotations; ship a new anchor")
        data = b"".join(struct.pack("<I", len(x)) + x for x in links)
        write_atomic(self.ops, self.trust_chain_path(), data)


def init_simulated(
    root: str,
    *,
    compatible: str,
    keyring: Keyring,
    version: str = "factory",
    security_version: int = 0,
    slot_capacity: int = 0,
    factory_image: bytes = b"factory image\n",
    attempts: int = DEFAULT_ATTEMPTS,
) -> DeviceConfig:
    """Create a simulated device under ``root``: slot A holds a good factory image."""
    os.makedirs(os.path.join(root, "slots"), exist_ok=True)
    state_dir = os.path.join(root, "state")
    os.makedirs(state_dir, exist_ok=True)
    keyring_path = os.path.join(root, "keyring.json")
    with open(keyring_path, "wb") as f:
        f.write(keyring.to_bytes())
    config = DeviceConfig(
        compatible=compatible,
        slots={s: {"rootfs": os.path.join(root, "slots", f"{s}.rootfs")} for s in SLOTS},
        state_dir=state_dir,
        keyring=keyring_path,
        bootloader="file",
        booted_from="marker",
        attempts=attempts,
        slot_capacity=slot_capacity,
    )
    with open(config.slots["A"]["rootfs"], "wb") as f:
        f.write(factory_image)
    open(config.slots["B"]["rootfs"], "wb").close()
    with open(os.path.join(root, CONFIG_NAME), "w", encoding="utf-8") as f:
        f.write(config.to_toml())
    dev = Device(config)
    dev.save_state(BootState.factory("A", version, security_version))
    dev.save_env(BootEnv.factory("A", attempts))
    write_atomic(dev.ops, booted_marker(state_dir), b"A\n")
    return config
