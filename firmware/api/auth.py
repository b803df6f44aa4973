"""The console's admin login: scrypt hashes, lock-out with back-off, sessions.

The Unix socket's file permissions (0660, group ``ponte``) are the outer guard: whoever can
open the socket is trusted to call the API.  The admin password is what the console asks
the person at the keyboard for; a successful ``auth.login`` marks the connection as logged
in and returns a token the console can use to resume after a reconnect.

The policy objects here are sans-IO (the time is passed in as ``now``, in seconds of a
monotonic clock); only :class:`FileCredentialStore` touches the disk.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

# --- password hashing -------------------------------------------------------------------
# OWASP Password Storage Cheat Sheet (2023): "use scrypt with a minimum CPU/memory cost
# parameter of (2^17), a minimum block size of 8 (1024 bytes), and a parallelization
# parameter of 1".  That costs 128 MiB and ~0.3 s per hash on a small ARM board: fine for
# one login, and the lock-out below stops anyone from asking for many.
SCRYPT_LOG2_N: Final = 17
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SCRYPT_SALT_BYTES: Final = 16  # RFC 7914 s.11 / NIST SP 800-132 s.5.1: salt >= 128 bits
SCRYPT_KEY_BYTES: Final = 32  # 256-bit derived key
# scrypt's memory is 128 * r * N bytes (RFC 7914 s.2); OpenSSL refuses more than maxmem,
# whose default (32 MiB) is below what the OWASP parameters need.
SCRYPT_MAX_LOG2_N: Final = 20  # refuse stored hashes that would cost more than 1 GiB

# NIST SP 800-63B s.5.1.1.2: memorised secrets at least 8 characters; verifiers should
# accept at least 64.  The upper bound keeps a login request's cost bounded.
PASSWORD_MIN_CHARS: Final = 8
PASSWORD_MAX_CHARS: Final = 128

# Factory password printed on the appliance's label; it only ever works while no password
# has been set, and a login with it must change it before anything else (first run).
FACTORY_PASSWORD: Final = "ponte-admin"

# --- lock-out -----------------------------------------------------------------------
# NIST SP 800-63B s.5.2.2 caps consecutive failures at 100 and suggests delays; OWASP's
# Authentication Cheat Sheet recommends a threshold with an increasing lock-out.  A local
# console needs far fewer tries than a web form, so: 5 free tries, then 30 s doubling per
# further failure up to 15 minutes.
LOCKOUT_THRESHOLD: Final = 5
LOCKOUT_BASE_S: Final = 30.0
LOCKOUT_MAX_S: Final = 900.0

# --- sessions ------------------------------------------------------------------------
# OWASP Session Management Cheat Sheet: idle timeouts of 15-30 minutes for low-risk
# applications, plus an absolute timeout.  An installer may spend a working day at the box.
SESSION_IDLE_S: Final = 30 * 60.0
SESSION_ABSOLUTE_S: Final = 8 * 3600.0
SESSION_TOKEN_BYTES: Final = 32  # 256 bits from secrets (OWASP: at least 64 bits entropy)
MAX_SESSIONS: Final = 16


class AuthError(Exception):
    """A login or password change was refused; ``reason`` is a stable keyword."""

    def __init__(self, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason  # "bad_password", "locked_out", "weak_password"
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ScryptParams:
    log2_n: int = SCRYPT_LOG2_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def __post_init__(self) -> None:
        if not 1 <= self.log2_n <= SCRYPT_MAX_LOG2_N:
            raise ValueError(f"scrypt log2(N) must be 1..{SCRYPT_MAX_LOG2_N}")
        if not 1 <= self.r <= 32 or not 1 <= self.p <= 16:
            raise ValueError("scrypt r must be 1..32 and p 1..16")

    @property
    def memory_bytes(self) -> int:
        return 128 * self.r * (1 << self.log2_n)  # RFC 7914 s.2

    def derive(self, password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(
            password.encode("utf-8"),
            salt=salt,
            n=1 << self.log2_n,
            r=self.r,
            p=self.p,
            dklen=SCRYPT_KEY_BYTES,
            # headroom over 128*r*N for the p blocks and OpenSSL's own bookkeeping
            maxmem=self.memory_bytes + 128 * self.r * self.p + (1 << 20),
        )


DEFAULT_SCRYPT: Final = ScryptParams()

# The configuration store's format (firmware/store/passwords.py, checks.password_hash_or_empty):
# scrypt$<log2 N>$<r>$<p>$<salt, base64>$<key, base64>.  Sharing it means a hash set from
# the console is a valid `system.admin.password_hash` and either module can verify it.
_HASH_RE: Final = re.compile(
    r"scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})\Z"
)


def hash_password(password: str, params: ScryptParams = DEFAULT_SCRYPT) -> str:
    salt = secrets.token_bytes(SCRYPT_SALT_BYTES)
    key = params.derive(password, salt)
    b64 = base64.b64encode
    return (
        f"scrypt${params.log2_n}${params.r}${params.p}"
        f"${b64(salt).decode('ascii')}${b64(key).decode('ascii')}"
    )


def parse_hash(encoded: str) -> tuple[ScryptParams, bytes, bytes]:
    m = _HASH_RE.match(encoded)
    if m is None:
        raise ValueError("not an scrypt$logN$r$p$salt$key hash")
    try:
        params = ScryptParams(int(m[1]), int(m[2]), int(m[3]))
        salt = base64.b64decode(m[4], validate=True)
        key = base64.b64decode(m[5], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"corrupt scrypt hash: {exc}") from exc
    if len(key) != SCRYPT_KEY_BYTES:
        raise ValueError(f"corrupt scrypt hash: key is {len(key)} bytes, not {SCRYPT_KEY_BYTES}")
    return params, salt, key


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time comparison of the derived key (hmac.compare_digest)."""
    params, salt, key = parse_hash(encoded)
    return hmac.compare_digest(params.derive(password, salt), key)


def check_new_password(password: str) -> None:
    if len(password) < PASSWORD_MIN_CHARS:
        raise AuthError(
            "weak_password", f"the new password needs at least {PASSWORD_MIN_CHARS} characters"
        )
    if len(password) > PASSWORD_MAX_CHARS:
        raise AuthError(
            "weak_password", f"the new password may have at most {PASSWORD_MAX_CHARS} characters"
        )
    if password == FACTORY_PASSWORD:
        raise AuthError("weak_password", "the new password must differ from the factory one")


# --- storage ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdminCredential:
    password_hash: str
    must_change: bool

    def __post_init__(self) -> None:
        parse_hash(self.password_hash)


class CredentialStore(Protocol):
    """Where the admin hash lives; ``firmware.store`` will implement this on SQLite."""

    def load_admin(self) -> AdminCredential | None: ...

    def save_admin(self, credential: AdminCredential) -> None: ...


class FileCredentialStore:
    """A small JSON file, written atomically (temp file, fsync, rename, fsync dir), 0600."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load_admin(self) -> AdminCredential | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(raw)
            admin = doc["admin"]
            return AdminCredential(str(admin["password_hash"]), bool(admin["must_change"]))
        except (ValueError, KeyError, TypeError) as exc:
            # A corrupt credential file must not silently fall back to the factory password.
            raise ValueError(f"{self.path}: corrupt credential file: {exc}") from exc

    def save_admin(self, credential: AdminCredential) -> None:
        doc = {
            "admin": {
                "password_hash": credential.password_hash,
                "must_change": credential.must_change,
            }
        }
        data = json.dumps(doc, indent=2).encode() + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class MemoryCredentialStore:
    """In-process store for tests and simulation."""

    def __init__(self, credential: AdminCredential | None = None) -> None:
        self.credential = credential

    def load_admin(self) -> AdminCredential | None:
        return self.credential

    def save_admin(self, credential: AdminCredential) -> None:
        self.credential = credential


# --- lock-out policy (sans-IO) ------------------------------------------------------------


@dataclass
class LockoutPolicy:
    """Consecutive failures -> an exponentially growing wait before the next try."""

    threshold: int = LOCKOUT_THRESHOLD
    base_s: float = LOCKOUT_BASE_S
    max_s: float = LOCKOUT_MAX_S
    failures: int = 0
    locked_until: float = float("-inf")

    def retry_after(self, now: float) -> float | None:
        """Seconds until the next attempt is allowed, or None if allowed now."""
        return self.locked_until - now if now < self.locked_until else None

    def record_failure(self, now: float) -> None:
        self.failures += 1
        excess = self.failures - self.threshold
        if excess >= 0:
            self.locked_until = now + min(self.base_s * 2**excess, self.max_s)

    def record_success(self) -> None:
        self.failures = 0
        self.locked_until = float("-inf")


# --- sessions (sans-IO) ----------------------------------------------------------------


@dataclass
class Session:
    token_digest: bytes
    created: float
    last_used: float
    must_change: bool

    def expired(self, now: float) -> bool:
        return now - self.last_used > SESSION_IDLE_S or now - self.created > SESSION_ABSOLUTE_S


def _digest(token: str) -> bytes:
    # Sessions are kept by the hash of their token so a memory dump does not hand out
    # live tokens, and the dict lookup compares digests, not the secret.
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass
class SessionTable:
    max_sessions: int = MAX_SESSIONS
    _sessions: dict[bytes, Session] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, now: float, must_change: bool) -> tuple[str, Session]:
        self.expire(now)
        while len(self._sessions) >= self.max_sessions:
            oldest = min(self._sessions.values(), key=lambda s: s.last_used)
            del self._sessions[oldest.token_digest]
        token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
        session = Session(_digest(token), now, now, must_change)
        self._sessions[session.token_digest] = session
        return token, session

    def lookup(self, token: str, now: float) -> Session | None:
        session = self._sessions.get(_digest(token))
        if session is None:
            return None
        if session.expired(now):
            del self._sessions[session.token_digest]
            return None
        return session

    def touch(self, session: Session, now: float) -> bool:
        """Refresh an active session; False if it expired or was revoked."""
        if self._sessions.get(session.token_digest) is not session or session.expired(now):
            self._sessions.pop(session.token_digest, None)
            return False
        session.last_used = now
        return True

    def revoke(self, session: Session) -> None:
        self._sessions.pop(session.token_digest, None)

    def revoke_all(self) -> None:
        self._sessions.clear()

    def expire(self, now: float) -> None:
        for digest in [d for d, s in self._sessions.items() if s.expired(now)]:
            del self._sessions[digest]


# --- the authenticator -------------------------------------------------------------------


class Authenticator:
    """Login/password-change decisions over a store, a lock-out policy and sessions.

    The policies are sans-IO; this class is their thin shell.  Only the scrypt work runs in
    a worker thread (it takes ~0.3 s); every decision and every mutation of the lock-out
    and session state happens on the event loop, under one lock, so concurrent logins
    cannot race past the lock-out.
    """

    def __init__(
        self,
        store: CredentialStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        scrypt: ScryptParams = DEFAULT_SCRYPT,
        lockout: LockoutPolicy | None = None,
        sessions: SessionTable | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.scrypt = scrypt
        self.lockout = lockout if lockout is not None else LockoutPolicy()
        self.sessions = sessions if sessions is not None else SessionTable()
        self._lock = asyncio.Lock()
        self._factory_hash: str | None = None

    def first_run(self) -> bool:
        """True until an admin password has been set (the factory password works once)."""
        return self.store.load_admin() is None

    def must_change(self) -> bool:
        cred = self.store.load_admin()
        return cred is None or cred.must_change

    def _password_ok(self, cred: AdminCredential | None, password: str) -> bool:
        if len(password) > PASSWORD_MAX_CHARS:
            return False
        if cred is None:
            # First run: check against a hash of the factory password, so this path costs
            # one scrypt like any other login and compares in constant time the same way.
            if self._factory_hash is None:
                self._factory_hash = hash_password(FACTORY_PASSWORD, self.scrypt)
            return verify_password(password, self._factory_hash)
        return verify_password(password, cred.password_hash)

    async def _verify(self, password: str, what: str) -> None:
        wait = self.lockout.retry_after(self.clock())
        if wait is not None:
            raise AuthError("locked_out", f"too many failed logins; retry in {wait:.0f} s", wait)
        cred = self.store.load_admin()
        ok = await asyncio.to_thread(self._password_ok, cred, password)
        now = self.clock()
        if not ok:
            self.lockout.record_failure(now)
            raise AuthError("bad_password", f"{what} is wrong", self.lockout.retry_after(now))
        self.lockout.record_success()

    async def login(self, password: str) -> tuple[str, Session]:
        async with self._lock:
            await self._verify(password, "the password")
            return self.sessions.create(self.clock(), self.must_change())

    async def change_password(self, old: str, new: str) -> tuple[str, Session]:
        """Needs the current password even from a logged-in session; revokes all sessions."""
        async with self._lock:
            await self._verify(old, "the current password")
            check_new_password(new)
            if new == old:
                raise AuthError("weak_password", "the new password must differ from the old one")
            encoded = await asyncio.to_thread(hash_password, new, self.scrypt)
            self.store.save_admin(AdminCredential(encoded, False))
            self.sessions.revoke_all()
            return self.sessions.create(self.clock(), False)
