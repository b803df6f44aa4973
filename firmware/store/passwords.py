"""The admin password as the configuration stores it: an scrypt hash, never the password.

Format: ``scrypt$<log2 N>$<r>$<p>$<salt, base64>$<hash, base64>``, the form that
``checks.password_hash_or_empty`` accepts in ``system.admin.password_hash``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

# RFC 7914 section 2 and Percival's scrypt paper: N = 2^14, r = 8, p = 1 for interactive
# logins (16 MiB, tens of milliseconds on a small ARM board).
LOG2_N = 14
R = 8
P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MAX_PASSWORD_LEN = 1024  # cap: hashing cost must not depend on what an attacker sends
MAX_LOG2_N = 20  # refuse stored parameters that would make a login cost a gigabyte
_MAXMEM = 128 * R * (1 << MAX_LOG2_N) + (1 << 20)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    if not password:
        raise ValueError("an empty password cannot be set")
    if len(password) > MAX_PASSWORD_LEN:
        raise ValueError(f"password longer than {MAX_PASSWORD_LEN} characters")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = _scrypt(password, salt, LOG2_N, R, P)
    return "$".join(
        [
            "scrypt",
            str(LOG2_N),
            str(R),
            str(P),
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        ]
    )


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches ``stored``; False for a mismatch, an empty or malformed
    hash, or parameters outside what this module would ever write."""
    if not stored or len(password) > MAX_PASSWORD_LEN:
        return False
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(p.isdigit() for p in parts[1:4]):
        return False
    log2_n, r, p = (int(x) for x in parts[1:4])
    if not (1 <= log2_n <= MAX_LOG2_N and 1 <= r <= R and 1 <= p <= P):
        return False
    try:
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except binascii.Error:
        return False
    return hmac.compare_digest(_scrypt(password, salt, log2_n, r, p, len(expected)), expected)


def _scrypt(
    password: str, salt: bytes, log2_n: int, r: int, p: int, size: int = HASH_BYTES
) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=1 << log2_n,
        r=r,
        p=p,
        maxmem=_MAXMEM,
        dklen=size,
    )
