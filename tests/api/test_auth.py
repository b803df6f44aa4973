"""Password hashing, lock-out policy, sessions and the credential file (sans-IO parts)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from firmware.api.auth import (
    DEFAULT_SCRYPT,
    FACTORY_PASSWORD,
    LOCKOUT_BASE_S,
    LOCKOUT_MAX_S,
    LOCKOUT_THRESHOLD,
    SESSION_ABSOLUTE_S,
    SESSION_IDLE_S,
    AdminCredential,
    Authenticator,
    AuthError,
    FileCredentialStore,
    LockoutPolicy,
    MemoryCredentialStore,
    ScryptParams,
    SessionTable,
    hash_password,
    parse_hash,
    verify_password,
)

from .conftest import FAST_SCRYPT, FakeClock


def test_hash_round_trip_and_phc_format() -> None:
    encoded = hash_password("correct horse", FAST_SCRYPT)
    assert encoded.startswith("scrypt$4$8$1$")
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct hors", encoded)
    assert hash_password("correct horse", FAST_SCRYPT) != encoded  # salted


def test_production_parameters_are_owasp() -> None:
    assert (1 << DEFAULT_SCRYPT.log2_n, DEFAULT_SCRYPT.r, DEFAULT_SCRYPT.p) == (2**17, 8, 1)
    assert DEFAULT_SCRYPT.memory_bytes == 128 * 1024 * 1024
    encoded = hash_password("x" * 12)  # the real cost works within OpenSSL's maxmem
    assert verify_password("x" * 12, encoded)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "scrypt$4$8$1$",
        "scrypt$99$8$1$AAAA$" + "A" * 43 + "=",
        "scrypt$4$8$1$AAAA$AAAA",  # a key of the wrong length
        "scrypt$4$8$1$A$" + "A" * 43 + "=",  # bad base64
        "$argon2id$v=19$x$y",
    ],
)
def test_corrupt_hashes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_hash(bad)


def test_scrypt_params_validated() -> None:
    with pytest.raises(ValueError):
        ScryptParams(log2_n=0)
    with pytest.raises(ValueError):
        ScryptParams(r=0)


def test_lockout_backoff_doubles_and_caps() -> None:
    policy = LockoutPolicy()
    now = 0.0
    for _ in range(LOCKOUT_THRESHOLD - 1):
        policy.record_failure(now)
        assert policy.retry_after(now) is None
    policy.record_failure(now)
    assert policy.retry_after(now) == LOCKOUT_BASE_S
    assert policy.retry_after(now + LOCKOUT_BASE_S) is None
    policy.record_failure(now + LOCKOUT_BASE_S)
    assert policy.retry_after(now + LOCKOUT_BASE_S) == 2 * LOCKOUT_BASE_S
    for _ in range(20):
        policy.record_failure(now)
    assert policy.retry_after(now) == LOCKOUT_MAX_S
    policy.record_success()
    assert policy.retry_after(now) is None and policy.failures == 0


def test_sessions_expire_idle_and_absolute() -> None:
    table = SessionTable(max_sessions=2)
    token, session = table.create(0.0, must_change=False)
    assert table.lookup(token, 10.0) is session
    assert table.touch(session, SESSION_IDLE_S)
    assert table.lookup(token, 2 * SESSION_IDLE_S + 1) is None  # idle
    token, session = table.create(0.0, must_change=False)
    t = 0.0
    while t < SESSION_ABSOLUTE_S - SESSION_IDLE_S:
        t += SESSION_IDLE_S / 2
        assert table.touch(session, t)
    assert not table.touch(session, SESSION_ABSOLUTE_S + 1)  # absolute
    a, _ = table.create(0.0, False)
    b, _ = table.create(1.0, False)
    c, _ = table.create(2.0, False)  # evicts the least recently used
    assert table.lookup(a, 3.0) is None and table.lookup(c, 3.0) is not None
    assert table.lookup("not-a-token", 3.0) is None and table.lookup(b, 3.0) is not None


def test_file_store_is_atomic_private_and_strict(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "admin.json"
    store = FileCredentialStore(path)
    assert store.load_admin() is None
    cred = AdminCredential(hash_password("password1", FAST_SCRYPT), must_change=False)
    store.save_admin(cred)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert FileCredentialStore(path).load_admin() == cred
    assert [p.name for p in path.parent.iterdir()] == ["admin.json"]  # no temp files left
    path.write_text('{"admin": {"password_hash": "garbage", "must_change": false}}')
    with pytest.raises(ValueError, match="corrupt"):
        store.load_admin()  # never falls back to the factory password


async def test_first_run_then_change_password() -> None:
    clock = FakeClock()
    store = MemoryCredentialStore()
    auth = Authenticator(store, clock=clock, scrypt=FAST_SCRYPT)
    assert auth.first_run() and auth.must_change()
    _, session = await auth.login(FACTORY_PASSWORD)
    assert session.must_change
    with pytest.raises(AuthError) as info:
        await auth.change_password(FACTORY_PASSWORD, "short")
    assert info.value.reason == "weak_password"
    _, session = await auth.change_password(FACTORY_PASSWORD, "new password 1")
    assert not session.must_change and not auth.first_run()
    with pytest.raises(AuthError) as info:
        await auth.login(FACTORY_PASSWORD)  # the factory password is gone for good
    assert info.value.reason == "bad_password"
    await auth.login("new password 1")


async def test_lockout_with_injected_time() -> None:
    clock = FakeClock()
    auth = Authenticator(MemoryCredentialStore(), clock=clock, scrypt=FAST_SCRYPT)
    for _ in range(LOCKOUT_THRESHOLD):
        with pytest.raises(AuthError) as info:
            await auth.login("wrong")
        assert info.value.reason == "bad_password"
    with pytest.raises(AuthError) as info:
        await auth.login(FACTORY_PASSWORD)  # even the right password waits
    assert info.value.reason == "locked_out" and info.value.retry_after == LOCKOUT_BASE_S
    clock.advance(LOCKOUT_BASE_S)
    await auth.login(FACTORY_PASSWORD)


def test_hashes_interoperate_with_the_configuration_store() -> None:
    from firmware.store import checks, passwords

    ours = hash_password("shared secret", FAST_SCRYPT)
    assert checks.password_hash_or_empty(ours) is None
    assert passwords.verify_password("shared secret", ours)
    theirs = passwords.hash_password("shared secret")
    assert verify_password("shared secret", theirs)
    assert not verify_password("other secret", theirs)


async def test_credentials_in_the_versioned_configuration(tmp_path: Path) -> None:
    from firmware.api.credentials import PASSWORD_CHANGE_ACTION, ConfigCredentialStore
    from firmware.store import ConfigStore

    with ConfigStore.open(tmp_path) as config:
        store = ConfigCredentialStore(config)
        auth = Authenticator(store, clock=FakeClock(), scrypt=FAST_SCRYPT)
        assert auth.first_run()
        await auth.change_password(FACTORY_PASSWORD, "configured secret")
        assert not auth.first_run()
        stored = config.current().config.system.admin.password_hash
        assert verify_password("configured secret", stored)
        assert config.history(1)[0].action == PASSWORD_CHANGE_ACTION
        await auth.login("configured secret")
        with pytest.raises(ValueError, match="must be changed"):
            store.save_admin(AdminCredential(stored, must_change=True))
