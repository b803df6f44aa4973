"""Configuration backups, optionally sealed with a passphrase.

A sealed backup is a small versioned JSON envelope around the TOML export::

    {"format": "ponte-backup", "version": 1,
     "kdf": {"name": "scrypt", "log2_n": 15, "r": 8, "p": 1, "salt": "<b64>"},
     "cipher": "AES-256-GCM", "nonce": "<b64>", "ciphertext": "<b64>"}

The key is scrypt(passphrase) (RFC 7914); AES-256-GCM (NIST SP 800-38D) authenticates
the ciphertext *and* the envelope's header, so a wrong passphrase and a tampered file
are both refused, never decrypted into garbage.  Pure functions: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

FORMAT: Final = "ponte-backup"
VERSION: Final = 1
# scrypt N=2^15, r=8, p=1: the "interactive" cost of RFC 7914 §2 / OWASP's minimum for
# scrypt; 32 MiB and well under a second on the board.  Stored in the envelope, so it can
# be raised later without breaking old backups.
LOG2_N: Final = 15
R: Final = 8
P: Final = 1
MAX_LOG2_N: Final = 20  # a hostile envelope must not make us allocate gigabytes
SALT_BYTES: Final = 16
NONCE_BYTES: Final = 12  # GCM's recommended IV length, SP 800-38D §8.2
KEY_BYTES: Final = 32
MAX_ENVELOPE_CHARS: Final = 2 * 1024 * 1024
MIN_PASSPHRASE_CHARS: Final = 8


class BackupError(ValueError):
    """The backup cannot be opened: says what is wrong (passphrase, format, damage)."""


def is_sealed(text: str) -> bool:
    return text.lstrip().startswith("{") and f'"{FORMAT}"' in text[:200]


def _key(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    kdf = Scrypt(salt=salt, length=KEY_BYTES, n=1 << log2_n, r=r, p=p)
    return kdf.derive(passphrase.encode("utf-8"))


def _header(kdf: dict[str, Any], cipher: str) -> bytes:
    # The authenticated header: changing the KDF parameters or the format fails the tag.
    return json.dumps(
        {"format": FORMAT, "version": VERSION, "kdf": kdf, "cipher": cipher},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def seal(plaintext: str, passphrase: str, *, log2_n: int = LOG2_N) -> str:
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise BackupError(f"the passphrase needs at least {MIN_PASSPHRASE_CHARS} characters")
    salt = os.urandom(SALT_BYTES)
    nonce = os.urandom(NONCE_BYTES)
    kdf = {
        "name": "scrypt",
        "log2_n": log2_n,
        "r": R,
        "p": P,
        "salt": base64.b64encode(salt).decode(),
    }
    cipher = "AES-256-GCM"
    key = _key(passphrase, salt, log2_n, R, P)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), _header(kdf, cipher))
    envelope = {
        "format": FORMAT,
        "version": VERSION,
        "kdf": kdf,
        "cipher": cipher,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return json.dumps(envelope, indent=1) + "\n"


def _b64(envelope: dict[str, Any], key: str, where: str) -> bytes:
    value = envelope.get(key)
    if not isinstance(value, str):
        raise BackupError(f"damaged backup: {where}{key} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BackupError(f"damaged backup: {where}{key} is not base64") from None


def unseal(text: str, passphrase: str | None) -> str:
    """The TOML inside a sealed backup; raises :class:`BackupError` saying why not."""
    if len(text) > MAX_ENVELOPE_CHARS:
        raise BackupError(f"backup larger than {MAX_ENVELOPE_CHARS} characters")
    try:
        envelope = json.loads(text)
    except ValueError as exc:
        raise BackupError(f"damaged backup: not JSON ({exc})") from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise BackupError("not a Ponte backup envelope")
    if envelope.get("version") != VERSION:
        raise BackupError(f"backup format version {envelope.get('version')!r} is not supported")
    if envelope.get("cipher") != "AES-256-GCM":
        raise BackupError(f"unknown cipher {envelope.get('cipher')!r}")
    kdf = envelope.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise BackupError("damaged backup: kdf must be scrypt")
    log2_n, r, p = kdf.get("log2_n"), kdf.get("r"), kdf.get("p")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (log2_n, r, p)):
        raise BackupError("damaged backup: scrypt parameters must be integers")
    assert isinstance(log2_n, int) and isinstance(r, int) and isinstance(p, int)
    if not (1 <= log2_n <= MAX_LOG2_N and 1 <= r <= 32 and 1 <= p <= 16):
        raise BackupError("damaged backup: scrypt parameters out of range")
    salt = _b64(kdf, "salt", "kdf.")
    nonce = _b64(envelope, "nonce", "")
    ciphertext = _b64(envelope, "ciphertext", "")
    if len(nonce) != NONCE_BYTES:
        raise BackupError(f"damaged backup: nonce must be {NONCE_BYTES} bytes")
    if not passphrase:
        raise BackupError("this backup is encrypted: give its passphrase")
    key = _key(passphrase, salt, log2_n, r, p)
    try:
        plain = AESGCM(key).decrypt(nonce, ciphertext, _header(kdf, "AES-256-GCM"))
    except InvalidTag:
        raise BackupError("wrong passphrase, or the backup was altered") from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise BackupError("damaged backup: the configuration is not UTF-8") from None
