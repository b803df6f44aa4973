"""The versioned store: history, diff, rollback, concurrency, TOML, secrets, damaged files."""

from __future__ import annotations

import dataclasses
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firmware.store import (
    DB_FILENAME,
    REDACTED,
    ConfigError,
    ConfigStore,
    Database,
    StoreCorruptError,
    StoreVersionError,
    UnknownVersion,
    VersionConflict,
    default_config,
    dumps_toml,
    loads_toml,
)
from firmware.store.db import MIGRATIONS, StoreError

from .helpers import rich_config, trunk


class FakeClock:
    """Deterministic timestamps (the store takes its clock as a parameter)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def store(tmp_path: Path):
    with ConfigStore.open(tmp_path, clock=FakeClock()) as s:
        yield s


def with_gain(config, port: int, gain: float):
    fxs = list(config.lines.fxs)
    fxs[port] = dataclasses.replace(fxs[port], gain_rx=gain)
    return dataclasses.replace(config, lines=dataclasses.replace(config.lines, fxs=tuple(fxs)))


def test_fresh_store_holds_factory_defaults(store: ConfigStore) -> None:
    current = store.current()
    assert current.version == 1
    assert current.config == default_config()
    assert current.info.action == "factory-defaults"
    assert store.db.integrity_check() == ["ok"]


def test_defaults_for_the_card_are_used_on_first_open(tmp_path: Path) -> None:
    with ConfigStore.open(tmp_path, defaults=default_config(8, 4)) as s:
        assert len(s.current().config.lines.fxs) == 8
    # Reopening never resets to defaults.
    with ConfigStore.open(tmp_path, defaults=default_config(1, 0)) as s:
        assert len(s.current().config.lines.fxs) == 8


def test_database_file_is_private(tmp_path: Path, store: ConfigStore) -> None:
    mode = stat.S_IMODE((tmp_path / DB_FILENAME).stat().st_mode)
    assert mode == 0o600
    assert store.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_history_diff_rollback(store: ConfigStore) -> None:
    base = store.current().config
    v2 = store.apply(with_gain(base, 1, -3.0), author="alice", expected_version=1)
    v3 = store.apply(
        with_gain(base, 1, -6.0), author="bob", summary="quieter port 2", expected_version=2
    )
    assert (v2.version, v3.version) == (2, 3)
    assert [str(c) for c in store.diff(2, 3)] == ["lines.fxs[1].gain_rx: -3.0 -> -6.0"]
    assert [str(c) for c in store.diff(1, 3)] == ["lines.fxs[1].gain_rx: 0.0 -> -6.0"]

    rolled = store.rollback(2, author="carol")
    assert rolled.version == 4
    assert rolled.action == "rollback"
    assert store.current().config == store.get(2).config
    assert [h.version for h in store.history()] == [4, 3, 2, 1]
    assert [h.author for h in store.history(limit=2)] == ["carol", "bob"]
    assert store.history()[1].summary == "quieter port 2"
    assert store.history()[2].summary == "1 change: lines.fxs[1].gain_rx"

    audit = store.audit.list(action_prefix="config.")
    assert [(a.actor, a.action, a.version) for a in audit] == [
        ("carol", "config.rollback", 4),
        ("bob", "config.apply", 3),
        ("alice", "config.apply", 2),
        ("system", "config.factory-defaults", 1),
    ]
    assert audit[0].detail == "lines.fxs[1].gain_rx: -6.0 -> -3.0"
    assert audit[1].at < audit[0].at


def test_diff_of_added_and_removed_items_and_secrets(store: ConfigStore) -> None:
    store.apply(rich_config(), author="t")
    changes = [str(c) for c in store.diff(1, 2)]
    assert "sip.trunks[0].name: (absent) -> 'provider'" in changes
    assert "sip.trunks[0].password: (secret changed)" in changes
    assert not any("secret-provider" in c for c in changes)
    assert "lines.fxs[3].extension: (absent) -> '104'" in changes
    back = [str(c) for c in store.diff(2, 1)]
    assert "sip.trunks[1].registrar: '[2001:db8::1]:5062' -> (absent)" in back


def test_unchanged_document_creates_no_version(store: ConfigStore) -> None:
    info = store.apply(store.current().config, author="t")
    assert info.version == 1
    assert len(store.history()) == 1


def test_unknown_version(store: ConfigStore) -> None:
    with pytest.raises(UnknownVersion, match="no configuration version 42"):
        store.get(42)
    with pytest.raises(UnknownVersion):
        store.rollback(42, author="t")


def test_optimistic_concurrency_between_two_processes_views(tmp_path: Path) -> None:
    with ConfigStore.open(tmp_path) as a, ConfigStore.open(tmp_path) as b:
        seen_a = a.current()
        seen_b = b.current()
        a.apply(with_gain(seen_a.config, 0, 1.0), author="a", expected_version=seen_a.version)
        with pytest.raises(VersionConflict) as info:
            b.apply(with_gain(seen_b.config, 0, 2.0), author="b", expected_version=seen_b.version)
        assert (info.value.expected, info.value.actual) == (1, 2)
        assert b.current().config.lines.fxs[0].gain_rx == 1.0
        assert b.head() == 2


def test_invalid_config_is_refused_and_nothing_is_written(store: ConfigStore) -> None:
    bad = with_gain(store.current().config, 0, 99.0)
    with pytest.raises(ConfigError, match=r"lines.fxs\[0\].gain_rx"):
        store.apply(bad, author="t")
    assert store.head() == 1
    assert len(store.audit.list()) == 1


def test_toml_round_trip_is_exact(store: ConfigStore) -> None:
    config = rich_config()
    store.apply(config, author="t")
    text = store.export_toml()
    assert loads_toml(text) == config
    assert "secret-provider" in text


def test_import_creates_a_version_and_refuses_bad_files_whole(store: ConfigStore) -> None:
    text = dumps_toml(rich_config())
    info = store.import_toml(text, author="installer")
    assert info.action == "import"
    bad = text.replace('country = "ITU"', 'country = "XX"').replace(
        'username = "user-backup"', "username = 7"
    )
    with pytest.raises(ConfigError) as err:
        store.import_toml(bad, author="installer")
    assert [i.path for i in err.value.issues] == ["system.country", "sip.trunks[1].username"]
    assert store.head() == info.version
    with pytest.raises(ConfigError, match="not valid TOML"):
        store.import_toml("[system\nhostname=", author="installer")
    assert store.head() == info.version


def test_redacted_export_keeps_secrets_on_import_even_reordered(store: ConfigStore) -> None:
    config = rich_config()
    store.apply(config, author="t")
    text = store.export_toml(redact=True)
    assert "secret-" not in text and "pw-" not in text
    assert REDACTED in text
    # Reorder the trunks in the file: passwords must follow the trunk names, not positions.
    reordered = dataclasses.replace(config.sip, trunks=tuple(reversed(config.sip.trunks)))
    redacted_reordered = dumps_toml(dataclasses.replace(config, sip=reordered), redact=True)
    store.import_toml(redacted_reordered, author="t")
    trunks = {t.name: t.password for t in store.current().config.sip.trunks}
    assert trunks == {"provider": "secret-provider", "backup": "secret-backup"}


def test_redacted_secret_with_nothing_to_keep_is_refused(store: ConfigStore) -> None:
    config = rich_config()
    sip = dataclasses.replace(config.sip, trunks=(*config.sip.trunks, trunk("newco")))
    text = dumps_toml(dataclasses.replace(config, sip=sip), redact=True)
    with pytest.raises(ConfigError) as err:
        store.import_toml(text, author="t")
    paths = {i.path for i in err.value.issues}
    assert "sip.trunks[2].password" in paths
    assert "sip.trunks[0].password" in paths  # the box has no trunks yet
    assert store.head() == 1


def test_audit_log_is_usable_by_other_subsystems(store: ConfigStore) -> None:
    rid = store.audit.record("console", "user.login", "admin logged in", detail="tty1")
    records = store.audit.list(action_prefix="user.")
    assert [(r.id, r.actor, r.summary, r.detail, r.version) for r in records] == [
        (rid, "console", "admin logged in", "tty1", None)
    ]
    # LIKE wildcards in the prefix are literal.
    assert store.audit.list(action_prefix="user%") == []


# ---------------------------------------------------------------------------- damaged files


def test_garbage_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    garbage = b"this is not a database at all\n" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreCorruptError, match="not a SQLite database"):
        ConfigStore.open(tmp_path)
    assert path.read_bytes() == garbage


def test_truncated_and_damaged_databases_are_refused(tmp_path: Path) -> None:
    with ConfigStore.open(tmp_path) as s:
        s.apply(rich_config(), author="t")
    path = tmp_path / DB_FILENAME
    good = path.read_bytes()
    assert len(good) > 4096
    for name, data in {
        "short": good[:10],
        "half": good[: len(good) // 2],
        "scribbled": good[:4096] + bytes(range(256)) * 16 + good[8192:],
    }.items():
        case = tmp_path / name
        case.mkdir()
        (case / DB_FILENAME).write_bytes(data)
        with pytest.raises(StoreCorruptError) as err:
            with ConfigStore.open(case) as s:
                s.current()
        assert str(case / DB_FILENAME) in str(err.value), name
        assert (case / DB_FILENAME).read_bytes() == data, name


def test_foreign_sqlite_database_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreCorruptError, match="not a Ponte one"):
        ConfigStore.open(tmp_path)
    assert path.read_bytes() == before


def test_database_from_newer_firmware_is_refused(tmp_path: Path) -> None:
    ConfigStore.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreVersionError, match="newer than this firmware"):
        ConfigStore.open(tmp_path)


def test_stored_document_that_no_longer_validates_is_reported(tmp_path: Path) -> None:
    ConfigStore.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    conn.execute("""UPDATE config_version SET document = '{"lines": 3}'""")
    conn.commit()
    conn.close()
    with (
        ConfigStore.open(tmp_path) as s,
        pytest.raises(StoreCorruptError, match="version 1 is unreadable"),
    ):
        s.current()


def test_migrations_run_once_in_order(tmp_path: Path) -> None:
    calls: list[int] = []

    def v2(conn: sqlite3.Connection) -> None:
        calls.append(2)
        conn.execute("CREATE TABLE cdr (id INTEGER PRIMARY KEY, started TEXT)")

    ConfigStore.open(tmp_path).close()
    db = Database(tmp_path / DB_FILENAME, migrations=(*MIGRATIONS, v2))
    assert db.schema_version == len(MIGRATIONS) + 1
    db.close()
    db = Database(tmp_path / DB_FILENAME, migrations=(*MIGRATIONS, v2))
    db.conn.execute("INSERT INTO cdr (started) VALUES ('now')")
    db.close()
    assert calls == [2]


def test_failed_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (id INTEGER)")
        raise RuntimeError("bug in migration")

    ConfigStore.open(tmp_path).close()
    with pytest.raises(RuntimeError):
        Database(tmp_path / DB_FILENAME, migrations=(*MIGRATIONS, broken))
    db = Database(tmp_path / DB_FILENAME)
    assert db.schema_version == len(MIGRATIONS)
    tables = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_schema")}
    assert "half_done" not in tables
    db.close()


def test_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises((StoreError, OSError)):
        ConfigStore.open(blocker)


def test_document_upgrade_hook_runs_on_old_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored (or imported) document of an older layout is upgraded before validation."""
    from firmware.store import validate

    with ConfigStore.open(tmp_path) as s:
        s.apply(rich_config(), author="t")
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    # Pretend version 2 was written in a layout where the hostname was called "name".
    doc = conn.execute("SELECT document FROM config_version WHERE version = 2").fetchone()[0]
    conn.execute(
        "UPDATE config_version SET document = ? WHERE version = 2",
        (doc.replace('"hostname":', '"name":'),),
    )
    conn.commit()
    conn.close()

    def rename(old: dict[str, Any]) -> dict[str, Any]:
        system = dict(old["system"])
        system["hostname"] = system.pop("name")
        return {**old, "system": system}

    monkeypatch.setattr(validate, "CONFIG_SCHEMA", 2)
    monkeypatch.setitem(validate.DOCUMENT_UPGRADES, 1, rename)
    with ConfigStore.open(tmp_path) as s:
        assert s.current().config == rich_config()
        text = 'schema_version = 1\n[system]\nname = "old-layout"\n'
        assert loads_toml(text).system.hostname == "old-layout"


def test_history_and_audit_log_are_capped(tmp_path: Path) -> None:
    from firmware.store.store import PRUNE_EVERY

    with ConfigStore.open(tmp_path, max_versions=30, max_audit_records=50) as s:
        config = s.current().config
        for i in range(1, 2 * PRUNE_EVERY + 5):
            s.apply(with_gain(config, 0, float(i % 10)), author="t")
            s.audit.record("t", "user.login", "login")
        head = s.head()
        versions = [h.version for h in s.history()]
        # Pruned in passes: never below the cap, never the current version.
        assert versions[0] == head
        assert 30 <= len(versions) < 30 + PRUNE_EVERY
        assert s.current().config == with_gain(config, 0, float((2 * PRUNE_EVERY + 4) % 10))
        with pytest.raises(UnknownVersion):
            s.get(1)
        audit = s.audit.list(limit=10_000)
        assert 50 <= len(audit) < 50 + PRUNE_EVERY
