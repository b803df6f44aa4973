"""The room controller: PIN entry, the participant limit, mute by DTMF, leaving."""

from __future__ import annotations

import pytest

from firmware.pbx.conference import (
    PROMPTS_USED,
    ConferenceInputError,
    ConferenceProtocolError,
    Digit,
    Disconnect,
    HangUp,
    JoinRoom,
    LeaveRoom,
    PlayPrompt,
    RoomCaller,
    RoomDirectory,
    SetMute,
    State,
)
from firmware.store.schema import ConferenceConfig, ConferenceRoom

ROOMS = ConferenceConfig(
    rooms=(
        ConferenceRoom(number="800", name="Open", max_participants=2),
        ConferenceRoom(number="801", name="Board", pin="4321", max_participants=3),
    ),
    pin_attempts=2,
    pin_timeout_s=10,
)


def dial(caller: RoomCaller, digits: str, now: float = 0.0) -> list[object]:
    out: list[object] = []
    for d in digits:
        out += caller.handle(Digit(d), now)
    return out


def test_an_open_room_lets_callers_in_up_to_its_limit() -> None:
    directory = RoomDirectory(ROOMS)
    first, second, third = (RoomCaller(directory, "800") for _ in range(3))
    assert first.start(0) == [
        JoinRoom("800"),
        PlayPrompt("conf-joined"),
        PlayPrompt("conf-only-person"),
    ]
    assert second.start(0) == [JoinRoom("800"), PlayPrompt("conf-joined")]
    assert directory.occupancy("800") == 2
    assert third.start(0) == [PlayPrompt("conf-full"), Disconnect("full")]
    assert third.state is State.DONE
    assert first.handle(HangUp(), 5) == [LeaveRoom("800")]
    fourth = RoomCaller(directory, "800")
    assert fourth.start(6)[0] == JoinRoom("800")  # the seat freed is taken again


def test_the_pin_is_asked_checked_and_retried() -> None:
    directory = RoomDirectory(ROOMS)
    caller = RoomCaller(directory, "801")
    assert caller.start(0) == [PlayPrompt("conf-enter-pin")]
    assert caller.timer() == 10
    assert dial(caller, "12", 1) == []
    assert caller.timer() == 11  # every digit restarts the wait
    assert dial(caller, "#", 2) == [PlayPrompt("conf-invalid-pin"), PlayPrompt("conf-enter-pin")]
    assert dial(caller, "43*", 3) == []  # '*' starts the entry again
    assert dial(caller, "4321", 4)[:2] == [JoinRoom("801"), PlayPrompt("conf-joined")]
    assert caller.timer() is None and directory.occupancy("801") == 1


def test_wrong_pins_and_silence_end_the_call() -> None:
    directory = RoomDirectory(ROOMS)
    caller = RoomCaller(directory, "801")
    caller.start(0)
    assert caller.handle_timer(5) == []  # not due yet
    assert caller.handle_timer(10) == [
        PlayPrompt("conf-invalid-pin"),
        PlayPrompt("conf-enter-pin"),
    ]
    assert dial(caller, "9999", 12) == [PlayPrompt("conf-invalid-pin"), Disconnect("invalid-pin")]
    assert caller.state is State.DONE and directory.occupancy("801") == 0
    with pytest.raises(ConferenceProtocolError, match="not expected in state done"):
        caller.handle(Digit("1"), 13)


def test_a_room_that_filled_up_during_pin_entry_refuses() -> None:
    directory = RoomDirectory(ROOMS)
    slow = RoomCaller(directory, "801")
    slow.start(0)
    for _ in range(3):
        fast = RoomCaller(directory, "801")
        fast.start(0)
        dial(fast, "4321")
    assert dial(slow, "4321") == [PlayPrompt("conf-full"), Disconnect("full")]


def test_star_six_toggles_mute_and_other_digits_do_not() -> None:
    directory = RoomDirectory(ROOMS)
    caller = RoomCaller(directory, "800")
    caller.start(0)
    assert dial(caller, "1*5*") == []
    assert dial(caller, "6") == [SetMute("800", True), PlayPrompt("conf-muted")]
    assert dial(caller, "**6") == [SetMute("800", False), PlayPrompt("conf-unmuted")]
    assert not caller.muted


def test_hanging_up_during_pin_entry_releases_nothing() -> None:
    directory = RoomDirectory(ROOMS)
    caller = RoomCaller(directory, "801")
    caller.start(0)
    assert caller.handle(HangUp(), 1) == []
    assert directory.occupancy("801") == 0


def test_every_prompt_named_is_in_prompts_used_and_bad_input_is_refused() -> None:
    directory = RoomDirectory(ROOMS)
    names = set()
    for number, digits in (("800", "*6*6"), ("801", "#00000000")):
        caller = RoomCaller(directory, number)
        for command in caller.start(0) + dial(caller, digits):
            if isinstance(command, PlayPrompt):
                names.add(command.name)
    assert names <= set(PROMPTS_USED)
    assert all(n.startswith("conf-") and n == n.lower() for n in PROMPTS_USED)
    with pytest.raises(ConferenceInputError, match="not a DTMF digit"):
        Digit("x")
    with pytest.raises(ConferenceProtocolError, match="no conference room"):
        RoomCaller(directory, "999")
    caller = RoomCaller(directory, "800")
    caller.start(0)
    with pytest.raises(ConferenceProtocolError, match="start in state joined"):
        caller.start(0)
