"""Trusted signing keys: thresholds, revocation and rotation.

Modelled on TUF's root role: a keyring is a versioned document listing Ed25519
public keys, how many distinct ones must sign (the threshold) and the key ids that
are revoked for good.  A bundle may carry the next keyring; the device adopts it
only if the bundle is signed by a threshold of the *current* keys and by a threshold
of the *new* keys (so a rotation proves possession of the new keys, TUF 5.3.4), its
version is higher, and it keeps every revocation of the current one.  Each key
counts once however many signatures it made (python-tuf GHSA-r7vq-6425-j94w).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firmware.update import canonical
from firmware.update.errors import FormatError, SignatureError

KEYRING_FORMAT = 1
ED25519_PUBLIC_BYTES = 32  # RFC 8032 section 5.1.5
ED25519_SIGNATURE_BYTES = 64  # RFC 8032 section 5.1.6
KEYID_BYTES = 32  # SHA-256 of the raw public key
MAX_KEYS = 16
MAX_KEYRING_BYTES = 16 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")


def key_id(public: bytes) -> bytes:
    return hashlib.sha256(public).digest()


@dataclass(frozen=True)
class Signature:
    keyid: bytes
    sig: bytes

    def __post_init__(self) -> None:
        if len(self.keyid) != KEYID_BYTES:
            raise FormatError(f"key id must be {KEYID_BYTES} bytes, got {len(self.keyid)}")
        if len(self.sig) != ED25519_SIGNATURE_BYTES:
            raise FormatError(f"signature must be {ED25519_SIGNATURE_BYTES} bytes")


@dataclass(frozen=True)
class Keyring:
    version: int
    threshold: int
    keys: Mapping[str, bytes]  # hex key id -> raw Ed25519 public key
    revoked: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not 1 <= self.version < 2**31:
            raise FormatError(f"keyring version {self.version} out of range")
        if not 1 <= self.threshold <= max(1, len(self.keys)):
            raise FormatError(
                f"keyring threshold {self.threshold} impossible with {len(self.keys)} keys"
            )
        if len(self.keys) > MAX_KEYS:
            raise FormatError(f"keyring has {len(self.keys)} keys, at most {MAX_KEYS}")
        for kid, pub in self.keys.items():
            if len(pub) != ED25519_PUBLIC_BYTES:
                raise FormatError(f"key {kid[:16]} is not a {ED25519_PUBLIC_BYTES}-byte key")
            if key_id(pub).hex() != kid:
                raise FormatError(f"key id {kid[:16]} does not match its key")
        for kid in self.revoked:
            if not _HEX64.fullmatch(kid):
                raise FormatError(f"revoked key id {kid[:20]!r} is not 64 hex digits")
        clash = self.revoked & set(self.keys)
        if clash:
            raise FormatError(f"key {sorted(clash)[0][:16]} is both trusted and revoked")

    @classmethod
    def create(
        cls,
        publics: Iterable[bytes],
        *,
        version: int = 1,
        threshold: int = 1,
        revoked: Iterable[str] = (),
    ) -> Keyring:
        return cls(
            version=version,
            threshold=threshold,
            keys={key_id(p).hex(): bytes(p) for p in publics},
            revoked=frozenset(revoked),
        )

    # --- encoding -------------------------------------------------------------------

    def to_obj(self) -> dict[str, Any]:
        return {
            "format": KEYRING_FORMAT,
            "version": self.version,
            "threshold": self.threshold,
            "keys": {kid: pub.hex() for kid, pub in sorted(self.keys.items())},
            "revoked": sorted(self.revoked),
        }

    def to_bytes(self) -> bytes:
        return canonical.encode(self.to_obj())

    @classmethod
    def from_obj(cls, obj: Any) -> Keyring:
        if not isinstance(obj, dict):
            raise FormatError("keyring must be a JSON object")
        expected = {"format", "version", "threshold", "keys", "revoked"}
        if set(obj) != expected:
            raise FormatError(f"keyring fields must be {sorted(expected)}, got {sorted(obj)}")
        if obj["format"] != KEYRING_FORMAT:
            raise FormatError(f"unknown keyring format {obj['format']!r}")
        version, threshold, keys, revoked = (
            obj["version"],
            obj["threshold"],
            obj["keys"],
            obj["revoked"],
        )
        if not isinstance(version, int) or isinstance(version, bool):
            raise FormatError("keyring version must be an integer")
        if not isinstance(threshold, int) or isinstance(threshold, bool):
            raise FormatError("keyring threshold must be an integer")
        if not isinstance(keys, dict) or not isinstance(revoked, list):
            raise FormatError("keyring keys must be an object and revoked a list")
        parsed: dict[str, bytes] = {}
        for kid, pub in keys.items():
            if not isinstance(pub, str) or not re.fullmatch(r"[0-9a-f]{64}", pub):
                raise FormatError(f"key {str(kid)[:16]} is not 64 lowercase hex digits")
            parsed[kid] = bytes.fromhex(pub)
        if not all(isinstance(r, str) for r in revoked) or len(set(revoked)) != len(revoked):
            raise FormatError("revoked must be a list of distinct key ids")
        return cls(version, threshold, parsed, frozenset(revoked))

    @classmethod
    def from_bytes(cls, data: bytes) -> Keyring:
        if len(data) > MAX_KEYRING_BYTES:
            raise FormatError(f"keyring is {len(data)} bytes, at most {MAX_KEYRING_BYTES}")
        return cls.from_obj(canonical.decode(data, what="keyring"))

    # --- verification ---------------------------------------------------------------

    def valid_signers(self, message: bytes, signatures: Iterable[Signature]) -> set[str]:
        """Distinct trusted, non-revoked key ids whose signature over ``message`` holds."""
        good: set[str] = set()
        for s in signatures:
            kid = s.keyid.hex()
            pub = self.keys.get(kid)
            if pub is None or kid in self.revoked or kid in good:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(pub).verify(s.sig, message)
            except InvalidSignature:
                continue
            good.add(kid)
        return good

    def check(self, message: bytes, signatures: Iterable[Signature], *, role: str) -> set[str]:
        sigs = list(signatures)
        good = self.valid_signers(message, sigs)
        if len(good) < self.threshold:
            revoked = sum(1 for s in sigs if s.keyid.hex() in self.revoked)
            known = set(self.keys) | self.revoked
            unknown = sum(1 for s in sigs if s.keyid.hex() not in known)
            raise SignatureError(
                f"{role}: {len(good)} valid signature(s) of {self.threshold} required "
                f"(keyring v{self.version}; {len(sigs)} present, {revoked} by revoked keys, "
                f"{unknown} by unknown keys)"
            )
        return good

    def accept_successor(self, new: Keyring) -> None:
        """Raise unless ``new`` may replace this keyring (rollback and un-revocation)."""
        if new.version <= self.version:
            raise SignatureError(
                f"keyring v{new.version} does not supersede the trusted v{self.version}"
            )
        lost = self.revoked - new.revoked
        if lost:
            raise SignatureError(f"keyring v{new.version} drops revocation of {len(lost)} key(s)")
        readmitted = self.revoked & set(new.keys)
        if readmitted:
            raise SignatureError(f"keyring v{new.version} re-trusts a revoked key")
