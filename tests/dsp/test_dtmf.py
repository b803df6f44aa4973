from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import conformance_dtmf as cf
from firmware.dsp import dtmf
from firmware.dsp.dtmf import (
    DIGITS,
    DtmfDetector,
    DtmfEnd,
    DtmfError,
    DtmfStart,
    DtmfTone,
    detect_dtmf,
    generate_dtmf,
)
from firmware.dsp.levels import peak_for_dbm0, power_dbm0, rms_for_dbm0
from firmware.dsp.pcm import SAMPLE_RATE, to_pcm


def found(signal) -> str:
    return cf.digits_found(signal)


def tone_amplitude(pcm: np.ndarray, freq: float) -> float:
    """Peak amplitude of the ``freq`` component (``pcm`` holds whole periods of 1 Hz bins)."""
    spec = np.fft.rfft(pcm.astype(np.float64))
    return float(2 * abs(spec[round(freq * pcm.size / SAMPLE_RATE)]) / pcm.size)


# --- generation ----------------------------------------------------------------------------


@pytest.mark.parametrize("digit", list(DIGITS))
def test_generated_digit_has_its_two_tones_at_level(digit):
    pcm = generate_dtmf(digit, level_dbm0=-10, twist_db=2.0, on_ms=1000, off_ms=0)
    low, high = dtmf.tones_of(digit)
    assert pcm.size == SAMPLE_RATE
    assert tone_amplitude(pcm, low) == pytest.approx(peak_for_dbm0(-10), rel=0.01)
    assert tone_amplitude(pcm, high) == pytest.approx(peak_for_dbm0(-8), rel=0.01)
    # nothing else: the two tones carry the whole power
    two_tones = 10 * np.log10(10 ** (-1.0) + 10 ** (-0.8))
    assert power_dbm0(pcm) == pytest.approx(two_tones, abs=0.05)


def test_generated_timing_is_exact():
    pcm = generate_dtmf("1#", on_ms=45, off_ms=55)
    assert pcm.size == 2 * 800
    loud = np.abs(pcm.astype(np.int32)) > 0
    assert loud[1:360].all() and not loud[360:800].any()  # the sine starts at phase 0
    assert loud[801:1160].all() and not loud[1160:].any()


def test_lowercase_letters_are_the_same_digits():
    assert np.array_equal(generate_dtmf("abcd"), generate_dtmf("ABCD"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"digits": "12x"}, "not a DTMF digit"),
        ({"digits": "1", "level_dbm0": 0.0}, "clip"),
        ({"digits": "1", "level_dbm0": -6.0, "twist_db": 8.0}, "clip"),
        ({"digits": "1", "on_ms": 0}, "on_ms"),
        ({"digits": "1", "off_ms": -1}, "off_ms"),
        ({"digits": "1", "on_ms": float("nan")}, "on_ms"),
        ({"digits": "1", "level_dbm0": float("inf")}, "level_dbm0"),
        ({"digits": "1", "rate": 4000}, "rate"),
        ({"digits": "1" * 30000, "on_ms": 100, "off_ms": 100}, "more than"),
    ],
)
def test_generator_refuses_bad_input(kwargs, message):
    with pytest.raises(DtmfError, match=message):
        generate_dtmf(**kwargs)


def test_generator_refuses_non_strings():
    with pytest.raises(DtmfError, match="string"):
        generate_dtmf(123)  # type: ignore[arg-type]


def test_empty_string_is_empty_signal():
    assert generate_dtmf("").size == 0


# --- detection: the basics ---------------------------------------------------------------------


def test_every_digit_is_detected_with_its_timing():
    pcm = generate_dtmf(DIGITS, on_ms=70, off_ms=70)
    tones = detect_dtmf(pcm)
    assert "".join(t.digit for t in tones) == DIGITS
    for i, tone in enumerate(tones):
        assert tone.start_ms == pytest.approx(140 * i, abs=5)
        assert tone.duration_ms == pytest.approx(70, abs=6)


def test_start_and_end_events_bracket_each_digit():
    detector = DtmfDetector()
    events = []
    for frame in generate_dtmf("42", on_ms=100, off_ms=100).reshape(-1, 160):
        events += detector.feed(frame)
    events += detector.feed(np.zeros(800, dtype=np.int16))
    assert [type(e) for e in events] == [DtmfStart, DtmfEnd, DtmfStart, DtmfEnd]
    assert [e.digit for e in events] == ["4", "4", "2", "2"]
    start, end = events[0], events[1]
    assert isinstance(start, DtmfStart) and isinstance(end, DtmfEnd)
    assert end.at_ms - end.duration_ms == pytest.approx(start.at_ms)
    assert end.duration_ms == pytest.approx(100, abs=6)


def test_timing_is_accurate_at_any_alignment():
    rng = np.random.default_rng(5)
    for _ in range(40):
        lead = float(rng.uniform(20, 60))
        ms = float(rng.choice([40, 55, 90, 300]))
        tones = detect_dtmf(to_pcm(cf.burst("7", ms, lead_ms=lead)))
        assert len(tones) == 1
        onset = round(lead * 8) / 8
        assert tones[0].start_ms == pytest.approx(onset, abs=4)
        assert tones[0].duration_ms == pytest.approx(ms, abs=6)


@pytest.mark.parametrize("chunk", [1, 7, 160, 333])
def test_chunk_size_does_not_change_anything(chunk):
    signal = to_pcm(
        generate_dtmf("159#D0", on_ms=45, off_ms=45, level_dbm0=-25).astype(np.float64)
        + np.random.default_rng(2).normal(0, 200, 6 * 720)
    )
    whole = DtmfDetector()
    expected = whole.feed(signal) + whole.feed(np.zeros(800, np.int16))
    assert [e.digit for e in expected if isinstance(e, DtmfEnd)] == list("159#D0")
    detector = DtmfDetector()
    events = []
    for i in range(0, signal.size, chunk):
        events += detector.feed(signal[i : i + chunk])
    events += detector.feed(np.zeros(800, np.int16))
    assert events == expected


def test_reset_restarts_time_and_forgets_a_digit_in_progress():
    detector = DtmfDetector()
    pcm = generate_dtmf("3", on_ms=200, off_ms=100)
    assert detector.feed(pcm[:800])  # the start of digit 3
    detector.reset()
    events = detector.feed(pcm)
    assert isinstance(events[0], DtmfStart)
    assert events[0].digit == "3"
    assert events[0].at_ms == pytest.approx(0, abs=4)


def test_16khz_detection():
    pcm = generate_dtmf("*9A", rate=16000)
    assert "".join(t.digit for t in detect_dtmf(pcm, rate=16000)) == "*9A"


# --- detection: the requirements on small sets -------------------------------------


@pytest.mark.parametrize("deviation", [0.0, 0.01, dtmf.ACCEPT_DEVIATION])
def test_deviation_within_1_5_percent_is_accepted(deviation):
    assert cf.accepted(cf.deviation_signals(deviation))


# (Beyond ~5% a tone nears the next frequency of its group and is that one's digit.)
@pytest.mark.parametrize("deviation", [dtmf.REJECT_DEVIATION, 0.04, 0.05])
def test_deviation_beyond_3_5_percent_is_rejected(deviation):
    assert cf.rejected(s for _, s in cf.deviation_signals(deviation))


@pytest.mark.parametrize(
    "twist", [-dtmf.ACCEPT_REVERSE_TWIST_DB, -4.0, 0.0, 2.0, dtmf.ACCEPT_NORMAL_TWIST_DB]
)
def test_twist_within_limits_is_accepted(twist):
    assert cf.accepted(cf.twist_signals(twist))


@pytest.mark.parametrize("twist", [-12.0, 8.0])
def test_excessive_twist_is_rejected(twist):
    assert cf.rejected(s for _, s in cf.twist_signals(twist))


@pytest.mark.parametrize("level", [dtmf.ACCEPT_MIN_LEVEL_DBM0, -20.0, dtmf.ACCEPT_MAX_LEVEL_DBM0])
@pytest.mark.parametrize("codec", cf.CODECS)
def test_levels_from_minus_36_to_0_dbm0_are_accepted(level, codec):
    assert cf.accepted((d, s.astype(np.float64)) for d, s in cf.level_signals(level, codec))


def test_very_quiet_digits_are_ignored():
    assert cf.rejected(s.astype(np.float64) for _, s in cf.level_signals(-50.0))


@pytest.mark.parametrize("offset", range(0, 53, 6))
def test_40ms_tones_are_accepted_and_under_20ms_rejected(offset):
    lead = 30 + offset / 8
    assert cf.accepted((d, cf.burst(d, dtmf.MIN_TONE_MS, lead_ms=lead)) for d in "2580")
    assert cf.rejected(cf.burst(d, 19.9, lead_ms=lead) for d in "2580")


@pytest.mark.parametrize("offset", range(0, 53, 6))
def test_short_breaks_are_bridged_and_40ms_pauses_separate(offset):
    assert found(cf.gap_signal(dtmf.BRIDGED_INTERRUPTION_MS, offset)) == "5"
    assert found(cf.gap_signal(dtmf.MIN_PAUSE_MS, offset)) == "55"


@pytest.mark.parametrize(("on", "off"), [(50.0, 50.0), (40.0, 40.0)])
def test_ten_digits_a_second_none_lost_split_or_duplicated(on, off):
    result = cf.digit_run(300, snr_db=None, country=None, on_ms=on, off_ms=off, seed=3)
    assert result.perfect, result


@pytest.mark.parametrize("codec", cf.CODECS)
@pytest.mark.parametrize("level", [-6.0, -30.0])
def test_digits_in_noise_over_dial_tone_through_codecs(codec, level):
    result = cf.digit_run(200, level_dbm0=level, codec=codec, seed=int(-level))
    assert result.perfect, result


def test_digits_over_dial_tone_7db_louder_than_them():
    result = cf.digit_run(100, level_dbm0=-20.0, snr_db=None, seed=9)
    assert result.perfect, result


@pytest.mark.parametrize("country", ["GB", "DE", "FR", "IT", "IN", "ZA", "JP", "AU"])
def test_digits_in_noise_over_each_countrys_dial_tone(country):
    result = cf.digit_run(100, country=country, codec="alaw", seed=len(country))
    assert result.perfect, result


# --- talk-off and hostile input --------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


def test_talk_off_on_three_minutes_of_speech_and_music(corpus_cache):
    assert cf.talkoff(3.0, corpus_cache, seed=5) == []


def test_single_tones_dial_tones_and_chords_are_not_digits():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    amp = peak_for_dbm0(-10)
    signals = [amp * np.sin(2 * np.pi * f * t) for f in (*dtmf.LOW_GROUP_HZ, *dtmf.HIGH_GROUP_HZ)]
    signals += [cf.dial_tone(SAMPLE_RATE, c, offset_db=6) for c in ("US", "IN", "ZA", "AU")]
    # two tones of one group, and three tones (two digits at once)
    signals.append(amp * (np.sin(2 * np.pi * 697 * t) + np.sin(2 * np.pi * 852 * t)))
    signals.append(amp * (np.sin(2 * np.pi * 1209 * t) + np.sin(2 * np.pi * 1477 * t)))
    signals.append(
        amp
        * (
            np.sin(2 * np.pi * 697 * t)
            + np.sin(2 * np.pi * 1209 * t)
            + np.sin(2 * np.pi * 1477 * t)
        )
    )
    assert cf.rejected(signals)


def test_a_held_note_joined_by_another_is_not_a_digit():
    half = SAMPLE_RATE // 2
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    amp = peak_for_dbm0(-10)
    low, high = amp * np.sin(2 * np.pi * 697 * t), amp * np.sin(2 * np.pi * 1209 * t)
    held = low.copy()
    held[half:] += high[half:]
    assert found(held) == ""
    together = np.zeros(SAMPLE_RATE)
    together[half:] = low[half:] + high[half:]
    assert found(together) == "1"


@pytest.mark.parametrize("dbm0", [-40.0, -20.0, -5.0])
def test_white_noise_gives_no_digits(dbm0):
    noise = np.random.default_rng(int(-dbm0)).normal(0, rms_for_dbm0(dbm0), 20 * SAMPLE_RATE)
    assert found(noise) == ""


def test_garbage_frames_do_not_crash_or_make_digits():
    rng = np.random.default_rng(8)
    detector = DtmfDetector()
    events = []
    for _ in range(500):
        n = int(rng.integers(0, 400))
        events += detector.feed(rng.integers(-32768, 32768, n).astype(np.int16))
    assert events == []


@pytest.mark.parametrize(
    "frame",
    [np.zeros(160, np.float64), np.zeros((2, 80), np.int16), np.zeros(160, np.int32), [0] * 160],
)
def test_feed_refuses_what_is_not_int16_pcm(frame):
    detector = DtmfDetector()
    with pytest.raises(DtmfError, match="int16"):
        detector.feed(frame)


def test_feed_refuses_oversized_chunks_and_bad_rates():
    with pytest.raises(DtmfError, match="split"):
        DtmfDetector().feed(np.zeros(dtmf.MAX_CHUNK_SAMPLES + 1, np.int16))
    for rate in (7999, 96000):
        with pytest.raises(DtmfError, match="rate"):
            DtmfDetector(rate)


def test_whole_recordings_longer_than_one_chunk_are_analysed(monkeypatch):
    monkeypatch.setattr(dtmf, "MAX_CHUNK_SAMPLES", 1000)
    pcm = generate_dtmf("0123456789", on_ms=80, off_ms=80)
    assert pcm.size > 10 * 1000
    assert "".join(t.digit for t in detect_dtmf(pcm)) == "0123456789"


def test_events_are_frozen_and_validated():
    start = DtmfStart("5", 10.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        start.digit = "6"  # type: ignore[misc]
    with pytest.raises(DtmfError, match="digit"):
        DtmfStart("E", 0.0)
    with pytest.raises(DtmfError, match="duration"):
        DtmfEnd("5", 10.0, 0.0)
    with pytest.raises(DtmfError, match="finite"):
        DtmfTone("5", float("nan"), 40.0)


@settings(max_examples=30, deadline=None)
@given(
    digits=st.text(alphabet=DIGITS, min_size=1, max_size=8),
    on_ms=st.floats(45, 120),
    off_ms=st.floats(45, 120),
    # -6 dBm0 with +3.5 dB twist peaks at 28 500: the two tones never clip (the generator
    # refuses signals that would, so the strategy must not ask for them).
    level=st.floats(-33, -6),
    twist=st.floats(-7.5, 3.5),
    chunk=st.integers(1, 500),
)
def test_any_digit_string_comes_back_in_any_chunking(digits, on_ms, off_ms, level, twist, chunk):
    pcm = generate_dtmf(digits, level_dbm0=level, twist_db=twist, on_ms=on_ms, off_ms=off_ms)
    detector = DtmfDetector()
    events = []
    for i in range(0, pcm.size, chunk):
        events += detector.feed(pcm[i : i + chunk])
    events += detector.feed(np.zeros(1000, np.int16))
    ends = [e for e in events if isinstance(e, DtmfEnd)]
    assert "".join(e.digit for e in ends) == digits
    assert all(abs(e.duration_ms - on_ms) < 7 for e in ends)


# --- independent cross-checks ----------------------------------------------------------------


def _multimon(pcm: np.ndarray) -> str:
    """Digits multimon-ng hears in 8 kHz PCM (it wants 22050 Hz raw; sox resamples)."""
    raw = subprocess.run(
        [
            "sox",
            "-t",
            "raw",
            "-r",
            "8000",
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            "-",
            "-t",
            "raw",
            "-r",
            "22050",
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            "-",
        ],
        input=pcm.astype("<i2").tobytes(),
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    out = subprocess.run(
        ["multimon-ng", "-q", "-t", "raw", "-a", "DTMF", "-"],
        input=raw,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return "".join(
        line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("DTMF:")
    )


@pytest.mark.parametrize(("level", "twist"), [(-6.0, 0.0), (-20.0, 2.0), (-10.0, -4.0)])
def test_multimon_ng_decodes_what_we_generate(level, twist):
    digits = "0123456789*#ABCD" + "1122334455"
    pcm = generate_dtmf(digits, level_dbm0=level, twist_db=twist, on_ms=60, off_ms=60)
    assert _multimon(pcm) == digits


def _sox_digit(digit: str, on_s: float, off_s: float, gain_db: float) -> np.ndarray:
    low, high = dtmf.tones_of(digit)
    raw = subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "8000",
            "-b",
            "16",
            "-e",
            "signed",
            "-c",
            "1",
            "-t",
            "raw",
            "-",
            "synth",
            str(on_s),
            "sine",
            str(low),
            "sine",
            str(high),
            "remix",
            "-",
            "gain",
            "-n",
            str(gain_db),
            "pad",
            "0",
            str(off_s),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def test_we_decode_dtmf_that_sox_synthesises():
    digits = "0123456789*#ABCD"
    pcm = np.concatenate(
        [
            _sox_digit(d, 0.05 + 0.01 * (i % 4), 0.05, -3.0 - 2 * (i % 10))
            for i, d in enumerate(digits)
        ]
    )
    assert "".join(t.digit for t in detect_dtmf(pcm)) == digits
