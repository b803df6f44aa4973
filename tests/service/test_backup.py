"""Sealed backups: round trip, wrong passphrase, tampering, hostile envelopes."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.service import backup

FAST = 4  # log2 N for tests: the real cost is exercised by the API tests


def test_round_trip_and_detection() -> None:
    text = '[system]\ncountry = "GB"\n'
    sealed = backup.seal(text, "a long passphrase", log2_n=FAST)
    assert backup.is_sealed(sealed) and not backup.is_sealed(text)
    assert "country" not in sealed
    assert backup.unseal(sealed, "a long passphrase") == text


def test_two_seals_differ() -> None:
    a = backup.seal("x", "a long passphrase", log2_n=FAST)
    b = backup.seal("x", "a long passphrase", log2_n=FAST)
    assert json.loads(a)["ciphertext"] != json.loads(b)["ciphertext"]


def test_wrong_or_missing_passphrase() -> None:
    sealed = backup.seal("x", "a long passphrase", log2_n=FAST)
    with pytest.raises(backup.BackupError, match="wrong passphrase"):
        backup.unseal(sealed, "another passphrase")
    with pytest.raises(backup.BackupError, match="encrypted: give its passphrase"):
        backup.unseal(sealed, None)
    with pytest.raises(backup.BackupError, match="at least 8"):
        backup.seal("x", "short")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda e: e["kdf"].__setitem__("log2_n", 5),
            "wrong passphrase, or the backup was altered",
        ),
        (lambda e: e["kdf"].__setitem__("log2_n", 40), "out of range"),
        (lambda e: e["kdf"].__setitem__("r", "8"), "integers"),
        (lambda e: e.__setitem__("version", 2), "version 2 is not supported"),
        (lambda e: e.__setitem__("cipher", "ROT13"), "unknown cipher"),
        (lambda e: e.__setitem__("nonce", "!!"), "nonce is not base64"),
        (lambda e: e.__setitem__("nonce", base64.b64encode(b"123").decode()), "12 bytes"),
        (lambda e: e.pop("ciphertext"), "ciphertext is missing"),
        (lambda e: e.__setitem__("format", "other"), "not a Ponte backup"),
    ],
)
def test_tampered_envelopes_are_refused_with_a_reason(change: object, message: str) -> None:
    envelope = json.loads(backup.seal("x", "a long passphrase", log2_n=FAST))
    change(envelope)  # type: ignore[operator]
    with pytest.raises(backup.BackupError, match=message):
        backup.unseal(json.dumps(envelope), "a long passphrase")


def test_flipped_ciphertext_bit_is_refused() -> None:
    envelope = json.loads(backup.seal("hello", "a long passphrase", log2_n=FAST))
    raw = bytearray(base64.b64decode(envelope["ciphertext"]))
    raw[0] ^= 1
    envelope["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(backup.BackupError, match="altered"):
        backup.unseal(json.dumps(envelope), "a long passphrase")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_garbage_never_crashes(text: str) -> None:
    try:
        backup.unseal(text, "a long passphrase")
    except backup.BackupError:
        pass
