"""G.711 against implementations nobody here wrote: CPython's audioop and sox."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import numpy as np
import pytest

from firmware.dsp import g711

EVERY_SAMPLE = np.arange(-32768, 32768, dtype=np.int16)
EVERY_CODE = np.arange(256, dtype=np.uint8)


def sox(args_in: list[str], args_out: list[str], data: bytes) -> bytes:
    if shutil.which("sox") is None:
        pytest.fail("sox is missing: make test installs it from .ci/apt-packages")
    proc = subprocess.run(
        ["sox", *args_in, "-", *args_out, "-"], input=data, capture_output=True, check=True
    )
    return proc.stdout


RAW16 = ["-t", "raw", "-r", "8000", "-c", "1", "-e", "signed-integer", "-b", "16", "-L"]


@pytest.mark.parametrize(
    ("law", "encode"), [("ulaw", g711.ulaw_encode), ("alaw", g711.alaw_encode)]
)
def test_encoder_is_bit_exact_with_the_reference_for_every_sample(law, encode):
    # audioop carries the CCITT/Sun reference encoder that pjmedia uses too.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    lin2law = audioop.lin2ulaw if law == "ulaw" else audioop.lin2alaw
    theirs = np.frombuffer(lin2law(EVERY_SAMPLE.astype("<i2").tobytes(), 2), np.uint8)
    mismatched = np.flatnonzero(encode(EVERY_SAMPLE) != theirs)
    assert mismatched.size == 0, f"first mismatch at sample {EVERY_SAMPLE[mismatched[0]]}"


@pytest.mark.parametrize(
    ("encoding", "encode"), [("u-law", g711.ulaw_encode), ("a-law", g711.alaw_encode)]
)
def test_encoder_agrees_with_sox_within_one_step(encoding, encode):
    # sox rounds to 14/13 bits where the reference truncates: codes may differ by one
    # quantisation step at segment edges, never more.
    law8 = ["-t", "raw", "-r", "8000", "-c", "1", "-e", encoding, "-b", "8"]
    raw = EVERY_SAMPLE.astype("<i2").tobytes()
    theirs = np.frombuffer(sox(["-D", *RAW16], law8, raw), np.uint8)
    decode = g711.ulaw_decode if encoding == "u-law" else g711.alaw_decode
    ours_lin = decode(encode(EVERY_SAMPLE)).astype(np.int32)
    theirs_lin = decode(theirs).astype(np.int32)
    step = np.maximum(np.abs(ours_lin) // 8, 16)
    assert np.all(np.abs(ours_lin - theirs_lin) <= step)


@pytest.mark.parametrize(
    ("encoding", "decode"), [("u-law", g711.ulaw_decode), ("a-law", g711.alaw_decode)]
)
def test_decoder_matches_sox_for_every_code(encoding, decode):
    law8 = ["-t", "raw", "-r", "8000", "-c", "1", "-e", encoding, "-b", "8"]
    theirs = np.frombuffer(sox(law8, RAW16, EVERY_CODE.tobytes()), "<i2")
    np.testing.assert_array_equal(decode(EVERY_CODE), theirs)


@pytest.mark.parametrize("round_trip", [g711.ulaw_round_trip, g711.alaw_round_trip])
def test_round_trip_is_idempotent_and_close(round_trip):
    once = round_trip(EVERY_SAMPLE)
    np.testing.assert_array_equal(round_trip(once), once)
    # Segment quantisation: error below 1/16 of the magnitude plus the smallest step.
    err = np.abs(once.astype(np.int32) - EVERY_SAMPLE.astype(np.int32))
    assert np.all(err <= np.abs(EVERY_SAMPLE.astype(np.int32)) // 16 + 128)
