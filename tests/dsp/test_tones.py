"""Tone plans and the frame-by-frame player: levels, frequencies, cadence, no clicks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.dsp import levels
from firmware.dsp.pcm import SAMPLE_RATE
from firmware.dsp.profiles import COUNTRY_CODES, REQUIRED_TONES, get_profile
from firmware.dsp.tones import Cadence, ToneError, TonePlayer, ToneSpec, render


def goertzel_power(x: np.ndarray, freq: float, rate: int = SAMPLE_RATE) -> float:
    """Power of ``x`` at ``freq`` (independent of the code under test)."""
    n = x.size
    w = 2 * math.pi * freq / rate
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for v in x.astype(np.float64):
        s1, s2 = v + coeff * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n / 2)


def spectrum_peaks(x: np.ndarray, count: int) -> list[float]:
    win = np.hanning(x.size)
    mag = np.abs(np.fft.rfft(x * win))
    freqs = np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE)
    peaks = [i for i in range(1, mag.size - 1) if mag[i] >= mag[i - 1] and mag[i] > mag[i + 1]]
    peaks.sort(key=lambda i: -mag[i])
    return sorted(float(freqs[i]) for i in peaks[:count])


def on_mask(pcm: np.ndarray, threshold: float = 200.0) -> np.ndarray:
    """Per 1 ms block: is the tone sounding (energy above a threshold)?"""
    blocks = pcm[: pcm.size // 8 * 8].astype(np.float64).reshape(-1, 8)
    mask: np.ndarray = np.sqrt((blocks**2).mean(axis=1)) > threshold
    return mask


def runs(mask: np.ndarray) -> list[tuple[bool, int]]:
    out: list[tuple[bool, int]] = []
    for v in mask:
        if out and out[-1][0] == bool(v):
            out[-1] = (bool(v), out[-1][1] + 1)
        else:
            out.append((bool(v), 1))
    return out


@pytest.mark.parametrize("level", [-30.0, -13.0, -6.0, 0.0])
def test_single_tone_level_is_exact(level):
    pcm = render(ToneSpec.parse("425", level), 1000)
    assert levels.power_dbm0(pcm[160:]) == pytest.approx(level, abs=0.05)


def test_dual_tone_levels_are_per_component():
    pcm = render(ToneSpec.parse("350+440", -13.0), 1000)[160:]
    assert levels.power_dbm0(pcm) == pytest.approx(-13.0 + 10 * math.log10(2), abs=0.05)
    # and each component sits at -13 dBm0
    for f in (350, 440):
        p = goertzel_power(pcm[:4000], f)
        assert 10 * math.log10(p / levels.RMS_0DBM0**2) == pytest.approx(-13.0, abs=0.2)


def test_per_component_level_override():
    pcm = render(ToneSpec.parse("350@-22+440@-18", -10.0), 500)[:4000]
    p350 = 10 * math.log10(goertzel_power(pcm, 350) / levels.RMS_0DBM0**2)
    p440 = 10 * math.log10(goertzel_power(pcm, 440) / levels.RMS_0DBM0**2)
    assert p350 == pytest.approx(-22.0, abs=0.2)
    assert p440 == pytest.approx(-18.0, abs=0.2)


def test_modulated_tone_level_and_sidebands():
    spec = ToneSpec.parse("400*25", -10.0)
    pcm = render(spec, 2000)
    assert levels.power_dbm0(pcm[160:]) == pytest.approx(-10.0, abs=0.05)
    assert spectrum_peaks(pcm[:8000].astype(np.float64), 3) == pytest.approx(
        [375.0, 400.0, 425.0], abs=1.0
    )


@pytest.mark.parametrize("code", COUNTRY_CODES)
def test_every_country_tone_frequencies_and_level(code):
    profile = get_profile(code)
    for name in REQUIRED_TONES:
        spec = profile.tones[name]
        # The first sounding element, rendered steady, carries its nominal frequencies.
        seg = next(s for s in spec.segments if not s.silent)
        steady = ToneSpec((type(seg)(seg.components, None),), name)
        pcm = render(steady, 1000)[80:]
        assert levels.power_dbm0(pcm) == pytest.approx(seg.power_dbm0, abs=0.1), (code, name)
        lines = sorted(f for c in seg.components for f in c.frequencies)
        found = spectrum_peaks(pcm[:7680].astype(np.float64), len(lines))
        assert found == pytest.approx(lines, abs=2.5), (code, name)


@pytest.mark.parametrize(
    ("code", "tone"),
    [
        ("US", "busy"),
        ("GB", "congestion"),
        ("ES", "congestion"),
        ("AU", "call_waiting"),
        ("SE", "sit"),
        ("DE", "busy"),
    ],
)
@pytest.mark.parametrize("frame", [160, 97, 13])
def test_cadence_timing_is_exact_across_frames(code, tone, frame):
    spec = get_profile(code).tones[tone]
    cadence = spec.cadence
    assert cadence is not None
    player = TonePlayer(spec)
    total = round(2 * cadence.period_ms * 8)
    pcm = np.concatenate([player.next_frame(frame) for _ in range(total // frame + 1)])[:total]
    # Identical to rendering in one go: frame size has no effect at all.
    assert np.array_equal(pcm, render(spec, 2 * cadence.period_ms))
    got = runs(on_mask(pcm))
    want = [(i % 2 == 0, round(d)) for i, d in enumerate(cadence.on_off_ms * 2)]
    assert len(got) == len(want)
    for (on_g, ms_g), (on_w, ms_w) in zip(got, want, strict=True):
        assert on_g == on_w
        assert abs(ms_g - ms_w) <= 2  # the 2 ms raised-cosine ramps move the threshold


def max_step_bound(spec: ToneSpec, ramp_samples: int = 16) -> float:
    """Largest sample-to-sample step a click-free rendering of ``spec`` can have.

    A sine of peak A at f moves at most 2 A sin(pi f / rate) per sample; a raised-cosine
    ramp over R samples adds at most A pi / (2 R).
    """
    bound = 0.0
    for seg in spec.segments:
        s = 0.0
        for c in seg.components:
            a = levels.peak_for_dbm0(c.level_dbm0)
            if c.modulation_hz:
                a *= (1 + c.modulation_depth) / math.sqrt(1 + c.modulation_depth**2 / 2)
            f = max(c.frequencies)
            s += a * (2 * math.sin(math.pi * f / SAMPLE_RATE) + math.pi / (2 * ramp_samples))
        bound = max(bound, s)
    return bound + 2  # rounding to int16


@pytest.mark.parametrize("code", COUNTRY_CODES)
def test_no_discontinuities_at_frame_or_cadence_edges(code):
    profile = get_profile(code)
    for name, spec in profile.tones.items():
        player = TonePlayer(spec)
        pcm = np.concatenate([player.next_frame() for _ in range(400)])  # 8 s
        steps = np.abs(np.diff(pcm.astype(np.int64)))
        assert steps.max() <= max_step_bound(spec), (code, name)
        # Edges fade: the first sample of every burst is near zero.
        assert abs(int(pcm[0])) <= max_step_bound(spec)


def test_hard_switch_would_have_failed_the_bound():
    """The step bound is meaningful: the same tone without ramps exceeds it."""
    spec = ToneSpec.parse("425/10,0/10", -3.0)  # cut near a peak
    clicky = TonePlayer(spec, ramp_ms=0).render_ms(400)
    smooth = TonePlayer(spec).render_ms(400)
    bound = max_step_bound(spec)
    assert np.abs(np.diff(clicky.astype(np.int64))).max() > bound
    assert np.abs(np.diff(smooth.astype(np.int64))).max() <= bound


def test_once_only_tone_ends_in_silence():
    spec = ToneSpec.parse("!950/330,!1400/330,!1800/330", -13.0)
    assert spec.duration_ms == 990.0 and spec.loop_start is None and spec.cadence is None
    player = TonePlayer(spec)
    pcm = player.render_ms(1500)
    assert player.finished
    assert not pcm[8 * 991 :].any()
    assert pcm[: 8 * 990].any()


def test_stutter_then_steady():
    spec = get_profile("US").tones["stutter_dial"]
    pcm = TonePlayer(spec).render_ms(3000)
    got = runs(on_mask(pcm))
    assert [r[0] for r in got[:12]] == [True, False] * 6
    assert got[-1] == (True, got[-1][1]) and got[-1][1] > 1500


def test_continuing_component_keeps_phase_across_elements():
    """UK special dial: 440 Hz continues while 350 Hz switches; no fade of 440."""
    spec = ToneSpec.parse("350+440/750,440/750", -20.0)
    pcm = render(spec, 1500).astype(np.float64)
    ref = levels.peak_for_dbm0(-20.0) * np.sin(2 * np.pi * 440 * np.arange(pcm.size) / 8000)
    tail = pcm[6000 + 32 : 12000 - 32]  # inside the 440-only element, away from ramps
    assert np.max(np.abs(tail - ref[6000 + 32 : 12000 - 32])) < 1.0


def test_level_offset():
    spec = ToneSpec.parse("425", -10.0)
    pcm = TonePlayer(spec, level_offset_db=-6.0).render_ms(500)
    assert levels.power_dbm0(pcm[160:]) == pytest.approx(-16.0, abs=0.05)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ("", "empty plan"),
        ("425/500,,0/500", "empty element"),
        ("425,0/500", "no duration but is not the last"),
        ("!425", "continuous element cannot be once-only"),
        ("425/500,!0/500", "once-only"),
        ("abc", "frequency 'abc' is not a number"),
        ("425/nan", "not finite"),
        ("425/-5", "duration -5.0 ms"),
        ("5/100", "below"),
        ("425*500", "modulating frequency"),
        ("425*25:150", "modulation depth"),
        (
            "1+2+3+4+5/100".replace("1", "100")
            .replace("2", "200")
            .replace("3", "300")
            .replace("4", "400")
            .replace("5", "500"),
            "at most 4",
        ),
        ("425@x", "level 'x' is not a number"),
        (",".join(["425/10"] * 65), "at most 64"),
    ],
)
def test_bad_plans(plan, message):
    with pytest.raises(ToneError, match=message):
        ToneSpec.parse(plan, -10.0)


def test_player_rejects_above_nyquist_and_bad_args():
    with pytest.raises(ToneError, match="above Nyquist"):
        TonePlayer(ToneSpec.parse("4100", -10.0))
    with pytest.raises(ToneError, match="sample rate"):
        TonePlayer(ToneSpec.parse("425", -10.0), rate=0)
    with pytest.raises(ToneError, match="ramp"):
        TonePlayer(ToneSpec.parse("425", -10.0), ramp_ms=50)
    with pytest.raises(ToneError, match="-1 samples"):
        TonePlayer(ToneSpec.parse("425", -10.0)).next_frame(-1)


def test_wideband_rate():
    pcm = TonePlayer(ToneSpec.parse("3500", -10.0), rate=16000).render_ms(500)
    assert pcm.size == 8000
    assert levels.power_dbm0(pcm[320:]) == pytest.approx(-10.0, abs=0.05)


def test_cadence_object():
    c = Cadence((400.0, 200.0, 400.0, 2000.0))
    assert c.period_ms == 3000.0 and c.on_ms == (400.0, 400.0) and c.off_ms == (200.0, 2000.0)
    assert c.is_on(0) and not c.is_on(450) and c.is_on(650) and not c.is_on(1500)
    assert c.is_on(3100)
    with pytest.raises(ToneError):
        Cadence(())
    with pytest.raises(ToneError):
        Cadence((100.0, 0.0))


@settings(max_examples=40, deadline=None)
@given(
    on=st.integers(5, 600),
    off=st.integers(5, 600),
    freq=st.floats(200, 3000),
    level=st.floats(-40, 0),
    frames=st.lists(st.integers(1, 400), min_size=1, max_size=30),
)
def test_any_framing_gives_the_same_samples(on, off, freq, level, frames):
    spec = ToneSpec.parse(f"{freq:.3f}/{on},0/{off}", level)
    player = TonePlayer(spec)
    pcm = np.concatenate([player.next_frame(n) for n in frames])
    assert np.array_equal(pcm, render(spec, pcm.size / 8))
    assert np.abs(np.diff(pcm.astype(np.int64))).max(initial=0) <= max_step_bound(spec) + 1
