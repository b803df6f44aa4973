from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.dsp import g711
from firmware.dsp.callerid import fsk
from firmware.dsp.callerid.fsk import FskDemodulator, decode_callerid, fsk_modulate
from firmware.dsp.callerid.messages import (
    Absence,
    CallSetup,
    ChecksumError,
    DateTime,
    FormatError,
    FramingError,
    LengthError,
    MessageWaiting,
    SdmfCallerId,
    SdmfVmwi,
    encode_message,
)
from firmware.dsp.levels import power_dbm0, rms_for_dbm0
from firmware.dsp.pcm import SAMPLE_RATE, to_pcm

CALL = CallSetup(
    date_time=DateTime(11, 25, 18, 30),
    number="0612345678",
    name="PONTE TEST",
    redirecting_number="0201112222",
)
STANDARDS = ("bell202", "v23")


def padded(burst: np.ndarray, before: int = 1200, after: int = 800) -> np.ndarray:
    return np.concatenate([np.zeros(before), burst.astype(np.float64), np.zeros(after)])


def test_bits_are_8n1_lsb_first():
    assert fsk.frame_bits(b"\x01\x80") == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1] + [0] + [0] * 7 + [1, 1]


@pytest.mark.parametrize("standard", STANDARDS)
def test_burst_length_and_level(standard):
    p = fsk.params_for(standard)
    data = encode_message(CALL)
    burst = fsk_modulate(data, standard=standard, level_dbm0=-13.5)
    bits = p.seizure_bits + p.mark_bits + 10 * len(data) + fsk.TRAILING_MARK_BITS
    assert len(burst) == pytest.approx(bits * SAMPLE_RATE / 1200, abs=1)
    assert power_dbm0(burst[100:-100]) == pytest.approx(-13.5, abs=0.1)


def _zero_crossing_hz(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    i = np.flatnonzero(np.signbit(x[:-1]) != np.signbit(x[1:]))
    t = i + x[i] / (x[i] - x[i + 1])  # interpolated crossing instants
    return float((len(t) - 1) / 2 / ((t[-1] - t[0]) / SAMPLE_RATE))


@pytest.mark.parametrize("standard", STANDARDS)
def test_tones_are_the_standard_ones(standard):
    p = fsk.params_for(standard)
    marks = fsk_modulate(b"", standard=standard, seizure_bits=0, mark_bits=120)
    assert _zero_crossing_hz(marks[50:-50]) == pytest.approx(p.mark_hz, rel=0.002)
    # A zero byte is nine bits of space (start bit and eight zeros): 60 samples.
    space = fsk_modulate(b"\x00", standard=standard, seizure_bits=0, mark_bits=0)
    assert _zero_crossing_hz(space[10:55]) == pytest.approx(p.space_hz, rel=0.01)


@pytest.mark.parametrize("standard", STANDARDS)
@pytest.mark.parametrize(
    "msg",
    [
        CALL,
        SdmfCallerId(DateTime(1, 2, 3, 4), number="5551212"),
        CallSetup(number_absence=Absence.PRIVATE, name_absence=Absence.PRIVATE),
        MessageWaiting(active=True, message_count=2),
        MessageWaiting(active=False),
        SdmfVmwi(True),
    ],
)
def test_clean_bursts_decode(standard, msg):
    burst = fsk.modulate_message(msg, standard=standard)
    assert decode_callerid(padded(burst), standard) == [msg]


@pytest.mark.parametrize("standard", STANDARDS)
def test_type_ii_burst_without_seizure_decodes(standard):
    burst = fsk.modulate_message(CALL, standard=standard, call_waiting=True)
    p = fsk.params_for(standard)
    assert len(burst) < (p.mark_bits + 10 * len(encode_message(CALL)) + 4) * SAMPLE_RATE / 1200
    assert decode_callerid(padded(burst), standard) == [CALL]


def _noisy(burst: np.ndarray, level: float, snr_db: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sig = padded(burst)
    return to_pcm(sig + rng.normal(0.0, rms_for_dbm0(level - snr_db), len(sig)))


@pytest.mark.parametrize("standard", STANDARDS)
@pytest.mark.parametrize("level", [-40.0, -25.0, -5.0])
@pytest.mark.parametrize("offset", [-0.01, 0.01])
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_robust_across_levels_noise_offset_and_g711(standard, level, offset, law):
    data = encode_message(CALL)
    decoded = 0
    for seed in range(3):
        burst = fsk_modulate(
            data, standard=standard, level_dbm0=level, freq_offset=offset, baud_offset=offset
        )
        line = _noisy(burst, level, 20.0, seed)
        line = g711.ulaw_round_trip(line) if law == "ulaw" else g711.alaw_round_trip(line)
        decoded += decode_callerid(line, standard) == [CALL]
    assert decoded == 3


def test_wrong_standard_decodes_nothing_it_should_not():
    burst = fsk.modulate_message(CALL, standard="v23")
    # V.23 tones are close enough for a Bell receiver to read (multimon-ng does the same);
    # what matters is that nothing wrong is reported as a message.
    for result in decode_callerid(padded(burst), "bell202"):
        assert result == CALL


@pytest.mark.parametrize("standard", STANDARDS)
def test_noise_and_silence_alone_produce_nothing(standard):
    rng = np.random.default_rng(7)
    assert decode_callerid(np.zeros(SAMPLE_RATE), standard) == []
    assert decode_callerid(to_pcm(rng.normal(0, 3000, 5 * SAMPLE_RATE)), standard) == []


def test_flipped_bit_is_reported_as_bad_checksum():
    data = bytearray(encode_message(CALL))
    data[10] ^= 0x01
    burst = fsk_modulate(bytes(data))
    results = decode_callerid(padded(burst), "bell202")
    assert len(results) == 1
    assert isinstance(results[0], ChecksumError)
    assert results[0].data == bytes(data)


def test_burst_cut_short_is_a_framing_error_with_the_bytes_so_far():
    data = encode_message(CALL)
    burst = fsk_modulate(data)
    cut = burst[: len(burst) - 200]  # about the last 3 bytes are lost
    results = decode_callerid(padded(cut, after=4000), "bell202")
    assert len(results) == 1
    assert isinstance(results[0], FramingError)
    assert data.startswith(results[0].data) and len(results[0].data) >= len(data) - 4


def test_two_bursts_in_a_row():
    first = fsk.modulate_message(CALL)
    second = fsk.modulate_message(MessageWaiting(active=True))
    line = np.concatenate([padded(first), padded(second)])
    assert decode_callerid(line, "bell202") == [CALL, MessageWaiting(active=True)]


def test_wideband_rate():
    burst = fsk.modulate_message(CALL, standard="v23", rate=16000)
    assert decode_callerid(padded(burst), "v23", rate=16000) == [CALL]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=40))
def test_frame_boundaries_do_not_matter(sizes):
    line = padded(fsk.modulate_message(CALL))
    demod = FskDemodulator("bell202")
    out = []
    i = 0
    k = 0
    while i < len(line):
        n = sizes[k % len(sizes)]
        out += demod.feed(line[i : i + n])
        i += n
        k += 1
    out += demod.flush()
    assert out == [CALL]


def test_one_sample_at_a_time():
    line = padded(fsk.modulate_message(SdmfVmwi(False), standard="v23"), before=10, after=10)
    demod = FskDemodulator("v23")
    out = []
    for sample in line:
        out += demod.feed(np.array([sample]))
    assert out + demod.flush() == [SdmfVmwi(False)]


def test_reset_forgets_a_half_received_message():
    line = padded(fsk.modulate_message(CALL))
    demod = FskDemodulator()
    half = len(line) // 2 + 1000
    demod.feed(line[:half])
    demod.reset()
    assert demod.feed(line[half:]) + demod.flush() == []
    assert demod.feed(line) + demod.flush() == [CALL]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown FSK standard"):
        FskDemodulator("v21")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one-dimensional"):
        FskDemodulator().feed(np.zeros((2, 80)))
    with pytest.raises(ValueError, match="rate"):
        fsk_modulate(b"x", rate=4000)
    with pytest.raises(ValueError, match=">= 0"):
        fsk_modulate(b"x", mark_bits=-1)
    assert FskDemodulator().feed(np.zeros(0)) == []


def test_long_garbage_keeps_memory_bounded():
    rng = np.random.default_rng(3)
    demod = FskDemodulator()
    bits = rng.integers(0, 2, 6000)
    # Alternating and random FSK with no valid message: the UART must neither grow nor hang.
    line = fsk_modulate(np.packbits(bits).tobytes(), seizure_bits=3000, mark_bits=20)
    for i in range(0, len(line), 160):
        for result in demod.feed(line[i : i + 160]):
            assert not isinstance(result, CallSetup)
    assert demod._len <= fsk.BUFFER_CAP_SAMPLES


def test_a_whole_recording_in_one_call():
    line = np.concatenate([padded(fsk.modulate_message(CALL))] * 3 + [np.zeros(5 * SAMPLE_RATE)])
    demod = FskDemodulator()
    assert demod.feed(line) + demod.flush() == [CALL] * 3


@pytest.mark.parametrize("seizure", [fsk.BT_SEIZURE_BITS_MIN, fsk.BT_SEIZURE_BITS_MAX])
def test_bt_sin227_shortest_and_longest_preambles(seizure):
    data = encode_message(CALL)
    burst = fsk_modulate(data, standard="v23", seizure_bits=seizure, mark_bits=fsk.BT_MARK_BITS_MIN)
    assert decode_callerid(padded(burst), "v23") == [CALL]


def test_non_finite_samples_are_refused():
    demod = FskDemodulator()
    with pytest.raises(ValueError, match="NaN or infinite"):
        demod.feed(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        demod.feed(np.array([np.inf] * 160))


messages = st.builds(
    CallSetup,
    date_time=st.builds(
        DateTime, st.integers(1, 12), st.integers(1, 31), st.integers(0, 23), st.integers(0, 59)
    ),
    number=st.text(alphabet="0123456789", min_size=1, max_size=20),
    name=st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=50
    ),
)


@settings(max_examples=25, deadline=None)
@given(
    messages,
    st.sampled_from(STANDARDS),
    st.floats(-40, -5),
    st.floats(-0.01, 0.01),
    st.integers(0, 2**32 - 1),
)
def test_any_message_survives_any_allowed_line(msg, standard, level, offset, seed):
    burst = fsk_modulate(
        encode_message(msg),
        standard=standard,
        level_dbm0=level,
        freq_offset=offset,
        baud_offset=offset,
    )
    line = g711.ulaw_round_trip(_noisy(burst, level, 20.0, seed))
    assert decode_callerid(line, standard) == [msg]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_lost_frames_never_yield_a_wrong_message(seed):
    rng = np.random.default_rng(seed)
    line = padded(fsk.modulate_message(CALL))
    frames = [line[i : i + 160] for i in range(0, len(line), 160)]
    kept = [f for f in frames if rng.random() > 0.05]  # lose about one frame in twenty
    demod = FskDemodulator()
    results = []
    for f in kept:
        results += demod.feed(f)
    results += demod.flush()
    for r in results:
        assert r == CALL or isinstance(r, (ChecksumError, FramingError, LengthError, FormatError))
    if len(kept) == len(frames):
        assert results == [CALL]


@pytest.mark.parametrize("standard", STANDARDS)
@pytest.mark.parametrize("gap", [1, fsk.ETSI_MAX_GAP_BITS, fsk.MAX_GAP_BITS])
def test_marks_between_bytes_are_tolerated(standard, gap):
    burst = fsk_modulate(encode_message(CALL), standard=standard, gap_bits=gap)
    assert decode_callerid(padded(burst), standard) == [CALL]


def test_stalled_message_is_a_framing_error():
    data = encode_message(CALL)
    head = fsk_modulate(data[:10], mark_bits=180)
    tail = fsk_modulate(data[10:], seizure_bits=0, mark_bits=0)
    stall = fsk_modulate(b"", seizure_bits=0, mark_bits=fsk.MAX_GAP_BITS + 20)
    results = decode_callerid(padded(np.concatenate([head, stall, tail])), "bell202")
    assert isinstance(results[0], FramingError)
    assert results[0].data == data[:10]
    assert "no start bit within" in results[0].reason
