from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import corpus
from firmware.dsp.levels import power_dbm0
from firmware.dsp.pcm import SAMPLE_RATE


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


def test_clips_cover_languages_voices_speeds_and_pitches():
    clips = corpus.clips()
    assert {c.lang for c in clips} == set(corpus.SENTENCES)
    assert len({c.variant for c in clips}) == len(corpus.VARIANTS)
    assert {c.speed_wpm for c in clips} == set(corpus.SPEEDS_WPM)
    assert {c.pitch for c in clips} == set(corpus.PITCHES)
    assert len({c.key("v") for c in clips}) == len(clips)


def test_synthesis_is_8khz_speech_and_cached(cache):
    clip = corpus.clips()[0]
    first = corpus.load_clip(clip, cache)
    assert first.dtype == np.int16
    # espeak-ng speaks about 2-5 words a second; the sentence has 13 words.
    assert 2 * SAMPLE_RATE < first.size < 8 * SAMPLE_RATE
    assert list(cache.glob("*.s16"))
    again = corpus.load_clip(clip, cache)
    assert np.array_equal(first, again)
    # Band-limited to the 8 kHz channel: speech energy sits well below 4 kHz.
    spec = np.abs(np.fft.rfft(first.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(first.size, 1 / SAMPLE_RATE)
    assert spec[freqs < 3000].sum() > 0.9 * spec.sum()


def test_speech_corpus_length_level_and_determinism(cache):
    a = corpus.speech_corpus(0.5, cache)
    b = corpus.speech_corpus(0.5, cache)
    assert a.size == 30 * SAMPLE_RATE
    assert np.array_equal(a, b)
    assert -30.0 < power_dbm0(a) < -10.0
    other = corpus.speech_corpus(0.5, cache, seed=1)
    assert not np.array_equal(a, other)


def test_music_like_is_tonal_and_deterministic():
    a = corpus.music_like(0.25, seed=3)
    assert np.array_equal(a, corpus.music_like(0.25, seed=3))
    assert not np.array_equal(a, corpus.music_like(0.25, seed=4))
    assert a.size == 15 * SAMPLE_RATE
    # Tonal: in 100 ms blocks a few spectral lines hold most of the energy.
    block = a[SAMPLE_RATE : SAMPLE_RATE + 800].astype(np.float64)
    spec = np.sort(np.abs(np.fft.rfft(block * np.hanning(800))) ** 2)[::-1]
    assert spec[:40].sum() > 0.8 * spec.sum()


def test_talk_corpus_mixes_speech_and_music(cache):
    mix = corpus.talk_corpus(1.0, cache)
    assert mix.size == 60 * SAMPLE_RATE
    assert np.array_equal(mix, corpus.talk_corpus(1.0, cache))
    assert -30.0 < power_dbm0(mix) < -8.0


@pytest.mark.parametrize("minutes", [0.0, -1.0, float("nan"), corpus.MAX_MINUTES + 1])
def test_bad_lengths_are_refused(minutes):
    with pytest.raises(ValueError, match="minutes"):
        corpus.music_like(minutes)


# fmt chunk: PCM, 1 channel, 22050 Hz, 44100 B/s, block 2, 16 bits
_FMT_MONO_16 = b"fmt \x10\0\0\0\x01\0\x01\0\x22\x56\0\0\x44\xac\0\0\x02\0\x10\0"


def test_garbage_from_the_synthesiser_is_reported():
    with pytest.raises(corpus.CorpusError, match="RIFF"):
        corpus._read_wav(b"not a wav file at all")
    with pytest.raises(corpus.CorpusError, match="data chunk"):
        corpus._read_wav(b"RIFF\0\0\0\0WAVE" + _FMT_MONO_16)
    with pytest.raises(corpus.CorpusError, match="8-bit"):
        corpus._read_wav(b"RIFF\0\0\0\0WAVE" + _FMT_MONO_16[:22] + b"\x08\0")


def test_resample_keeps_in_band_tones():
    t = np.arange(22050) / 22050
    tone = np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 6000 * t)
    out = corpus.resample(tone, 8000)
    spec = np.abs(np.fft.rfft(out))
    assert np.argmax(spec) == 1000  # 1 Hz bins; the 6 kHz tone is gone, not aliased
    assert spec[2000] < 1e-6 * spec[1000]
