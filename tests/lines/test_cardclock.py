"""CardClock: the card's wrapping 32-bit timestamps on the host's clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.lines import InvalidValue
from firmware.lines.cardclock import CARD_CLOCK_MODULO, CardClock


def test_intervals_survive_transport_jitter():
    clock = CardClock()
    rng = random.Random(7)
    offset = 123_456
    errors = []
    for card in range(0, 60_000, 37):
        delay = rng.randint(0, 15)  # UART and event loop
        errors.append(clock.to_host(card, card + offset + delay) - (card + offset))
    # Never earlier than the event, never later than the worst delay; once quick deliveries
    # have been seen, within 2 ms (the drift allowance creeps up between them).
    assert all(0 <= e <= 15 for e in errors)
    settled = errors[len(errors) // 4 :]
    assert max(settled) <= 2
    assert sum(settled) / len(settled) < 0.5


def test_wrap_around_of_the_32_bit_counter():
    clock = CardClock()
    start = CARD_CLOCK_MODULO - 100
    a = clock.to_host(start, 1_000_000)
    b = clock.to_host(60, 1_000_000 + 160)  # wrapped: 160 ms later
    assert b - a == 160
    assert clock.resets == 0


def test_a_card_reset_restarts_the_mapping():
    clock = CardClock()
    clock.to_host(500_000, 2_000_000)
    at = clock.to_host(10, 2_000_100)  # the card rebooted: its clock is near zero again
    assert clock.resets == 1
    assert at == 2_000_100
    assert clock.to_host(70, 2_000_160) == 2_000_160


def test_never_in_the_future_never_backwards():
    clock = CardClock()
    assert clock.to_host(1000, 5000) == 5000
    # An event whose card time is later than what the host has seen is clamped to now.
    assert clock.to_host(1100, 5050) == 5050
    assert clock.to_host(1100, 5060) == 5050


def test_a_slow_card_crystal_is_followed():
    """Card 500 ppm slow for a day: the mapping error stays small, hook intervals exact."""
    clock = CardClock()
    worst = 0
    host = 0
    for second in range(0, 86_400, 10):
        host = second * 1000
        card = round(host * (1 - 500e-6))
        at = clock.to_host(card, host + 3)
        worst = max(worst, host - at)
    assert worst < 50  # ms behind the true instant at most
    a = clock.to_host(round((host + 1000) * (1 - 500e-6)), host + 1003)
    b = clock.to_host(round((host + 1600) * (1 - 500e-6)), host + 1603)
    assert abs((b - a) - 600) <= 1


@pytest.mark.parametrize("bad", [-1, CARD_CLOCK_MODULO, 1.5, True])
def test_bad_timestamps_are_refused(bad):
    with pytest.raises(InvalidValue):
        CardClock().to_host(bad, 100)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, CARD_CLOCK_MODULO - 1), st.integers(0, 10_000)), max_size=50
    )
)
def test_random_timestamps_give_monotonic_times_not_after_now(steps):
    clock = CardClock()
    now = 0
    last = 0
    for card, gap in steps:
        now += gap
        at = clock.to_host(card, now)
        assert last <= at <= now
        last = at
