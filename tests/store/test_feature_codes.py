"""Feature codes against the dial plan, and the availability table they set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firmware.store import ConfigError, default_config, parse, to_document
from firmware.store.availability import AvailabilityRow, AvailabilityStore
from firmware.store.digitmap import feature_code_clash
from firmware.store.document import set_path


def problems(doc: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(doc)
    return [str(i) for i in info.value.issues]


def test_default_codes_are_diallable_under_the_default_map() -> None:
    parse(to_document(default_config()))  # no issue
    assert feature_code_clash("112|[1-9]xx|*xx|*xxx", "*72") is None
    assert feature_code_clash("*x.T", "*72") is None  # the timer: completes on the code


def test_a_code_the_digit_map_cannot_complete_is_refused_naming_the_map() -> None:
    # *xx takes every default code (all three characters long), *xxxx none; make a
    # four-character one.
    digit_map = "112|911|999|[1-9]xx|*xx|*xxxx"
    doc = set_path(to_document(default_config()), "dialplan.digit_map", digit_map)
    doc = set_path(doc, "features.codes.pickup", "*881")
    out = problems(doc)
    assert (
        "features.codes.pickup: '*881' is not matched by the digit map, so it can never be "
        f"dialled (dialplan.digit_map {digit_map!r})" in out
    ), out


def test_a_shorter_alternative_that_completes_first_is_named() -> None:
    doc = set_path(
        to_document(default_config()), "dialplan.digit_map", "112|911|999|[1-9]xx|*7|*[0-689]x"
    )
    out = problems(doc)
    expected = (
        "features.codes.forward_all_on: the digit map alternative '*7' completes on '*7' "
        "before '*72' is dialled"
    )
    assert any(p.startswith(expected) for p in out), out
    assert not any(p.startswith("features.codes.pickup") for p in out), out  # *88 is fine
    # Another alternative that can still grow keeps '*7' waiting: no clash.
    doc = set_path(doc, "dialplan.digit_map", "112|911|999|[1-9]xx|*7|*xx")
    parse(doc)


def test_record_toggle_is_dialled_in_a_call_and_escapes_the_map() -> None:
    doc = set_path(to_document(default_config()), "features.codes.record_toggle", "*5")
    parse(doc)  # '*5' is matched by no alternative of the default map, and that is fine


def test_availability_rows_survive_reopening_and_all_off_removes_them(tmp_path: Path) -> None:
    store = AvailabilityStore.open(tmp_path)
    store.save(AvailabilityRow("102", forward_all="103"))
    store.save(AvailabilityRow("101", dnd=True, forward_busy="voicemail"))
    store.save(AvailabilityRow("102", forward_all="104", forward_no_answer="05551234"))
    store.close()
    store = AvailabilityStore.open(tmp_path)
    assert store.load() == [
        AvailabilityRow("101", forward_busy="voicemail", dnd=True),
        AvailabilityRow("102", forward_all="104", forward_no_answer="05551234"),
    ]
    store.save(AvailabilityRow("101"))
    assert [r.extension for r in store.load()] == ["102"]
    store.close()
