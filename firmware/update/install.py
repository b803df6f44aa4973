"""The installer: a logged sequence of named steps over a pure plan (RAUC install.c).

    open           open the bundle once; every later read uses this descriptor
    verify         header, signatures, manifest, then every payload byte's SHA-256
    plan           pure checks: compatible id, security version >= floor, booted slot
                   good, images fit the target slot; the target is never the booted slot
    mark-bad       take the target out of the boot order (zero attempts), record it as
                   installing, before its first byte is written
    write          stream each payload: hash the stored bytes again, decompress bounded
                   by the declared size, hash the plain bytes, write, fsync
    read-back      drop the cache, read the slot back and hash it again
    trust          adopt the bundle's new keyring, if it carries one
    activate       record the slot pending and put it first with N boot attempts

Nothing is written before ``plan`` has passed.  The bytes written are hashed as they
are written, so a bundle changed on disk after ``verify`` can never be activated.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

from firmware.update import state as st
from firmware.update.bundle import (
    Decoder,
    Image,
    ProgressFn,
    Verified,
    file_reader,
    iter_stored,
    read_envelope_unverified,
    verify_envelope,
    verify_payloads,
)
from firmware.update.device import Device, DeviceConfig
from firmware.update.errors import (
    DigestMismatch,
    Incompatible,
    InstallFailed,
    Refused,
    SecurityVersionTooLow,
)
from firmware.update.fsio import FileOps
from firmware.update.keyring import Keyring

log = logging.getLogger(__name__)

STEPS = ("open", "verify", "plan", "mark-bad", "write", "read-back", "trust", "activate")
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Options:
    allow_equal_security_version: bool = False


@dataclass(frozen=True)
class Target:
    image: Image
    offset: int
    path: str


@dataclass(frozen=True)
class Plan:
    booted: str
    target: str
    writes: tuple[Target, ...]
    record: st.SlotRecord
    new_keyring: Keyring | None


def make_plan(
    config: DeviceConfig,
    boot_state: st.BootState,
    booted: str,
    verified: Verified,
    options: Options,
    capacity: Callable[[str], int | None],
) -> Plan:
    """Decide everything about an install without touching anything."""
    m = verified.manifest
    if m.compatible != config.compatible:
        raise Incompatible(f"bundle is for {m.compatible!r}, this device is {config.compatible!r}")
    floor = boot_state.floor
    if m.security_version < floor or (
        m.security_version == floor and not options.allow_equal_security_version
    ):
        detail = (
            "equal to the floor; pass --allow-same-security-version to reinstall it"
            if m.security_version == floor
            else "below the floor"
        )
        raise SecurityVersionTooLow(
            f"bundle security version {m.security_version} is {detail} {floor}"
        )
    target = st.check_can_install(boot_state, booted)
    if target == booted:  # cannot happen (other() never returns its argument)
        raise Refused("refusing to write the booted slot")
    slot_images = config.slots[target]
    unknown = [i.name for i in m.images if i.name not in slot_images]
    if unknown:
        raise Incompatible(f"bundle image {unknown[0]!r} has no place in slot {target}")
    writes = []
    for image, offset in zip(m.images, verified.offsets, strict=True):
        path = slot_images[image.name]
        room = capacity(path)
        if room is not None and image.size > room:
            raise Incompatible(
                f"image {image.name!r} is {image.size} bytes, slot {target} holds {room}"
            )
        writes.append(Target(image, offset, path))
    record = st.SlotRecord(st.Status.PENDING, m.version, m.security_version, verified.digest)
    return Plan(booted, target, tuple(writes), record, m.keyring)


@dataclass(frozen=True)
class Result:
    target: str
    version: str
    security_version: int


class Installer:
    def __init__(
        self,
        device: Device,
        *,
        options: Options | None = None,
        progress: ProgressFn | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self.device = device
        self.ops: FileOps = device.ops
        self.options = options or Options()
        self.progress = progress
        self.on_step = on_step

    def _step(self, n: int, name: str, detail: str) -> None:
        log.info("install step %d/%d %s: %s", n, len(STEPS), name, detail)
        if self.on_step is not None:
            self.on_step(name)

    def _capacity(self, path: str) -> int | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return self.device.config.slot_capacity or None
        try:
            if stat.S_ISBLK(os.fstat(fd).st_mode):
                return os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
        return self.device.config.slot_capacity or None

    def install(self, path: str) -> Result:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise InstallFailed(f"cannot open bundle {path}: {exc.strerror}") from None
        try:
            with self.device.lock():
                return self._install(fd, path)
        except OSError as exc:
            # A failed record write (full disk, I/O error): the records are written
            # atomically, so the device still boots what it booted before.
            raise InstallFailed(f"install stopped: {exc}") from None
        finally:
            os.close(fd)

    def _install(self, fd: int, path: str) -> Result:
        dev = self.device
        size = os.fstat(fd).st_size
        self._step(1, "open", f"{path} ({size} bytes)")

        read = file_reader(fd)
        keyring = dev.keyring()
        verified = verify_envelope(read_envelope_unverified(read), keyring)
        verify_payloads(read, size, verified, self.progress)
        m = verified.manifest
        self._step(
            2,
            "verify",
            f"{m.compatible} {m.version} (security {m.security_version}), "
            f"signed by {len(verified.signers)} of {keyring.threshold} required key(s)",
        )

        booted = dev.booted()
        boot_state = dev.load_state()
        env = dev.load_env()
        if dev.slot_identity(booted) & dev.slot_identity(st.other(booted)):
            raise Refused("the two slots resolve to the same device")
        plan = make_plan(dev.config, boot_state, booted, verified, self.options, self._capacity)
        self._step(3, "plan", f"booted {booted}, writing slot {plan.target}")

        boot_state, env = st.mark_installing(boot_state, env, plan.target)
        dev.save_env(env)  # the bootloader first: it must never pick a half-written slot
        dev.save_state(boot_state)
        self._step(4, "mark-bad", f"slot {plan.target} out of the boot order")

        total = sum(w.image.size for w in plan.writes)
        written = 0
        for w in plan.writes:
            written = self._write(read, w, written, total)
        self._step(5, "write", f"{total} bytes")

        done = 0
        for w in plan.writes:
            done = self._read_back(w, done, total)
        self._step(6, "read-back", "slot contents match the manifest")

        if plan.new_keyring is not None:
            dev.append_trust(verified.envelope)
            detail = f"keyring v{plan.new_keyring.version} adopted"
        else:
            detail = "keyring unchanged"
        self._step(7, "trust", detail)

        boot_state, env = st.activate(
            boot_state, env, plan.target, plan.record, dev.config.attempts
        )
        dev.save_state(boot_state)
        dev.save_env(env)
        self._step(8, "activate", f"slot {plan.target} pending with {dev.config.attempts} attempts")
        return Result(plan.target, m.version, m.security_version)

    def _write(self, read: Callable[[int, int], bytes], w: Target, done: int, total: int) -> int:
        image = w.image
        stored_hash = hashlib.sha256()
        plain_hash = hashlib.sha256()
        decoder = Decoder(image.compression, image.size, image.name)
        try:
            out = self.ops.open(w.path, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InstallFailed(f"cannot open slot image {w.path}: {exc.strerror}") from None
        try:
            # Uncompressed: the stored bytes are the plain bytes, one hash does for both.
            plain_hash = stored_hash if image.compression == "none" else plain_hash
            for chunk in iter_stored(read, w.offset, image.stored_size, image.name):
                stored_hash.update(chunk)
                for piece in decoder.feed(chunk):
                    if plain_hash is not stored_hash:
                        plain_hash.update(piece)
                    self.ops.write(out, piece)
                    done += len(piece)
                    if self.progress is not None:
                        self.progress("write", done, total)
            decoder.finish()
            if stored_hash.hexdigest() != image.stored_sha256:
                raise DigestMismatch(
                    f"image {image.name!r}: bundle changed after verification (stored digest)"
                )
            if plain_hash.hexdigest() != image.sha256:
                raise DigestMismatch(f"image {image.name!r}: decompressed SHA-256 mismatch")
            if stat.S_ISREG(os.fstat(out).st_mode):
                self.ops.truncate(out, image.size)
            self.ops.fsync(out)
        except OSError as exc:
            raise InstallFailed(
                f"writing slot image {w.path} failed: {errno.errorcode.get(exc.errno or 0, '?')} "
                f"{exc.strerror}"
            ) from None
        finally:
            self.ops.close(out)
        return done

    def _read_back(self, w: Target, done: int, total: int) -> int:
        h = hashlib.sha256()
        try:
            fd = self.ops.open(w.path, os.O_RDONLY)
            try:
                self.ops.drop_cache(fd)
                offset = 0
                while offset < w.image.size:
                    piece = self.ops.pread(fd, min(READ_CHUNK, w.image.size - offset), offset)
                    if not piece:
                        break
                    h.update(piece)
                    offset += len(piece)
                    done += len(piece)
                    if self.progress is not None:
                        self.progress("read-back", done, total)
            finally:
                self.ops.close(fd)
        except OSError as exc:
            raise InstallFailed(f"reading back {w.path} failed: {exc.strerror}") from None
        if offset != w.image.size or h.hexdigest() != w.image.sha256:
            raise InstallFailed(
                f"read-back of {w.path} does not match the manifest: the storage corrupted it"
            )
        return done


# --- the other operations -------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    booted: str
    state: st.BootState
    env: st.BootEnv


def status(device: Device) -> Status:
    return Status(device.booted(), device.load_state(), device.load_env())


def after_boot(device: Device) -> st.BootState:
    """Run once per boot: a pending slot that did not come up is recorded as failed."""
    with device.lock():
        booted = device.booted()
        old = device.load_state()
        new = st.reconcile(old, device.load_env(), booted)
        if new != old:
            log.warning("slot %s did not come up healthy; it is marked failed", st.other(booted))
            device.save_state(new)
        return new


def mark_good(device: Device, slot: str | None = None) -> st.BootState:
    with device.lock():
        booted = device.booted()
        boot_state, env = st.mark_good(
            device.load_state(), device.load_env(), booted, slot, device.config.attempts
        )
        device.save_state(boot_state)  # the floor rises here and only here
        device.save_env(env)
    log.info("slot %s marked good; rollback floor %d", booted, boot_state.floor)
    return boot_state


def rollback(device: Device, *, allow_below_floor: bool = False) -> str:
    with device.lock():
        booted = device.booted()
        _, env = st.rollback(
            device.load_state(),
            device.load_env(),
            booted,
            allow_below_floor=allow_below_floor,
            attempts=device.config.attempts,
        )
        device.save_env(env)
    target = st.other(booted)
    log.info("next boot: slot %s (rollback from %s)", target, booted)
    return target


__all__ = [
    "STEPS",
    "Installer",
    "Options",
    "Plan",
    "Result",
    "after_boot",
    "make_plan",
    "mark_good",
    "rollback",
    "status",
]
