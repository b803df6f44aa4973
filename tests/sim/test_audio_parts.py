"""The simulator's WAV handling, tone and DTMF helpers."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from drivers.sim.tones import (
    DtmfDetector,
    Tone,
    ToneSource,
    dtmf,
    read_wav,
    sines,
    write_wav,
)


def test_wav_round_trip_and_conversion(tmp_path: Path) -> None:
    pcm = sines((440,), 8000, level_dbm0=-10)
    path = tmp_path / "a.wav"
    write_wav(path, pcm)
    assert np.array_equal(read_wav(path), pcm)
    # 16 kHz stereo comes back as 8 kHz mono.
    stereo = tmp_path / "b.wav"
    t = np.arange(16000) / 16000
    left = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.column_stack([left, left]).tobytes())
    mono = read_wav(stereo)
    assert len(mono) == 8000
    spectrum = np.abs(np.fft.rfft(mono))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1  # 1 Hz bins over one second


def test_wav_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    with pytest.raises(ValueError, match=r"bad\.wav: not a PCM WAV"):
        read_wav(bad)


def test_dtmf_detector_finds_every_digit_and_ignores_tones() -> None:
    digits = "0123456789*#ABCD"
    pcm = dtmf(digits)
    rng = np.random.default_rng(1)
    noisy = (pcm + rng.normal(0, 200, len(pcm))).astype(np.int16)
    detector = DtmfDetector()
    found = [d for i in range(0, len(noisy), 160) for d, _ in detector.feed(noisy[i : i + 160])]
    assert "".join(found) == digits
    dial_tone = ToneSource(Tone((350, 440)))
    assert all(DtmfDetector().classify(dial_tone.read(160)) is None for _ in range(20))


def test_cadenced_tone_is_gated() -> None:
    source = ToneSource(Tone((425,), ((100, 100),)))
    pcm = source.read(1600)
    on = np.abs(pcm[:800]).max()
    off = np.abs(pcm[800:1600]).max()
    assert on > 1000 and off == 0
    with pytest.raises(ValueError, match=r"within 0\.\.4000"):
        Tone((5000,))
