"""Dial-in conference rooms, sans-IO: one :class:`RoomCaller` per caller, digits in, commands out.

A caller who dialled a room's number is handed to a ``RoomCaller``.  It asks for the PIN
when the room has one (``conf-enter-pin``), lets the caller in when the PIN is right and
the room has space (``JoinRoom``, then ``conf-joined`` to them, and ``conf-only-person``
when nobody else is there yet), and afterwards watches
their digits for the mute toggle (``*6`` by default: ``SetMute`` and ``conf-muted`` /
``conf-unmuted``).  A full room gets ``conf-full`` and a hang-up; too many wrong PINs (or
silences) get ``conf-invalid-pin`` and a hang-up.

The shell carries the commands out: ``PlayPrompt`` to this caller only (``Seat.send_pcm``
once joined), ``JoinRoom``/``LeaveRoom`` on the room's ``firmware.service.conference``
conference, ``SetMute`` likewise, ``Disconnect`` clears the call.  Time comes in as
``now`` (seconds, monotonic); :meth:`RoomCaller.timer` is the next deadline.

Room occupancy is counted by :class:`RoomDirectory`, shared by every caller of a box, so
the participant limit holds however many callers dial in at once.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from firmware.store.schema import ConferenceConfig, ConferenceRoom

# Every prompt this module asks for, by its name in the prompt catalogue (branch ivr).
PROMPT_ENTER_PIN: Final = "conf-enter-pin"
PROMPT_INVALID_PIN: Final = "conf-invalid-pin"
PROMPT_JOINED: Final = "conf-joined"
PROMPT_FULL: Final = "conf-full"
PROMPT_MUTED: Final = "conf-muted"
PROMPT_UNMUTED: Final = "conf-unmuted"
PROMPT_ONLY_PERSON: Final = "conf-only-person"
PROMPTS_USED: Final = (
    PROMPT_ENTER_PIN,
    PROMPT_INVALID_PIN,
    PROMPT_JOINED,
    PROMPT_FULL,
    PROMPT_MUTED,
    PROMPT_UNMUTED,
    PROMPT_ONLY_PERSON,
)
PIN_END: Final = "#"  # ends a PIN early (PINs are 4 to 12 digits; a 12-digit one needs none)
PIN_CLEAR: Final = "*"  # starts the entry again
MAX_PIN_DIGITS: Final = 12  # firmware.store.checks.pin_or_empty
DIGITS: Final = frozenset("0123456789*#ABCD")


class ConferenceProtocolError(Exception):
    """We broke it: an event the caller's state does not allow (a bug in the shell)."""


class ConferenceInputError(ValueError):
    """The caller's side sent something that is not a DTMF digit."""


# --- commands out ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlayPrompt:
    name: str


@dataclass(frozen=True, slots=True)
class JoinRoom:
    room: str


@dataclass(frozen=True, slots=True)
class LeaveRoom:
    room: str


@dataclass(frozen=True, slots=True)
class SetMute:
    room: str
    muted: bool


@dataclass(frozen=True, slots=True)
class Disconnect:
    reason: str  # "full", "invalid-pin"


Command = PlayPrompt | JoinRoom | LeaveRoom | SetMute | Disconnect


# --- events in ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Digit:
    digit: str

    def __post_init__(self) -> None:
        if self.digit not in DIGITS:
            raise ConferenceInputError(f"{self.digit!r} is not a DTMF digit")


@dataclass(frozen=True, slots=True)
class Timeout:
    pass


@dataclass(frozen=True, slots=True)
class HangUp:
    pass


Event = Digit | Timeout | HangUp


class RoomFull(Exception):
    pass


class RoomDirectory:
    """The configured rooms and how many callers each holds now."""

    def __init__(self, config: ConferenceConfig) -> None:
        self.config = config
        self.rooms = {r.number: r for r in config.rooms}
        self._count = dict.fromkeys(self.rooms, 0)

    def room(self, number: str) -> ConferenceRoom | None:
        return self.rooms.get(number)

    def occupancy(self, number: str) -> int:
        return self._count[number]

    def has_space(self, number: str) -> bool:
        return self._count[number] < self.rooms[number].max_participants

    def take(self, number: str) -> None:
        if not self.has_space(number):
            raise RoomFull(number)
        self._count[number] += 1

    def release(self, number: str) -> None:
        if self._count[number] <= 0:
            raise ConferenceProtocolError(f"room {number} released more often than taken")
        self._count[number] -= 1


class State(Enum):
    IDLE = "idle"
    PIN = "pin"
    JOINED = "joined"
    DONE = "done"


class RoomCaller:
    """One caller of one room, from dialling in to leaving."""

    def __init__(self, directory: RoomDirectory, number: str) -> None:
        room = directory.room(number)
        if room is None:
            raise ConferenceProtocolError(f"there is no conference room {number!r}")
        self.directory = directory
        self.room = room
        self.state = State.IDLE
        self.muted = False
        self._entry = ""
        self._failures = 0
        self._code = ""  # digits of the mute toggle matched so far
        self._deadline: float | None = None
        self._table: dict[tuple[State, type], Callable[[Event, float], list[Command]]] = {
            (State.PIN, Digit): self._pin_digit,
            (State.PIN, Timeout): self._pin_timeout,
            (State.PIN, HangUp): self._hang_up,
            (State.JOINED, Digit): self._joined_digit,
            (State.JOINED, HangUp): self._hang_up,
        }

    # --- API -----------------------------------------------------------------------------

    def start(self, now: float) -> list[Command]:
        if self.state is not State.IDLE:
            raise ConferenceProtocolError(f"start in state {self.state.value}")
        if not self.directory.has_space(self.room.number):
            return self._finish(PROMPT_FULL, "full")
        if not self.room.pin:
            return self._join()
        self.state = State.PIN
        self._deadline = now + self.directory.config.pin_timeout_s
        return [PlayPrompt(PROMPT_ENTER_PIN)]

    def handle(self, event: Event, now: float) -> list[Command]:
        handler = self._table.get((self.state, type(event)))
        if handler is None:
            raise ConferenceProtocolError(
                f"{type(event).__name__} is not expected in state {self.state.value}"
            )
        return handler(event, now)

    def timer(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> list[Command]:
        if self._deadline is None or now < self._deadline:
            return []
        return self.handle(Timeout(), now)

    # --- transitions ---------------------------------------------------------------------

    def _pin_digit(self, event: Event, now: float) -> list[Command]:
        assert isinstance(event, Digit)
        self._deadline = now + self.directory.config.pin_timeout_s
        if event.digit == PIN_CLEAR:
            self._entry = ""
            return []
        if event.digit != PIN_END:
            self._entry += event.digit
            # Checked as soon as it is as long as the PIN: no '#' needed, and the entry
            # can never outgrow MAX_PIN_DIGITS.
            if len(self._entry) < len(self.room.pin):
                return []
        elif not self._entry:
            return []  # a '#' on its own is a slip of the finger, not a wrong PIN
        entry, self._entry = self._entry, ""
        if hmac.compare_digest(entry.encode(), self.room.pin.encode()):
            if not self.directory.has_space(self.room.number):
                return self._finish(PROMPT_FULL, "full")
            return self._join()
        return self._wrong()

    def _pin_timeout(self, event: Event, now: float) -> list[Command]:
        self._entry = ""
        out = self._wrong()
        if self.state is State.PIN:
            self._deadline = now + self.directory.config.pin_timeout_s
        return out

    def _wrong(self) -> list[Command]:
        self._failures += 1
        if self._failures >= self.directory.config.pin_attempts:
            return self._finish(PROMPT_INVALID_PIN, "invalid-pin")
        return [PlayPrompt(PROMPT_INVALID_PIN), PlayPrompt(PROMPT_ENTER_PIN)]

    def _join(self) -> list[Command]:
        alone = self.directory.occupancy(self.room.number) == 0
        self.directory.take(self.room.number)
        self.state = State.JOINED
        self._deadline = None
        out: list[Command] = [JoinRoom(self.room.number), PlayPrompt(PROMPT_JOINED)]
        if alone:
            out.append(PlayPrompt(PROMPT_ONLY_PERSON))
        return out

    def _joined_digit(self, event: Event, now: float) -> list[Command]:
        assert isinstance(event, Digit)
        code = self.directory.config.mute_toggle
        self._code += event.digit
        if not code.startswith(self._code):
            self._code = event.digit if code.startswith(event.digit) else ""
            return []
        if self._code != code:
            return []
        self._code = ""
        self.muted = not self.muted
        prompt = PROMPT_MUTED if self.muted else PROMPT_UNMUTED
        return [SetMute(self.room.number, self.muted), PlayPrompt(prompt)]

    def _hang_up(self, event: Event, now: float) -> list[Command]:
        was_joined = self.state is State.JOINED
        self.state = State.DONE
        self._deadline = None
        if was_joined:
            self.directory.release(self.room.number)
            return [LeaveRoom(self.room.number)]
        return []

    def _finish(self, prompt: str, reason: str) -> list[Command]:
        self.state = State.DONE
        self._deadline = None
        return [PlayPrompt(prompt), Disconnect(reason)]
