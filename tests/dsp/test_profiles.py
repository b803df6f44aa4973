"""Country profiles: the shipped data loads and every field is validated on load."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from firmware.dsp import profiles
from firmware.dsp.profiles import (
    COUNTRY_CODES,
    REQUIRED_TONES,
    ProfileError,
    get_profile,
    parse_profiles,
)
from firmware.dsp.tones import TonePlayer

ISSUE_COUNTRIES = (
    "US CA GB IE DE FR IT ES PT BR NL BE CH AT SE NO DK FI PL AU NZ JP IN ZA ITU".split()
)


def shipped_text() -> str:
    return resources.files(profiles.DATA_PACKAGE).joinpath(profiles.DATA_FILE).read_text()


def test_every_required_country_is_there():
    assert set(ISSUE_COUNTRIES) <= set(COUNTRY_CODES)
    assert sorted(profiles.all_profiles()) == sorted(COUNTRY_CODES)


@pytest.mark.parametrize("code", COUNTRY_CODES)
def test_profile_is_complete_and_cites_sources(code):
    p = get_profile(code)
    assert p.code == code
    for tone in REQUIRED_TONES:
        spec = p.tone(tone)
        assert spec.frequencies, f"{code} {tone} has no frequency"
        # Every tone renders at 8 kHz without raising.
        assert TonePlayer(spec).next_frame().size == 160
    assert p.rings["normal"].period_ms > 0
    assert p.source and all(len(s) > 10 for s in p.source)
    assert p.flash_min_ms < p.flash_max_ms
    assert p.impedance and p.language
    # Busy and congestion are cadenced (disconnect supervision depends on it).
    assert p.tones["busy"].cadence is not None
    assert p.tones["congestion"].cadence is not None


def test_lowercase_and_uk_alias():
    assert get_profile("gb") is get_profile("UK") is get_profile("GB")


def test_unknown_country_names_the_known_ones():
    with pytest.raises(ProfileError, match="no profile for country 'XX'; known: AT"):
        get_profile("XX")


def test_known_values():
    us = get_profile("US")
    assert us.tones["dial"].frequencies == (350.0, 440.0)
    assert us.tones["busy"].cadence is not None
    assert us.tones["busy"].cadence.on_off_ms == (500.0, 500.0)
    assert us.callerid.standard == "bell202" and not us.callerid.before_ring
    gb = get_profile("GB")
    assert gb.callerid.protocol == "bt" and gb.callerid.alerting == "pr_dtas"
    assert gb.rings["normal"].on_off_ms == (400.0, 200.0, 400.0, 2000.0)
    assert get_profile("DE").tones["busy"].cadence.on_off_ms == (480.0, 480.0)  # type: ignore[union-attr]
    assert get_profile("DK").callerid.dtmf_format == "A...#"
    assert get_profile("CA").tones["ringback"] == us.tones["ringback"]
    assert get_profile("CA").source != us.source  # inherits values, not citations
    # A country's own caller ID table replaces the parent's whole: no DT-AS timing left
    # over from the ITU default on a DTMF caller ID country.
    assert get_profile("BR").callerid.alert_ms is None
    assert get_profile("BR").tones["dial"] == get_profile("ITU").tones["dial"]


def test_pulse_digit_mappings():
    std = get_profile("DE").pulse
    se = get_profile("SE").pulse
    nz = get_profile("NZ").pulse
    assert [std.pulses_for_digit(d) for d in "0159"] == [10, 1, 5, 9]
    assert [se.pulses_for_digit(d) for d in "0159"] == [1, 2, 6, 10]
    assert [nz.pulses_for_digit(d) for d in "0159"] == [10, 9, 5, 1]
    for spec in (std, se, nz):
        assert all(spec.digit_for_pulses(spec.pulses_for_digit(d)) == d for d in "0123456789")
    with pytest.raises(ValueError, match="0-9 only"):
        std.pulses_for_digit("*")
    with pytest.raises(ValueError, match="11 pulses"):
        std.digit_for_pulses(11)


def test_flash_window():
    us = get_profile("US").flash
    assert us.accepts(600) and not us.accepts(200) and not us.accepts(1500)


# --- validation: each kind of bad data is rejected with the path and the reason ----------


def edited(old: str, new: str) -> str:
    text = shipped_text()
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'busy = { plan = "480+620/500,0/500"',
            'busy = { plan = "480+620/fast,0/500"',
            r"US\.tones\.busy: tone 'busy': element '480\+620/fast': duration 'fast' is not",
        ),
        (
            'dial = { plan = "350+440", level = -13.0 }',
            'dial = { plan = "350+440", level = 9.0 }',
            r"US\.tones\.dial: .*level 9\.0 dBm0 is outside",
        ),
        (
            'dial = { plan = "350+440", level = -13.0 }',
            'dial = { plan = "350+440" }',
            r"US\.tones\.dial\.level: missing",
        ),
        (
            'dial = { plan = "350+440", level = -13.0 }',
            'dial = { plan = "350+440", level = -13.0, lvl = 1 }',
            r"US\.tones\.dial: unknown field\(s\) lvl",
        ),
        (
            'standard = "bell202"',
            'standard = "bell203"',
            r"US\.callerid: standard 'bell203' not one of",
        ),
        (
            'dtmf_format = "A...#"\nalerting = "pr"',
            'dtmf_format = "X...Y"\nalerting = "pr"',
            r"NL\.callerid: dtmf_format 'X\.\.\.Y' not one of",
        ),
        (
            "[US.flash]\nmin_ms = 300",
            "[US.flash]\nmin_ms = 3000",
            r"US\.flash: flash needs 0 < min_ms",
        ),
        ('mapping = "sweden"', 'mapping = "norway"', r"SE\.pulse: pulse mapping 'norway'"),
        (
            "normal = [2000, 4000]",
            "normal = [2000, 4000, 1]",
            r"US\.rings\.normal: a cadence needs on/off pairs",
        ),
        (
            "normal = [2000, 4000]",
            "normal = [2000, -4000]",
            r"US\.rings\.normal: durations must be in",
        ),
        ('inherit = "US"', 'inherit = "XX"', r"CA\.inherit: 'XX' is unknown"),
        ("schema = 1", "schema = 2", r"schema 2, this code reads 1"),
        (
            '[FR]\ninherit = "ITU"',
            '[FR]\ninherit = "ITU"\nsources = []\n[FR.x]',
            r"FR\.sources: every country must cite its own sources",
        ),
        (
            "[JP.tones]\n",
            "[JP.tones]\nhowler = 5\n",
            r"JP\.tones\.howler: expected a table, got int",
        ),
        (
            'sit = { plan = "!913.8/274',
            'sit = { plan = "913.8/274,!950/2',
            r"once-only \('!'\) element 2",
        ),
    ],
)
def test_bad_data_is_rejected_with_path(old, new, message):
    with pytest.raises(ProfileError, match=message):
        parse_profiles(edited(old, new), "test.toml")


def test_duplicate_sources_key_is_a_toml_error():
    bad = edited('[US]\nname = "United States"', '[US]\nname = "United States"\nname = "x"')
    with pytest.raises(ProfileError, match=r"test\.toml: not valid TOML"):
        parse_profiles(bad, "test.toml")


def test_missing_required_tone():
    text = shipped_text()
    doc = tomllib.loads(text)
    assert "sit" in doc["US"]["tones"]
    bad = edited('sit = { plan = "!913.8/274,!1370.6/274,!1776.7/380,0", level = -24.0 }\n', "")
    with pytest.raises(ProfileError, match=r"US\.tones: missing sit"):
        parse_profiles(bad, "test.toml")


def test_garbage_is_rejected():
    for garbage in ("", "\x00\x01", "[[[", "schema = 1\n[ITU]\nname = 3\n"):
        with pytest.raises(ProfileError):
            parse_profiles(garbage, "g.toml")
