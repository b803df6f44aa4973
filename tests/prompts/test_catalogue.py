"""The catalogue's contents and its validation; numbers, digits and dates as prompts."""

from __future__ import annotations

import datetime as dt

import pytest

from firmware.pbx import ivr
from firmware.prompts.catalogue import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    MAX_NUMBER,
    NAME_RE,
    CatalogueError,
    catalogue,
    language_for,
    parse_catalogue,
)
from firmware.prompts.speech import say_count, say_date, say_digits, say_number, say_time
from firmware.store.schema import IvrMenu

# Prompt names other parts of the firmware play.  A name here that the catalogue lacks
# would be the error tone on a real call.
REQUIRED = {
    # IVR (firmware.pbx.ivr and the default menu)
    ivr.INVALID_PROMPT, ivr.INVALID_EXTENSION_PROMPT, ivr.TIMEOUT_PROMPT, ivr.GOODBYE_PROMPT,
    *IvrMenu().prompts, "welcome", "enter_extension", "please_hold", "transferring",
    "office_closed", "holiday",
    # voicemail (issue 5 section 4)
    "vm_enter_mailbox", "enter_pin", "vm_login_incorrect", "vm_you_have", "vm_new_message",
    "vm_new_messages", "vm_saved_message", "vm_saved_messages", "vm_no_messages",
    "vm_main_menu", "vm_message_menu", "vm_options_menu", "vm_received", "vm_from",
    "vm_unknown_caller", "vm_deleted", "vm_saved", "vm_leave_message", "vm_unavailable",
    "vm_busy", "vm_record_greeting", "vm_greeting_saved", "vm_enter_new_pin",
    "vm_pin_changed", "vm_mailbox_full", "vm_no_more_messages",
    # conference rooms (section 6)
    "conf_enter_room", "conf_enter_pin", "conf_invalid_pin", "conf_joined",
    "conf_only_person", "conf_participant_joined", "conf_participant_left", "conf_muted",
    "conf_unmuted", "conf_full",
    # queues (section 3)
    "queue_all_busy", "queue_position", "queue_in_line", "queue_thanks_waiting",
    "queue_agent_logged_in", "queue_agent_logged_out",
    # features
    "activated", "deactivated", "call_recorded", "forward_enter_number",
}  # fmt: skip


def test_every_required_prompt_is_in_the_catalogue() -> None:
    missing = sorted(REQUIRED - set(catalogue().names))
    assert missing == []


def test_every_prompt_has_english_and_a_safe_name() -> None:
    cat = catalogue()
    assert len(cat.names) > 200
    for name in cat.names:
        assert NAME_RE.match(name)
        assert cat.text(name, DEFAULT_LANGUAGE)


def test_phrases_are_translated_into_every_language() -> None:
    cat = catalogue()
    for name in ("goodbye", "vm_main_menu", "conf_muted", "month_march", "day_sunday"):
        texts = {cat.text(name, lang) for lang in LANGUAGES}
        assert len(texts) >= 4, name  # "marzo" is Spanish and Italian alike
        for lang in LANGUAGES:
            assert cat.spoken_language(name, lang) == lang


def test_every_number_say_number_can_produce_is_in_the_catalogue() -> None:
    names = set(catalogue().names)
    for n in range(MAX_NUMBER + 1):
        parts = say_number(n)
        assert set(parts) <= names, n
        assert 1 <= len(parts) <= 3


@pytest.mark.parametrize(
    ("n", "names"),
    [
        (0, ("num_0",)),
        (42, ("num_42",)),
        (100, ("num_100",)),
        (305, ("num_300", "num_5")),
        (1000, ("num_1000",)),
        (1234, ("num_1000", "num_200", "num_34")),
        (9999, ("num_9000", "num_900", "num_99")),
    ],
)
def test_say_number(n: int, names: tuple[str, ...]) -> None:
    assert say_number(n) == names


@pytest.mark.parametrize("bad", [-1, MAX_NUMBER + 1, 2.0, True, "3"])
def test_say_number_refuses(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        say_number(bad)  # type: ignore[arg-type]


def test_digits_dates_times_counts() -> None:
    assert say_digits("20*#") == ("digit_2", "digit_0", "star", "hash")
    with pytest.raises(ValueError, match="not a digit"):
        say_digits("2a")
    assert say_date(dt.date(2026, 3, 2)) == ("day_monday", "num_2", "month_march")
    assert say_time(dt.time(14, 5)) == ("at", "num_14", "num_5")
    assert say_time(dt.time(9, 0)) == ("at", "num_9", "hours")
    assert say_count(1, "vm_new_message", "vm_new_messages") == ("num_1", "vm_new_message")
    assert say_count(3, "vm_new_message", "vm_new_messages") == ("num_3", "vm_new_messages")
    names = set(catalogue().names)
    for parts in (say_date(dt.date(2026, 12, 31)), say_time(dt.time(23, 59)), say_digits("0")):
        assert set(parts) <= names


@pytest.mark.parametrize(
    ("tag", "lang"),
    [("de-CH", "de"), ("fr-FR", "fr"), ("en-GB", "en"), ("ja-JP", "en"), ("pt_BR", "en"),
     ("IT", "it"), ("", "en")],
)  # fmt: skip
def test_language_for(tag: str, lang: str) -> None:
    assert language_for(tag) == lang


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("schema = 1\n[x]\nde = 'Hallo'\n", "every prompt needs 'en'"),
        ("schema = 1\n[x]\nen = 'a'\nxx = 'b'\n", "unknown language 'xx'"),
        ("schema = 1\n[Bad-Name]\nen = 'a'\n", "a name is 1-48"),
        ("schema = 1\n[x]\nen = '  '\n", "expected non-empty text"),
        ("schema = 1\nx = 3\n", "expected a table"),
        ("schema = 2\n", "schema 2"),
        ("schema = 1\n[x\n", "not valid TOML"),
        ("schema = 1\n[num_5]\nen = 'five'\n", "is generated"),
        ("schema = 1\n[x]\nen = 'a'\n", "[day_monday] is missing"),
        (f"schema = 1\n[x]\nen = '{'a' * 401}'\n", "longer than 400"),
    ],
)
def test_catalogue_errors_name_the_entry(text: str, error: str) -> None:
    with pytest.raises(CatalogueError, match=error.replace("[", r"\[")):
        parse_catalogue(text, "test.toml")


def test_text_of_an_unknown_prompt() -> None:
    with pytest.raises(CatalogueError, match="no prompt 'nope'"):
        catalogue().text("nope", "en")
