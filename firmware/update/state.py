"""Boot state and the bootchooser: pure data and pure transitions.

Two records work together, as in RAUC's bootchooser:

* ``BootEnv`` is what the bootloader reads at power-on: the slot order, the boot
  attempts left per slot and the last good slot.  The bootloader script counts the
  attempts down (``choose_boot`` is that algorithm, shared by the simulator and the
  U-Boot/GRUB scripts in image/).
* ``BootState`` is the updater's own record: per slot its status, version and
  security version, and the rollback floor.

Every transition below takes records and returns new ones; the shell persists them.
Illegal requests raise ``Refused``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from firmware.update import canonical
from firmware.update.errors import FormatError, Refused, StateError

SLOTS = ("A", "B")
DEFAULT_ATTEMPTS = 3  # boot tries before falling back (RAUC's boot.cmd examples use 3)
MAX_ATTEMPTS = 9  # the GRUB script counts down by table lookup, one digit


class Status(enum.StrEnum):
    GOOD = "good"  # booted and passed the health check
    PENDING = "pending"  # installed, waiting to boot and pass the health check
    INSTALLING = "installing"  # being written: never bootable
    FAILED = "failed"  # ran out of boot attempts or was rolled back from
    EMPTY = "empty"


class Event(enum.StrEnum):
    INSTALL = "install"  # the installer takes the slot (mark-bad)
    ACTIVATE = "activate"  # written and read back: ready to boot
    CONFIRM = "confirm"  # the health check passed while it was running
    GIVE_UP = "give-up"  # not running, and the bootloader will not try it again


# Slot lifecycle (RAUC's bootchooser states, plus INSTALLING).  Anything not listed is
# illegal and raises Refused: e.g. confirming a slot that is installing or has failed.
TRANSITIONS: dict[tuple[Status, Event], Status] = {
    **{(s, Event.INSTALL): Status.INSTALLING for s in Status},
    (Status.INSTALLING, Event.ACTIVATE): Status.PENDING,
    (Status.PENDING, Event.CONFIRM): Status.GOOD,
    (Status.GOOD, Event.CONFIRM): Status.GOOD,
    (Status.PENDING, Event.GIVE_UP): Status.FAILED,
}


def transition(status: Status, event: Event) -> Status:
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise Refused(f"a slot that is {status} cannot {event}") from None


@dataclass(frozen=True)
class SlotRecord:
    status: Status = Status.EMPTY
    version: str = ""
    security_version: int = 0
    bundle: str = ""  # SHA-256 of the installed bundle's manifest

    def to_obj(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "version": self.version,
            "security_version": self.security_version,
            "bundle": self.bundle,
        }


def other(slot: str) -> str:
    if slot not in SLOTS:
        raise StateError(f"unknown slot {slot!r}")
    return SLOTS[1 - SLOTS.index(slot)]


@dataclass(frozen=True)
class BootState:
    floor: int
    last_good: str
    slots: Mapping[str, SlotRecord] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.slots) != set(SLOTS):
            raise StateError(f"boot state must describe slots {SLOTS}")
        if self.last_good not in SLOTS:
            raise StateError(f"last good slot {self.last_good!r} unknown")
        if self.floor < 0:
            raise StateError("negative rollback floor")

    def slot(self, name: str) -> SlotRecord:
        if name not in self.slots:
            raise StateError(f"unknown slot {name!r}")
        return self.slots[name]

    def with_slot(self, name: str, record: SlotRecord) -> BootState:
        slots = dict(self.slots)
        slots[name] = record
        return replace(self, slots=slots)

    def to_bytes(self) -> bytes:
        return canonical.encode(
            {
                "floor": self.floor,
                "last_good": self.last_good,
                "slots": {n: self.slots[n].to_obj() for n in SLOTS},
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> BootState:
        try:
            obj = canonical.decode(data, what="boot state")
            slots = {
                n: SlotRecord(
                    Status(r["status"]), r["version"], int(r["security_version"]), r["bundle"]
                )
                for n, r in obj["slots"].items()
            }
            return cls(int(obj["floor"]), obj["last_good"], slots)
        except (KeyError, TypeError, ValueError, AttributeError, FormatError) as exc:
            raise StateError(f"boot state is malformed: {exc}") from None

    @classmethod
    def factory(cls, booted: str, version: str, security_version: int) -> BootState:
        """A device fresh from the factory: ``booted`` holds a good image."""
        good = SlotRecord(Status.GOOD, version, security_version, "")
        return cls(
            floor=security_version,
            last_good=booted,
            slots={booted: good, other(booted): SlotRecord()},
        )


@dataclass(frozen=True)
class BootEnv:
    order: tuple[str, ...]
    left: Mapping[str, int]
    last_good: str

    def __post_init__(self) -> None:
        if len(set(self.order)) != len(self.order) or not set(self.order) <= set(SLOTS):
            raise StateError(f"boot order {self.order} is not valid")
        if set(self.left) != set(SLOTS):
            raise StateError("boot attempts must be given for every slot")
        if any(not 0 <= n <= MAX_ATTEMPTS for n in self.left.values()):
            raise StateError(f"boot attempts out of range 0..{MAX_ATTEMPTS}")
        if self.last_good not in SLOTS:
            raise StateError(f"last good slot {self.last_good!r} unknown")

    def with_left(self, slot: str, n: int) -> BootEnv:
        left = dict(self.left)
        left[slot] = n
        return replace(self, left=left)

    # The bootloader's variable names (RAUC's U-Boot convention, plus the fallback).
    def to_vars(self) -> dict[str, str]:
        out = {"BOOT_ORDER": " ".join(self.order), "BOOT_LAST_GOOD": self.last_good}
        for s in SLOTS:
            out[f"BOOT_{s}_LEFT"] = str(self.left[s])
        return out

    @classmethod
    def from_vars(cls, env: Mapping[str, str]) -> BootEnv:
        try:
            return cls(
                order=tuple(env.get("BOOT_ORDER", "").split()),
                left={s: int(env[f"BOOT_{s}_LEFT"]) for s in SLOTS},
                last_good=env["BOOT_LAST_GOOD"],
            )
        except (KeyError, ValueError) as exc:
            raise StateError(f"bootloader environment incomplete or malformed: {exc}") from None

    def to_bytes(self) -> bytes:
        return canonical.encode(self.to_vars())

    @classmethod
    def from_bytes(cls, data: bytes) -> BootEnv:
        try:
            obj = canonical.decode(data, what="boot environment")
        except FormatError as exc:
            raise StateError(str(exc)) from None
        if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
            raise StateError("boot environment must map names to strings")
        return cls.from_vars(obj)

    @classmethod
    def factory(cls, booted: str, attempts: int = DEFAULT_ATTEMPTS) -> BootEnv:
        return cls(order=(booted,), left={booted: attempts, other(booted): 0}, last_good=booted)


# --- the bootloader's algorithm -----------------------------------------------------


@dataclass(frozen=True)
class BootChoice:
    slot: str
    env: BootEnv
    fallback: bool  # every slot in the order was out of attempts


def choose_boot(env: BootEnv, attempts: int = DEFAULT_ATTEMPTS) -> BootChoice:
    """What the bootloader does at power-on; it never halts.

    The first slot in the order with attempts left is booted and its count decremented.
    If none has any, the last good slot gets fresh attempts and is booted.
    """
    for slot in env.order:
        if env.left[slot] > 0:
            return BootChoice(slot, env.with_left(slot, env.left[slot] - 1), False)
    # Exactly what image/boot/boot.cmd and grub.cfg do: no reordering, the fallback
    # slot gets attempts - 1 (this boot is one of them).
    slot = env.last_good
    return BootChoice(slot, env.with_left(slot, attempts - 1), True)


# --- the updater's transitions ------------------------------------------------------


def check_can_install(state: BootState, booted: str) -> str:
    """The target slot for an install, or ``Refused``."""
    rec = state.slot(booted)
    if rec.status != Status.GOOD:
        # Writing the other slot now could destroy the only image known to work.
        raise Refused(
            f"booted slot {booted} is {rec.status}, not good: mark it good (health check) "
            "or roll back before installing"
        )
    return other(booted)


def mark_installing(state: BootState, env: BootEnv, target: str) -> tuple[BootState, BootEnv]:
    order = tuple(s for s in env.order if s != target)
    # The fallback must never be the slot being overwritten (it can still name it after
    # a manual rollback that was not followed by a reboot).
    keeper = other(target)
    env2 = replace(
        env.with_left(target, 0),
        order=order or (keeper,),
        last_good=keeper if env.last_good == target else env.last_good,
    )
    transition(state.slot(target).status, Event.INSTALL)
    state2 = state.with_slot(target, SlotRecord(Status.INSTALLING))
    if state2.last_good == target:
        state2 = replace(state2, last_good=keeper)
    return state2, env2


def activate(
    state: BootState,
    env: BootEnv,
    target: str,
    record: SlotRecord,
    attempts: int = DEFAULT_ATTEMPTS,
) -> tuple[BootState, BootEnv]:
    status = transition(state.slot(target).status, Event.ACTIVATE)
    pending = replace(record, status=status)
    order = (target, *(s for s in env.order if s != target))
    env2 = replace(env.with_left(target, attempts), order=order)
    return state.with_slot(target, pending), env2


def mark_good(
    state: BootState,
    env: BootEnv,
    booted: str,
    slot: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
) -> tuple[BootState, BootEnv]:
    """The health check passed on ``booted``; the only step that raises the floor."""
    if slot is not None and slot != booted:
        raise Refused(f"mark-good for slot {slot} refused: the running slot is {booted}")
    rec = state.slot(booted)
    status = transition(rec.status, Event.CONFIRM)
    state2 = replace(
        state.with_slot(booted, replace(rec, status=status)),
        floor=max(state.floor, rec.security_version),
        last_good=booted,
    )
    order = (booted, *(s for s in env.order if s != booted))
    env2 = replace(env.with_left(booted, attempts), order=order, last_good=booted)
    return state2, env2


def reconcile(state: BootState, env: BootEnv, booted: str) -> BootState:
    """After a boot: a pending slot that is not running and cannot boot again failed."""
    out = state
    for s in SLOTS:
        rec = out.slot(s)
        if (
            s != booted
            and rec.status == Status.PENDING
            and (s not in env.order or env.left[s] == 0)
        ):
            out = out.with_slot(s, replace(rec, status=transition(rec.status, Event.GIVE_UP)))
    return out


def rollback(
    state: BootState,
    env: BootEnv,
    booted: str,
    *,
    allow_below_floor: bool = False,
    attempts: int = DEFAULT_ATTEMPTS,
) -> tuple[BootState, BootEnv]:
    """Boot the other slot next, if it holds a good image."""
    target = other(booted)
    rec = state.slot(target)
    if rec.status != Status.GOOD:
        raise Refused(f"cannot roll back: slot {target} is {rec.status}, not good")
    if rec.security_version < state.floor and not allow_below_floor:
        raise Refused(
            f"slot {target} has security version {rec.security_version}, below the floor "
            f"{state.floor}; pass --allow-below-floor to boot it anyway"
        )
    order = (target, booted)
    env2 = replace(env.with_left(target, attempts), order=order, last_good=target)
    return state, env2
