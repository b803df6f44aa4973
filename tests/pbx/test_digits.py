from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.pbx.digits import (
    MAX_DIGITS,
    BadDigit,
    CollectorMisuse,
    Completion,
    DigitMap,
    Outcome,
    Verdict,
)
from firmware.store.digitmap import DigitMapError
from firmware.store.schema import DialPlanConfig

DEFAULT = DigitMap.from_config(DialPlanConfig())  # 112|911|999|[1-9]xx|0[1-9]x.T|*xx|*xxx
T = DEFAULT.inter_digit_timeout_ms


def dial(digit_map: DigitMap, digits: str, now: int = 0) -> list[Verdict]:
    c = digit_map.collector()
    return [c.feed(d, now + i * 100) for i, d in enumerate(digits)]


def test_internal_number_completes_on_its_last_digit_without_waiting() -> None:
    verdicts = dial(DEFAULT, "102")
    assert [v.outcome for v in verdicts] == [Outcome.INCOMPLETE] * 2 + [Outcome.COMPLETE]
    assert verdicts[-1].completion is Completion.UNIQUE_MATCH
    assert verdicts[-1].digits == "102"
    assert verdicts[0].deadline == T  # the first digit arms the inter-digit timer


def test_emergency_number_completes_at_once_even_if_the_map_would_wait() -> None:
    m = DigitMap("[1-9]x.T", inter_digit_timeout_ms=4000, emergency_numbers=("112",))
    verdicts = dial(m, "112")
    assert verdicts[-1].outcome is Outcome.COMPLETE
    assert verdicts[-1].completion is Completion.EMERGENCY


def test_emergency_number_outside_the_map_still_completes() -> None:
    m = DigitMap("[2-9]xx", inter_digit_timeout_ms=4000, emergency_numbers=("112",))
    assert dial(m, "112")[-1].completion is Completion.EMERGENCY


def test_timer_pattern_completes_only_on_timeout() -> None:
    c = DEFAULT.collector()
    for i, d in enumerate("0301234"):
        v = c.feed(d, i * 100)
        assert v.outcome is Outcome.INCOMPLETE
    assert c.next_deadline() == 600 + T
    assert c.handle_timer(600 + T - 1) is None
    done = c.handle_timer(600 + T)
    assert done is not None and done.outcome is Outcome.COMPLETE
    assert done.completion is Completion.TIMEOUT and done.digits == "0301234"
    assert c.next_deadline() is None


def test_partial_number_is_invalid_on_timeout() -> None:
    c = DEFAULT.collector()
    c.feed("1", 0)
    v = c.handle_timer(T)
    assert v is not None and v.outcome is Outcome.INVALID
    assert "inter-digit timeout" in v.reason


def test_ambiguous_match_waits_for_the_timer() -> None:
    m = DigitMap("1xx|1xxx", inter_digit_timeout_ms=3000)
    c = m.collector()
    assert [c.feed(d, 0).outcome for d in "100"][-1] is Outcome.INCOMPLETE
    assert c.feed("0", 10).completion is Completion.UNIQUE_MATCH  # 4 digits: only 1xxx


def test_no_pattern_is_invalid_at_once() -> None:
    v = dial(DEFAULT, "00")[-1]  # 0 must be followed by 1-9
    assert v.outcome is Outcome.INVALID and "no pattern" in v.reason


def test_star_codes_and_letters() -> None:
    assert dial(DEFAULT, "*72")[-1].outcome is Outcome.INCOMPLETE  # *xx or *xxx: wait
    assert dial(DEFAULT, "*729")[-1].completion is Completion.UNIQUE_MATCH
    m = DigitMap("A#|[2-3*]x", inter_digit_timeout_ms=1000)
    assert dial(m, "A#")[-1].completion is Completion.UNIQUE_MATCH
    assert dial(m, "*5")[-1].completion is Completion.UNIQUE_MATCH


def test_misuse_and_bad_digits_are_distinct_errors() -> None:
    c = DEFAULT.collector()
    with pytest.raises(BadDigit, match="'E' is not a dialling symbol"):
        c.feed("E", 0)
    for d in "102":
        c.feed(d, 0)
    with pytest.raises(CollectorMisuse):
        c.feed("1", 0)
    assert c.handle_timer(10**9) is None


def test_bad_map_or_timer_is_refused() -> None:
    with pytest.raises(DigitMapError):
        DigitMap("1x[", inter_digit_timeout_ms=1000)
    with pytest.raises(DigitMapError, match="positive"):
        DigitMap("1xx", inter_digit_timeout_ms=0)


def test_runaway_dialling_is_capped() -> None:
    m = DigitMap("x.T", inter_digit_timeout_ms=1000)
    verdicts = dial(m, "1" * (MAX_DIGITS + 1))
    assert verdicts[-2].outcome is Outcome.INCOMPLETE
    assert verdicts[-1].outcome is Outcome.INVALID and "more than" in verdicts[-1].reason


SYMBOLS = st.sampled_from(list("0123456789*#ABCD"))


@settings(max_examples=300, deadline=None)
@given(st.lists(SYMBOLS, max_size=40), st.lists(st.integers(0, 10_000), max_size=40))
def test_any_digit_sequence_ends_decided_or_waiting(digits: list[str], gaps: list[int]) -> None:
    c = DEFAULT.collector()
    now = 0
    for i, d in enumerate(digits):
        now += gaps[i] if i < len(gaps) else 50
        timed = c.handle_timer(now)
        if c.decided:
            assert timed is not None and timed.outcome is not Outcome.INCOMPLETE
            break
        v = c.feed(d, now)
        if v.outcome is not Outcome.INCOMPLETE:
            assert c.next_deadline() is None
            break
        assert v.deadline == now + T
    pending = c.next_deadline()
    if pending is not None:
        assert pending <= now + T
        final = c.handle_timer(now + T)
        assert final is not None and final.outcome is not Outcome.INCOMPLETE


ELEMENT = st.sampled_from(["1", "2", "9", "x", "[2-5]", "[0-3*#]", "*", "#", "A"])


@settings(max_examples=300, deadline=None)
@given(st.lists(ELEMENT, min_size=1, max_size=6), st.data())
def test_a_unique_fixed_length_match_completes_at_its_last_digit(
    elements: list[str], data: st.DataObject
) -> None:
    m = DigitMap("".join(elements), inter_digit_timeout_ms=2000)
    digits = ""
    for e in elements:
        choices = {
            "x": "0123456789",
            "[2-5]": "2345",
            "[0-3*#]": "0123*#",
        }.get(e, e)
        digits += data.draw(st.sampled_from(list(choices)))
    verdicts = dial(m, digits)
    assert all(v.outcome is Outcome.INCOMPLETE for v in verdicts[:-1])
    assert verdicts[-1].outcome is Outcome.COMPLETE
    assert verdicts[-1].completion is Completion.UNIQUE_MATCH
