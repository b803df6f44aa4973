"""Versioned configuration and the audit log, on top of ``db.Database``.

Every change is one transaction that writes the whole new document as the next version
and an audit record saying who changed what.  A rollback is a new version whose document
is an old one.  ``expected_version`` gives optimistic concurrency: an editor that loaded
version N and saves with ``expected_version=N`` is refused if someone saved N+1 meanwhile.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from firmware.store.db import DB_FILENAME, Database, StoreCorruptError, StoreError
from firmware.store.document import (
    Change,
    diff_documents,
    dumps_toml,
    loads_toml,
    parse_with_secrets,
)
from firmware.store.schema import CONFIG_SCHEMA, Config, default_config
from firmware.store.validate import SCHEMA_KEY, ConfigError, check, parse, to_document

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_SUMMARY_PATHS = 5  # paths named in an automatic summary before "and N more"
MAX_TEXT = 4096  # cap on an audit summary / actor we store
MAX_DETAIL = 64 * 1024  # cap on an audit record's detail (a diff listing)
# Caps on history: the oldest rows go first.  A version is a whole document (~8 KiB for a
# busy site), so 10,000 versions is at most ~80 MB; the audit log rows are small.
MAX_CONFIG_VERSIONS = 10_000
MAX_AUDIT_RECORDS = 100_000
PRUNE_EVERY = 100  # inserts between pruning passes: keeps the cost off every write


class VersionConflict(StoreError):
    """The configuration changed since the caller read it."""

    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"configuration is at version {actual}, not {expected}: someone else saved "
            "meanwhile; reload, reapply your change and save again"
        )


class UnknownVersion(StoreError):
    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(f"no configuration version {version}")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    summary: str
    detail: str
    version: int | None


class AuditLog:
    """Who did what and when.  Any subsystem may record actions here."""

    def __init__(
        self, db: Database, clock: Clock = _utcnow, *, max_records: int = MAX_AUDIT_RECORDS
    ) -> None:
        self._db = db
        self._clock = clock
        self._max_records = max_records

    def record(
        self, actor: str, action: str, summary: str, detail: str = "", version: int | None = None
    ) -> int:
        with self._db.transaction() as conn:
            return self.record_in(conn, actor, action, summary, detail, version)

    def record_in(
        self,
        conn: sqlite3.Connection,
        actor: str,
        action: str,
        summary: str,
        detail: str = "",
        version: int | None = None,
    ) -> int:
        """Record inside a transaction the caller already holds (``Database.transaction``)."""
        cur = conn.execute(
            "INSERT INTO audit_log (at, actor, action, summary, detail, version) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                self._clock().isoformat(),
                actor[:MAX_TEXT],
                action[:MAX_TEXT],
                summary[:MAX_TEXT],
                detail[:MAX_DETAIL],
                version,
            ),
        )
        rid = int(cur.lastrowid or 0)
        if rid % PRUNE_EVERY == 0:
            conn.execute("DELETE FROM audit_log WHERE id <= ?", (rid - self._max_records,))
        return rid

    def list(self, limit: int = 100, action_prefix: str = "") -> list[AuditRecord]:
        with self._db.reading() as conn:
            rows = conn.execute(
                "SELECT id, at, actor, action, summary, detail, version FROM audit_log "
                "WHERE action LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT ?",
                (_like_prefix(action_prefix), limit),
            ).fetchall()
        return [
            AuditRecord(r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4], r[5], r[6])
            for r in rows
        ]


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True)
class VersionInfo:
    version: int
    created_at: datetime
    author: str
    action: str
    summary: str


@dataclass(frozen=True)
class ConfigVersion:
    info: VersionInfo
    config: Config

    @property
    def version(self) -> int:
        return self.info.version


class ConfigStore:
    """The configuration, versioned.  Open with ``ConfigStore.open(data_dir)``."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock = _utcnow,
        defaults: Config | None = None,
        max_versions: int = MAX_CONFIG_VERSIONS,
        max_audit_records: int = MAX_AUDIT_RECORDS,
    ) -> None:
        if max_versions < 1:
            raise ValueError("max_versions must keep at least the current version")
        self.db = db
        self.audit = AuditLog(db, clock, max_records=max_audit_records)
        self._clock = clock
        self._max_versions = max_versions
        with db.transaction() as conn:
            if conn.execute("SELECT count(*) FROM config_version").fetchone()[0] == 0:
                config = check(defaults if defaults is not None else default_config())
                self._insert(conn, config, "system", "factory-defaults", "factory defaults", [])

    @classmethod
    def open(
        cls,
        data_dir: Path | str,
        *,
        clock: Clock = _utcnow,
        defaults: Config | None = None,
        max_versions: int = MAX_CONFIG_VERSIONS,
        max_audit_records: int = MAX_AUDIT_RECORDS,
    ) -> ConfigStore:
        """Open (or create, with ``defaults`` as version 1) the store in ``data_dir``."""
        directory = Path(data_dir)
        directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        db = Database(directory / DB_FILENAME)
        try:
            return cls(
                db,
                clock=clock,
                defaults=defaults,
                max_versions=max_versions,
                max_audit_records=max_audit_records,
            )
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ConfigStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading

    def head(self) -> int:
        with self.db.reading() as conn:
            return int(conn.execute("SELECT max(version) FROM config_version").fetchone()[0])

    def current(self) -> ConfigVersion:
        """The configuration in force.  This is what the service loads at start."""
        return self.get(self.head())

    def get(self, version: int) -> ConfigVersion:
        with self.db.reading() as conn:
            row = conn.execute(
                "SELECT version, created_at, author, action, summary, config_schema, document "
                "FROM config_version WHERE version = ?",
                (version,),
            ).fetchone()
        if row is None:
            raise UnknownVersion(version)
        info = VersionInfo(row[0], datetime.fromisoformat(row[1]), row[2], row[3], row[4])
        return ConfigVersion(info, self._decode(row[0], row[5], row[6]))

    def _decode(self, version: int, schema: int, text: str) -> Config:
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            return parse({SCHEMA_KEY: schema, **doc})
        except (ValueError, ConfigError) as exc:
            raise StoreCorruptError(
                f"{self.db.path}: stored configuration version {version} is unreadable: {exc}"
            ) from exc

    def history(self, limit: int | None = None) -> list[VersionInfo]:
        """Newest first."""
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT version, created_at, author, action, summary FROM config_version "
                "ORDER BY version DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [VersionInfo(r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4]) for r in rows]

    def diff(self, old: int, new: int) -> list[Change]:
        return diff_documents(to_document(self.get(old).config), to_document(self.get(new).config))

    def export_toml(self, version: int | None = None, *, redact: bool = False) -> str:
        config = self.current().config if version is None else self.get(version).config
        return dumps_toml(config, redact=redact)

    # -- writing

    def apply(
        self,
        config: Config,
        *,
        author: str,
        summary: str = "",
        expected_version: int | None = None,
        action: str = "apply",
    ) -> VersionInfo:
        """Validate and save ``config`` as the next version.

        Raises ``ConfigError`` (nothing saved) or ``VersionConflict``.  Saving a document
        identical to the current one creates no version and returns the current one.
        """
        check(config)
        with self.db.transaction() as conn:
            head = int(conn.execute("SELECT max(version) FROM config_version").fetchone()[0])
            if expected_version is not None and head != expected_version:
                raise VersionConflict(expected_version, head)
            row = conn.execute(
                "SELECT config_schema, document FROM config_version WHERE version = ?", (head,)
            ).fetchone()
            previous = to_document(self._decode(head, row[0], row[1]))
            changes = diff_documents(previous, to_document(config))
            if not changes:
                return self._info(conn, head)
            return self._insert(conn, config, author, action, summary, changes)

    def apply_document(
        self,
        doc: Mapping[str, Any],
        *,
        author: str,
        summary: str = "",
        expected_version: int | None = None,
        action: str = "apply",
    ) -> VersionInfo:
        """Validate a plain document (redacted secrets kept from the current version)."""
        config = parse_with_secrets(dict(doc), self.current().config)
        return self.apply(
            config, author=author, summary=summary, expected_version=expected_version, action=action
        )

    def import_toml(
        self, text: str, *, author: str, expected_version: int | None = None
    ) -> VersionInfo:
        config = loads_toml(text, self.current().config)
        return self.apply(config, author=author, expected_version=expected_version, action="import")

    def rollback(
        self, version: int, *, author: str, expected_version: int | None = None
    ) -> VersionInfo:
        """Make version ``version``'s document current again, as a new version."""
        target = self.get(version).config
        return self.apply(
            target,
            author=author,
            summary=f"rollback to version {version}",
            expected_version=expected_version,
            action="rollback",
        )

    def _info(self, conn: sqlite3.Connection, version: int) -> VersionInfo:
        r = conn.execute(
            "SELECT version, created_at, author, action, summary FROM config_version "
            "WHERE version = ?",
            (version,),
        ).fetchone()
        return VersionInfo(r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4])

    def _insert(
        self,
        conn: sqlite3.Connection,
        config: Config,
        author: str,
        action: str,
        summary: str,
        changes: list[Change],
    ) -> VersionInfo:
        now = self._clock()
        text = summary or _summarize(changes)
        document = json.dumps(to_document(config), sort_keys=True, separators=(",", ":"))
        cur = conn.execute(
            "INSERT INTO config_version "
            "(created_at, author, action, summary, config_schema, document) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (now.isoformat(), author[:MAX_TEXT], action, text[:MAX_TEXT], CONFIG_SCHEMA, document),
        )
        version = int(cur.lastrowid or 0)
        if version % PRUNE_EVERY == 0:
            conn.execute(
                "DELETE FROM config_version WHERE version <= ?", (version - self._max_versions,)
            )
        detail = "\n".join(str(c) for c in changes)
        self.audit.record_in(conn, author, f"config.{action}", text, detail, version)
        log.info("configuration version %d by %s: %s", version, author, text)
        return VersionInfo(version, now, author[:MAX_TEXT], action, text[:MAX_TEXT])


def _summarize(changes: list[Change]) -> str:
    if not changes:
        return "no changes"
    paths = [c.path for c in changes[:MAX_SUMMARY_PATHS]]
    more = len(changes) - len(paths)
    noun = "change" if len(changes) == 1 else "changes"
    return f"{len(changes)} {noun}: {', '.join(paths)}" + (f" and {more} more" if more else "")
