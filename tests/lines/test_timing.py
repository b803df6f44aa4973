"""LineTiming: validation, the built-in table, and timing built from firmware.dsp profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from firmware.dsp.profiles import COUNTRY_CODES, get_profile
from firmware.lines import (
    COUNTRY_TIMING,
    CallerIdMode,
    Connect,
    DialMethod,
    DigitDialled,
    FxsPort,
    FxsState,
    HookFlash,
    HookOff,
    HookOn,
    HungUp,
    InvalidValue,
    LineTiming,
    RingCadence,
    timing_for,
)
from firmware.lines.timing import digit_for_pulses, pulse_windows

if TYPE_CHECKING:
    from tests.lines.conftest import Driver

US = timing_for("US")


def test_table_profiles_are_consistent():
    assert set(COUNTRY_TIMING) == {"US", "DE", "GB", "FR"}
    for code, timing in COUNTRY_TIMING.items():
        assert timing.country == code
        assert timing.pulse_break_max_ms < timing.flash_max_ms
        assert timing.pulse_make_max_ms < timing.interdigit_pause_min_ms
    assert timing_for("us") is US


def test_unknown_country_names_the_known_ones():
    with pytest.raises(InvalidValue, match=r"'XX'.*DE, FR, GB, US"):
        timing_for("XX")


def test_pulse_windows_cover_the_specified_rates():
    # 8..12 pps at 58..64 % break, no jitter: the extreme breaks and makes, rounded outwards
    # (83.3 ms * 36 % is 29.99..., floored to 29: windows only ever widen).
    assert pulse_windows((8.0, 12.0), (0.58, 0.64), 0) == (48, 80, 29, 53)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("flash_min_ms", 0, "outside 1.."),
        ("flash_min_ms", 2000, "flash_min_ms .* <= flash_max_ms"),
        ("flash_max_ms", 1.5, "must be an int"),
        ("pulse_break_max_ms", 1100, "pulse_break_max_ms .* < flash_max_ms"),
        ("pulse_make_max_ms", 100, "pulse_make_max_ms .* < interdigit_pause_min_ms"),
        ("ring_burst_min_ms", 9000, "ring_burst_min_ms"),
        ("caller_id_delay_ms", 4000, "shorter than the pause after the first ring"),
        ("disconnect_on_loop_drop", 1, "must be a bool"),
        ("pulse_mapping", "klingon", "pulse_mapping must be one of"),
        ("country", "", "non-empty"),
        ("ring_cadence", (2000, 4000), "must be a RingCadence"),
        ("caller_id_mode", "after", "must be a CallerIdMode"),
        ("no_such_field", 1, "no field"),
    ],
)
def test_bad_timing_is_refused_with_the_field_named(field, value, message):
    with pytest.raises(InvalidValue, match=message):
        US.replace(**{field: value})


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ((), "1..4 on/off pairs"),
        ((1000,), "1..4"),
        ((100, 100) * 5, "1..4"),
        ((1000, 20), "outside"),
        ((1000.0, 2), "int"),
    ],
)
def test_bad_cadence_is_refused(pattern, message):
    with pytest.raises(InvalidValue, match=message):
        RingCadence(pattern)


def test_double_ring_counts_as_one_ring_for_caller_id():
    assert RingCadence((400, 200, 400, 2000)).first_ring_ms == 1000
    assert RingCadence((2000, 4000)).first_ring_ms == 2000


@pytest.mark.parametrize(
    ("mapping", "pulses", "digit"),
    [
        ("standard", 1, "1"),
        ("standard", 10, "0"),
        ("sweden", 1, "0"),
        ("sweden", 10, "9"),
        ("new_zealand", 1, "9"),
        ("new_zealand", 10, "0"),
    ],
)
def test_pulse_mappings(mapping, pulses, digit):
    assert digit_for_pulses(pulses, mapping) == digit


def test_pulse_count_outside_a_digit_is_refused():
    with pytest.raises(InvalidValue):
        digit_for_pulses(11)


# --- from firmware.dsp profiles --------------------------------------------------------------


@pytest.mark.parametrize("code", COUNTRY_CODES)
def test_every_dsp_profile_gives_a_valid_timing(code):
    profile = get_profile(code)
    timing = LineTiming.from_profile(profile)
    assert timing.country == code
    assert (timing.flash_min_ms, timing.flash_max_ms) == (
        profile.flash.min_ms,
        profile.flash.max_ms,
    )
    assert timing.pulse_break_min_ms == profile.pulse.break_min_ms
    assert timing.interdigit_pause_min_ms == profile.pulse.interdigit_min_ms
    assert timing.ring_cadence.pattern == tuple(round(x) for x in profile.ring.on_off_ms)
    expected = (
        CallerIdMode.BEFORE_FIRST_RING
        if profile.callerid.before_ring
        else CallerIdMode.AFTER_FIRST_RING
    )
    assert timing.caller_id_mode is expected


def _dial(d: Driver, pulses: int, t: int, brk: int, make: int) -> int:
    for _ in range(pulses):
        d.send(HookOn(t), t)
        d.send(HookOff(t + brk), t + brk)
        t += brk + make
    return t - make


@pytest.mark.parametrize("code", COUNTRY_CODES)
def test_every_profile_decodes_its_own_nominal_pulse_dialling(driver, code):
    profile = get_profile(code)
    timing = LineTiming.from_profile(profile)
    d = driver(FxsPort(timing))
    d.send(HookOff(0), 0)
    brk = (timing.pulse_break_min_ms + timing.pulse_break_max_ms) // 2
    make = (timing.pulse_make_min_ms + timing.pulse_make_max_ms) // 2
    t = 1000
    number = "4190"
    for digit in number:
        t = _dial(d, profile.pulse.pulses_for_digit(digit), t, brk, make)
        t += timing.interdigit_pause_min_ms + 200
    d.until(t)
    dialled = [o for o in d.take() if isinstance(o, DigitDialled)]
    assert dialled == [DigitDialled(c, DialMethod.PULSE) for c in number]


@pytest.mark.parametrize("code", COUNTRY_CODES)
def test_every_profile_flash_and_hang_up_edges(driver, code):
    timing = LineTiming.from_profile(get_profile(code))
    for brk, expect in [
        (timing.flash_min_ms, [HookFlash()]),
        (timing.flash_max_ms, [HookFlash()]),
        (timing.flash_max_ms + 1, [HungUp()]),
    ]:
        d = driver(FxsPort(timing))
        d.send(HookOff(0), 0)
        d.send(Connect(), 10)
        d.take()
        d.send(HookOn(1000), 1000)
        d.until(1000 + brk)
        got = d.take()
        if expect != [HungUp()]:
            got += d.send(HookOff(1000 + brk), 1000 + brk)
        assert got == expect, (code, brk)


def test_pulses_win_over_an_overlapping_flash_window_only_while_dialling(driver):
    timing = LineTiming.from_profile(get_profile("DE"))  # flash from 40 ms, pulses to 75 ms
    assert timing.flash_min_ms < timing.pulse_break_min_ms < timing.pulse_break_max_ms
    d = driver(FxsPort(timing))
    d.send(HookOff(0), 0)
    d.send(HookOn(1000), 1000)
    assert d.send(HookOff(1060), 1060) == []  # a pulse
    assert d.port.pulses == 1
    d.until(2000)
    d.send(Connect())
    assert d.state() is FxsState.TALKING
    d.send(HookOn(3000), 3000)
    assert d.send(HookOff(3060), 3060) == [HookFlash()]


def test_profile_overrides_and_errors_name_the_country():
    profile = get_profile("GB")
    assert LineTiming.from_profile(profile, howler_timeout_ms=5000).howler_timeout_ms == 5000
    with pytest.raises(InvalidValue, match=r"line timing for GB: .*flash_min_ms"):
        LineTiming.from_profile(profile, flash_min_ms=5000)
