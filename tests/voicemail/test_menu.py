"""The voicemail call flows (sans-IO), driven through every path against a real store."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from firmware.pbx import voicemail as vm
from firmware.store.schema import VoicemailConfig
from firmware.store.voicemail import MessageInfo, PinCheck, VoicemailStore

PIN = "4321"
T0 = 1000.0


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 24, 14, 5, tzinfo=dt.UTC)  # a Tuesday

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(minutes=1)
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = VoicemailStore.open(tmp_path, VoicemailConfig(pin_attempts=5), wall_clock=Clock())
    yield s
    s.close()


def leave(store: VoicemailStore, box: str, caller: str, seconds: float = 0.2) -> MessageInfo:
    rec = store.begin_message(box, caller, f"caller {caller}")
    rec.append(np.full(int(8000 * seconds), 1000, np.int16).tobytes())
    info = rec.finish()
    assert info is not None
    return info


class Driver:
    """Plays the shell: store commands run for real, playback 'finishes' on request."""

    def __init__(self, machine: vm.MailboxMenu | vm.LeaveMessage, store: VoicemailStore):
        self.m = machine
        self.store = store
        self.now = T0
        self.log: list[vm.Command] = []
        self.playing: vm.Play | None = None
        self.recording: str | None = None
        self.hung_up = False

    def _run(self, commands: list[vm.Command]) -> None:
        for c in commands:
            self.log.append(c)
            if isinstance(c, vm.Play):
                self.playing = c
            elif isinstance(c, vm.StopPlayback):
                self.playing = None
            elif isinstance(c, vm.StartRecording):
                self.recording = c.kind
            elif isinstance(c, vm.StopRecording):
                self.recording = None
            elif isinstance(c, vm.HangUp):
                self.hung_up = True
            else:
                event = vm.run_store_command(self.store, c, expected_pin=PIN, now=self.now)
                if event is not None:
                    self._run(self.m.handle(event, self.now))

    def start(self) -> None:
        self._run(self.m.start(self.now))

    def finish_play(self) -> vm.Play:
        play = self.playing
        assert play is not None, "nothing is playing"
        self.playing = None
        self._run(self.m.handle(vm.PlayFinished(play.seq), self.now))
        return play

    def keys(self, digits: str) -> None:
        for d in digits:
            self._run(self.m.handle(vm.Digit(d), self.now))

    def event(self, e: vm.Event) -> None:
        self._run(self.m.handle(e, self.now))

    def wait(self, seconds: float) -> None:
        self.now += seconds
        self._run(self.m.handle_timer(self.now))

    # Accessors, not attributes: mypy would narrow an attribute across calls that change it.
    def rec(self) -> str | None:
        return self.recording

    def state(self) -> vm.MenuState | vm.LeaveState:
        return self.m.state

    def items(self) -> tuple[vm.PlayItem, ...]:
        assert self.playing is not None
        return self.playing.items

    def names(self) -> tuple[str, ...]:
        assert self.playing is not None
        return self.playing.prompt_names


def login(store: VoicemailStore, box: str = "101") -> Driver:
    d = Driver(vm.MailboxMenu(box), store)
    d.start()
    assert d.names() == (vm.P_ENTER_PIN,)
    d.finish_play()
    d.keys(PIN + "#")
    return d


# --- saying things -------------------------------------------------------------------------


def test_say_number() -> None:
    assert vm.say_number(0) == ["num-0"]
    assert vm.say_number(19) == ["num-19"]
    assert vm.say_number(42) == ["num-42"]
    assert vm.say_number(100) == ["num-100"]
    assert vm.say_number(342) == ["num-300", "num-42"]
    assert vm.say_number(2005) == ["num-2000", "num-5"]
    assert vm.say_number(9999) == ["num-9000", "num-900", "num-99"]
    for bad in (-1, 10_000):
        with pytest.raises(ValueError):
            vm.say_number(bad)
    for n in range(10_000):
        assert set(vm.say_number(n)) <= vm.PROMPTS_USED


def test_say_digits_and_time() -> None:
    assert vm.say_digits("+44 20*#x") == [
        "plus", "num-4", "num-4", "num-2", "num-0", "star", "hash",
    ]  # fmt: skip
    assert vm.say_time(14, 0) == ["num-14", "o-clock"]
    assert vm.say_time(9, 5) == ["num-9", "oh", "num-5"]
    assert vm.say_time(23, 59) == ["num-23", "num-59"]
    with pytest.raises(ValueError):
        vm.say_time(24, 0)


def test_say_datetime_in_the_box_time_zone() -> None:
    when = dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)  # a Sunday
    assert vm.say_datetime(when, ZoneInfo("UTC")) == [
        "day-sunday", "month-march", "num-29", "at", "num-0", "num-30",
    ]  # fmt: skip
    # 01:30 UTC on the day clocks go forward is 03:30 CEST in Berlin.
    berlin = vm.say_datetime(when + dt.timedelta(hours=1), ZoneInfo("Europe/Berlin"))
    assert berlin[-2:] == ["num-3", "num-30"]
    # Today and yesterday, by the local date: 23:30 UTC on the 28th is the 29th in Berlin.
    late = dt.datetime(2026, 3, 28, 23, 30, tzinfo=dt.UTC)
    tz = ZoneInfo("Europe/Berlin")
    assert vm.say_datetime(late, tz, dt.date(2026, 3, 29))[0] == "day-today"
    assert vm.say_datetime(late, tz, dt.date(2026, 3, 30))[0] == "day-yesterday"
    assert vm.say_datetime(late, tz, dt.date(2026, 3, 31))[0] == "day-sunday"
    with pytest.raises(ValueError):
        vm.say_datetime(dt.datetime(2026, 1, 1), ZoneInfo("UTC"))


def test_prompt_names_follow_the_catalogue() -> None:
    with pytest.raises(ValueError):
        vm.Prompt("no-such-prompt")
    for name in vm.PROMPTS_USED:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), name  # kebab-case


# --- leaving a message ---------------------------------------------------------------------


def test_leave_default_greeting_beep_record_hash(store: VoicemailStore) -> None:
    d = Driver(vm.LeaveMessage("101", has_greeting=False), store)
    d.start()
    play = d.playing
    assert play is not None
    assert play.prompt_names == (vm.P_EXTENSION, "num-1", "num-0", "num-1", vm.P_NOT_AVAILABLE)
    assert isinstance(play.items[-1], vm.Beep)
    d.keys("5")  # not a skip key: ignored during the greeting
    assert d.playing is play
    d.finish_play()
    assert d.rec() == "message"
    d.keys("123")  # keys while recording are part of the message
    assert d.rec() == "message"
    d.keys("#")
    assert d.rec() is None
    assert vm.StopRecording(keep=True) in d.log
    assert d.names() == (vm.P_MESSAGE_SAVED, vm.P_GOODBYE)
    d.finish_play()
    assert d.hung_up and d.m.done
    assert d.m.handle(vm.Digit("1"), d.now) == []  # late events after the end are ignored


def test_leave_busy_greeting(store: VoicemailStore) -> None:
    d = Driver(vm.LeaveMessage("7", has_greeting=False, reason="busy"), store)
    d.start()
    assert d.names() == (vm.P_BUSY,)
    # The owner's own greeting says "not available": a busy caller hears the busy prompt.
    d = Driver(vm.LeaveMessage("7", has_greeting=True, reason="busy"), store)
    d.start()
    assert d.names() == (vm.P_BUSY,) and vm.GreetingAudio("7") not in d.items()
    # The busy greeting the owner recorded (options, 3) is played instead.
    d = Driver(
        vm.LeaveMessage("7", has_greeting=True, reason="busy", has_busy_greeting=True), store
    )
    d.start()
    assert d.items() == (vm.GreetingAudio("7", "busy"), vm.Beep())
    d = Driver(vm.LeaveMessage("7", has_greeting=True, has_busy_greeting=True), store)
    d.start()
    assert d.items() == (vm.GreetingAudio("7"), vm.Beep())  # no answer: the usual one


def test_leave_own_greeting_skip_with_hash(store: VoicemailStore) -> None:
    d = Driver(vm.LeaveMessage("101", has_greeting=True), store)
    d.start()
    assert d.items() == (vm.GreetingAudio("101"), vm.Beep())
    first = d.playing
    assert first is not None
    d.keys("#")
    assert vm.StopPlayback() in d.log
    assert d.items() == (vm.Beep(),)
    # The stopped greeting's PlayFinished arrives late: ignored.
    assert d.m.handle(vm.PlayFinished(first.seq), d.now) == []
    d.finish_play()
    assert d.rec() == "message"


def test_leave_hang_up_while_recording_keeps_the_message(store: VoicemailStore) -> None:
    d = Driver(vm.LeaveMessage("101", has_greeting=False), store)
    d.start()
    d.finish_play()
    d.event(vm.CallerHungUp())
    assert d.log[-1] == vm.StopRecording(keep=True)
    assert d.m.done and not d.hung_up  # the caller hung up; we need not


def test_leave_hang_up_during_greeting_records_nothing(store: VoicemailStore) -> None:
    d = Driver(vm.LeaveMessage("101", has_greeting=False), store)
    d.start()
    d.event(vm.CallerHungUp())
    assert not any(isinstance(c, (vm.StartRecording, vm.StopRecording)) for c in d.log)


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("cap", (vm.P_RECORDING_LIMIT, vm.P_MESSAGE_SAVED)),
        ("error", (vm.P_ERROR,)),
        ("refused", (vm.P_MAILBOX_FULL,)),
    ],
)
def test_leave_recording_ends_by_itself(
    store: VoicemailStore, reason: str, words: tuple[str, ...]
) -> None:
    d = Driver(vm.LeaveMessage("101", has_greeting=False), store)
    d.start()
    d.finish_play()
    d.event(vm.RecordingEnded(reason))  # type: ignore[arg-type]
    stops = [c for c in d.log if isinstance(c, vm.StopRecording)]
    assert stops == ([] if reason == "refused" else [vm.StopRecording(keep=True)])
    assert d.names() == (*words, vm.P_GOODBYE)
    d.finish_play()
    assert d.hung_up


def test_leave_to_a_full_box(store: VoicemailStore) -> None:
    d = Driver(vm.LeaveMessage("101", has_greeting=True, full=True), store)
    d.start()
    assert d.names() == (vm.P_MAILBOX_FULL, vm.P_GOODBYE)
    d.finish_play()
    assert d.hung_up
    assert not any(isinstance(c, vm.StartRecording) for c in d.log)


def test_leave_misuse_raises() -> None:
    m = vm.LeaveMessage("101", has_greeting=False)
    with pytest.raises(vm.MenuMisuse):
        m.handle(vm.Digit("1"), T0)
    m.start(T0)
    with pytest.raises(vm.MenuMisuse):
        m.start(T0)
    with pytest.raises(vm.MenuMisuse):
        m.handle(vm.RecordingEnded("cap"), T0)  # not recording
    with pytest.raises(vm.MenuMisuse):
        m.handle(vm.PinResult(PinCheck("ok", 5)), T0)
    with pytest.raises(vm.MenuMisuse):
        vm.Digit("x")


# --- the mailbox menu ----------------------------------------------------------------------


def test_login_and_counts(store: VoicemailStore) -> None:
    a = leave(store, "101", "201")
    leave(store, "101", "202")
    store.mark_saved("101", a.id)
    d = login(store)
    assert d.names() == (
        vm.P_YOU_HAVE, "num-1", vm.P_NEW_MESSAGE, vm.P_AND, "num-1", vm.P_SAVED_MESSAGE,
        vm.P_MAIN_MENU,
    )  # fmt: skip
    assert d.state() is vm.MenuState.MAIN


def test_empty_box_and_empty_folders(store: VoicemailStore) -> None:
    d = login(store)
    assert d.names() == (vm.P_NO_MESSAGES, vm.P_MAIN_MENU)
    d.keys("1")
    assert d.names() == (vm.P_NO_NEW, vm.P_MAIN_MENU)
    d.keys("2")
    assert d.names() == (vm.P_NO_SAVED, vm.P_MAIN_MENU)
    d.keys("*")
    assert d.names() == (vm.P_MAIN_MENU,)
    d.keys("#")
    assert d.names() == (vm.P_GOODBYE,)
    d.finish_play()
    assert d.hung_up


def test_listen_heard_to_the_end_becomes_saved(store: VoicemailStore) -> None:
    m1 = leave(store, "101", "201")
    m2 = leave(store, "101", "202")
    events: list[Any] = []
    store.subscribe(events.append)
    d = login(store)
    d.finish_play()  # the intro and main menu
    d.keys("1")
    assert d.playing is not None
    assert d.playing.prompt_names == (vm.P_MESSAGE, "num-1")
    assert d.items()[-1] == vm.MessageAudio("101", m1.id)
    d.finish_play()
    assert vm.MarkSaved("101", m1.id) in d.log
    assert store.counts("101").new == 1
    assert d.names() == (vm.P_MESSAGE_MENU,)
    d.keys("5")  # repeat: the same message, although it left the new folder
    assert d.items()[-1] == vm.MessageAudio("101", m1.id)
    d.keys("6")  # barge in: next
    assert d.items()[-1] == vm.MessageAudio("101", m2.id)
    d.keys("4")  # previous
    assert d.items()[-1] == vm.MessageAudio("101", m1.id)
    d.keys("4")
    assert d.names() == (vm.P_NO_PREVIOUS, vm.P_MESSAGE_MENU)
    d.keys("66")  # past the last one
    assert d.names() == (vm.P_NO_MORE, vm.P_MAIN_MENU)
    assert d.state() is vm.MenuState.MAIN
    assert [e.new_count for e in events] == [1]  # m2 was never heard to the end
    d.keys("2")  # m1 is saved now
    assert d.items()[-1] == vm.MessageAudio("101", m1.id)


def test_envelope(store: VoicemailStore) -> None:
    m1 = leave(store, "101", "+4420")
    leave(store, "101", "")  # no caller ID
    tz = ZoneInfo("Europe/London")
    d = Driver(vm.MailboxMenu("101", tz=tz), store)
    d.start()
    d.finish_play()
    d.keys(PIN + "#1")
    d.keys("3")
    assert d.names() == (
        vm.P_RECEIVED,
        *vm.say_datetime(m1.received_at, tz),
        vm.P_FROM, "plus", "num-4", "num-4", "num-2", "num-0",
        vm.P_MESSAGE_MENU,
    )  # fmt: skip
    assert "day-tuesday" in d.names()
    d.keys("6")
    d.keys("3")
    assert vm.P_UNKNOWN_CALLER in d.names()
    today = Driver(vm.MailboxMenu("101", today=m1.received_at.date()), store)
    today.start()
    today.keys(PIN + "#13")
    assert today.names()[:3] == (vm.P_RECEIVED, vm.P_TODAY, vm.P_AT)


def test_delete_and_save(store: VoicemailStore) -> None:
    m1 = leave(store, "101", "201")
    m2 = leave(store, "101", "202")
    m3 = leave(store, "101", "203")
    d = login(store)
    d.keys("1")
    d.keys("7")  # delete m1 while it plays
    assert vm.DeleteMessage("101", m1.id) in d.log
    assert d.names()[0] == vm.P_DELETED
    assert d.items()[-1] == vm.MessageAudio("101", m2.id)
    d.keys("9")  # save m2: on to m3
    assert vm.MarkSaved("101", m2.id) in d.log
    assert d.items()[-1] == vm.MessageAudio("101", m3.id)
    d.keys("#")
    assert d.state() is vm.MenuState.MAIN
    assert [m.id for m in store.messages("101")] == [m2.id, m3.id]
    assert store.counts("101").new == 1 and store.counts("101").saved == 1
    assert not store.path_of("101", m1.id).exists()
    # The saved folder holds m2: saving it again moves on; deleting it empties the folder.
    d.keys("2")
    assert d.items()[-1] == vm.MessageAudio("101", m2.id)
    d.keys("9")
    assert d.names() == (vm.P_SAVED, vm.P_NO_MORE, vm.P_MAIN_MENU)
    d.keys("2")
    d.keys("7")
    assert d.names() == (vm.P_DELETED, vm.P_NO_MORE, vm.P_MAIN_MENU)
    assert store.counts("101").saved == 0
    assert [m.id for m in store.messages("101")] == [m3.id]


def test_invalid_keys_and_help(store: VoicemailStore) -> None:
    leave(store, "101", "201")
    d = login(store)
    d.keys("8")
    assert d.names() == (vm.P_INVALID, vm.P_MAIN_MENU)
    d.keys("1")
    d.keys("0")
    assert d.names() == (vm.P_INVALID, vm.P_MESSAGE_MENU)
    d.keys("*")  # help
    assert d.names() == (vm.P_MESSAGE_MENU,)
    d.keys("#")  # back to the main menu
    assert d.names() == (vm.P_MAIN_MENU,)
    d.keys("0")
    d.keys("9")
    assert d.names() == (vm.P_INVALID, vm.P_OPTIONS_MENU)
    d.keys("*")
    d.keys("ABCD8")  # five invalid keys in a row: the caller is lost, goodbye
    assert d.names() == (vm.P_GOODBYE,)


def test_wrong_pin_three_times_hangs_up(store: VoicemailStore) -> None:
    d = Driver(vm.MailboxMenu("101"), store)
    d.start()
    for i in range(vm.MAX_PIN_TRIES):
        d.keys("0000#")
        if i < vm.MAX_PIN_TRIES - 1:
            assert d.names() == (vm.P_LOGIN_INCORRECT, vm.P_ENTER_PIN)
    assert d.names() == (vm.P_LOGIN_INCORRECT, vm.P_GOODBYE)
    d.finish_play()
    assert d.hung_up
    assert not any(isinstance(c, vm.LoadMessages) for c in d.log)


def test_lockout_persists_across_calls(store: VoicemailStore) -> None:
    for _ in range(2):  # 3 + 2 = 5 wrong PINs over two calls
        d = Driver(vm.MailboxMenu("101"), store)
        d.start()
        d.keys("0000#0000#0000#")
    assert d.names()[0] == vm.P_LOCKED
    d = Driver(vm.MailboxMenu("101"), store)
    d.start()
    d.keys(PIN + "#")  # the right PIN does not open a locked box
    assert d.names() == (vm.P_LOCKED, vm.P_GOODBYE)
    d.now += store.settings.lockout_s + 1
    d2 = Driver(vm.MailboxMenu("101"), store)
    d2.now = d.now
    d2.start()
    d2.keys(PIN + "#")
    assert d2.state() is vm.MenuState.MAIN


def test_ask_mailbox_number_first(store: VoicemailStore) -> None:
    leave(store, "102", "101")
    d = Driver(vm.MailboxMenu(None), store)
    d.start()
    assert d.names() == (vm.P_ENTER_MAILBOX,)
    d.keys("#")  # nothing entered: ask again
    assert d.names() == (vm.P_ENTER_MAILBOX,)
    d.keys("10*")  # star starts over
    d.keys("102#")
    assert d.names() == (vm.P_ENTER_PIN,)
    d.keys(PIN + "#")
    assert d.state() is vm.MenuState.MAIN and vm.LoadMessages("102") in d.log


def test_unknown_or_pinless_box_from_elsewhere_is_refused(store: VoicemailStore) -> None:
    d = Driver(vm.MailboxMenu(None), store)
    d.start()
    d.keys("999#1234#")
    pins = [c for c in d.log if isinstance(c, vm.CheckPin)]
    assert pins == [vm.CheckPin("999", "1234")]
    ev = vm.run_store_command(store, vm.CheckPin("999", ""), expected_pin="")
    assert isinstance(ev, vm.PinResult) and ev.check.outcome == "wrong"


def test_skip_pin_on_own_phone(store: VoicemailStore) -> None:
    d = Driver(vm.MailboxMenu("101", skip_pin=True), store)
    d.start()
    assert d.state() is vm.MenuState.MAIN
    assert not any(isinstance(c, vm.CheckPin) for c in d.log)
    with pytest.raises(vm.MenuMisuse):
        vm.MailboxMenu(None, skip_pin=True)


def test_pin_digits_are_bounded_and_timeout_submits(store: VoicemailStore) -> None:
    d = Driver(vm.MailboxMenu("101"), store)
    d.start()
    d.keys("1" * (vm.MAX_PIN_DIGITS + 1))
    assert d.names() == (vm.P_INVALID, vm.P_ENTER_PIN)
    d.finish_play()
    d.keys(PIN)
    assert d.m.next_deadline == pytest.approx(d.now + vm.INPUT_TIMEOUT_S)
    d.wait(vm.INPUT_TIMEOUT_S - 1)
    assert d.state() is vm.MenuState.ASK_PIN
    d.wait(1)  # no '#': the timer submits what was typed
    assert d.state() is vm.MenuState.MAIN


def test_silence_reprompts_then_goodbye(store: VoicemailStore) -> None:
    d = login(store)
    for _ in range(vm.MAX_REPROMPTS):
        d.finish_play()
        d.wait(vm.INPUT_TIMEOUT_S)
        assert d.names() == (vm.P_MAIN_MENU,)
    d.finish_play()
    d.wait(vm.INPUT_TIMEOUT_S)
    assert d.names() == (vm.P_GOODBYE,)
    d.finish_play()
    assert d.hung_up and d.m.next_deadline is None


def test_record_greeting(store: VoicemailStore) -> None:
    d = login(store)
    d.keys("3")
    assert d.playing is not None
    assert d.playing.prompt_names == (vm.P_RECORD_GREETING,)
    assert isinstance(d.items()[-1], vm.Beep)
    d.keys("5")  # keys before the beep are ignored
    d.finish_play()
    assert d.rec() == "greeting"
    assert vm.StartRecording("greeting", "101") in d.log
    d.keys("#")
    assert d.log[-2] == vm.StopRecording(keep=True)
    assert d.names() == (vm.P_GREETING_SAVED, vm.P_MAIN_MENU)
    # Reaching the cap keeps it; a disk error drops it; hanging up throws it away.
    d.keys("3")
    d.finish_play()
    d.event(vm.RecordingEnded("cap"))
    assert d.log[-2] == vm.StopRecording(keep=True)
    d.keys("3")
    d.finish_play()
    d.event(vm.RecordingEnded("error"))
    assert d.log[-2] == vm.StopRecording(keep=False)
    assert d.names() == (vm.P_ERROR, vm.P_MAIN_MENU)
    d.keys("01")  # the options menu records a greeting too
    d.finish_play()
    d.event(vm.RecordingEnded("refused"))
    assert d.names() == (vm.P_ERROR, vm.P_MAIN_MENU)
    d.keys("3")
    d.finish_play()
    d.event(vm.CallerHungUp())
    assert d.log[-1] == vm.StopRecording(keep=False)


def test_record_busy_greeting_from_the_options(store: VoicemailStore) -> None:
    d = login(store)
    d.keys("03")
    assert d.names() == (vm.P_RECORD_BUSY_GREETING,)
    d.finish_play()
    assert d.rec() == "busy-greeting"
    assert vm.StartRecording("busy-greeting", "101") in d.log
    d.keys("#")
    assert d.names() == (vm.P_GREETING_SAVED, vm.P_MAIN_MENU)
    d.keys("3")  # the main menu's 3 is still the usual greeting
    d.finish_play()
    assert d.rec() == "greeting"


def test_change_pin(store: VoicemailStore) -> None:
    d = login(store)
    d.keys("02")
    assert d.names() == (vm.P_ENTER_NEW_PIN,)
    d.keys("12#")  # too short
    assert d.names() == (vm.P_INVALID, vm.P_ENTER_NEW_PIN)
    d.keys("97531#")
    assert d.log[-1] == vm.ChangePin("101", "97531")
    assert "97531" not in repr(d.log[-1])  # PINs stay out of logs
    assert d.state() is vm.MenuState.CHANGING_PIN
    d.keys("1")  # typed ahead while the configuration is saved: dropped
    d.event(vm.PinChanged(ok=True))
    assert d.names() == (vm.P_PIN_CHANGED, vm.P_OPTIONS_MENU)
    d.keys("2")
    d.keys("2468#")
    d.event(vm.PinChanged(ok=False))
    assert d.names() == (vm.P_ERROR, vm.P_OPTIONS_MENU)
    assert vm.run_store_command(store, vm.ChangePin("101", "2468")) is None  # not the store's


def test_menu_misuse(store: VoicemailStore) -> None:
    m = vm.MailboxMenu("101")
    with pytest.raises(vm.MenuMisuse):
        m.handle(vm.PlayFinished(1), T0)
    m.start(T0)
    with pytest.raises(vm.MenuMisuse):
        m.handle(vm.PinResult(PinCheck("ok", 5)), T0)
    with pytest.raises(vm.MenuMisuse):
        m.handle(vm.PinChanged(True), T0)
    with pytest.raises(vm.MenuMisuse):
        m.handle(vm.MessagesLoaded(()), T0)
    with pytest.raises(vm.MenuMisuse):
        m.handle(vm.RecordingEnded("cap"), T0)


def test_garbage_keys_never_break_the_menu(store: VoicemailStore) -> None:
    for i in range(5):
        leave(store, "101", f"20{i}")
    rng = random.Random(5)
    for _round in range(40):
        d = Driver(vm.MailboxMenu("101" if rng.random() < 0.8 else None), store)
        d.start()
        if d.m.box is not None and rng.random() < 0.7:
            d.keys(PIN + "#")
        for _ in range(200):
            if d.m.done:
                break
            r = rng.random()
            if r < 0.6:
                d.keys(rng.choice(sorted(vm.DTMF_DIGITS)))
            elif r < 0.8 and d.playing is not None:
                d.finish_play()
            elif r < 0.9:
                d.wait(rng.uniform(0, 2 * vm.INPUT_TIMEOUT_S))
            elif d.rec() == "greeting":
                d.event(vm.RecordingEnded(rng.choice(["cap", "error"])))
            elif d.state() is vm.MenuState.CHANGING_PIN:
                d.event(vm.PinChanged(rng.random() < 0.5))
            else:
                d.event(vm.PlayFinished(rng.randrange(100)))  # stale or unknown: ignored
            # Whatever happened, the machine is waiting on something or is done.
            assert (
                d.m.done
                or d.playing is not None
                or d.m.next_deadline is not None
                or d.rec() is not None
                or d.state() is vm.MenuState.CHANGING_PIN
            ), (d.state(), d.log[-3:])
        # The index and files still agree.
        for m in store.messages("101"):
            assert store.path_of("101", m.id).exists()
        if d.state() is vm.MenuState.RECORDING_GREETING:
            d.event(vm.CallerHungUp())
        store.db.conn.execute("DELETE FROM pin_state")  # random PINs may lock the box


def test_save_pin_writes_the_configuration(tmp_path: Path) -> None:
    from firmware.store import ConfigStore

    with ConfigStore.open(tmp_path / "cfg") as config:
        before = config.current().version
        assert vm.save_pin(config, vm.ChangePin("101", "97531")) == vm.PinChanged(True)
        current = config.current()
        assert current.version == before + 1
        (ext,) = [e for e in current.config.extensions if e.number == "101"]
        assert ext.voicemail_pin == "97531"
        assert "voicemail PIN of 101" in config.history(1)[0].summary
        # A PIN the schema refuses, and a box that is not configured: nothing saved.
        assert vm.save_pin(config, vm.ChangePin("101", "12")) == vm.PinChanged(False)
        assert vm.save_pin(config, vm.ChangePin("999", "1234")) == vm.PinChanged(False)
        assert config.current().version == before + 1


def test_every_prompt_is_in_the_catalogue() -> None:
    # The catalogue comes with the ivr branch; once merged, this holds the two together.
    prompts = pytest.importorskip("firmware.prompts.catalogue")
    shipped = prompts.catalogue()
    missing = sorted(name for name in vm.PROMPTS_USED if name not in shipped)
    assert not missing, f"prompts the voicemail flows play but the catalogue lacks: {missing}"
