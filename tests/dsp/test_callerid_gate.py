"""The FSK demodulator's carrier gate: cheaper on speech, never a lost or changed message."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.dsp.callerid import fsk
from firmware.dsp.callerid.fsk import FskDemodulator, modulate_message
from firmware.dsp.callerid.messages import (
    CallerIdError,
    CallerIdMessage,
    CallSetup,
    DateTime,
    encode_message,
)
from firmware.dsp.dtmf import generate_dtmf
from firmware.dsp.levels import rms_for_dbm0
from firmware.dsp.pcm import FRAME_SAMPLES, to_pcm

CALL = CallSetup(date_time=DateTime(3, 14, 9, 26), number="5551234", name="GATE")
STANDARDS: tuple[fsk.FskStandard, ...] = ("bell202", "v23")


@pytest.fixture(scope="module")
def talk() -> np.ndarray:
    from bench.corpus import talk_corpus

    return talk_corpus(1.0, seed=5)


def run(
    line: np.ndarray, standard: fsk.FskStandard, *, gate: bool = True
) -> tuple[list[CallerIdMessage | CallerIdError], int]:
    """Everything decoded, frame by frame, and how many frames were analysed."""
    demod = FskDemodulator(standard, gate=gate)
    out: list[CallerIdMessage | CallerIdError] = []
    analysed = 0
    for i in range(0, len(line), FRAME_SAMPLES):
        out += demod.feed(line[i : i + FRAME_SAMPLES])
        analysed += demod.analysing
    return out + demod.flush(), analysed


@pytest.mark.parametrize("standard", STANDARDS)
def test_gate_skips_most_speech_and_music(talk, standard):
    frames = len(talk) // FRAME_SAMPLES
    found, gated = run(talk, standard)
    found_ungated, ungated = run(talk, standard, gate=False)
    assert found == found_ungated == []
    # Nearly every corpus frame is above the carrier floor; under a third get past the gate.
    assert ungated > 0.9 * frames
    assert gated < 0.3 * frames


@pytest.mark.parametrize("standard", STANDARDS)
def test_gate_opens_on_the_mark_signal_alone(standard):
    # Type II: no seizure, 80 marks, straight after loud DTMF (whose high tone is in band).
    burst = modulate_message(CALL, standard=standard, call_waiting=True)
    line = np.concatenate([generate_dtmf("159#", level_dbm0=-6.0), burst, np.zeros(800)])
    found, analysed = run(line, standard)
    assert found == [CALL]
    assert analysed >= len(burst) // FRAME_SAMPLES


@pytest.mark.parametrize("standard", STANDARDS)
@pytest.mark.parametrize("call_waiting", [False, True])
def test_burst_straight_after_speech_at_every_phase(talk, standard, call_waiting):
    # The burst starts anywhere in a frame whose start was speech: the frames the gate let by
    # are re-analysed, so the mark signal is hunted from its first bit.
    burst = modulate_message(CALL, standard=standard, call_waiting=call_waiting)
    speech = talk[8000:12000]
    for phase in range(0, FRAME_SAMPLES, 23):
        line = np.concatenate([speech[: len(speech) - phase], burst, np.zeros(800)])
        found, _ = run(line, standard)
        assert found == run(line, standard, gate=False)[0] == [CALL], phase


def test_weakest_noisy_burst_after_speech_opens_the_gate(talk):
    # -40 dBm0 at 8 dB SNR (below the conformance point of 20 dB), after speech 30 dB louder.
    rng = np.random.default_rng(7)
    burst = modulate_message(CALL, level_dbm0=-40.0, call_waiting=True).astype(np.float64)
    line = np.concatenate([talk[20000:24000].astype(np.float64), burst, np.zeros(800)])
    line += rng.normal(0.0, rms_for_dbm0(-48.0), len(line))
    assert run(to_pcm(line), "bell202")[0] == [CALL]


@settings(max_examples=25, deadline=None)
@given(
    standard=st.sampled_from(STANDARDS),
    start=st.integers(0, 50_000),
    length=st.integers(0, 6000),
    call_waiting=st.booleans(),
    level=st.floats(-40.0, -5.0),
    cut=st.integers(0, 3000),
)
def test_gate_never_changes_what_is_decoded(
    talk, standard, start, length, call_waiting, level, cut
):
    """Gated and ungated receivers agree on any speech/music + (possibly cut) burst mix."""
    burst = modulate_message(CALL, standard=standard, level_dbm0=level, call_waiting=call_waiting)
    burst = burst[: len(burst) - cut] if cut else burst
    speech = talk[start : start + length]
    line = np.concatenate([speech, burst, speech[::-1], burst])
    gated, _ = run(line, standard)
    assert gated == run(line, standard, gate=False)[0]
    if not cut:
        assert gated.count(CALL) == 2


def test_other_frame_lengths_bypass_the_gate_and_keep_its_history(talk):
    burst = modulate_message(CALL, call_waiting=True)
    line = np.concatenate([talk[30000:33000], burst, np.zeros(900)])
    demod = FskDemodulator()
    out: list[CallerIdMessage | CallerIdError] = []
    sizes = [FRAME_SAMPLES, 37, FRAME_SAMPLES, FRAME_SAMPLES, 1, 500]
    i = k = 0
    while i < len(line):
        n = sizes[k % len(sizes)]
        out += demod.feed(line[i : i + n])
        i, k = i + n, k + 1
    assert out + demod.flush() == [CALL]


@pytest.mark.parametrize("standard", STANDARDS)
def test_no_bit_is_lost_when_the_gate_opens(talk, standard):
    # A mark signal of 16 bits (far shorter than any standard's) leaves the hunt 4 bits to
    # spare: it decodes after speech at every phase only if the frames before the opening
    # are re-analysed.
    burst = fsk.fsk_modulate(encode_message(CALL), standard=standard, seizure_bits=0, mark_bits=16)
    speech = talk[40000:44000]
    for phase in range(0, FRAME_SAMPLES, 7):
        line = np.concatenate([speech[: len(speech) - phase], burst, np.zeros(800)])
        found, _ = run(line, standard)
        assert found == run(line, standard, gate=False)[0] == [CALL], phase
