"""Codec: every message round-trips, frames survive byte-at-a-time and garbage."""

from __future__ import annotations

import pytest

from drivers.linecard import protocol as p
from tests.linecard.samples import SAMPLES


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_message_round_trip(message: p.Message) -> None:
    payload = message.to_bytes()
    assert len(payload) <= p.MAX_PAYLOAD
    assert type(message).from_bytes(payload) == message
    assert p.decode_message(message.TYPE, payload) == message


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_frame_round_trip_one_byte_at_a_time(message: p.Message) -> None:
    seq = 200 if type(message).sequenced() else 0
    wire = p.encode(message, seq=seq, ack=17)
    assert wire.count(0) == 2  # COBS leaves only the two delimiters
    decoder = p.FrameDecoder()
    out: list[p.Frame | p.FrameError] = []
    for i in range(len(wire)):
        out += decoder.feed(wire[i : i + 1])
    assert len(out) == 1
    frame = out[0]
    assert isinstance(frame, p.Frame)
    assert (frame.seq, frame.ack, frame.type) == (seq, 17, message.TYPE)
    assert frame.message() == message
    assert decoder.buffered == 0


def test_crc_is_genibus() -> None:
    assert p.crc16(b"123456789") == p.CRC_CHECK_VALUE == 0xD64E


def test_frame_gaining_a_trailing_zero_fails_crc() -> None:
    # A bit flip turning the closing delimiter into 0x01 appends a zero to the frame;
    # with a zero-residue CRC (CCITT-FALSE) that frame would still check.
    wire = bytearray(p.encode(p.HookChange(1, True, 5), seq=1))
    wire[-1] = 0x01
    (result,) = p.FrameDecoder().feed(bytes(wire) + b"\x00")
    assert isinstance(result, p.FrameError) and "CRC" in str(result)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"\x00\x00", b"\x11\x00\x22", bytes(range(1, 255)), bytes(600), b"\xff" * 700],
)
def test_cobs_round_trip(data: bytes) -> None:
    encoded = p.cobs_encode(data)
    assert 0 not in encoded
    assert p.cobs_decode(encoded) == data


def test_garbage_between_frames_is_reported_and_skipped() -> None:
    a, b = SAMPLES[6], SAMPLES[17]
    stream = b"\x07\x00junk\x01\x02" + p.encode(a, seq=1) + b"\xff" * 10 + p.encode(b, seq=2)
    results = p.FrameDecoder().feed(stream)
    frames = [r for r in results if isinstance(r, p.Frame)]
    errors = [r for r in results if isinstance(r, p.FrameError)]
    assert [f.message() for f in frames] == [a, b]
    assert len(errors) == 3  # "\x07", "junk\x01\x02" and the 0xff run glued to frame b's head
    assert all(str(e) for e in errors)


def test_corrupted_byte_fails_crc_and_next_frame_survives() -> None:
    good = p.encode(SAMPLES[17], seq=3)
    bad = bytearray(p.encode(SAMPLES[18], seq=4))
    bad[5] ^= 0x40
    results = p.FrameDecoder().feed(bytes(bad) + good)
    assert isinstance(results[0], p.FrameError)
    assert isinstance(results[1], p.Frame) and results[1].message() == SAMPLES[17]


def test_overlong_run_is_capped_and_resynchronises() -> None:
    decoder = p.FrameDecoder()
    results = decoder.feed(b"\x01" * 10_000)
    assert len(results) == 1 and isinstance(results[0], p.FrameError)
    assert "delimiter" in str(results[0])
    assert decoder.buffered == 0
    more = decoder.feed(b"\x02" * 10_000 + p.encode(SAMPLES[4]))
    assert decoder.buffered <= p.MAX_ENCODED_FRAME
    assert isinstance(more[-1], p.Frame) and more[-1].message() == SAMPLES[4]


def test_unknown_type_and_bad_payloads_raise_message_error() -> None:
    with pytest.raises(p.MessageError, match="unknown message type 0x7f"):
        p.decode_message(0x7F, b"")
    with pytest.raises(p.MessageError, match="HookChange: payload is 2 bytes"):
        p.decode_message(p.HookChange.TYPE, b"\x01\x01")
    with pytest.raises(p.MessageError, match="port=0"):
        p.decode_message(p.StopRing.TYPE, b"\x00")
    with pytest.raises(p.MessageError, match="is not a Polarity"):
        p.decode_message(p.SetPolarity.TYPE, b"\x01\x07")
    with pytest.raises(p.MessageError, match="announces 3 ports but carries 1"):
        p.HelloAck.from_bytes(_hello_ack(3, 1))
    with pytest.raises(p.MessageError, match="cadence"):
        p.decode_message(p.Ring.TYPE, b"\x01\x14\x00")
    with pytest.raises(p.MessageError, match="not one of"):
        p.decode_message(p.Digit.TYPE, b"\x01X\x00\x10\x00\x00\x00\x00")


def _hello_ack(announced: int, carried: int) -> bytes:
    head = p.HelloAck(1, 1, 1, (1, 0, 0), p.Capability.NONE, (p.PortKind.FXS,)).to_bytes()
    return head[:-2] + bytes([announced]) + b"\x01" * carried


def test_construction_is_validated() -> None:
    with pytest.raises(p.InvalidMessage, match="port=33"):
        p.StopRing(33)
    with pytest.raises(p.InvalidMessage, match="must be a bool"):
        p.HookChange(1, 1, 0)  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(p.InvalidMessage, match="frequency_hz"):
        p.Ring(1, ((1000, 1000),), 200)
    with pytest.raises(p.InvalidMessage, match="segments"):
        p.Ring(1, ())
    with pytest.raises(p.InvalidMessage, match="country"):
        p.SetLineParams.country_code("U1")
    with pytest.raises(p.InvalidMessage, match="tx_gain_cdb"):
        p.SetLineParams(1, 0x5553, p.Impedance.R600, 5000)
    with pytest.raises(p.InvalidMessage, match="must be a Polarity"):
        p.SetPolarity(1, 1)  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(p.LocalProtocolError, match="seq 0"):
        p.Frame(5, 0, p.Ack.TYPE)
    with pytest.raises(p.LocalProtocolError, match="limit"):
        p.Frame(1, 0, 0x40, bytes(p.MAX_PAYLOAD + 1))


def test_link_control_with_sequence_number_is_a_frame_error() -> None:
    body = bytes((9, 0, p.Ack.TYPE))
    raw = body + p.crc16(body).to_bytes(2, "big")
    (result,) = p.FrameDecoder().feed(b"\x00" + p.cobs_encode(raw) + b"\x00")
    assert isinstance(result, p.FrameError) and "seq 9" in str(result)
