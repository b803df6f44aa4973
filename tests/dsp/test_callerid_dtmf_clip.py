from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.dsp import dtmf
from firmware.dsp.callerid.dtmf_clip import (
    FORMAT_A_C,
    FORMAT_A_HASH,
    FORMAT_D_C,
    FORMAT_D_HASH,
    FORMAT_HASH,
    FORMATS,
    DtmfClip,
    DtmfClipError,
)
from firmware.dsp.callerid.messages import Absence, InvalidMessage
from firmware.dsp.profiles import DTMF_CID_FORMATS


def test_every_profile_format_is_supported():
    assert set(DTMF_CID_FORMATS) <= set(FORMATS)


@pytest.mark.parametrize(
    ("clip", "digits"),
    [
        (DtmfClip(FORMAT_A_C, number="0812345678"), "A0812345678C"),
        (DtmfClip(FORMAT_A_C, number="0812345", redirecting_number="031234"), "A0812345D031234C"),
        (DtmfClip.withheld(FORMAT_A_C, Absence.PRIVATE), "B10C"),
        (DtmfClip.withheld(FORMAT_A_C, Absence.UNAVAILABLE), "B00C"),
        (DtmfClip(FORMAT_A_C, redirecting_number="123", info_code="10"), "D123B10C"),
        (DtmfClip(FORMAT_A_HASH, number="33123456"), "A33123456#"),
        (DtmfClip.withheld(FORMAT_A_HASH, Absence.PRIVATE), "D1#"),
        (DtmfClip.withheld(FORMAT_A_HASH, Absence.UNAVAILABLE), "D3#"),
        (DtmfClip(FORMAT_D_C, number="0223456789"), "D0223456789C"),
        (DtmfClip(FORMAT_D_HASH, number="965123"), "D965123#"),
        (DtmfClip(FORMAT_HASH, number="33123456"), "33123456#"),
    ],
)
def test_digit_strings_of_each_variant(clip, digits):
    assert clip.to_digits() == digits
    assert DtmfClip.from_digits(digits, clip.format) == clip


def test_absence_reasons_are_read_back():
    assert DtmfClip.from_digits("B10C", FORMAT_A_C).absence is Absence.PRIVATE
    assert DtmfClip.from_digits("B00C", FORMAT_A_C).absence is Absence.UNAVAILABLE
    international = DtmfClip.from_digits("D2#", FORMAT_A_HASH)
    assert international.absence is Absence.UNAVAILABLE
    assert international.info_code == "2"  # the exact code is kept
    assert DtmfClip.from_digits("A1234C", FORMAT_A_C).absence is None
    assert DtmfClip(FORMAT_A_C, number="1", info_code="42").absence is None


@pytest.mark.parametrize(
    ("digits", "fmt", "fragment"),
    [
        ("A123", FORMAT_A_C, "must end with 'C'"),
        ("A123C", FORMAT_A_HASH, "must end with '#'"),
        ("123C", FORMAT_A_C, "must start with"),
        ("D12A3C", FORMAT_A_C, "out of order"),
        ("A1A2C", FORMAT_A_C, "out of order"),
        ("AC", FORMAT_A_C, "1..20 digits"),
        ("A12*4C", FORMAT_A_C, "digits 0-9"),
        ("B1C", FORMAT_A_C, "2 digits"),
        ("C", FORMAT_A_C, "needs a number"),
        ("X12#", FORMAT_A_HASH, "must start with 'A' or 'D'"),
        ("D12#", FORMAT_A_HASH, "1..1 digits"),
        ("A12C", FORMAT_D_C, "must start with 'D'"),
        ("#", FORMAT_HASH, "1..20 digits"),
        ("1" * 70 + "#", FORMAT_HASH, "longer than any"),
    ],
)
def test_malformed_strings_name_the_fault(digits, fmt, fragment):
    with pytest.raises(DtmfClipError, match=fragment) as info:
        DtmfClip.from_digits(digits, fmt)
    assert info.value.data == digits.encode()


@pytest.mark.parametrize(
    "build",
    [
        lambda: DtmfClip("A...X", number="1"),
        lambda: DtmfClip(FORMAT_A_HASH, number="1", info_code="1"),
        lambda: DtmfClip(FORMAT_A_HASH, number="1", redirecting_number="2"),
        lambda: DtmfClip(FORMAT_D_C),
        lambda: DtmfClip(FORMAT_HASH, number="12", info_code="1"),
        lambda: DtmfClip(FORMAT_A_C, number="\uff11\uff12"),
        lambda: DtmfClip.withheld(FORMAT_D_C, Absence.PRIVATE),
    ],
)
def test_invalid_clips_cannot_be_built(build):
    with pytest.raises(InvalidMessage):
        build()


numbers = st.text(alphabet="0123456789", min_size=1, max_size=20)


@given(st.sampled_from(FORMATS), numbers, st.none() | numbers)
def test_round_trip(fmt, number, redirect):
    clip = DtmfClip(fmt, number=number, redirecting_number=redirect if fmt == FORMAT_A_C else None)
    assert DtmfClip.from_digits(clip.to_digits(), fmt) == clip


@given(st.text(alphabet="0123456789ABCD*#", max_size=80), st.sampled_from(FORMATS))
def test_garbage_only_raises_dtmf_clip_errors(digits, fmt):
    try:
        clip = DtmfClip.from_digits(digits, fmt)
    except DtmfClipError as exc:
        assert exc.reason
    else:
        assert clip.to_digits() == digits


# --- signal layer -----------------------------------------------------------------------------

import numpy as np  # noqa: E402

from firmware.dsp import g711  # noqa: E402
from firmware.dsp.callerid.dtmf_clip import DtmfClipDecoder, dtmf_clip_signal  # noqa: E402
from firmware.dsp.levels import rms_for_dbm0  # noqa: E402
from firmware.dsp.pcm import FRAME_SAMPLES, SAMPLE_RATE, to_pcm  # noqa: E402

CLIPS = [
    DtmfClip(FORMAT_A_C, number="0812345678", redirecting_number="046123456"),
    DtmfClip.withheld(FORMAT_A_C, Absence.PRIVATE),
    DtmfClip(FORMAT_A_HASH, number="33123456"),
    DtmfClip.withheld(FORMAT_A_HASH, Absence.UNAVAILABLE),
    DtmfClip(FORMAT_D_C, number="0223456789"),
    DtmfClip(FORMAT_D_HASH, number="965123"),
    DtmfClip(FORMAT_HASH, number="33123456"),
]


def receive(fmt: str, line: np.ndarray, frame: int = FRAME_SAMPLES) -> list[object]:
    decoder = DtmfClipDecoder(fmt)
    out: list[object] = []
    for i in range(0, len(line), frame):
        out += decoder.feed(line[i : i + frame])
    return out + decoder.flush()


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c.to_digits())
@pytest.mark.parametrize("level", [-30.0, -6.0])
def test_signal_round_trip_through_noise_and_g711(clip, level):
    rng = np.random.default_rng(len(clip.to_digits()))
    pcm = dtmf_clip_signal(clip, level_dbm0=level).astype(float)
    line = np.concatenate([np.zeros(1000), pcm, np.zeros(1000)])
    line += rng.normal(0, rms_for_dbm0(level - 20), len(line))
    assert receive(clip.format, g711.alaw_round_trip(to_pcm(line))) == [clip]


def test_signal_timing_is_70_on_70_off():
    clip = DtmfClip(FORMAT_A_C, number="123")
    assert len(dtmf_clip_signal(clip)) == 5 * 140 * SAMPLE_RATE // 1000


def test_digits_before_the_start_digit_are_ignored_and_a_cut_string_times_out():
    noise_digits = dtmf_clip_signal(DtmfClip(FORMAT_HASH, number="99"))
    clip = DtmfClip(FORMAT_A_C, number="0812345")
    full = dtmf_clip_signal(clip)
    cut = full[: len(full) - 2 * 140 * 8]  # the last digit and the 'C' never come
    line = np.concatenate([noise_digits, np.zeros(4000), full, np.zeros(4000), cut])
    out = receive(FORMAT_A_C, line)
    assert out[0] == clip
    assert isinstance(out[1], DtmfClipError)
    assert "no end digit" in out[1].reason and out[1].data == b"A081234"
    assert len(out) == 2


def test_wrong_content_is_an_error_not_a_clip():
    line = dtmf.generate_dtmf("A12D34A5C")
    out = receive(FORMAT_A_C, line)
    assert len(out) == 1 and isinstance(out[0], DtmfClipError)


def test_frame_size_does_not_matter_for_dtmf_clip():
    clip = CLIPS[0]
    line = np.concatenate([np.zeros(333), dtmf_clip_signal(clip)])
    for frame in (80, 160, 441):
        assert receive(clip.format, line, frame) == [clip]


def test_decoder_refuses_unknown_format():
    with pytest.raises(ValueError, match="unknown DTMF caller ID format"):
        DtmfClipDecoder("B...C")


def test_generate_dtmf_clip_shortcut_matches_the_model():
    from firmware.dsp.callerid.dtmf_clip import generate_dtmf_clip

    pcm = generate_dtmf_clip("33123456", variant=FORMAT_A_HASH)
    assert np.array_equal(pcm, dtmf_clip_signal(DtmfClip(FORMAT_A_HASH, number="33123456")))
    assert receive(FORMAT_A_HASH, pcm) == [DtmfClip(FORMAT_A_HASH, number="33123456")]
