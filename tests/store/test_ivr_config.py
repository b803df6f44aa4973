"""The ivr section: what it accepts, and every refusal naming its path."""

from __future__ import annotations

from typing import Any

import pytest

from firmware.store.ivrconfig import (
    DestinationError,
    GoDial,
    GoExtension,
    GoHangup,
    GoMenu,
    GoRepeat,
    GoVoicemail,
    destination_text,
    parse_destination,
)
from firmware.store.validate import ConfigError, parse, to_document
from tests.pbx.ivr_fixtures import office_doc


def refused(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(doc)
    return [str(i) for i in info.value.issues]


def menu(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in doc["ivr"]["menus"] if m["name"] == name)


def test_the_office_example_is_accepted_and_round_trips() -> None:
    config = parse(office_doc())
    assert [m.name for m in config.ivr.menus] == ["main", "sales", "closed", "holiday"]
    assert config.lines.fxo[0].destination == "500"  # the IVR number is a line destination
    assert parse(to_document(config)) == config


def test_a_fresh_box_has_the_ivr_off() -> None:
    config = parse({})
    assert config.ivr.enabled is False and config.ivr.menus == ()


@pytest.mark.parametrize(
    ("text", "dest"),
    [
        ("extension:201", GoExtension("201")),
        ("voicemail:201", GoVoicemail("201")),
        ("menu:sales-2", GoMenu("sales-2")),
        ("dial:0049301234#", GoDial("0049301234#")),
        ("repeat", GoRepeat()),
        ("hangup", GoHangup()),
    ],
)
def test_destinations(text: str, dest: object) -> None:
    assert parse_destination(text) == dest
    assert destination_text(parse_destination(text)) == text


@pytest.mark.parametrize(
    "text",
    ["", "extension:", "extension:12a", "menu:Sales", "dial:+49", "voicemail", "goto:x", "x:1",
     "extension:123456789", "hangup ", "menu:" + "a" * 33],
)  # fmt: skip
def test_bad_destinations(text: str) -> None:
    with pytest.raises(DestinationError, match="not a destination"):
        parse_destination(text)


def test_unknown_menu_extension_and_mailbox_are_named() -> None:
    doc = office_doc()
    main = menu(doc, "main")
    main["options"][0]["to"] = "menu:salse"
    main["options"][1]["to"] = "extension:299"
    main["options"][2]["to"] = "voicemail:203"  # 203 has no voicemail box
    main["timeout"] = "voicemail:777"
    assert refused(doc) == [
        "ivr.menus[0].options[0].to: no menu named 'salse' (menus: main, sales, closed, holiday)",
        "ivr.menus[0].options[1].to: extension '299' is not defined in extensions",
        "ivr.menus[0].options[2].to: extension '203' has no voicemail box",
        "ivr.menus[0].timeout: extension '777' is not defined in extensions",
    ]


def test_entry_menus_must_exist() -> None:
    doc = office_doc()
    doc["ivr"]["closed_menu"] = "night"
    assert refused(doc) == [
        "ivr.closed_menu: no menu named 'night' (menus: main, sales, closed, holiday)"
    ]


def test_duplicate_keys_are_refused_with_both_places() -> None:
    doc = office_doc()
    menu(doc, "sales")["options"].append({"digit": "1", "to": "hangup"})
    assert refused(doc) == [
        "ivr.menus[1].options[1].digit: key '1' is also ivr.menus[1].options[0] in menu 'sales'"
    ]


def test_a_key_that_also_starts_a_direct_dial_extension() -> None:
    doc = office_doc()
    menu(doc, "main")["options"].append({"digit": "2", "to": "hangup"})
    (issue,) = refused(doc)
    assert issue.startswith("ivr.menus[0].options[6].digit: key '2' also starts an extension")


def test_duplicate_menu_names() -> None:
    doc = office_doc()
    doc["ivr"]["menus"].append({"name": "sales", "prompts": ["welcome"]})
    assert refused(doc) == ["ivr.menus[4].name: menu name 'sales' is used twice"]


def test_a_cycle_of_menus_without_prompts_is_refused_naming_the_path() -> None:
    doc = office_doc()
    doc["ivr"]["menus"] += [
        {"name": "a", "prompts": [], "options": [{"digit": "1", "to": "menu:b"}]},
        {"name": "b", "prompts": [], "options": [{"digit": "1", "to": "menu:c"}]},
        {"name": "c", "prompts": [], "direct_dial": "2xx", "timeout": "menu:a"},
    ]
    assert refused(doc) == [
        "ivr.menus[4]: menus a -> b -> c -> a lead to each other and none plays a prompt: "
        "a caller would hear silence for ever"
    ]


def test_a_menu_that_times_out_to_itself_silently() -> None:
    doc = office_doc()
    doc["ivr"]["menus"].append(
        {"name": "quiet", "prompts": [], "direct_dial": "2xx", "timeout": "menu:quiet"}
    )
    (issue,) = refused(doc)
    assert issue.startswith("ivr.menus[4]: menus quiet -> quiet lead to each other")


def test_a_cycle_through_a_menu_with_a_prompt_is_fine() -> None:
    doc = office_doc()
    menu(doc, "sales")["timeout"] = "menu:main"  # main plays a prompt
    menu(doc, "main")["options"][0]["to"] = "menu:sales"
    parse(doc)


def test_repeat_cannot_be_where_the_retries_end() -> None:
    doc = office_doc()
    menu(doc, "main")["invalid"] = "repeat"
    assert refused(doc) == [
        "ivr.menus[0].invalid: 'repeat' here would never end; use 'menu:NAME' or 'hangup'"
    ]


def test_dial_needs_a_route() -> None:
    doc = office_doc()
    menu(doc, "main")["options"][3]["to"] = "dial:7777"
    assert refused(doc) == [
        "ivr.menus[0].options[3].to: no route of dialplan.routes matches '7777'"
    ]


@pytest.mark.parametrize(
    ("change", "issue"),
    [
        ({"start": "8:00"}, "ivr.office_hours[0].start: '8:00' is not a time of day HH:MM"),
        ({"end": "24:01"}, "ivr.office_hours[0].end: '24:01' is not a time of day HH:MM"),
        ({"start": "17:00", "end": "08:00"}, "ivr.office_hours[0].end: 08:00 is not after 17:00"),
        ({"days": ["mon", "mon"]}, "ivr.office_hours[0].days: 'mon' is listed twice"),
        ({"days": ["monday"]}, "ivr.office_hours[0].days[0]: must be one of 'mon'"),
        ({"days": []}, "ivr.office_hours[0].days: name at least one day"),
    ],
)
def test_office_hours_errors(change: dict[str, Any], issue: str) -> None:
    doc = office_doc()
    doc["ivr"]["office_hours"][0].update(change)
    (found,) = refused(doc)
    assert found.startswith(issue)


@pytest.mark.parametrize("day", ["2026-02-30", "13-01", "12/25", "25-12", "2026-1-1", ""])
def test_bad_holidays(day: str) -> None:
    doc = office_doc()
    doc["ivr"]["holidays"].append(day)
    (found,) = refused(doc)
    assert found.startswith("ivr.holidays: item 2:") and "is not a date" in found


def test_holidays_listed_twice_and_leap_day() -> None:
    doc = office_doc()
    doc["ivr"]["holidays"] += ["02-29", "12-25"]
    assert refused(doc) == ["ivr.holidays[3]: '12-25' is listed twice"]


def test_enabled_needs_a_number_and_an_open_menu() -> None:
    doc = office_doc()
    doc["ivr"]["number"] = ""
    doc["ivr"]["open_menu"] = ""
    doc["lines"]["fxo"][0]["destination"] = ""
    assert refused(doc) == [
        "ivr.open_menu: required when the IVR is enabled",
        "ivr.number: required when the IVR is enabled",
    ]


def test_the_ivr_number_must_not_be_an_extension_or_emergency_number() -> None:
    doc = office_doc()
    doc["ivr"]["number"] = "202"
    doc["lines"]["fxo"][0]["destination"] = "202"
    assert refused(doc) == ["ivr.number: '202' is already an extension"]
    doc["ivr"]["number"] = "112"
    doc["lines"]["fxo"][0]["destination"] = ""
    assert refused(doc) == ["ivr.number: '112' is an emergency number"]


def test_the_ivr_number_must_not_be_a_conference_room() -> None:
    doc = office_doc()
    doc["conference"] = {"rooms": [{"number": "500"}]}
    assert "ivr.number: '500' is also a conference room" in refused(doc)


def test_a_line_destination_that_is_neither_extension_nor_ivr() -> None:
    doc = office_doc()
    doc["lines"]["fxo"][0]["destination"] = "501"
    assert refused(doc) == [
        "lines.fxo[0].destination: extension '501' is not defined in extensions (route 'internal')"
    ]


@pytest.mark.parametrize(
    ("key", "value", "issue"),
    [
        ("prompts", ["welcome", "../etc/passwd"], "is not a prompt name"),
        ("timeout_s", 0, "0 s is out of range 1..60 s"),
        ("max_retries", 11, "11 is out of range 0..10"),
        ("direct_dial", "2xx|[", "unclosed '['"),
    ],
)
def test_menu_field_errors(key: str, value: object, issue: str) -> None:
    doc = office_doc()
    menu(doc, "main")[key] = value
    (found,) = refused(doc)
    assert found.startswith(f"ivr.menus[0].{key}") and issue in found


def test_option_digit_errors() -> None:
    doc = office_doc()
    menu(doc, "main")["options"][0]["digit"] = "11"
    menu(doc, "main")["options"][1]["digit"] = "A"
    assert refused(doc) == [
        "ivr.menus[0].options[0].digit: '11' is not one key (0-9, '*' or '#')",
        "ivr.menus[0].options[1].digit: 'A' is not one key (0-9, '*' or '#')",
    ]


def test_a_menu_that_can_do_nothing() -> None:
    doc = office_doc()
    doc["ivr"]["menus"].append({"name": "empty", "prompts": []})
    assert refused(doc) == [
        "ivr.menus[4]: menu 'empty' has no prompt, no option and no direct dial"
    ]


def test_language_and_timezone() -> None:
    doc = office_doc()
    doc["ivr"]["language"] = "xx"
    doc["system"]["timezone"] = "Mars/Olympus"
    assert refused(doc) == [
        "system.timezone: unknown time zone 'Mars/Olympus' (an IANA name such as "
        "'Europe/Rome' or 'UTC')",
        "ivr.language: unknown prompt language 'xx' (known: en, de, fr, es, it, nl, pt; "
        "empty for the system country's)",
    ]


def test_office_hours_without_a_closed_menu() -> None:
    doc = office_doc()
    doc["ivr"]["closed_menu"] = ""
    assert refused(doc) == ["ivr.closed_menu: required when office_hours are set"]
