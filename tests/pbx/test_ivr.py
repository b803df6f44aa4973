"""The IVR engine: every path through a menu, time conditions, garbage input."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.pbx.ivr import (
    MAX_MENU_PLAYS,
    PROMPT_GUARD_MS,
    BadDigit,
    HangUp,
    IvrMisuse,
    IvrPlan,
    IvrSession,
    PlayPrompts,
    State,
    StopPrompt,
    Transfer,
)
from firmware.store.ivrconfig import GoDial, GoExtension, GoVoicemail
from tests.pbx.ivr_fixtures import office_config

UTC = dt.UTC
# Wednesday 2026-06-10 10:00 in Berlin (CEST, UTC+2): office hours.
OPEN = dt.datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
# Wednesday 2026-06-10 20:00 in Berlin: closed.
CLOSED = dt.datetime(2026, 6, 10, 18, 0, tzinfo=UTC)
MAIN = ("welcome", "enter-extension-or-wait")


@pytest.fixture
def plan() -> IvrPlan:
    return IvrPlan.from_config(office_config())


def started(plan: IvrPlan, when: dt.datetime = OPEN) -> tuple[IvrSession, PlayPrompts]:
    s = plan.session()
    out = s.start(0, when)
    assert len(out) == 1 and isinstance(out[0], PlayPrompts)
    return s, out[0]


def state_of(s: IvrSession) -> State:
    return s.state  # read afresh: mypy would keep the narrowing of an earlier assert


def waiting(plan: IvrPlan, now: int = 1000) -> IvrSession:
    s, play = started(plan)
    assert s.prompt_finished(play.play_id, now) == []
    assert s.state is State.WAITING
    return s


def test_start_plays_the_open_menu_in_the_profile_language(plan: IvrPlan) -> None:
    s, play = started(plan)
    assert play.names == MAIN
    assert play.language == "de"  # system.country DE
    assert s.menu == "main" and s.state is State.PLAYING
    assert s.next_deadline() == PROMPT_GUARD_MS


def test_language_setting_wins_over_the_country() -> None:
    plan = IvrPlan.from_config(office_config(language="fr"))
    assert started(plan)[1].language == "fr"


def test_option_after_the_prompt_transfers(plan: IvrPlan) -> None:
    s = waiting(plan)
    assert s.next_deadline() == 1000 + 5000
    assert s.digit("0", 2000) == [Transfer(GoExtension("201"), "main", "0")]
    assert s.done and s.next_deadline() is None
    assert s.outcome == Transfer(GoExtension("201"), "main", "0")


def test_voicemail_and_dial_destinations(plan: IvrPlan) -> None:
    s = waiting(plan)
    assert s.digit("9", 2000) == [Transfer(GoVoicemail("201"), "main", "9")]
    s = waiting(plan)
    assert s.digit("8", 2000) == [Transfer(GoDial("0301234567"), "main", "8")]


def test_a_key_during_the_prompt_stops_it_barge_in(plan: IvrPlan) -> None:
    s, play = started(plan)
    out = s.digit("1", 500)
    assert out[0] == StopPrompt(play.play_id)
    assert isinstance(out[1], PlayPrompts) and out[1].names == ("please-hold",)
    assert s.menu == "sales"
    # The stopped prompt's end arrives late: it must not end the new one.
    assert s.prompt_finished(play.play_id, 600) == []
    assert s.state is State.PLAYING
    assert s.prompt_finished(out[1].play_id, 2000) == []
    assert state_of(s) is State.WAITING
    assert s.digit("1", 2500) == [Transfer(GoExtension("202"), "sales", "1")]


def test_direct_dialling_an_extension(plan: IvrPlan) -> None:
    s, play = started(plan)
    assert s.digit("2", 100) == [StopPrompt(play.play_id)]
    assert s.state is State.DIALLING
    assert s.digit("0", 200) == []
    assert s.digit("2", 300) == [Transfer(GoExtension("202"), "main", "202")]


def test_direct_dialling_a_number_that_is_no_extension(plan: IvrPlan) -> None:
    s = waiting(plan)
    s.digit("2", 2000)
    s.digit("9", 2100)
    out = s.digit("9", 2200)
    assert len(out) == 1 and isinstance(out[0], PlayPrompts)
    assert out[0].names == ("invalid-extension", *MAIN)
    assert s.state is State.PLAYING


def test_direct_dialling_interrupted_by_the_inter_digit_timer(plan: IvrPlan) -> None:
    s = waiting(plan)
    s.digit("2", 2000)
    deadline = s.next_deadline()
    assert deadline == 2000 + 4000  # dialplan.inter_digit_timeout_ms
    assert s.handle_timer(deadline - 1) == []
    out = s.handle_timer(deadline)
    assert isinstance(out[0], PlayPrompts) and out[0].names == ("invalid", *MAIN)


def test_invalid_keys_replay_then_leave_by_the_invalid_destination(plan: IvrPlan) -> None:
    s = waiting(plan)
    for attempt in range(2):  # max_retries = 2
        out = s.digit("7", 2000 + attempt)
        assert isinstance(out[0], PlayPrompts) and out[0].names == ("invalid", *MAIN)
        s.prompt_finished(out[0].play_id, 3000 + attempt)
    out = s.digit("7", 5000)  # third invalid: invalid = hangup
    assert isinstance(out[0], PlayPrompts) and out[0].names == ("goodbye",)
    assert s.state is State.CLOSING
    assert s.digit("0", 5100) == []  # keys during goodbye are ignored
    assert s.prompt_finished(out[0].play_id, 6000) == [HangUp("goodbye")]
    assert s.done


def test_letters_a_to_d_are_invalid_input_not_errors(plan: IvrPlan) -> None:
    s = waiting(plan)
    out = s.digit("A", 2000)
    assert isinstance(out[0], PlayPrompts) and out[0].names[0] == "invalid"


def test_silence_replays_then_leaves_by_the_timeout_destination(plan: IvrPlan) -> None:
    s = waiting(plan, now=1000)
    now = 1000
    for _ in range(2):
        now = s.next_deadline() or 0
        out = s.handle_timer(now)
        assert isinstance(out[0], PlayPrompts) and out[0].names == ("timeout", *MAIN)
        s.prompt_finished(out[0].play_id, now + 3000)
    out = s.handle_timer(s.next_deadline() or 0)
    assert out == [Transfer(GoExtension("201"), "main", "")]


def test_submenu_times_out_back_to_main_with_fresh_retries(plan: IvrPlan) -> None:
    s = waiting(plan)
    play = s.digit("1", 2000)[0]
    assert isinstance(play, PlayPrompts)
    s.prompt_finished(play.play_id, 3000)
    replay = s.handle_timer(3000 + 4000)[0]  # sales: 4 s, max_retries 1
    assert isinstance(replay, PlayPrompts) and replay.names == ("timeout", "please-hold")
    s.prompt_finished(replay.play_id, 8000)
    back = s.handle_timer(8000 + 4000)[0]
    assert isinstance(back, PlayPrompts) and back.names == MAIN
    assert s.menu == "main"
    s.prompt_finished(back.play_id, 13000)
    first = s.digit("7", 13500)[0]  # main's retries start again from zero
    assert isinstance(first, PlayPrompts) and first.names == ("invalid", *MAIN)


def test_repeat_replays_without_counting_a_retry(plan: IvrPlan) -> None:
    s = waiting(plan)
    for i in range(5):
        out = s.digit("*", 2000 + i)
        assert isinstance(out[0], PlayPrompts) and out[0].names == MAIN
        s.prompt_finished(out[0].play_id, 2500 + i)
    assert s.digit("0", 9000)[0] == Transfer(GoExtension("201"), "main", "0")


def test_a_caller_who_repeats_for_ever_is_let_go(plan: IvrPlan) -> None:
    s = waiting(plan)
    now = 2000
    for _ in range(MAX_MENU_PLAYS + 5):
        out = s.digit("*", now)
        now += 100
        play = out[-1]
        assert isinstance(play, PlayPrompts)
        if play.names == ("goodbye",):
            break
        s.prompt_finished(play.play_id, now)
    assert s.state is State.CLOSING


def test_hangup_option(plan: IvrPlan) -> None:
    s = waiting(plan)
    out = s.digit("#", 2000)
    assert isinstance(out[0], PlayPrompts) and out[0].names == ("goodbye",)
    # No "prompt finished" ever comes: the guard timer ends it.
    assert s.handle_timer(2000 + PROMPT_GUARD_MS) == [HangUp("goodbye")]


def test_the_prompt_guard_when_the_end_of_a_prompt_is_never_reported(plan: IvrPlan) -> None:
    s, _ = started(plan)
    assert s.handle_timer(PROMPT_GUARD_MS) == []
    assert s.state is State.WAITING


def test_outside_office_hours_the_closed_menu_goes_to_voicemail(plan: IvrPlan) -> None:
    s, play = started(plan, CLOSED)
    assert s.menu == "closed" and play.names == ("office-closed",)
    s.prompt_finished(play.play_id, 1000)
    assert s.handle_timer(1000 + 6000) == [Transfer(GoVoicemail("201"), "closed", "")]


@pytest.mark.parametrize(
    ("when", "menu"),
    [
        (dt.datetime(2026, 12, 25, 10, 0, tzinfo=UTC), "holiday"),  # every 25 December
        (dt.datetime(2027, 12, 25, 10, 0, tzinfo=UTC), "holiday"),
        (dt.datetime(2026, 4, 6, 10, 0, tzinfo=UTC), "holiday"),  # Easter Monday 2026 only
        (dt.datetime(2027, 4, 6, 10, 0, tzinfo=UTC), "main"),  # a Tuesday, no holiday
        # 24 Dec 23:30 UTC is already 25 Dec 00:30 in Berlin.
        (dt.datetime(2026, 12, 24, 23, 30, tzinfo=UTC), "holiday"),
        (dt.datetime(2026, 6, 13, 9, 0, tzinfo=UTC), "main"),  # Saturday 11:00
        (dt.datetime(2026, 6, 13, 10, 30, tzinfo=UTC), "closed"),  # Saturday 12:30: closed
        (dt.datetime(2026, 6, 14, 9, 0, tzinfo=UTC), "closed"),  # Sunday
        (dt.datetime(2026, 6, 10, 5, 59, tzinfo=UTC), "closed"),  # 07:59
        (dt.datetime(2026, 6, 10, 6, 0, tzinfo=UTC), "main"),  # 08:00 opens
        (dt.datetime(2026, 6, 10, 14, 59, tzinfo=UTC), "main"),  # 16:59
        (dt.datetime(2026, 6, 10, 15, 0, tzinfo=UTC), "closed"),  # 17:00 closes
    ],
)
def test_time_conditions(plan: IvrPlan, when: dt.datetime, menu: str) -> None:
    assert plan.entry_menu(when) == menu


@pytest.mark.parametrize(
    ("when", "is_open"),
    [
        # Spring: clocks go forward on Sunday 29 March 2026 (CET +1 -> CEST +2).
        (dt.datetime(2026, 3, 27, 6, 30, tzinfo=UTC), False),  # Fri 07:30 CET
        (dt.datetime(2026, 3, 30, 6, 30, tzinfo=UTC), True),  # Mon 08:30 CEST
        (dt.datetime(2026, 3, 27, 15, 30, tzinfo=UTC), True),  # Fri 16:30 CET
        (dt.datetime(2026, 3, 30, 15, 30, tzinfo=UTC), False),  # Mon 17:30 CEST
        # Autumn: back on Sunday 25 October 2026 (CEST -> CET).
        (dt.datetime(2026, 10, 23, 6, 30, tzinfo=UTC), True),  # Fri 08:30 CEST
        (dt.datetime(2026, 10, 26, 6, 30, tzinfo=UTC), False),  # Mon 07:30 CET
        (dt.datetime(2026, 10, 23, 15, 30, tzinfo=UTC), False),  # Fri 17:30 CEST
        (dt.datetime(2026, 10, 26, 15, 30, tzinfo=UTC), True),  # Mon 16:30 CET
    ],
)
def test_office_hours_follow_the_local_clock_across_dst(
    plan: IvrPlan, when: dt.datetime, is_open: bool
) -> None:
    assert plan.is_open(when) is is_open
    assert plan.entry_menu(when) == ("main" if is_open else "closed")


def test_a_time_given_in_another_zone_is_judged_in_system_timezone(plan: IvrPlan) -> None:
    # 10:00 in New York (UTC-4) is 16:00 in Berlin: open; 12:00 there is 18:00 here.
    new_york = dt.timezone(dt.timedelta(hours=-4))
    assert plan.entry_menu(dt.datetime(2026, 6, 10, 10, 0, tzinfo=new_york)) == "main"
    assert plan.entry_menu(dt.datetime(2026, 6, 10, 12, 0, tzinfo=new_york)) == "closed"


def test_without_office_hours_always_open_except_holidays() -> None:
    plan = IvrPlan.from_config(office_config(office_hours=[], closed_menu=""))
    assert plan.entry_menu(CLOSED) == "main"
    assert plan.entry_menu(dt.datetime(2026, 12, 25, 3, 0, tzinfo=UTC)) == "holiday"
    plan = IvrPlan.from_config(office_config(office_hours=[], closed_menu="", holiday_menu=""))
    assert plan.entry_menu(dt.datetime(2026, 12, 25, 3, 0, tzinfo=UTC)) == "main"


def test_a_naive_time_is_refused(plan: IvrPlan) -> None:
    with pytest.raises(IvrMisuse, match="timezone-aware"):
        plan.session().start(0, dt.datetime(2026, 6, 10, 10, 0))


@pytest.mark.parametrize("garbage", ["", "12", "x", "\x00", "٣", 5, None, b"1"])
def test_garbage_keys_are_refused_by_name(plan: IvrPlan, garbage: object) -> None:
    s = waiting(plan)
    with pytest.raises(BadDigit, match="not a DTMF key"):
        s.digit(garbage, 2000)  # type: ignore[arg-type]
    assert s.state is State.WAITING  # and nothing changed
    assert s.digit("0", 2100)[0] == Transfer(GoExtension("201"), "main", "0")


def test_events_out_of_order(plan: IvrPlan) -> None:
    s = plan.session()
    with pytest.raises(IvrMisuse):
        s.digit("1", 0)  # before start
    assert s.handle_timer(10**9) == []  # no timer before start
    s.start(0, OPEN)
    with pytest.raises(IvrMisuse):
        s.start(1, OPEN)
    assert s.prompt_finished(12345, 10) == []  # not a prompt we started
    s.stop()
    assert s.done and s.outcome == HangUp("caller hung up")
    assert s.digit("1", 20) == []  # races with the hang-up
    assert s.prompt_finished(1, 30) == []
    assert s.handle_timer(10**9) == []


def test_a_menu_without_prompts_waits_at_once() -> None:
    config = office_config(
        menus=[{"name": "main", "prompts": [], "direct_dial": "2xx", "timeout": "extension:201"}],
        closed_menu="",
        holiday_menu="",
        office_hours=[],
    )
    s = IvrPlan.from_config(config).session()
    assert s.start(0, OPEN) == []
    assert s.state is State.WAITING and s.next_deadline() == 6000


def test_a_session_needs_a_configured_ivr() -> None:
    config = office_config(enabled=False, open_menu="", closed_menu="", holiday_menu="")
    with pytest.raises(IvrMisuse, match="open_menu"):
        IvrPlan.from_config(config).session()


_EVENTS = st.lists(
    st.one_of(
        st.sampled_from("0123456789*#ABCD").map(lambda d: ("digit", d)),
        st.integers(0, 40).map(lambda i: ("finished", i)),
        st.integers(0, 400_000).map(lambda ms: ("wait", ms)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(events=_EVENTS, open_=st.booleans())
def test_any_sequence_of_events_ends_in_a_transfer_or_hang_up(
    events: list[tuple[str, object]], open_: bool
) -> None:
    plan = IvrPlan.from_config(office_config())
    s = plan.session()
    now = 0
    out = s.start(now, OPEN if open_ else CLOSED)
    last_play = 0

    def note(cmds: list[object]) -> None:
        nonlocal last_play
        for c in cmds:
            assert isinstance(c, PlayPrompts | StopPrompt | Transfer | HangUp)
            if isinstance(c, PlayPrompts):
                assert c.names and all(isinstance(n, str) for n in c.names)
                last_play = c.play_id
            if isinstance(c, Transfer | HangUp):
                assert s.done

    note(list(out))
    for kind, value in events:
        if kind == "digit":
            note(list(s.digit(str(value), now)))
        elif kind == "finished":
            note(list(s.prompt_finished(int(str(value)), now)))
        else:
            now += int(str(value))
            note(list(s.handle_timer(now)))
        deadline = s.next_deadline()
        assert deadline is None or deadline > now - 400_001
    # Left alone, every session ends: prompts finish, timers run out.
    for _ in range(4 * MAX_MENU_PLAYS + 10):
        if s.done:
            break
        note(list(s.prompt_finished(last_play, now)))
        deadline = s.next_deadline()
        if deadline is not None:
            now = max(now, deadline)
            note(list(s.handle_timer(now)))
    assert s.done
    assert isinstance(s.outcome, Transfer | HangUp)
    if isinstance(s.outcome, Transfer):
        dest = s.outcome.destination
        assert dest in {
            GoExtension("201"),
            GoExtension("202"),
            GoExtension("203"),
            GoVoicemail("201"),
            GoDial("0301234567"),
        }
