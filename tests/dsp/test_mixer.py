"""The conference mixer: N-1 mixes, saturation, mute, jitter accounting and cues."""

from __future__ import annotations

import math

import numpy as np
import pytest

from firmware.dsp.levels import power_dbm0
from firmware.dsp.mixer import (
    CUE_LEVEL_DBM0,
    JITTER_FRAMES,
    PREFILL_FRAMES,
    Mixer,
    MixerError,
)
from firmware.dsp.pcm import FRAME_SAMPLES, SAMPLE_RATE, Pcm

FREQS = {"a": 500.0, "b": 1100.0, "c": 1900.0}  # one talker each, on separate FFT bins


def sine(freq: float, k: int, amplitude: float = 4000.0) -> Pcm:
    t = (np.arange(FRAME_SAMPLES) + k * FRAME_SAMPLES) / SAMPLE_RATE
    return np.rint(amplitude * np.sin(2 * math.pi * freq * t)).astype(np.int16)


def amplitude_at(x: Pcm, freq: float) -> float:
    """Amplitude of the ``freq`` component (a whole number of cycles per analysed block)."""
    spec = np.fft.rfft(x.astype(np.float64))
    return float(2 * abs(spec[round(freq * x.size / SAMPLE_RATE)]) / x.size)


def run(mixer: Mixer, rounds: int, talkers: dict[str, float]) -> dict[str, Pcm]:
    heard: dict[str, list[Pcm]] = {str(pid): [] for pid in mixer.participants}
    for k in range(rounds):
        for pid, freq in talkers.items():
            mixer.push(pid, sine(freq, k))
        for who, frame in mixer.mix().items():
            heard[str(who)].append(frame)
    return {pid: np.concatenate(frames) for pid, frames in heard.items()}


def test_each_participant_hears_everyone_but_themselves() -> None:
    mixer = Mixer(cues=False)
    for pid in FREQS:
        mixer.join(pid)
    heard = run(mixer, 50, FREQS)
    for listener, audio in heard.items():
        tail = audio[-40 * FRAME_SAMPLES :]  # past the primed silence
        for talker, freq in FREQS.items():
            level = amplitude_at(tail, freq)
            if talker == listener:
                assert level < 1.0, (listener, talker, level)
            else:
                assert level == pytest.approx(4000.0, rel=0.01), (listener, talker, level)


def test_the_sum_saturates_instead_of_wrapping() -> None:
    mixer = Mixer(cues=False)
    for pid in "abc":
        mixer.join(pid)
    loud = np.full(FRAME_SAMPLES, 30000, dtype=np.int16)
    for _ in range(PREFILL_FRAMES + 1):
        mixer.push("a", loud)
        mixer.push("b", loud)
        mixer.push("c", -loud)
        out = mixer.mix()
    assert np.all(out["c"] == 32767)  # 60000 would wrap to -5536 in 16 bits
    assert np.all(out["a"] == 0)  # b + c cancel exactly
    for _ in range(PREFILL_FRAMES + 1):
        for pid in "abc":
            mixer.push(pid, -loud)
        out = mixer.mix()
    assert np.all(out["a"] == -32768)


def test_a_muted_participant_is_heard_by_nobody_but_hears_the_room() -> None:
    mixer = Mixer(cues=False)
    for pid in FREQS:
        mixer.join(pid)
    mixer.mute("b")
    assert mixer.muted("b")
    heard = run(mixer, 30, FREQS)
    for listener in ("a", "c"):
        assert amplitude_at(heard[listener][-20 * FRAME_SAMPLES :], FREQS["b"]) < 1.0
    assert amplitude_at(heard["b"][-20 * FRAME_SAMPLES :], FREQS["a"]) > 3900
    mixer.mute("b", False)
    heard = run(mixer, 30, FREQS)
    assert amplitude_at(heard["a"][-20 * FRAME_SAMPLES :], FREQS["b"]) > 3900


def test_a_missing_frame_is_silence_and_counted_and_a_burst_is_capped() -> None:
    mixer = Mixer(cues=False)
    mixer.join("a")
    mixer.join("b")
    for _ in range(PREFILL_FRAMES):  # the primed silence goes first
        assert not mixer.mix()["b"].any()
    out = mixer.mix()  # a sent nothing this round
    assert not out["b"].any()
    assert mixer.stats("a").missing == 1 and mixer.stats("b").missing == 1
    for k in range(JITTER_FRAMES + 3):  # a's thread catches up in a burst
        mixer.push("a", sine(500, k))
    assert mixer.stats("a").overruns == 3
    assert mixer.stats("a").frames_in == JITTER_FRAMES + 3
    # The oldest frames were dropped: b hears frame 3 onwards, in order.
    assert np.array_equal(mixer.mix()["b"], sine(500, 3))


def test_join_and_leave_cues_reach_everyone_at_their_level() -> None:
    mixer = Mixer()
    mixer.join("a")
    mixer.join("b")  # two join cues queued, played one after the other
    frames = [mixer.mix()["a"] for _ in range(30)]
    assert not mixer.cue_playing
    audio = np.concatenate(frames)
    first = audio[: 12 * FRAME_SAMPLES]  # 240 ms: the first cue, 440 then 660 Hz
    assert amplitude_at(first[: 4 * FRAME_SAMPLES], 440.0) > 1000
    assert amplitude_at(first[8 * FRAME_SAMPLES : 12 * FRAME_SAMPLES], 660.0) > 1000
    level = power_dbm0(first[FRAME_SAMPLES : 5 * FRAME_SAMPLES])
    assert level == pytest.approx(CUE_LEVEL_DBM0, abs=0.5)
    assert not audio[-5 * FRAME_SAMPLES :].any()  # played out, then silence
    mixer.join("c")
    for _ in range(30):
        mixer.mix()
    mixer.leave("c")
    leave = np.concatenate([mixer.mix()["a"] for _ in range(12)])
    assert amplitude_at(leave[: 4 * FRAME_SAMPLES], 660.0) > 1000  # falling: 660 first
    assert amplitude_at(leave[8 * FRAME_SAMPLES :], 440.0) > 1000


def test_a_room_is_bounded_and_misuse_is_refused() -> None:
    mixer = Mixer(max_participants=3, cues=False)
    for pid in "abc":
        mixer.join(pid)
    with pytest.raises(MixerError, match="full"):
        mixer.join("d")
    with pytest.raises(MixerError, match="already"):
        mixer.join("a")
    with pytest.raises(MixerError, match="not in the conference"):
        mixer.push("zz", sine(500, 0))
    with pytest.raises(MixerError, match="expected"):
        mixer.push("a", np.zeros(80, dtype=np.int16))
    with pytest.raises(MixerError, match="participants"):
        Mixer(max_participants=1)
    stats = mixer.leave("a")
    assert stats.frames_in == 0
    assert mixer.participants == ("b", "c")
    assert Mixer().mix() == {}
