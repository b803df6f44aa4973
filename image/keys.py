"""Offline signing keys: Ed25519, PKCS#8 PEM private keys, hex public keys."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.update.errors import FormatError
from firmware.update.keyring import Keyring, Signature, key_id

MAX_KEY_FILE = 16 * 1024


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def private_pem(key: Ed25519PrivateKey, passphrase: bytes | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def save(key: Ed25519PrivateKey, stem: str, passphrase: bytes | None = None) -> tuple[str, str]:
    """Write ``stem.key`` (mode 0600, never overwritten) and ``stem.pub`` (hex)."""
    key_path, pub_path = f"{stem}.key", f"{stem}.pub"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem(key, passphrase))
    with open(pub_path, "w", encoding="ascii") as f:
        f.write(public_bytes(key).hex() + "\n")
    return key_path, pub_path


def load_private(path: str, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    with open(path, "rb") as f:
        data = f.read(MAX_KEY_FILE)
    try:
        key = serialization.load_pem_private_key(data, passphrase)
    except (ValueError, TypeError) as exc:
        raise FormatError(f"{path} is not a usable private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise FormatError(f"{path} is not an Ed25519 key")
    return key


def load_public(path: str) -> bytes:
    with open(path, encoding="ascii") as f:
        text = f.read(MAX_KEY_FILE).strip()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise FormatError(f"{path} is not a hex public key") from None
    if len(raw) != 32:
        raise FormatError(f"{path} holds {len(raw)} bytes, an Ed25519 public key has 32")
    return raw


def sign(key: Ed25519PrivateKey, message: bytes) -> Signature:
    return Signature(key_id(public_bytes(key)), key.sign(message))


def make_keyring(
    publics: list[bytes], *, version: int = 1, threshold: int = 1, revoked: tuple[str, ...] = ()
) -> Keyring:
    return Keyring.create(publics, version=version, threshold=threshold, revoked=revoked)
