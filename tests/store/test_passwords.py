"""Admin password hashes: what the console writes is what validation accepts."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.store import checks
from firmware.store.passwords import hash_password, verify_password


def test_hash_verifies_and_is_accepted_by_the_schema() -> None:
    stored = hash_password("correct horse")
    assert checks.password_hash_or_empty(stored) is None
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored)
    assert not verify_password("", stored)
    assert hash_password("correct horse") != stored  # fresh salt each time


def test_matches_hashlib_scrypt_directly() -> None:
    salt = bytes(range(16))
    stored = hash_password("pw", salt=salt)
    digest = hashlib.scrypt(b"pw", salt=salt, n=1 << 14, r=8, p=1, dklen=32)
    assert stored.endswith("$" + base64.b64encode(digest).decode())


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "scrypt$14$8$1$AAAA",
        "scrypt$30$8$1$AAAA$AAAA",
        "scrypt$14$8$1$!!!$AAAA",
        "md5$1$2$3$4$5",
    ],
)
def test_malformed_hashes_never_match(stored: str) -> None:
    assert not verify_password("anything", stored)


def test_empty_and_huge_passwords_are_refused() -> None:
    with pytest.raises(ValueError):
        hash_password("")
    with pytest.raises(ValueError):
        hash_password("x" * 2000)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=80))
def test_random_stored_strings_never_raise(stored: str) -> None:
    assert verify_password("pw", stored) in (True, False)
