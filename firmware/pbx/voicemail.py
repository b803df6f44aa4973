"""Voicemail call flows as sans-IO state machines: leaving a message, and the mailbox menu.

Each call into voicemail gets one machine.  The shell feeds it events with the current time
(``handle(event, now)``, ``handle_timer(now)`` when ``next_deadline`` passes) and carries out
the commands it returns, in order:

- ``Play(seq, items)``: play prompts, a message, a greeting or the beep, one after the
  other; report ``PlayFinished(seq)`` when the last sample went out.  ``StopPlayback()``
  cuts the current playback short (a digit barged in); its ``PlayFinished`` is not needed,
  and a late one is ignored (the ``seq`` no longer matches).
- ``StartRecording(kind, box)`` / ``StopRecording(keep)``: record the caller (a
  ``firmware.store.voicemail.RecordingSink``).  The shell reports ``RecordingEnded(reason)``
  when the recording stops by itself (length cap, disk error) or could not start
  (``"refused"``: the box is full or the disk is).
- ``CheckPin(box, pin)`` -> ``PinResult(check)``; ``LoadMessages(box)`` ->
  ``MessagesLoaded(messages)``; ``MarkSaved`` / ``DeleteMessage``: store operations
  (:func:`run_store_command` does them against a ``VoicemailStore``).  ``ChangePin(box,
  pin)`` -> ``PinChanged(ok)``: the PIN lives in the configuration, so the shell saves it
  there.  Message-waiting lamps follow from the store's ``MwiChanged`` events.
- ``HangUp()``: the machine is done; later events are ignored.

Prompts are named as in the prompt catalogue (``firmware/prompts/catalogue.toml``,
kebab-case; numbers ``num-0``..``num-99``, ``num-100``..``num-900``,
``num-1000``..``num-9000``, the digits being ``num-0``..``num-9``); every name used is in
``PROMPTS_USED`` so that the catalogue can be checked against it.  Numbers, digits and
dates are spoken with :func:`say_number`, :func:`say_digits` and :func:`say_datetime`.

Keys, as the catalogue's menu prompts announce them (docs/voicemail.md):

    main menu        1 new messages  2 saved messages  3 record greeting  * repeat  # exit
                     (0 options: 1 record greeting, 2 change PIN, 3 record busy greeting,
                      * back)
    message menu     3 envelope  4 previous  5 repeat  6 next  7 delete  9 save
                     * help      # main menu
    leaving          # (or hanging up) ends the message; # during the greeting skips it
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import time
from dataclasses import dataclass, field
from typing import Final, Literal
from zoneinfo import ZoneInfo

from firmware.store import ConfigError, ConfigStore, VersionConflict
from firmware.store.voicemail import (
    MailboxFull,
    MessageInfo,
    PinCheck,
    StorageFull,
    VoicemailError,
    VoicemailStore,
)

log = logging.getLogger(__name__)

DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")  # ITU-T Q.23: the 16 DTMF signals
# Waiting for a key after a prompt ended: Asterisk's VoiceMail waits 5 s per menu and
# common PBX manuals 5-10 s; 8 s gives an analogue phone user time to find the key.
INPUT_TIMEOUT_S: Final = 8.0
MAX_REPROMPTS: Final = 3  # prompt again at most this often without a key, then goodbye
MAX_PIN_TRIES: Final = 3  # wrong PINs in one call before we hang up (the store counts too)
MAX_PIN_DIGITS: Final = 12  # schema: a PIN is 4 to 12 digits
MAX_BOX_DIGITS: Final = 8  # schema: an extension is 1 to 8 digits
MAX_INVALID: Final = 5  # invalid keys in a row before we give up on the caller
MAX_SAY_NUMBER: Final = 9999  # the catalogue records 0-99, the hundreds and the thousands
MIN_NEW_PIN: Final = 4  # schema: a PIN is 4 to 12 digits

# --- prompt names (firmware/prompts/catalogue.toml; English text quoted) ---------------------

NUMBER_PROMPTS: Final = (
    tuple(f"num-{n}" for n in range(100))
    + tuple(f"num-{n}" for n in range(100, 1000, 100))
    + tuple(f"num-{n}" for n in range(1000, 10000, 1000))
)
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS: Final = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)

P_ENTER_MAILBOX: Final = "vm-enter-mailbox"  # "Please enter your mailbox number, followed ..."
P_ENTER_PIN: Final = "vm-enter-pin"  # "Please enter your PIN, then hash."
# Said for a wrong PIN and an unknown box alike, so that a caller cannot probe for boxes.
P_LOGIN_INCORRECT: Final = "vm-login-incorrect"  # "Login incorrect."
P_LOCKED: Final = "vm-locked"  # "This mailbox is locked. Please try again later."
P_YOU_HAVE: Final = "vm-you-have"  # "You have"
P_NEW_MESSAGE: Final = "vm-new-message"  # "new message."
P_NEW_MESSAGES: Final = "vm-new-messages"  # "new messages."
P_SAVED_MESSAGE: Final = "vm-saved-message"  # "saved message."
P_SAVED_MESSAGES: Final = "vm-saved-messages"  # "saved messages."
P_AND: Final = "vm-and"  # "and"
P_NO_MESSAGES: Final = "vm-no-messages"  # "You have no messages."
P_NO_NEW: Final = "vm-no-new-messages"  # "You have no new messages."
P_NO_SAVED: Final = "vm-no-saved-messages"  # "You have no saved messages."
P_MAIN_MENU: Final = "vm-main-menu"  # "For new messages, press 1. For saved messages, ..."
P_OPTIONS_MENU: Final = "vm-options-menu"  # "To record your greeting, press 1. To change ..."
P_MESSAGE: Final = "vm-message"  # "Message"  (then its number)
P_MESSAGE_MENU: Final = "vm-message-menu"  # "For the envelope, press 3. Previous message, 4. ..."
P_NO_PREVIOUS: Final = "vm-no-previous"  # "This is the first message."
P_NO_MORE: Final = "vm-no-more-messages"  # "There are no more messages."
P_RECEIVED: Final = "vm-received"  # "Received"
P_FROM: Final = "vm-from"  # "from"
P_UNKNOWN_CALLER: Final = "vm-unknown-caller"  # "an unknown caller"
P_DELETED: Final = "vm-deleted"  # "Message deleted."
P_SAVED: Final = "vm-saved"  # "Message saved."
P_RECORD_GREETING: Final = "vm-record-greeting"  # "Record your greeting after the tone. ..."
P_GREETING_SAVED: Final = "vm-greeting-saved"  # "Your greeting has been saved."
P_RECORD_BUSY_GREETING: Final = "vm-record-busy-greeting"  # "Record the greeting callers hear
# when you are busy ..."
P_ENTER_NEW_PIN: Final = "vm-enter-new-pin"  # "Please enter your new PIN, followed by hash."
P_PIN_CHANGED: Final = "vm-pin-changed"  # "Your PIN has been changed."
P_EXTENSION: Final = "vm-extension"  # "The person at extension"
P_NOT_AVAILABLE: Final = "vm-not-available"  # "is not available. Please leave a message ..."
P_BUSY: Final = "vm-busy"  # "The person you are calling is on the phone. Please leave ..."
P_MAILBOX_FULL: Final = "vm-mailbox-full"  # "The mailbox is full."
P_MESSAGE_SAVED: Final = "vm-message-saved"  # "Your message has been recorded."
P_RECORDING_LIMIT: Final = "vm-recording-limit"  # "The maximum message length has been ..."
P_ERROR: Final = "vm-error"  # "Sorry, something went wrong."
P_INVALID: Final = "invalid"  # "That is not a valid choice."
P_GOODBYE: Final = "goodbye"  # "Goodbye."
P_TODAY: Final = "day-today"  # "today"
P_YESTERDAY: Final = "day-yesterday"  # "yesterday"
P_AT: Final = "at"  # "at" (before a time of day)
P_OH: Final = "oh"  # "oh", as in fourteen oh five
P_OCLOCK: Final = "o-clock"  # "o'clock"
P_PLUS: Final = "plus"
P_STAR: Final = "star"
P_HASH: Final = "hash"

PROMPTS_USED: Final[frozenset[str]] = frozenset(
    {
        P_ENTER_MAILBOX,
        P_ENTER_PIN,
        P_LOGIN_INCORRECT,
        P_LOCKED,
        P_YOU_HAVE,
        P_NEW_MESSAGE,
        P_NEW_MESSAGES,
        P_SAVED_MESSAGE,
        P_SAVED_MESSAGES,
        P_AND,
        P_NO_MESSAGES,
        P_NO_NEW,
        P_NO_SAVED,
        P_MAIN_MENU,
        P_OPTIONS_MENU,
        P_MESSAGE,
        P_MESSAGE_MENU,
        P_NO_PREVIOUS,
        P_NO_MORE,
        P_RECEIVED,
        P_FROM,
        P_UNKNOWN_CALLER,
        P_DELETED,
        P_SAVED,
        P_RECORD_GREETING,
        P_GREETING_SAVED,
        P_RECORD_BUSY_GREETING,
        P_ENTER_NEW_PIN,
        P_PIN_CHANGED,
        P_EXTENSION,
        P_NOT_AVAILABLE,
        P_BUSY,
        P_MAILBOX_FULL,
        P_MESSAGE_SAVED,
        P_RECORDING_LIMIT,
        P_ERROR,
        P_INVALID,
        P_GOODBYE,
        P_TODAY,
        P_YESTERDAY,
        P_AT,
        P_OH,
        P_OCLOCK,
        P_PLUS,
        P_STAR,
        P_HASH,
        *NUMBER_PROMPTS,
        *(f"day-{d}" for d in WEEKDAYS),
        *(f"month-{m}" for m in MONTHS),
    }
)

# The beep before recording: 1 kHz for 0.5 s at -10 dBm0 (a tone plan for
# firmware.dsp.tones).  ITU-T E.180 has no tone for "start speaking"; a short 1 kHz tone is
# what Asterisk and most voicemail systems play.
BEEP_PLAN: Final = "!1000@-10/500,0"


# --- speaking numbers and dates ------------------------------------------------------------


def say_number(n: int) -> list[str]:
    """Prompt names speaking ``n`` (0..9999): 'num-3000 num-400 num-42'."""
    if not 0 <= n <= MAX_SAY_NUMBER:
        raise ValueError(f"{n} is outside 0..{MAX_SAY_NUMBER}")
    thousands, rest = divmod(n, 1000)
    hundreds, rest = divmod(rest, 100)
    out = [f"num-{thousands * 1000}"] if thousands else []
    out += [f"num-{hundreds * 100}"] if hundreds else []
    return out + ([f"num-{rest}"] if rest or not out else [])


def say_digits(text: str) -> list[str]:
    """One prompt per dialling symbol ('+', digits, '*', '#'); anything else is skipped."""
    names = {"+": P_PLUS, "*": P_STAR, "#": P_HASH}
    out: list[str] = []
    for c in text:
        if c in "0123456789":
            out.append(f"num-{c}")
        elif c in names:
            out.append(names[c])
    return out


def say_time(hour: int, minute: int) -> list[str]:
    """24-hour clock: 'num-14 o-clock', 'num-14 oh num-5', 'num-14 num-30'."""
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"{hour}:{minute} is not a time of day")
    if minute == 0:
        return [*say_number(hour), P_OCLOCK]
    if minute < 10:
        return [*say_number(hour), P_OH, *say_number(minute)]
    return [*say_number(hour), *say_number(minute)]


def say_datetime(when: dt.datetime, tz: dt.tzinfo, today: dt.date | None = None) -> list[str]:
    """'day-tuesday month-november num-24 at num-14 oh num-5' in the box's time zone;
    'day-today at ...' / 'day-yesterday at ...' when ``today`` (local) says so."""
    if when.tzinfo is None:
        raise ValueError("say_datetime needs an aware datetime")
    local = when.astimezone(tz)
    if today is not None and local.date() == today:
        day = [P_TODAY]
    elif today is not None and local.date() == today - dt.timedelta(days=1):
        day = [P_YESTERDAY]
    else:
        day = [
            f"day-{WEEKDAYS[local.weekday()]}",
            f"month-{MONTHS[local.month - 1]}",
            *say_number(local.day),
        ]
    return [*day, P_AT, *say_time(local.hour, local.minute)]


# --- commands ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str

    def __post_init__(self) -> None:
        if self.name not in PROMPTS_USED:
            raise ValueError(f"prompt {self.name!r} is not in PROMPTS_USED")


@dataclass(frozen=True, slots=True)
class MessageAudio:
    box: str
    message_id: str


@dataclass(frozen=True, slots=True)
class GreetingAudio:
    box: str
    kind: Literal["unavailable", "busy"] = "unavailable"


@dataclass(frozen=True, slots=True)
class Beep:
    plan: str = BEEP_PLAN


PlayItem = Prompt | MessageAudio | GreetingAudio | Beep


@dataclass(frozen=True, slots=True)
class Play:
    seq: int
    items: tuple[PlayItem, ...]

    @property
    def prompt_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.items if isinstance(i, Prompt))


@dataclass(frozen=True, slots=True)
class StopPlayback:
    pass


@dataclass(frozen=True, slots=True)
class StartRecording:
    kind: Literal["message", "greeting", "busy-greeting"]
    box: str


@dataclass(frozen=True, slots=True)
class StopRecording:
    keep: bool


@dataclass(frozen=True, slots=True)
class CheckPin:
    box: str
    pin: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ChangePin:
    """Save ``pin`` as the box's PIN (extensions[].voicemail_pin); answer ``PinChanged``."""

    box: str
    pin: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class LoadMessages:
    box: str


@dataclass(frozen=True, slots=True)
class MarkSaved:
    box: str
    message_id: str


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    box: str
    message_id: str


@dataclass(frozen=True, slots=True)
class HangUp:
    pass


Command = (
    Play
    | StopPlayback
    | StartRecording
    | StopRecording
    | CheckPin
    | ChangePin
    | LoadMessages
    | MarkSaved
    | DeleteMessage
    | HangUp
)

# --- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Digit:
    digit: str

    def __post_init__(self) -> None:
        if self.digit not in DTMF_DIGITS:
            raise MenuMisuse(f"{self.digit!r} is not a DTMF digit")


@dataclass(frozen=True, slots=True)
class PlayFinished:
    seq: int


RecordingEndReason = Literal["cap", "error", "refused"]


@dataclass(frozen=True, slots=True)
class RecordingEnded:
    reason: RecordingEndReason


@dataclass(frozen=True, slots=True)
class PinResult:
    check: PinCheck


@dataclass(frozen=True, slots=True)
class PinChanged:
    ok: bool


@dataclass(frozen=True, slots=True)
class MessagesLoaded:
    messages: tuple[MessageInfo, ...]


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    pass


Event = (
    Digit | PlayFinished | RecordingEnded | PinResult | PinChanged | MessagesLoaded | CallerHungUp
)


class MenuMisuse(Exception):
    """We broke it: the shell sent an event the machine cannot be in a position to get."""


# --- the machines -----------------------------------------------------------------------------


class _Machine:
    def __init__(self) -> None:
        self._seq = 0
        self._playing: int | None = None
        self._deadline: float | None = None
        self._out: list[Command] = []
        self.done = False
        self.started = False

    @property
    def next_deadline(self) -> float | None:
        return None if self.done else self._deadline

    def _play(self, *items: PlayItem | str) -> None:
        self._seq += 1
        self._playing = self._seq
        self._deadline = None
        play = tuple(Prompt(i) if isinstance(i, str) else i for i in items)
        self._out.append(Play(self._seq, play))

    def _barge(self) -> None:
        if self._playing is not None:
            self._playing = None
            self._out.append(StopPlayback())

    def _hang_up(self) -> None:
        self.done = True
        self._deadline = None
        self._out.append(HangUp())

    def _flush(self) -> list[Command]:
        out, self._out = self._out, []
        return out

    def handle(self, event: Event, now: float) -> list[Command]:
        if not self.started:
            raise MenuMisuse("event before start()")
        if self.done:
            return []  # the shell may race a hang-up against a prompt ending
        if isinstance(event, PlayFinished):
            if event.seq != self._playing:
                return []  # stopped by a barge-in, or superseded
            self._playing = None
        self._on(event, now)
        return self._flush()

    def handle_timer(self, now: float) -> list[Command]:
        if self.done or self._deadline is None or now < self._deadline:
            return []
        self._deadline = None
        self._on_timeout(now)
        return self._flush()

    def _on(self, event: Event, now: float) -> None:
        raise NotImplementedError

    def _on_timeout(self, now: float) -> None:
        raise NotImplementedError


class LeaveState(enum.Enum):
    GREETING = "greeting"
    RECORDING = "recording"
    CLOSING = "closing"  # saying the last words before hanging up
    DONE = "done"


LeaveReason = Literal["unavailable", "busy"]


class LeaveMessage(_Machine):
    """A caller leaving a message: greeting (or the default one) -> beep -> record until #,
    hang-up or the cap -> stored.  ``full``: the shell already knows the box is full;
    ``reason`` picks the greeting: no answer, or busy (busy, do not disturb, forwarded on
    busy); ``has_greeting``/``has_busy_greeting``: the owner recorded that one."""

    def __init__(
        self,
        box: str,
        *,
        has_greeting: bool,
        full: bool = False,
        reason: LeaveReason = "unavailable",
        has_busy_greeting: bool = False,
    ) -> None:
        super().__init__()
        self.box = box
        self.has_greeting = has_greeting
        self.has_busy_greeting = has_busy_greeting
        self.full = full
        self.reason = reason
        self.state = LeaveState.GREETING

    def start(self, now: float) -> list[Command]:
        if self.started:
            raise MenuMisuse("started twice")
        self.started = True
        if self.full:
            self._close(P_MAILBOX_FULL)
        else:
            # Busy: the box's busy greeting, else the busy prompt (not the unavailable
            # greeting, which says "not available"; Asterisk does the same).
            greeting: list[PlayItem | str] = (
                ([GreetingAudio(self.box, "busy")] if self.has_busy_greeting else [P_BUSY])
                if self.reason == "busy"
                else [GreetingAudio(self.box)]
                if self.has_greeting
                else [P_EXTENSION, *say_digits(self.box), P_NOT_AVAILABLE]
            )
            self._play(*greeting, Beep())
        return self._flush()

    def _close(self, *words: str) -> None:
        self.state = LeaveState.CLOSING
        self._play(*words, P_GOODBYE)

    def _on(self, event: Event, now: float) -> None:
        state = self.state
        if isinstance(event, CallerHungUp):
            if state is LeaveState.RECORDING:
                self._out.append(StopRecording(keep=True))
            self.state = LeaveState.DONE
            self.done = True
            return
        if isinstance(event, PlayFinished):
            if state is LeaveState.GREETING:
                self.state = LeaveState.RECORDING
                self._out.append(StartRecording("message", self.box))
            elif state is LeaveState.CLOSING:
                self.state = LeaveState.DONE
                self._hang_up()
            return
        if isinstance(event, Digit):
            if state is LeaveState.GREETING and event.digit == "#":
                self._barge()
                self._play(Beep())  # skip the greeting, not the beep
            elif state is LeaveState.RECORDING and event.digit == "#":
                self._out.append(StopRecording(keep=True))
                self._close(P_MESSAGE_SAVED)
            # Other keys: part of the message (a caller pressing keys is still speaking).
            return
        if isinstance(event, RecordingEnded):
            if state is not LeaveState.RECORDING:
                raise MenuMisuse(f"recording ended while {state.value}")
            if event.reason == "refused":
                self._close(P_MAILBOX_FULL)
            elif event.reason == "cap":
                self._out.append(StopRecording(keep=True))
                self._close(P_RECORDING_LIMIT, P_MESSAGE_SAVED)
            else:
                self._out.append(StopRecording(keep=True))  # what reached the disk
                self._close(P_ERROR)
            return
        raise MenuMisuse(f"{type(event).__name__} has no place in leaving a message")

    def _on_timeout(self, now: float) -> None:  # no timers: the cap ends a recording
        pass


class MenuState(enum.Enum):
    ASK_BOX = "ask-box"
    ASK_PIN = "ask-pin"
    CHECKING_PIN = "checking-pin"
    LOADING = "loading"
    MAIN = "main"
    OPTIONS = "options"
    MESSAGE = "message"
    GREETING_PROMPT = "greeting-prompt"
    RECORDING_GREETING = "recording-greeting"
    ASK_NEW_PIN = "ask-new-pin"
    CHANGING_PIN = "changing-pin"
    CLOSING = "closing"
    DONE = "done"


_COLLECTING: Final = (MenuState.ASK_BOX, MenuState.ASK_PIN, MenuState.ASK_NEW_PIN)
_BUSY: Final = (MenuState.CHECKING_PIN, MenuState.LOADING, MenuState.CHANGING_PIN)


class MailboxMenu(_Machine):
    """The owner's menu: login, listen to new and saved messages, envelope, save, delete,
    next, previous, repeat, record a greeting, change the PIN, exit.

    ``box`` None asks for the mailbox number first (voicemail dialled from another phone);
    ``skip_pin`` lets the owner in without a PIN (their own phone, and no PIN configured).
    ``tz`` and ``today`` (the local date when the call started) shape the envelope.
    """

    def __init__(
        self,
        box: str | None,
        *,
        skip_pin: bool = False,
        tz: dt.tzinfo | None = None,
        today: dt.date | None = None,
    ) -> None:
        super().__init__()
        if skip_pin and box is None:
            raise MenuMisuse("skip_pin needs the box (the caller's own)")
        self.box = box
        self.skip_pin = skip_pin
        self.tz = tz or ZoneInfo("UTC")
        self.today = today
        self.state = MenuState.ASK_BOX if box is None else MenuState.ASK_PIN
        self._digits = ""
        self._reprompts = 0
        self._invalid = 0
        self._pin_tries = 0
        self._busy_greeting = False  # the greeting being recorded is the busy one
        self._messages: list[MessageInfo] = []
        self._playlist: list[str] = []  # ids of the folder, fixed when listening starts
        self._index = 0
        self._last_play_was_message = False

    # -- helpers ------------------------------------------------------------------------------
    @property
    def messages(self) -> tuple[MessageInfo, ...]:
        return tuple(self._messages)

    def _count(self, state: str) -> int:
        return sum(1 for m in self._messages if m.state == state)

    def _current(self) -> MessageInfo | None:
        if not 0 <= self._index < len(self._playlist):
            return None
        wanted = self._playlist[self._index]
        return next((m for m in self._messages if m.id == wanted), None)

    def _play(self, *items: PlayItem | str) -> None:
        super()._play(*items)
        self._last_play_was_message = any(isinstance(i, MessageAudio) for i in items)

    def _wait_input(self, now: float) -> None:
        self._deadline = now + INPUT_TIMEOUT_S

    def _close(self, *words: str) -> None:
        self.state = MenuState.CLOSING
        self._play(*words, P_GOODBYE)

    def _box(self) -> str:
        if self.box is None:
            raise MenuMisuse("no box yet")
        return self.box

    def _ask_prompt(self) -> str:
        return {
            MenuState.ASK_BOX: P_ENTER_MAILBOX,
            MenuState.ASK_PIN: P_ENTER_PIN,
            MenuState.ASK_NEW_PIN: P_ENTER_NEW_PIN,
        }[self.state]

    # -- flow ------------------------------------------------------------------------------------
    def start(self, now: float) -> list[Command]:
        if self.started:
            raise MenuMisuse("started twice")
        self.started = True
        if self.state is MenuState.ASK_BOX:
            self._play(P_ENTER_MAILBOX)
        elif self.skip_pin:
            self._load()
        else:
            self._play(P_ENTER_PIN)
        return self._flush()

    def _load(self) -> None:
        self.state = MenuState.LOADING
        self._out.append(LoadMessages(self._box()))

    def _main_menu(self, *before: str, intro: bool = False) -> None:
        self.state = MenuState.MAIN
        words: list[str] = list(before)
        if intro:
            new, saved = self._count("new"), self._count("saved")
            if new == saved == 0:
                words.append(P_NO_MESSAGES)
            else:
                words.append(P_YOU_HAVE)
                if new:
                    words += [*say_number(new), P_NEW_MESSAGE if new == 1 else P_NEW_MESSAGES]
                if new and saved:
                    words.append(P_AND)
                if saved:
                    words += [
                        *say_number(saved),
                        P_SAVED_MESSAGE if saved == 1 else P_SAVED_MESSAGES,
                    ]
        self._play(*words, P_MAIN_MENU)

    def _options_menu(self, *before: str) -> None:
        self.state = MenuState.OPTIONS
        self._play(*before, P_OPTIONS_MENU)

    def _play_message(self, *before: str) -> None:
        current = self._current()
        if current is None:
            self._main_menu(*before, P_NO_MORE)
            return
        self.state = MenuState.MESSAGE
        self._play(
            *before,
            P_MESSAGE,
            *say_number(self._index + 1),
            MessageAudio(current.box, current.id),
        )

    def _message_menu(self, *before: str | PlayItem) -> None:
        self.state = MenuState.MESSAGE
        self._play(*before, P_MESSAGE_MENU)

    def _envelope(self, m: MessageInfo) -> list[str]:
        words = [P_RECEIVED, *say_datetime(m.received_at, self.tz, self.today), P_FROM]
        caller = say_digits(m.caller_number)
        return words + (caller if caller else [P_UNKNOWN_CALLER])

    def _mark_saved(self, m: MessageInfo) -> None:
        if m.state != "new":
            return
        updated = dataclasses.replace(m, state="saved")
        self._messages = [updated if x.id == m.id else x for x in self._messages]
        self._out.append(MarkSaved(m.box, m.id))

    def _on(self, event: Event, now: float) -> None:
        state = self.state
        if isinstance(event, CallerHungUp):
            if state is MenuState.RECORDING_GREETING:
                self._out.append(StopRecording(keep=False))
            self.state = MenuState.DONE
            self.done = True
        elif isinstance(event, PlayFinished):
            self._on_play_finished(now)
        elif isinstance(event, Digit):
            self._on_digit(event.digit, now)
        elif isinstance(event, PinResult):
            if state is not MenuState.CHECKING_PIN:
                raise MenuMisuse(f"PIN result while {state.value}")
            self._on_pin(event.check)
        elif isinstance(event, PinChanged):
            if state is not MenuState.CHANGING_PIN:
                raise MenuMisuse(f"PIN changed while {state.value}")
            self._options_menu(P_PIN_CHANGED if event.ok else P_ERROR)
        elif isinstance(event, MessagesLoaded):
            if state is not MenuState.LOADING:
                raise MenuMisuse(f"messages loaded while {state.value}")
            box = self._box()
            self._messages = [m for m in event.messages if m.box == box and m.state != "deleted"]
            self._main_menu(intro=True)
        elif isinstance(event, RecordingEnded):
            if state is not MenuState.RECORDING_GREETING:
                raise MenuMisuse(f"recording ended while {state.value}")
            if event.reason == "refused":
                self._main_menu(P_ERROR)
            else:
                self._out.append(StopRecording(keep=event.reason == "cap"))
                self._main_menu(P_GREETING_SAVED if event.reason == "cap" else P_ERROR)

    def _on_play_finished(self, now: float) -> None:
        state = self.state
        was_message, self._last_play_was_message = self._last_play_was_message, False
        if state is MenuState.CLOSING:
            self.state = MenuState.DONE
            self._hang_up()
        elif state is MenuState.GREETING_PROMPT:
            self.state = MenuState.RECORDING_GREETING
            kind: Literal["greeting", "busy-greeting"] = (
                "busy-greeting" if self._busy_greeting else "greeting"
            )
            self._out.append(StartRecording(kind, self._box()))
        elif state is MenuState.MESSAGE and was_message:
            current = self._current()
            if current is not None:
                self._mark_saved(current)  # heard to the end: no longer new
            self._message_menu()
        elif state in (*_COLLECTING, MenuState.MAIN, MenuState.OPTIONS, MenuState.MESSAGE):
            self._wait_input(now)

    def _on_timeout(self, now: float) -> None:
        state = self.state
        if state in _COLLECTING and self._digits:
            self._submit()
            return
        self._reprompts += 1
        if self._reprompts > MAX_REPROMPTS:
            self._close()
        elif state in _COLLECTING:
            self._play(self._ask_prompt())
        elif state is MenuState.MAIN:
            self._main_menu()
        elif state is MenuState.OPTIONS:
            self._options_menu()
        elif state is MenuState.MESSAGE:
            self._message_menu()

    def _invalid_key(self, again: str) -> None:
        self._invalid += 1
        if self._invalid >= MAX_INVALID:
            self._close()
        else:
            self._play(P_INVALID, again)

    def _on_digit(self, digit: str, now: float) -> None:
        state = self.state
        if state in (*_BUSY, MenuState.CLOSING, MenuState.GREETING_PROMPT):
            return  # typed ahead while we were busy, or before the beep: dropped
        if state is MenuState.RECORDING_GREETING:
            if digit == "#":
                self._out.append(StopRecording(keep=True))
                self._main_menu(P_GREETING_SAVED)
            return
        self._barge()
        self._reprompts = 0
        if state in _COLLECTING:
            self._collect(digit, now)
        elif state is MenuState.MAIN:
            self._main_key(digit)
        elif state is MenuState.OPTIONS:
            self._options_key(digit)
        elif state is MenuState.MESSAGE:
            self._message_key(digit)

    def _collect(self, digit: str, now: float) -> None:
        limit = MAX_BOX_DIGITS if self.state is MenuState.ASK_BOX else MAX_PIN_DIGITS
        if digit == "#":
            self._submit()
        elif digit == "*":
            self._digits = ""  # start again
            self._play(self._ask_prompt())
        elif digit.isdigit():
            self._digits += digit
            if len(self._digits) > limit:
                self._digits = ""
                self._play(P_INVALID, self._ask_prompt())
            else:
                self._wait_input(now)
        else:
            self._wait_input(now)  # A-D: not part of a number

    def _submit(self) -> None:
        digits, self._digits = self._digits, ""
        if not digits:
            self._play(self._ask_prompt())
        elif self.state is MenuState.ASK_BOX:
            self.box = digits
            self.state = MenuState.ASK_PIN
            self._play(P_ENTER_PIN)
        elif self.state is MenuState.ASK_PIN:
            self.state = MenuState.CHECKING_PIN
            self._out.append(CheckPin(self._box(), digits))
        elif len(digits) < MIN_NEW_PIN:
            self._play(P_INVALID, P_ENTER_NEW_PIN)
        else:
            self.state = MenuState.CHANGING_PIN
            self._out.append(ChangePin(self._box(), digits))

    def _on_pin(self, check: PinCheck) -> None:
        if check.outcome == "ok":
            self._load()
        elif check.outcome == "locked":
            self._close(P_LOCKED)
        else:
            self._pin_tries += 1
            if self._pin_tries >= MAX_PIN_TRIES:
                self._close(P_LOGIN_INCORRECT)
            else:
                self.state = MenuState.ASK_PIN
                self._play(P_LOGIN_INCORRECT, P_ENTER_PIN)

    def _main_key(self, digit: str) -> None:
        if digit in "12":
            self._invalid = 0
            folder = "new" if digit == "1" else "saved"
            # A snapshot: a message heard (new -> saved) keeps its place while listening.
            self._playlist = [m.id for m in self._messages if m.state == folder]
            self._index = 0
            if not self._playlist:
                self._main_menu(P_NO_NEW if digit == "1" else P_NO_SAVED)
            else:
                self._play_message()
        elif digit == "3":
            self._invalid = 0
            self._record_greeting()
        elif digit == "0":  # not announced by vm-main-menu; vm-options-menu explains it
            self._invalid = 0
            self._options_menu()
        elif digit == "*":
            self._invalid = 0
            self._main_menu()
        elif digit == "#":
            self._close()
        else:
            self._invalid_key(P_MAIN_MENU)

    def _record_greeting(self, *, busy: bool = False) -> None:
        self.state = MenuState.GREETING_PROMPT
        self._busy_greeting = busy
        self._play(P_RECORD_BUSY_GREETING if busy else P_RECORD_GREETING, Beep())

    def _options_key(self, digit: str) -> None:
        if digit == "1":
            self._invalid = 0
            self._record_greeting()
        elif digit == "2":
            self._invalid = 0
            self.state = MenuState.ASK_NEW_PIN
            self._play(P_ENTER_NEW_PIN)
        elif digit == "3":
            self._invalid = 0
            self._record_greeting(busy=True)
        elif digit in "*#":
            self._invalid = 0
            self._main_menu()
        else:
            self._invalid_key(P_OPTIONS_MENU)

    def _message_key(self, digit: str) -> None:
        current = self._current()
        if current is None:  # every message of the folder went (deleted)
            self._main_menu(P_NO_MORE)
            return
        if digit not in "345679*#":
            self._invalid_key(P_MESSAGE_MENU)
            return
        self._invalid = 0
        if digit == "3":
            self._message_menu(*self._envelope(current))
        elif digit == "4":
            if self._index == 0:
                self._message_menu(P_NO_PREVIOUS)
            else:
                self._index -= 1
                self._play_message()
        elif digit == "5":
            self._play_message()
        elif digit == "6":
            self._index += 1
            self._play_message()
        elif digit == "7":
            self._messages = [m for m in self._messages if m.id != current.id]
            del self._playlist[self._index]  # the next one moves up to this index
            self._out.append(DeleteMessage(current.box, current.id))
            self._play_message(P_DELETED)
        elif digit == "9":
            self._mark_saved(current)
            self._index += 1
            self._play_message(P_SAVED)
        elif digit == "*":
            self._message_menu()
        else:  # "#"
            self._main_menu()


# --- running store commands ----------------------------------------------------------------


def run_store_command(
    store: VoicemailStore,
    command: Command,
    *,
    expected_pin: str = "",
    now: float | None = None,
) -> Event | None:
    """Carry out a store command (PIN check, load, save, delete) against ``store`` and
    return the event to feed back, if any; None for a command that is not the store's.
    Blocking (SQLite): a shell on an event loop runs it in an executor."""
    if isinstance(command, CheckPin):
        when = time.time() if now is None else now
        return PinResult(store.check_pin(command.box, command.pin, expected_pin, when))
    if isinstance(command, LoadMessages):
        return MessagesLoaded(tuple(store.messages(command.box)))
    if isinstance(command, MarkSaved):
        store.mark_saved(command.box, command.message_id)
    elif isinstance(command, DeleteMessage):
        store.delete(command.box, command.message_id)
    return None


MAX_PIN_SAVE_TRIES: Final = 3  # concurrent configuration edits to retry past


def save_pin(config: ConfigStore, command: ChangePin) -> PinChanged:
    """Carry out ``ChangePin``: the new PIN becomes the next configuration version (audited,
    as any change).  Refused (``ok=False``) for a box that is not configured, a PIN the
    schema refuses, or an edit that keeps losing races.  Blocking (SQLite): an executor."""
    for _ in range(MAX_PIN_SAVE_TRIES):
        current = config.current()
        extensions = current.config.extensions
        if not any(e.number == command.box and e.voicemail for e in extensions):
            log.warning("voicemail: PIN change for unknown box %s refused", command.box)
            return PinChanged(False)
        updated = tuple(
            dataclasses.replace(e, voicemail_pin=command.pin) if e.number == command.box else e
            for e in extensions
        )
        try:
            config.apply(
                dataclasses.replace(current.config, extensions=updated),
                author=f"voicemail {command.box} (phone)",
                summary=f"voicemail PIN of {command.box} changed by phone",
                expected_version=current.version,
            )
        except VersionConflict:
            continue
        except ConfigError as exc:
            log.warning("voicemail: PIN change for %s refused: %s", command.box, exc)
            return PinChanged(False)
        return PinChanged(True)
    return PinChanged(False)


__all__ = [
    "BEEP_PLAN",
    "PROMPTS_USED",
    "Beep",
    "CallerHungUp",
    "ChangePin",
    "CheckPin",
    "Command",
    "DeleteMessage",
    "Digit",
    "Event",
    "GreetingAudio",
    "HangUp",
    "LeaveMessage",
    "LoadMessages",
    "MailboxFull",
    "MailboxMenu",
    "MarkSaved",
    "MenuMisuse",
    "MessageAudio",
    "MessagesLoaded",
    "PinChanged",
    "PinResult",
    "Play",
    "PlayFinished",
    "Prompt",
    "RecordingEnded",
    "StartRecording",
    "StopPlayback",
    "StopRecording",
    "StorageFull",
    "VoicemailError",
    "run_store_command",
    "save_pin",
    "say_datetime",
    "say_digits",
    "say_number",
    "say_time",
]
