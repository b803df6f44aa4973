"""The IVR auto-attendant (sans-IO): menus, keys, direct dialling and time conditions.

An :class:`IvrPlan` is compiled once per configuration; each call that reaches the IVR gets
an :class:`IvrSession`.  The call-control shell feeds the session events and the time
(``now`` in milliseconds, monotonic; the wall clock only to :meth:`IvrSession.start`,
which picks the entry menu by office hours and holidays) and carries out the commands it
returns, in order:

- :class:`PlayPrompts`: play these prompts one after the other (see
  :class:`firmware.prompts.library.PromptLibrary`), then report
  :meth:`IvrSession.prompt_finished` with the command's ``play_id``;
- :class:`StopPrompt`: the caller pressed a key while a prompt played (barge-in): stop it
  at once; a ``prompt_finished`` for a stopped prompt is ignored;
- :class:`Transfer`: connect the caller to an extension, a voicemail box or a number
  routed through the dial plan; the session is over;
- :class:`HangUp`: release the call; the session is over.

Between events the shell calls :meth:`IvrSession.handle_timer` once ``now`` reaches
:meth:`IvrSession.next_deadline`.  Digits after the session ended are ignored (they race
with the hang-up); a symbol that is not a DTMF key raises :class:`BadDigit`.

    >>> session = plan.session()
    >>> session.start(now=0, when=datetime.now(UTC))
    [PlayPrompts(play_id=1, names=('welcome', 'enter-extension-or-wait'), language='en')]
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import zoneinfo
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final

from firmware.dsp.profiles import get_profile
from firmware.pbx.digits import DIALLABLE, BadDigit, DigitCollector, DigitMap, Outcome
from firmware.prompts.catalogue import language_for
from firmware.store.ivrconfig import (
    WEEKDAYS,
    GoDial,
    GoExtension,
    GoHangup,
    GoMenu,
    GoRepeat,
    GoVoicemail,
    IvrDestination,
    parse_clock,
    parse_destination,
)
from firmware.store.schema import Config, IvrConfig, IvrMenu

log = logging.getLogger(__name__)

__all__ = [
    "BadDigit",
    "HangUp",
    "IvrCommand",
    "IvrMisuse",
    "IvrPlan",
    "IvrSession",
    "PlayPrompts",
    "State",
    "StopPrompt",
    "Transfer",
]

# A caller who keeps choosing "repeat" or bouncing between menus is let go after this
# many menu plays; no real caller needs more, and a stuck line must not stay busy.
MAX_MENU_PLAYS: Final = 30
# The shell reports the end of every prompt; if it never does (a lost event), the
# session carries on after this long rather than hold the line for ever.
PROMPT_GUARD_MS: Final = 5 * 60 * 1000
INVALID_PROMPT: Final = "invalid"
INVALID_EXTENSION_PROMPT: Final = "invalid-extension"
TIMEOUT_PROMPT: Final = "timeout"
GOODBYE_PROMPT: Final = "goodbye"

TransferTarget = GoExtension | GoVoicemail | GoDial


class IvrMisuse(Exception):
    """We broke it: an event the session cannot take in its state (e.g. before start)."""


@dataclass(frozen=True, slots=True)
class PlayPrompts:
    play_id: int
    names: tuple[str, ...]
    language: str


@dataclass(frozen=True, slots=True)
class StopPrompt:
    play_id: int


@dataclass(frozen=True, slots=True)
class Transfer:
    destination: TransferTarget
    menu: str  # the menu the caller chose from, for the call record
    dialled: str = ""  # the keys that chose it


@dataclass(frozen=True, slots=True)
class HangUp:
    reason: str


IvrCommand = PlayPrompts | StopPrompt | Transfer | HangUp


class State(enum.Enum):
    IDLE = "idle"  # not started
    PLAYING = "playing"  # menu prompts playing; a key barges in
    WAITING = "waiting"  # prompts over; waiting for a key until the menu's timeout
    DIALLING = "dialling"  # collecting an extension number for direct dialling
    CLOSING = "closing"  # the goodbye prompt plays; keys are ignored
    DONE = "done"  # transferred or hung up


class Event(enum.Enum):
    DIGIT = "digit"
    PROMPT_FINISHED = "prompt finished"
    TIMER = "timer"


@dataclass(frozen=True, slots=True)
class _Menu:
    config: IvrMenu
    options: dict[str, IvrDestination]
    direct: DigitMap | None
    invalid: IvrDestination
    timeout: IvrDestination


class IvrPlan:
    """The IVR of one configuration, destinations parsed and digit maps compiled once."""

    def __init__(
        self,
        ivr: IvrConfig,
        *,
        extensions: Collection[str],
        language: str,
        tz: dt.tzinfo,
        inter_digit_timeout_ms: int = 4000,
    ) -> None:
        self.config = ivr
        self.language = language_for(language)
        self.tz = tz
        self.extensions = frozenset(extensions)
        self.inter_digit_timeout_ms = inter_digit_timeout_ms
        self.menus: dict[str, _Menu] = {}
        for menu in ivr.menus:
            direct = (
                DigitMap(menu.direct_dial, inter_digit_timeout_ms=inter_digit_timeout_ms)
                if menu.direct_dial
                else None
            )
            self.menus[menu.name] = _Menu(
                menu,
                {o.digit: parse_destination(o.to) for o in menu.options},
                direct,
                parse_destination(menu.invalid),
                parse_destination(menu.timeout),
            )
        for name in (ivr.open_menu, ivr.closed_menu, ivr.holiday_menu):
            if name and name not in self.menus:
                raise ValueError(f"ivr: no menu named {name!r}")
        self._hours = [
            ({WEEKDAYS.index(d) for d in h.days}, parse_clock(h.start), parse_clock(h.end))
            for h in ivr.office_hours
        ]
        self._dates = {dt.date.fromisoformat(d) for d in ivr.holidays if len(d) == 10}
        self._yearly = {(int(d[:2]), int(d[3:])) for d in ivr.holidays if len(d) == 5}

    @classmethod
    def from_config(cls, config: Config) -> IvrPlan:
        """From a validated configuration: language from ``ivr.language`` or the system
        country's profile, time zone from ``system.timezone``."""
        language = config.ivr.language or get_profile(config.system.country).language
        return cls(
            config.ivr,
            extensions=[e.number for e in config.extensions],
            language=language,
            tz=zoneinfo.ZoneInfo(config.system.timezone),
            inter_digit_timeout_ms=config.dialplan.inter_digit_timeout_ms,
        )

    def is_holiday(self, day: dt.date) -> bool:
        return day in self._dates or (day.month, day.day) in self._yearly

    def is_open(self, when: dt.datetime) -> bool:
        """Within office hours (always, when none are set) and not a holiday."""
        local = self._local(when)
        if self.is_holiday(local.date()):
            return False
        if not self._hours:
            return True
        minute = local.hour * 60 + local.minute
        return any(
            local.weekday() in days and start <= minute < end for days, start, end in self._hours
        )

    def entry_menu(self, when: dt.datetime) -> str:
        """The menu a call arriving at ``when`` (timezone-aware) starts in."""
        ivr = self.config
        local = self._local(when)
        if self.is_holiday(local.date()):
            return ivr.holiday_menu or ivr.closed_menu or ivr.open_menu
        if self.is_open(when):
            return ivr.open_menu
        return ivr.closed_menu or ivr.open_menu

    def _local(self, when: dt.datetime) -> dt.datetime:
        if when.tzinfo is None or when.utcoffset() is None:
            raise IvrMisuse("the IVR needs a timezone-aware time (datetime.now(UTC))")
        return when.astimezone(self.tz)

    def session(self) -> IvrSession:
        return IvrSession(self)


_Handler = Callable[["IvrSession", str, int], list[IvrCommand]]


class IvrSession:
    """One caller in the IVR.  Drive it from one thread."""

    def __init__(self, plan: IvrPlan) -> None:
        if not plan.config.open_menu:
            raise IvrMisuse("the IVR has no open_menu: it is not configured")
        self._plan = plan
        self._state = State.IDLE
        self._menu: _Menu | None = None
        self._retries = 0
        self._plays = 0
        self._play_id = 0
        self._deadline: int | None = None
        self._collector: DigitCollector | None = None
        self.language = plan.language
        self.outcome: Transfer | HangUp | None = None

    # --- inspection ---------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def menu(self) -> str | None:
        return self._menu.config.name if self._menu else None

    @property
    def done(self) -> bool:
        return self._state is State.DONE

    def next_deadline(self) -> int | None:
        return self._deadline

    # --- events in ----------------------------------------------------------------------

    def start(self, now: int, when: dt.datetime) -> list[IvrCommand]:
        if self._state is not State.IDLE:
            raise IvrMisuse(f"start in state {self._state.value}")
        name = self._plan.entry_menu(when)
        log.debug("ivr: entry menu %r at %s", name, when.isoformat())
        return self._enter(name, now)

    def digit(self, digit: str, now: int) -> list[IvrCommand]:
        if not isinstance(digit, str) or len(digit) != 1 or digit not in DIALLABLE:
            raise BadDigit(f"{digit!r} is not a DTMF key (0-9, *, #, A-D)")
        return self._dispatch(Event.DIGIT, digit, now)

    def prompt_finished(self, play_id: int, now: int) -> list[IvrCommand]:
        if play_id != self._play_id:
            return []  # a prompt stopped by barge-in, or from before: nothing to do
        return self._dispatch(Event.PROMPT_FINISHED, "", now)

    def handle_timer(self, now: int) -> list[IvrCommand]:
        if self._deadline is None or now < self._deadline:
            return []
        return self._dispatch(Event.TIMER, "", now)

    def stop(self) -> None:
        """The caller hung up (or the call was torn down): the session ends silently."""
        if self._state is not State.DONE:
            self._finish(HangUp("caller hung up"))

    # --- the transition table -----------------------------------------------------------

    def _dispatch(self, event: Event, digit: str, now: int) -> list[IvrCommand]:
        handler = _TABLE.get((self._state, event))
        if handler is None:
            raise IvrMisuse(f"{event.value} in state {self._state.value}")
        return handler(self, digit, now)

    def _ignore(self, digit: str, now: int) -> list[IvrCommand]:
        return []

    def _barge_in(self, digit: str, now: int) -> list[IvrCommand]:
        stop: list[IvrCommand] = [StopPrompt(self._play_id)]
        self._play_id += 1  # so that the stopped prompt's "finished" is recognised as stale
        return stop + self._key(digit, now)

    def _key_waiting(self, digit: str, now: int) -> list[IvrCommand]:
        return self._key(digit, now)

    def _prompts_over(self, digit: str, now: int) -> list[IvrCommand]:
        assert self._menu is not None
        self._state = State.WAITING
        self._deadline = now + self._menu.config.timeout_s * 1000
        return []

    def _silence(self, digit: str, now: int) -> list[IvrCommand]:
        return self._failed(TIMEOUT_PROMPT, now)

    def _dial_digit(self, digit: str, now: int) -> list[IvrCommand]:
        assert self._collector is not None
        return self._dial_verdict(self._collector.feed(digit, now).outcome, now)

    def _dial_timer(self, digit: str, now: int) -> list[IvrCommand]:
        assert self._collector is not None
        verdict = self._collector.handle_timer(now)
        if verdict is None:  # pragma: no cover - the deadline is the collector's own
            return []
        return self._dial_verdict(verdict.outcome, now)

    def _closed(self, digit: str, now: int) -> list[IvrCommand]:
        self._finish(HangUp("goodbye"))
        return [HangUp("goodbye")]

    # --- helpers ------------------------------------------------------------------------

    def _key(self, digit: str, now: int) -> list[IvrCommand]:
        menu = self._menu
        assert menu is not None
        if digit in menu.options:
            return self._go(menu.options[digit], now, digit)
        if menu.direct is not None:
            collector = menu.direct.collector()
            verdict = collector.feed(digit, now)
            if verdict.outcome is not Outcome.INVALID:
                self._collector = collector
                return self._dial_verdict(verdict.outcome, now)
        return self._failed(INVALID_PROMPT, now)

    def _dial_verdict(self, outcome: Outcome, now: int) -> list[IvrCommand]:
        collector = self._collector
        assert collector is not None and self._menu is not None
        if outcome is Outcome.INCOMPLETE:
            self._state = State.DIALLING
            self._deadline = collector.next_deadline()
            return []
        self._collector = None
        if outcome is Outcome.COMPLETE and collector.digits in self._plan.extensions:
            number = collector.digits
            return self._go(GoExtension(number), now, number)
        prompt = INVALID_EXTENSION_PROMPT if outcome is Outcome.COMPLETE else INVALID_PROMPT
        return self._failed(prompt, now)

    def _failed(self, prompt: str, now: int) -> list[IvrCommand]:
        """Invalid input or silence: play the menu again, or leave after the retries."""
        menu = self._menu
        assert menu is not None
        self._retries += 1
        if self._retries > menu.config.max_retries:
            final = menu.timeout if prompt == TIMEOUT_PROMPT else menu.invalid
            return self._go(final, now, "")
        return self._play_menu(now, prefix=(prompt,))

    def _go(self, dest: IvrDestination, now: int, dialled: str) -> list[IvrCommand]:
        assert self._menu is not None
        match dest:
            case GoMenu(name):
                return self._enter(name, now)
            case GoRepeat():
                return self._play_menu(now)
            case GoHangup():
                return self._goodbye(now)
            case GoExtension() | GoVoicemail() | GoDial():
                transfer = Transfer(dest, self._menu.config.name, dialled)
                self._finish(transfer)
                return [transfer]

    def _enter(self, name: str, now: int) -> list[IvrCommand]:
        menu = self._plan.menus.get(name)
        if menu is None:  # refused by validation; a plan built by hand might still do it
            log.error("ivr: menu %r does not exist; hanging up", name)
            return self._goodbye(now)
        self._menu = menu
        self._retries = 0
        return self._play_menu(now)

    def _play_menu(self, now: int, prefix: tuple[str, ...] = ()) -> list[IvrCommand]:
        menu = self._menu
        assert menu is not None
        self._plays += 1
        if self._plays > MAX_MENU_PLAYS:
            log.info("ivr: %d menu plays without a choice; hanging up", MAX_MENU_PLAYS)
            return self._goodbye(now)
        names = prefix + menu.config.prompts
        if not names:
            return self._prompts_over("", now)
        return [self._play(names, State.PLAYING, now)]

    def _goodbye(self, now: int) -> list[IvrCommand]:
        return [self._play((GOODBYE_PROMPT,), State.CLOSING, now)]

    def _play(self, names: tuple[str, ...], state: State, now: int) -> PlayPrompts:
        self._play_id += 1
        self._state = state
        self._deadline = now + PROMPT_GUARD_MS
        return PlayPrompts(self._play_id, names, self.language)

    def _finish(self, outcome: Transfer | HangUp) -> None:
        self._state = State.DONE
        self._deadline = None
        self._collector = None
        self.outcome = outcome
        log.debug("ivr: %s", outcome)


# (state, event) -> handler.  A pair not listed is an IvrMisuse.
_TABLE: Final[dict[tuple[State, Event], _Handler]] = {
    (State.PLAYING, Event.DIGIT): IvrSession._barge_in,
    (State.PLAYING, Event.PROMPT_FINISHED): IvrSession._prompts_over,
    (State.PLAYING, Event.TIMER): IvrSession._prompts_over,  # the guard: treat as finished
    (State.WAITING, Event.DIGIT): IvrSession._key_waiting,
    (State.WAITING, Event.TIMER): IvrSession._silence,
    (State.WAITING, Event.PROMPT_FINISHED): IvrSession._ignore,  # reported twice
    (State.DIALLING, Event.DIGIT): IvrSession._dial_digit,
    (State.DIALLING, Event.TIMER): IvrSession._dial_timer,
    (State.DIALLING, Event.PROMPT_FINISHED): IvrSession._ignore,
    (State.CLOSING, Event.DIGIT): IvrSession._ignore,
    (State.CLOSING, Event.PROMPT_FINISHED): IvrSession._closed,
    (State.CLOSING, Event.TIMER): IvrSession._closed,
    (State.DONE, Event.DIGIT): IvrSession._ignore,
    (State.DONE, Event.PROMPT_FINISHED): IvrSession._ignore,
    (State.DONE, Event.TIMER): IvrSession._ignore,
}
