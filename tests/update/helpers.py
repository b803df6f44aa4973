"""A simulated device and bundle factory shared by the update tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.update import install as inst
from firmware.update.bootloader import FileBootloader
from firmware.update.bundle import SIGNING_DOMAIN, Envelope, Manifest
from firmware.update.device import CONFIG_NAME, Device, DeviceConfig, init_simulated
from firmware.update.fsio import FileOps
from firmware.update.keyring import Keyring, Signature
from firmware.update.state import BootEnv, BootState
from image import bundle as builder
from image import keys

COMPAT = "ponte-test-amd64"
FACTORY = b"factory image v1\n" * 64


def payload_bytes(n: int, seed: int = 1) -> bytes:
    # Compressible but not trivially: a repeating pseudo-random block.
    block = bytes((i * 131 + seed * 17 + (i >> 3)) & 0xFF for i in range(4096))
    return (block * (n // len(block) + 1))[:n]


@dataclass
class Sim:
    root: Path
    signers: list[Ed25519PrivateKey]
    keyring: Keyring
    counter: int = 0
    payloads: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def create(
        cls, root: Path, signers: list[Ed25519PrivateKey], *, threshold: int = 1, **kw: object
    ) -> Sim:
        ring = Keyring.create([keys.public_bytes(k) for k in signers], threshold=threshold)
        init_simulated(
            str(root),
            compatible=COMPAT,
            keyring=ring,
            version="1.0",
            security_version=1,
            factory_image=FACTORY,
            **kw,  # type: ignore[arg-type]
        )
        return cls(root, signers, ring)

    def config(self) -> DeviceConfig:
        return DeviceConfig.load(str(self.root / CONFIG_NAME))

    def device(self, ops: FileOps | None = None) -> Device:
        return Device(self.config(), ops)

    def bundle(
        self,
        payload: bytes | None = None,
        *,
        version: str = "2.0",
        security_version: int = 2,
        compatible: str = COMPAT,
        compression: str = "xz",
        signers: list[Ed25519PrivateKey] | None = None,
        keyring: Keyring | None = None,
        name: str | None = None,
    ) -> Path:
        self.counter += 1
        data = payload if payload is not None else payload_bytes(20_000, self.counter)
        src = self.root / f"payload-{self.counter}.img"
        src.write_bytes(data)
        out = self.root / (name or f"bundle-{self.counter}.pbdl")
        builder.build(
            str(out),
            [builder.Payload("rootfs", str(src), compression)],
            compatible=compatible,
            version=version,
            security_version=security_version,
            keyring=keyring,
            signers=self.signers[:1] if signers is None else signers,
        )
        self.payloads[str(out)] = data
        return out

    def install(self, path: Path, ops: FileOps | None = None, **kw: object) -> inst.Result:
        opts = inst.Options(**kw)  # type: ignore[arg-type]
        return inst.Installer(self.device(ops), options=opts).install(str(path))

    def power_on(self) -> str:
        """Boot the simulated device: the bootloader chooses, then the boot hook runs."""
        dev = self.device()
        assert isinstance(dev.bootloader, FileBootloader)
        choice = dev.bootloader.power_on()
        inst.after_boot(dev)
        return choice.slot

    def mark_good(self, slot: str | None = None) -> BootState:
        return inst.mark_good(self.device(), slot)

    def state(self) -> BootState:
        return self.device().load_state()

    def env(self) -> BootEnv:
        return self.device().load_env()

    def slot_path(self, slot: str) -> Path:
        return Path(self.config().slots[slot]["rootfs"])

    def slot_bytes(self, slot: str) -> bytes:
        return self.slot_path(slot).read_bytes()

    def snapshot(self) -> dict[str, bytes]:
        """Every persistent file of the device, to prove that nothing changed."""
        out = {}
        for dirpath, _dirs, files in os.walk(self.root):
            for f in files:
                p = os.path.join(dirpath, f)
                if "payload-" in f or f.endswith(".pbdl") or f == "lock":
                    continue  # test inputs, and the (contentless) operation lock
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, self.root)] = fh.read()
        return out


def signed_raw(manifest_bytes: bytes, signers: list[Ed25519PrivateKey], payload: bytes) -> bytes:
    """A bundle from raw manifest bytes: for manifests the builder would refuse."""
    message = SIGNING_DOMAIN + manifest_bytes
    sigs: list[Signature] = [keys.sign(k, message) for k in signers]
    return Envelope(manifest_bytes, tuple(sigs)).to_bytes() + payload


def manifest_of(path: Path) -> Manifest:
    return Manifest.from_bytes_unverified(builder.read_envelope(str(path)).manifest_bytes)
