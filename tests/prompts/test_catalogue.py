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
IVR_NAMES = {
    ivr.INVALID_PROMPT, ivr.INVALID_EXTENSION_PROMPT, ivr.TIMEOUT_PROMPT, ivr.GOODBYE_PROMPT,
    *IvrMenu().prompts, "welcome", "enter-extension", "please-hold", "transferring",
    "office-closed", "holiday",
}  # fmt: skip
# firmware/pbx/voicemail.py PROMPTS_USED on branch voicemail (d62ee3a).
VOICEMAIL_NAMES = {
    "vm-enter-mailbox", "vm-enter-pin", "vm-login-incorrect", "vm-locked", "vm-you-have",
    "vm-new-message", "vm-new-messages", "vm-saved-message", "vm-saved-messages", "vm-and",
    "vm-no-messages", "vm-no-new-messages", "vm-no-saved-messages", "vm-main-menu",
    "vm-options-menu", "vm-message", "vm-message-menu", "vm-no-previous",
    "vm-no-more-messages", "vm-received", "vm-from", "vm-unknown-caller", "vm-deleted",
    "vm-saved", "vm-record-greeting", "vm-greeting-saved", "vm-record-busy-greeting",
    "vm-enter-new-pin",
    "vm-pin-changed", "vm-extension", "vm-not-available", "vm-busy", "vm-mailbox-full",
    "vm-message-saved", "vm-recording-limit", "vm-error", "invalid", "goodbye", "day-today",
    "day-yesterday", "at", "oh", "o-clock", "plus", "star", "hash",
    *(f"num-{n}" for n in range(100)), *(f"num-{n}" for n in range(100, 1000, 100)),
    *(f"num-{n}" for n in range(1000, 10000, 1000)),
    *(f"day-{d}" for d in ("monday", "tuesday", "wednesday", "thursday", "friday",
                           "saturday", "sunday")),
    *(f"month-{m}" for m in ("january", "february", "march", "april", "may", "june", "july",
                             "august", "september", "october", "november", "december")),
}  # fmt: skip
# firmware/pbx/conference.py and recording.py PROMPTS_USED on branch confrec (00a9af5).
CONFERENCE_NAMES = {
    "conf-enter-pin", "conf-invalid-pin", "conf-joined", "conf-full", "conf-muted",
    "conf-unmuted", "conf-only-person", "call-recorded",
}  # fmt: skip
# What queues and features will need (issue 5 sections 1-3).
OTHER_NAMES = {
    "queue-all-busy", "queue-position", "queue-in-line", "queue-thanks-waiting",
    "queue-agent-logged-in", "queue-agent-logged-out", "activated", "deactivated",
    "call-recorded", "forward-enter-number", "conf-participant-joined",
    "conf-participant-left", "conf-only-person",
}  # fmt: skip
REQUIRED = IVR_NAMES | VOICEMAIL_NAMES | CONFERENCE_NAMES | OTHER_NAMES


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
    for name in ("goodbye", "vm-main-menu", "conf-muted", "month-march", "day-sunday"):
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
        (0, ("num-0",)),
        (42, ("num-42",)),
        (100, ("num-100",)),
        (305, ("num-300", "num-5")),
        (1000, ("num-1000",)),
        (1234, ("num-1000", "num-200", "num-34")),
        (9999, ("num-9000", "num-900", "num-99")),
    ],
)
def test_say_number(n: int, names: tuple[str, ...]) -> None:
    assert say_number(n) == names


@pytest.mark.parametrize("bad", [-1, MAX_NUMBER + 1, 2.0, True, "3"])
def test_say_number_refuses(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        say_number(bad)  # type: ignore[arg-type]


def test_digits_dates_times_counts() -> None:
    assert say_digits("20*#") == ("num-2", "num-0", "star", "hash")
    with pytest.raises(ValueError, match="not a digit"):
        say_digits("2a")
    assert say_date(dt.date(2026, 3, 2)) == ("day-monday", "num-2", "month-march")
    assert say_time(dt.time(14, 5)) == ("at", "num-14", "num-5")
    assert say_time(dt.time(9, 0)) == ("at", "num-9", "o-clock")
    assert say_count(1, "vm-new-message", "vm-new-messages") == ("num-1", "vm-new-message")
    assert say_count(3, "vm-new-message", "vm-new-messages") == ("num-3", "vm-new-messages")
    names = set(catalogue().names)
    for parts in (say_date(dt.date(2026, 12, 31)), say_time(dt.time(23, 59)), say_digits("0")):
        assert set(parts) <= names


@pytest.mark.parametrize(
    ("tag", "lang"),
    [("de-CH", "de"), ("nl-BE", "nl"), ("fr-FR", "fr"), ("en-GB", "en"), ("ja-JP", "en"),
     ("pt_BR", "pt"), ("sv-SE", "en"), ("IT", "it"), ("", "en")],
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
        ("schema = 1\n[num-5]\nen = 'five'\n", "is generated"),
        ("schema = 1\n[x]\nen = 'a'\n", "[day-monday] is missing"),
        (f"schema = 1\n[x]\nen = '{'a' * 401}'\n", "longer than 400"),
    ],
)
def test_catalogue_errors_name_the_entry(text: str, error: str) -> None:
    with pytest.raises(CatalogueError, match=error.replace("[", r"\[")):
        parse_catalogue(text, "test.toml")


def test_text_of_an_unknown_prompt() -> None:
    with pytest.raises(CatalogueError, match="no prompt 'nope'"):
        catalogue().text("nope", "en")
