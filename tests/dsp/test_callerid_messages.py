from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.dsp.callerid import messages as m
from firmware.dsp.callerid.messages import (
    Absence,
    CallerIdError,
    CallSetup,
    ChecksumError,
    DateTime,
    FormatError,
    InvalidMessage,
    LengthError,
    MessageWaiting,
    Parameter,
    SdmfCallerId,
    SdmfVmwi,
    UnknownMessage,
    decode_message,
    encode_message,
)

# The SDMF example every caller ID note quotes (Sep 30 12:24, 609-555-1212), checksum 0x51.
PUBLISHED_SDMF = bytes.fromhex("04123039333031323234363039353535313231325" + "1")


def test_published_sdmf_example_decodes_and_reencodes_identically():
    msg = decode_message(PUBLISHED_SDMF)
    assert msg == SdmfCallerId(DateTime(9, 30, 12, 24), number="6095551212")
    assert encode_message(msg) == PUBLISHED_SDMF


def test_mdmf_layout_is_type_length_parameters_checksum():
    msg = CallSetup(date_time=DateTime(3, 14, 15, 9), number="5551234567", name="JOHN DOE")
    data = encode_message(msg)
    assert data[0] == 0x80
    assert data[1] == len(data) - 3
    assert data[2:12] == b"\x01\x0803141509"
    assert data[12:24] == b"\x02\x0a5551234567"
    assert data[24:34] == b"\x07\x08JOHN DOE"
    assert sum(data) % 256 == 0


def test_absence_reasons_private_and_unavailable():
    msg = CallSetup(
        date_time=DateTime(1, 1, 0, 0),
        number_absence=Absence.PRIVATE,
        name_absence=Absence.UNAVAILABLE,
    )
    data = encode_message(msg)
    assert b"\x04\x01P" in data and b"\x08\x01O" in data
    assert decode_message(data) == msg
    sdmf = SdmfCallerId(DateTime(12, 31, 23, 59), absence=Absence.UNAVAILABLE)
    assert encode_message(sdmf)[2:-1] == b"12312359O"
    assert decode_message(encode_message(sdmf)) == sdmf


def test_redirecting_number_uses_etsi_type_0x1a():
    msg = CallSetup(number="0612345678", redirecting_number="0201234567", call_type=1)
    data = encode_message(msg)
    assert b"\x1a\x0a0201234567" in data
    assert b"\x11\x01\x01" in data
    assert decode_message(data) == msg


@pytest.mark.parametrize("active", [True, False])
def test_vmwi_both_formats(active):
    mdmf = MessageWaiting(active=active, message_count=3 if active else 0)
    data = encode_message(mdmf)
    assert data[0] == 0x82
    assert data[2:5] == bytes((0x0B, 1, 0xFF if active else 0x00))
    assert decode_message(data) == mdmf
    sdmf = encode_message(SdmfVmwi(active))
    assert sdmf[:2] == b"\x06\x03"
    assert sdmf[2:5] == (b"BBB" if active else b"ooo")
    assert decode_message(sdmf) == SdmfVmwi(active)


def test_unknown_parameters_and_messages_are_kept_not_dropped():
    extra = (Parameter(0xE0, b"\x01\x02"), Parameter(0x16, b"\x04"))
    msg = CallSetup(number="123", extra=extra)
    assert decode_message(encode_message(msg)) == msg
    aoc = UnknownMessage(0x86, b"\x20\x03abc")
    assert decode_message(encode_message(aoc)) == aoc


def test_bad_checksum_is_rejected_with_the_reason_and_the_bytes():
    data = bytearray(PUBLISHED_SDMF)
    data[-1] ^= 0x01
    with pytest.raises(ChecksumError) as info:
        decode_message(bytes(data))
    assert "checksum" in info.value.reason
    assert "0x50" in info.value.reason and "0x51" in info.value.reason
    assert info.value.data == bytes(data)


def test_corrupted_body_byte_fails_the_checksum():
    data = bytearray(PUBLISHED_SDMF)
    data[5] ^= 0x04
    with pytest.raises(ChecksumError):
        decode_message(bytes(data))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "cannot hold"),
        (b"\x80\x05", "cannot hold"),
        (PUBLISHED_SDMF[:-2], "length field says 18"),
        (PUBLISHED_SDMF + b"\x00", "length field says 18"),
    ],
)
def test_length_field_is_validated(data, fragment):
    with pytest.raises(LengthError, match=fragment):
        decode_message(data)


def _framed(mtype: int, body: bytes) -> bytes:
    head = bytes((mtype, len(body))) + body
    return head + bytes((m.checksum(head),))


@pytest.mark.parametrize(
    ("data", "error", "fragment"),
    [
        (_framed(0x80, b"\x02\x09123"), LengthError, "claims 9 bytes"),
        (_framed(0x80, b"\x02"), LengthError, "cut short"),
        (_framed(0x80, b""), FormatError, "no parameters"),
        (_framed(0x80, b"\x02\x0312a"), FormatError, "not a valid number"),
        (_framed(0x80, b"\x04\x01X"), FormatError, "neither 'P'"),
        (_framed(0x80, b"\x01\x0813320000"), FormatError, "month must be 1..12"),
        (_framed(0x80, b"\x01\x04 123"), FormatError, "8 ASCII digits"),
        (_framed(0x80, b"\x02\x011\x02\x012"), FormatError, "appears twice"),
        (_framed(0x82, b"\x0b\x01\x55"), FormatError, "neither 0xFF nor 0x00"),
        (_framed(0x82, b"\x13\x01\x02"), FormatError, "lacks the visual indicator"),
        (_framed(0x06, b"BBo"), FormatError, "neither 424242"),
        (_framed(0x04, b"0930"), LengthError, "cannot hold"),
    ],
)
def test_malformed_content_names_the_fault(data, error, fragment):
    with pytest.raises(error, match=fragment) as info:
        decode_message(data)
    assert info.value.data == data


@pytest.mark.parametrize(
    "build",
    [
        lambda: DateTime(0, 1, 0, 0),
        lambda: DateTime(1, 32, 0, 0),
        lambda: DateTime(1, 1, 24, 0),
        lambda: SdmfCallerId(DateTime(1, 1, 0, 0)),
        lambda: SdmfCallerId(DateTime(1, 1, 0, 0), number="1", absence=Absence.PRIVATE),
        lambda: CallSetup(),
        lambda: CallSetup(number="12", number_absence=Absence.PRIVATE),
        lambda: CallSetup(name="A", name_absence=Absence.PRIVATE),
        lambda: CallSetup(number="555-1212"),
        lambda: CallSetup(number="1" * 21),
        lambda: CallSetup(name="x" * 51),
        lambda: CallSetup(name="bell\x07"),
        lambda: CallSetup(name="日本"),
        lambda: CallSetup(number="1", extra=(Parameter(0x02, b"2"),)),
        lambda: MessageWaiting(active=True, message_count=256),
        lambda: Parameter(0x100, b""),
        lambda: Parameter(1, b"x" * 256),
        lambda: UnknownMessage(0x80, b""),
    ],
)
def test_invalid_messages_cannot_be_built(build):
    with pytest.raises(InvalidMessage):
        build()


def test_too_long_body_is_refused_on_encode():
    extra = tuple(Parameter(0xE0 + i, b"x" * 100) for i in range(3))
    with pytest.raises(InvalidMessage, match="255"):
        encode_message(CallSetup(number="1", extra=extra))


digits = st.text(alphabet="0123456789", min_size=1, max_size=20)
names = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=50
)
date_times = st.builds(
    DateTime,
    st.integers(1, 12),
    st.integers(1, 31),
    st.integers(0, 23),
    st.integers(0, 59),
)
absences = st.sampled_from(Absence)


@st.composite
def call_setups(draw: st.DrawFn) -> CallSetup:
    number = draw(st.none() | digits)
    name = draw(st.none() | names)
    msg = CallSetup(
        date_time=draw(st.none() | date_times),
        number=number,
        number_absence=draw(absences) if number is None else None,
        name=name,
        name_absence=draw(st.none() | absences) if name is None else None,
        redirecting_number=draw(st.none() | digits),
        called_number=draw(st.none() | digits),
    )
    return msg


@given(call_setups())
def test_call_setup_round_trips(msg):
    data = encode_message(msg)
    assert sum(data) % 256 == 0
    assert decode_message(data) == msg


@given(st.binary(max_size=300))
def test_garbage_only_ever_raises_caller_id_errors(data):
    try:
        decode_message(data)
    except CallerIdError as exc:
        assert exc.reason
        assert exc.data == data


@given(call_setups(), st.data())
def test_any_single_byte_corruption_is_detected(msg, data):
    raw = bytearray(encode_message(msg))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        decoded = decode_message(bytes(raw))
    except CallerIdError:
        return
    raise AssertionError(f"corrupted byte {i} decoded as {decoded}")


def test_every_message_class_writes_its_own_bytes():
    for msg in (
        decode_message(PUBLISHED_SDMF),
        SdmfVmwi(False),
        CallSetup(number="1"),
        MessageWaiting(active=True),
        UnknownMessage(0x89, b"hi"),
    ):
        assert msg.to_bytes() == encode_message(msg)
        assert decode_message(msg.to_bytes()) == msg
