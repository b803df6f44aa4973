"""Call-progress detection: every country's tones, tolerances, noise, G.711, hostile input."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.dsp import g711, levels, wavio
from firmware.dsp.pcm import SAMPLE_RATE, to_pcm
from firmware.dsp.profiles import COUNTRY_CODES, CountryProfile, get_profile
from firmware.dsp.progress import (
    CallProgressDetector,
    ProgressError,
    SilenceDetected,
    ToneDetected,
    ToneStopped,
    VoiceDetected,
    analyse,
    cadence_matches,
)
from firmware.dsp.tones import Cadence, Segment, TonePlayer, ToneSpec

DETECTED = ("dial", "busy", "congestion", "ringback")


def scaled(spec: ToneSpec, k: float) -> ToneSpec:
    """The same tone with every duration multiplied by ``k``."""
    return ToneSpec(
        tuple(
            Segment(s.components, None if s.duration_ms is None else s.duration_ms * k, s.once)
            for s in spec.segments
        ),
        spec.name,
    )


def same_cadence(a: Cadence | None, b: Cadence | None) -> bool:
    """Equal as repeating patterns (375/375 is the same as 375/375/375/375)."""
    if a is None or b is None:
        return False
    n = len(a.on_off_ms) * len(b.on_off_ms)
    x = a.on_off_ms * (n // len(a.on_off_ms))
    y = b.on_off_ms * (n // len(b.on_off_ms))
    return all(abs(p - q) <= 0.1 * q for p, q in zip(x, y, strict=True))


def acceptable(profile: CountryProfile, tone: str) -> set[str]:
    """Busy and congestion with the same cadence (JP, PL, AU) cannot be told apart."""
    ok = {tone}
    if tone in ("busy", "congestion"):
        other = "congestion" if tone == "busy" else "busy"
        if same_cadence(profile.tones[tone].cadence, profile.tones[other].cadence):
            ok.add(other)
    return ok


def first_tone(events) -> ToneDetected | None:
    return next((e for e in events if isinstance(e, ToneDetected)), None)


def line(pcm: np.ndarray, *, law: str, snr_db: float | None, level_db: float, seed: int = 0):
    """Tone as heard across a G.711 trunk with white noise ``snr_db`` below its level."""
    x = pcm.astype(np.float64)
    if snr_db is not None:
        rng = np.random.default_rng(seed)
        x = x + rng.normal(0.0, levels.rms_for_dbm0(level_db - snr_db), x.size)
    codec = g711.ulaw_round_trip if law == "ulaw" else g711.alaw_round_trip
    return codec(to_pcm(x))


@pytest.mark.parametrize("code", COUNTRY_CODES)
@pytest.mark.parametrize(
    ("law", "offset_db", "snr_db"),
    [("ulaw", 0.0, None), ("alaw", -15.0, None), ("ulaw", -10.0, 15.0), ("alaw", 0.0, 10.0)],
)
def test_every_country_tone_is_detected(code, law, offset_db, snr_db):
    profile = get_profile(code)
    for tone in DETECTED:
        spec = profile.tones[tone]
        pcm = TonePlayer(spec, level_offset_db=offset_db).render_ms(16000)
        seg = next(s for s in spec.segments if not s.silent)
        heard = line(pcm, law=law, snr_db=snr_db, level_db=seg.power_dbm0 + offset_db)
        events = analyse(heard, profile)
        found = first_tone(events)
        assert found is not None, (code, tone, law, offset_db, snr_db)
        assert found.tone in acceptable(profile, tone), (code, tone, found)
        # Nothing else is claimed along the way.
        others = {e.tone for e in events if isinstance(e, ToneDetected)}
        assert others <= acceptable(profile, tone), (code, tone, others)


@pytest.mark.parametrize("code", COUNTRY_CODES)
def test_cadence_tolerance_9_percent_in_15_percent_out(code):
    profile = get_profile(code)
    for tone in ("busy", "congestion"):
        for k, want in ((0.91, True), (1.09, True), (0.85, False), (1.15, False)):
            pcm = TonePlayer(scaled(profile.tones[tone], k)).render_ms(12000)
            found = first_tone(analyse(pcm, profile))
            got = found is not None and found.tone in ("busy", "congestion")
            assert got == want, (code, tone, k, found)


def test_on_and_off_scaled_independently():
    us = get_profile("US")
    for on, off, want in ((545, 455, True), (455, 545, True), (575, 500, False), (500, 425, False)):
        spec = ToneSpec.parse(f"480+620/{on},0/{off}", -24.0)
        found = first_tone(analyse(TonePlayer(spec).render_ms(10000), us))
        assert (found is not None and found.tone == "busy") == want, (on, off, found)


def test_number_of_cycles_is_configurable():
    de = get_profile("DE")
    busy = de.tones["busy"]  # 480/480
    pcm = TonePlayer(busy).render_ms(10000)
    times = {}
    for cycles in (1, 2, 3, 5):
        found = first_tone(analyse(pcm, de, busy_cycles=cycles))
        assert found is not None and found.tone == "busy"
        times[cycles] = found.at_ms
    assert times[1] < times[2] < times[3] < times[5]
    # Each extra cycle costs one period (960 ms), within a frame.
    assert times[3] - times[2] == pytest.approx(960, abs=25)
    # Three bursts only are not enough for five cycles.
    three = np.concatenate([TonePlayer(busy).render_ms(2880), np.zeros(16000, np.int16)])
    assert first_tone(analyse(three, de, busy_cycles=5)) is None
    assert first_tone(analyse(three, de, busy_cycles=2)) is not None


def test_busy_reports_measured_cadence_and_level_and_stops():
    gb = get_profile("GB")
    pcm = np.concatenate(
        [TonePlayer(gb.tones["congestion"]).render_ms(9000), np.zeros(16000, np.int16)]
    )
    events = analyse(pcm, gb)
    found = first_tone(events)
    assert found is not None and found.tone == "congestion"
    for got, want in zip(sorted(found.on_off_ms), sorted((400, 350, 225, 525)), strict=True):
        assert abs(got - want) <= 4
    assert found.frequencies == (400.0,)
    stopped = [e for e in events if isinstance(e, ToneStopped)]
    assert len(stopped) == 1 and stopped[0].tone == "congestion"
    assert 8900 < stopped[0].at_ms < 10000
    silence = [e for e in events if isinstance(e, SilenceDetected)]
    assert silence and silence[-1].at_ms >= 8400  # the last off part of the tone


def test_dial_tone_then_silence():
    us = get_profile("US")
    pcm = np.concatenate([TonePlayer(us.tones["dial"]).render_ms(3000), np.zeros(24000, np.int16)])
    events = analyse(pcm, us)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["ToneDetected", "ToneStopped", "SilenceDetected"], events
    found = events[0]
    assert isinstance(found, ToneDetected) and found.tone == "dial"
    assert found.level_dbm0 == pytest.approx(-13 + 3.0, abs=0.3)
    assert 1000 <= found.at_ms <= 1100


def test_italian_cadenced_dial_tone():
    it = get_profile("IT")
    found = first_tone(analyse(TonePlayer(it.tones["dial"]).render_ms(6000), it))
    assert found is not None and found.tone == "dial"


def voice_like(ms: float, level_dbm0: float, seed: int = 0) -> np.ndarray:
    """Band-limited noise with a syllabic (4 Hz) envelope: loud, broadband, not tonal."""
    rng = np.random.default_rng(seed)
    n = round(ms * 8)
    x = np.convolve(rng.normal(size=n), np.ones(4) / 4, mode="same")
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * np.arange(n) / SAMPLE_RATE)
    x *= env
    x *= levels.rms_for_dbm0(level_dbm0) / np.sqrt(np.mean(x**2))
    return to_pcm(x)


def test_answer_detection_ringback_then_voice():
    fr = get_profile("FR")
    pcm = np.concatenate(
        [TonePlayer(fr.tones["ringback"]).render_ms(11000), voice_like(3000, -20.0)]
    )
    events = analyse(pcm, fr)
    names = [(type(e).__name__, getattr(e, "tone", "")) for e in events]
    assert names[:3] == [
        ("ToneDetected", "ringback"),
        ("ToneStopped", "ringback"),
        ("VoiceDetected", ""),
    ], names
    voice = next(e for e in events if isinstance(e, VoiceDetected))
    assert 11000 <= voice.at_ms <= 11300


def test_line_noise_is_not_voice():
    de = get_profile("DE")
    rng = np.random.default_rng(3)
    noise = to_pcm(rng.normal(0, levels.rms_for_dbm0(-40.0), 8000 * 10))
    events = analyse(noise, de)
    assert not any(isinstance(e, VoiceDetected | ToneDetected) for e in events)


def test_any_framing_detects_the_same(tmp_path):
    us = get_profile("US")
    pcm = TonePlayer(us.tones["busy"]).render_ms(6000)
    whole = first_tone(analyse(pcm, us))
    assert whole is not None
    rng = np.random.default_rng(7)
    det = CallProgressDetector(us)
    events = []
    pos = 0
    while pos < pcm.size:
        n = int(rng.integers(1, 400))
        events += det.feed(pcm[pos : pos + n])
        pos += n
    found = first_tone(events)
    assert found is not None and found.tone == "busy"
    assert found.at_ms == pytest.approx(whole.at_ms, abs=400)


def test_reset_forgets_the_tone():
    us = get_profile("US")
    det = CallProgressDetector(us)
    pcm = TonePlayer(us.tones["busy"]).render_ms(2600)
    for i in range(0, pcm.size, 160):
        det.feed(pcm[i : i + 160])
    det.reset()
    assert det.now_ms == 0 and det.tone is None
    events = []
    for i in range(0, 1600, 160):
        events += det.feed(pcm[i : i + 160])
    assert first_tone(events) is None


def test_bad_input_is_refused():
    det = CallProgressDetector(get_profile("US"))
    assert det.feed(np.zeros(0, np.int16)) == []
    with pytest.raises(ProgressError, match="1-D"):
        det.feed(np.zeros((2, 160), np.int16))
    with pytest.raises(ProgressError, match="cap"):
        det.feed(np.zeros(9000, np.int16))
    with pytest.raises(ProgressError, match="NaN or infinite"):
        det.feed(np.array([0.0, np.nan] * 80))
    with pytest.raises(ProgressError, match="NaN or infinite"):
        det.feed(np.array([0.0, np.inf] * 80))
    assert det.feed(np.zeros(160, np.int16)) == []  # still usable afterwards
    with pytest.raises(ProgressError, match="not numeric"):
        det.feed(np.array(["a"] * 160))
    with pytest.raises(ProgressError, match="sample rate"):
        CallProgressDetector(get_profile("US"), rate=8001)
    with pytest.raises(ProgressError, match="tolerance"):
        CallProgressDetector(get_profile("US"), tolerance=0.9)
    with pytest.raises(ProgressError, match="cycles"):
        CallProgressDetector(get_profile("US"), busy_cycles=0)


def test_wideband_rate():
    de = get_profile("DE")
    pcm = TonePlayer(de.tones["busy"], rate=16000).render_ms(6000)
    found = first_tone(analyse(pcm, de, rate=16000))
    assert found is not None and found.tone == "busy"


@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=0, max_size=16000))
def test_garbage_audio_never_crashes(data):
    pcm = np.frombuffer(data[: len(data) // 2 * 2], dtype=np.int16)
    det = CallProgressDetector(get_profile("GB"))
    for i in range(0, pcm.size, 160):
        for e in det.feed(pcm[i : i + 160]):
            assert e.at_ms >= 0


def test_cadence_matches():
    busy = Cadence((500.0, 500.0))
    assert cadence_matches([500, 500, 500, 500], busy, 2)
    assert cadence_matches([300, 700, 510, 490, 505, 495], busy, 2)  # only the last cycles count
    assert not cadence_matches([500, 500, 500], busy, 2)
    assert not cadence_matches([500, 500, 600, 500], busy, 2)
    uk = Cadence((400.0, 350.0, 225.0, 525.0))
    assert cadence_matches([225, 525, 400, 350], uk, 1)  # any starting burst
    assert not cadence_matches([350, 400, 525, 225], uk, 1)  # on/off swapped
    assert cadence_matches([2000.0], Cadence((2000.0, 4000.0)), 1, open_last=3700)
    assert not cadence_matches([2000.0], Cadence((2000.0, 4000.0)), 1, open_last=3000)


SIT_COUNTRIES = [
    c
    for c in COUNTRY_CODES
    if c not in ("AU", "ES", "FI", "NZ")  # no three-tone SIT there
]


@pytest.mark.parametrize("code", SIT_COUNTRIES)
def test_special_information_tone(code):
    profile = get_profile(code)
    spec = profile.tones["sit"]
    pcm = TonePlayer(spec, level_offset_db=-10).render_ms(3000)
    power = next(s for s in spec.segments if not s.silent).power_dbm0 - 10
    heard = line(pcm, law="alaw", snr_db=15.0, level_db=power)
    found = [e for e in analyse(heard, profile) if isinstance(e, ToneDetected)]
    assert found and found[0].tone == "sit", (code, found)
    assert len(found[0].on_off_ms) == 3
    assert 700 < found[0].at_ms < 1300
    # The same three tones in the wrong order are not a SIT.
    backwards = ToneSpec(tuple(reversed(spec.segments[:3])), "backwards")
    assert not [
        e for e in analyse(TonePlayer(backwards).render_ms(3000), profile)
        if isinstance(e, ToneDetected) and e.tone == "sit"
    ]  # fmt: skip


def test_speech_is_not_busy():
    """A few minutes of the espeak-ng corpus (bench/conformance_progress.py runs 30)."""
    corpus = pytest.importorskip("bench.corpus")
    speech = corpus.speech_corpus(3.0, seed=11)
    assert speech.size == 3 * 60 * SAMPLE_RATE
    false_tones = {}
    for code in COUNTRY_CODES:
        events = analyse(speech, get_profile(code))
        false_tones[code] = [e for e in events if isinstance(e, ToneDetected)]
        # It is heard as voice, from the first words on.
        first_voice = next(e for e in events if isinstance(e, VoiceDetected))
        assert first_voice.at_ms < 3000
    busy = [e for es in false_tones.values() for e in es if e.tone in ("busy", "congestion")]
    assert busy == []
    assert not [e for es in false_tones.values() for e in es if e.tone == "sit"]


SOX = shutil.which("sox")


@pytest.mark.skipif(SOX is None, reason="sox (Debian package) not installed")
@pytest.mark.parametrize(
    ("code", "freqs", "cadence", "tone"),
    [
        ("US", (480, 620), (500, 500), "busy"),
        ("US", (480, 620), (250, 250), "congestion"),
        ("GB", (400,), (400, 350, 225, 525), "congestion"),
        ("DE", (425,), (480, 480), "busy"),
        ("US", (440, 480), (2000, 4000), "ringback"),
    ],
)
def test_tones_made_by_sox_are_recognised(tmp_path, code, freqs, cadence, tone):
    """A tone generator nobody here wrote (sox synth), through a sox A-law file."""
    assert SOX is not None
    parts = []
    for i, ms in enumerate(cadence * 4):
        part = tmp_path / f"p{i}.wav"
        if i % 2:
            cmd = [
                SOX,
                "-n",
                "-r",
                "8000",
                "-b",
                "16",
                "-c",
                "1",
                str(part),
                "trim",
                "0",
                f"{ms / 1000}",
            ]
        else:
            synth = ["synth", f"{ms / 1000}", "sine", str(freqs[0])]
            for f in freqs[1:]:
                synth += ["synth", f"{ms / 1000}", "sine", "mix", str(f)]
            cmd = [SOX, "-n", "-r", "8000", "-b", "16", "-c", "1", str(part), *synth, "vol", "0.05"]
        subprocess.run(cmd, check=True, timeout=60)
        parts.append(str(part))
    out = tmp_path / "tone.wav"
    subprocess.run([SOX, *parts, "-e", "a-law", str(out)], check=True, timeout=60)
    pcm = wavio.read_wav(out.read_bytes()).pcm
    found = first_tone(analyse(pcm, get_profile(code)))
    assert found is not None and found.tone == tone, found
