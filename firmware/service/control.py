"""The appliance's control API methods: ports, configuration, logs, hardware tests, updates.

``ControlApi`` registers the methods on an :class:`firmware.api.server.ApiServer` and
turns the appliance's changes into events (``ports.state``, ``alarms.*``, ``logs.record``).
Handlers are thin: the store, the update code and the hwtest runner do the work, in a
thread or a child process when it would block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from firmware.api.core import CallContext
from firmware.api.jobs import JobError, JobFailed, JobProgress
from firmware.api.protocol import ApiFault, ErrorCode, JsonValue
from firmware.api.schema import NoParams
from firmware.api.server import ApiServer
from firmware.service import backup
from firmware.service.appliance import Appliance
from firmware.service.conference import ConferenceRegistry
from firmware.service.confrec_api import ConfRecApi
from firmware.service.logring import LEVELS, LogRecord, LogRing
from firmware.service.queues import register_queues_api
from firmware.service.recording import RecordingError, Recordings
from firmware.service.sipbridge import SipBridge
from firmware.service.voicemail_api import VoicemailApi
from firmware.sip.errors import SipUsageError
from firmware.store import (
    Config,
    ConfigError,
    ConfigStore,
    NetworkConfig,
    UnknownVersion,
    VersionConflict,
    VersionInfo,
    dumps_toml,
    loads_toml,
)

log = logging.getLogger(__name__)

MAX_TOML_CHARS: Final = 512 * 1024  # the store refuses bigger documents anyway
MAX_HISTORY: Final = 200
MAX_TAIL: Final = 1000
HWTEST_TIMEOUT_S: Final = 600.0  # a manual bench run waits for a technician
HWTEST_PREFIX: Final = "@@ponte-hwtest "  # hwtests.cli.PROGRESS_PREFIX (not imported: a child)
MAX_HWTEST_LINE: Final = 64 * 1024


# --- parameters ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TomlParams:
    toml: str = field(metadata={"doc": "the whole configuration as TOML", "max_length": 524288})


@dataclass(frozen=True, slots=True)
class ApplyParams:
    toml: str = field(metadata={"doc": "the whole configuration as TOML", "max_length": 524288})
    base_version: int = field(metadata={"doc": "the version the edit started from", "min": 1})
    summary: str = field(default="", metadata={"max_length": 200})


@dataclass(frozen=True, slots=True)
class HistoryParams:
    limit: int = field(default=50, metadata={"min": 1, "max": MAX_HISTORY})


@dataclass(frozen=True, slots=True)
class DiffParams:
    old: int = field(metadata={"min": 1})
    new: int | None = field(default=None, metadata={"doc": "default: the current version"})


@dataclass(frozen=True, slots=True)
class RollbackParams:
    version: int = field(metadata={"min": 1, "doc": "the version to make current again"})
    base_version: int | None = field(default=None, metadata={"min": 1})


@dataclass(frozen=True, slots=True)
class ExportParams:
    passphrase: str | None = field(
        default=None, metadata={"doc": "seal the backup (AES-256-GCM, scrypt key)"}
    )


@dataclass(frozen=True, slots=True)
class ImportParams:
    text: str = field(metadata={"doc": "a TOML export or a sealed backup", "max_length": 2097152})
    passphrase: str | None = None
    base_version: int | None = field(default=None, metadata={"min": 1})


@dataclass(frozen=True, slots=True)
class TailParams:
    lines: int = field(default=200, metadata={"min": 0, "max": MAX_TAIL})
    level: str = field(default="DEBUG", metadata={"doc": "lowest level shown"})
    contains: str = field(default="", metadata={"max_length": 200})

    def __post_init__(self) -> None:
        from firmware.api.schema import FieldError

        if self.level.upper() not in LEVELS:
            raise FieldError("level", f"must be one of {', '.join(LEVELS)}")


@dataclass(frozen=True, slots=True)
class MessagesParams:
    limit: int = field(default=200, metadata={"min": 1, "max": 200})
    contains: str = field(default="", metadata={"max_length": 200, "doc": "only messages with"})


@dataclass(frozen=True, slots=True)
class RegisterParams:
    account: str = field(metadata={"doc": "a trunk or per-port account name", "max_length": 64})
    timeout_s: float = field(default=10.0, metadata={"min": 1, "max": 60})


@dataclass(frozen=True, slots=True)
class LevelsParams:
    port: int = field(metadata={"doc": "the port number (ports.list)", "min": 1})


@dataclass(frozen=True, slots=True)
class HwtestParams:
    k: str = field(default="", metadata={"doc": "only tests matching this -k expression"})


def _author(ctx: CallContext) -> str:
    # One admin account: the audit record names it and the client it came through.
    return f"admin via {ctx.peer.client_name or 'api'}"


def _info(info: VersionInfo) -> dict[str, JsonValue]:
    return {
        "version": info.version,
        "created_at": info.created_at.isoformat(),
        "author": info.author,
        "action": info.action,
        "summary": info.summary,
    }


def _config_fault(exc: ConfigError, param: str) -> ApiFault:
    errors: list[JsonValue] = [{"path": i.path, "message": i.message} for i in exc.issues]
    first = exc.issues[0] if exc.issues else None
    message = f"{len(exc.issues)} error(s): {first}" if first else "configuration refused"
    return ApiFault(ErrorCode.INVALID_PARAMS, message, f"params.{param}", {"errors": errors})


def _conflict(exc: VersionConflict) -> ApiFault:
    return ApiFault(
        ErrorCode.INVALID_STATE,
        f"the configuration changed since version {exc.expected} (now {exc.actual}): "
        "reload and edit again",
        "params.base_version",
        {"current_version": exc.actual},
    )


def network_file_text(net: NetworkConfig) -> str:
    """The systemd-networkd unit for the box's Ethernet port (systemd.network(5))."""
    lines = ["# Written by Ponte from its configuration; edits here are overwritten.", ""]
    lines += ["[Match]", "Name=eth0", "", "[Network]"]
    if net.mode == "dhcp":
        lines.append("DHCP=yes")
    else:
        lines.append(f"Address={net.address}")
        if net.gateway:
            lines.append(f"Gateway={net.gateway}")
        lines += [f"DNS={d}" for d in net.dns if d]
    lines += [f"NTP={n}" for n in net.ntp]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ControlApi:
    """The methods ``ponte run`` serves, over one appliance and its configuration store."""

    def __init__(
        self,
        server: ApiServer,
        appliance: Appliance,
        *,
        data_dir: Path,
        network_file: Path | None,
        logs: LogRing,
        simulated: bool,
    ) -> None:
        self.server = server
        self.appliance = appliance
        self.data_dir = data_dir
        self.network_file = network_file
        self.logs = logs
        self.simulated = simulated
        # Call recordings and conferences (firmware.service.confrec_api): the recordings
        # directory is opened in attach(), once the store is; the call flow records
        # through self.recordings and puts its live conferences in self.conferences.
        self.recordings: Recordings | None = None
        self.conferences = ConferenceRegistry()
        self._register()
        ConfRecApi(
            server,
            config=lambda: self.store.current().config,
            recordings=lambda: self.recordings,
            conferences=self.conferences,
        )

    @property
    def store(self) -> ConfigStore:
        store = self.appliance.store
        if store is None:
            raise ApiFault(ErrorCode.INVALID_STATE, "the configuration store is not open")
        return store

    def attach(self) -> None:
        """Start publishing: call after the server started (it owns the loop)."""
        self.appliance.publish = self._publish
        self.logs.attach(asyncio.get_running_loop(), self._publish_log)
        self.write_network_file(self.store.current().config)
        self._open_recordings()

    def _open_recordings(self) -> None:
        recordings = Recordings.for_data_dir(self.store.db, self.data_dir)
        try:
            recordings.open(self.store.current().config.recording)
        except (OSError, RecordingError) as exc:
            log.error("call recordings are unavailable: %s", exc)
            return
        recordings.start_retention(lambda: self.store.current().config.recording)
        self.recordings = recordings

    def detach(self) -> None:
        if self.recordings is not None:
            self.recordings.close()
            self.recordings = None
        self.logs.detach()
        self.voicemail.close()
        self.appliance.publish = lambda topic, data: None

    def _publish(self, topic: str, data: dict[str, Any]) -> None:
        self.server.publish(topic, data)

    def _publish_log(self, record: LogRecord) -> None:
        self.server.publish("logs.record", record.to_json())

    def write_network_file(self, config: Config) -> None:
        if self.network_file is None:
            return
        try:
            write_atomic(self.network_file, network_file_text(config.network))
        except OSError as exc:
            log.error("cannot write the network file %s: %s", self.network_file, exc)

    # -- registration ------------------------------------------------------------------
    def _register(self) -> None:
        s = self.server
        s.register(
            "ports.list",
            self.ports_list,
            NoParams,
            result="{ports: [{port, kind, state, tone, since}], linecard: 'up'|'down'}",
            summary="Every analogue port and its line state (events: ports.state)",
        )
        s.register(
            "alarms.list",
            self.alarms_list,
            NoParams,
            result="{alarms: [{id, severity, text, since}]}",
            summary="Alarms raised and not cleared (events: alarms.raised, alarms.cleared)",
        )
        s.register(
            "config.get",
            self.config_get,
            NoParams,
            result="{version, toml (secrets redacted)}",
            summary="The configuration in force, as TOML",
            requires_login=True,
        )
        s.register(
            "config.validate",
            self.config_validate,
            TomlParams,
            result="{valid, errors: [{path, message}]}",
            summary="Check a configuration without saving it; every error with its path",
            requires_login=True,
        )
        s.register(
            "config.apply",
            self.config_apply,
            ApplyParams,
            result="{version, created_at, author, action, summary, changed}",
            summary="Save a configuration as the next version (refused if base_version is stale)",
            requires_login=True,
        )
        s.register(
            "config.history",
            self.config_history,
            HistoryParams,
            result="{versions: [{version, created_at, author, action, summary}]} newest first",
            summary="Saved configuration versions",
            requires_login=True,
        )
        s.register(
            "config.diff",
            self.config_diff,
            DiffParams,
            result="{old, new, changes: [{path, text}]}",
            summary="What changed between two versions (secrets shown as changed only)",
            requires_login=True,
        )
        s.register(
            "config.rollback",
            self.config_rollback,
            RollbackParams,
            result="{version, created_at, author, action, summary, changed}",
            summary="Make an earlier version current again (as a new version)",
            requires_login=True,
        )
        s.register(
            "config.export",
            self.config_export,
            ExportParams,
            result="{text, encrypted, version}",
            summary="A full backup (with secrets), sealed when a passphrase is given",
            requires_login=True,
        )
        s.register(
            "config.import",
            self.config_import,
            ImportParams,
            result="{version, created_at, author, action, summary, changed}",
            summary="Restore a backup (TOML or sealed); validated before anything is saved",
            requires_login=True,
        )
        s.register(
            "logs.tail",
            self.logs_tail,
            TailParams,
            result="{records: [{seq, time, level, name, message}]} oldest first",
            summary="The latest log records (events: logs.record)",
        )
        s.register(
            "hwtest.run",
            self.hwtest_run,
            HwtestParams,
            result="{job}; the job's result is {report, passed, path}",
            summary="Run the line-card test suite as a job (progress per test)",
            requires_login=True,
        )
        s.register(
            "sip.status",
            self.sip_status,
            NoParams,
            result="{running, transports: [{kind, host, port}], legs_in_use, legs_max, "
            "registrations: [{account, registered, code, reason, expires_s, retry_attempt, "
            "retry_in_s, since}], invites_refused, events_dropped}",
            summary="The SIP stack: transports, registrations, legs in use "
            "(events: sip.registration)",
        )
        s.register(
            "sip.messages",
            self.sip_messages,
            MessagesParams,
            result="{messages: [{time, direction, transport, remote, first_line, text}]} "
            "oldest first",
            summary="The last SIP messages sent and received (at most 200, 4 KiB each)",
            requires_login=True,
        )
        s.register(
            "sip.register_now",
            self.sip_register_now,
            RegisterParams,
            result="{account, registered, code, reason, expires_s, ...}",
            summary="Send a REGISTER for a trunk or account now and report its outcome",
            requires_login=True,
        )
        s.register(
            "calls.list",
            self.calls_list,
            NoParams,
            result="{calls: [{leg, direction, account, remote, state, port, hold, bridged_with, "
            "started, answered, "
            "quality: {codec, rx_jitter_ms, rx_loss_pct, rtt_ms, mos, jitter_buffer_ms} | null}], "
            "local: [{ports, leg, from, to, via, state, reason, sip_code, hold, age_s}]}",
            summary="Calls in progress: SIP legs with their quality, and calls between lines",
        )
        s.register(
            "ports.levels",
            self.ports_levels,
            LevelsParams,
            result="{port, rx_dbm0, rx_peak_dbm0, tx_dbm0, tx_peak_dbm0, floor_dbm0, frames}",
            summary="A line's audio levels now: what it hears (rx) and plays (tx), in dBm0 "
            "(300 ms average, 1.5 s peak-hold)",
        )
        s.register(
            "update.status",
            self.update_status,
            NoParams,
            result="{available, reason?, booted, order, last_good, floor, slots}",
            summary="Firmware slots and boot order (read-only)",
        )
        register_queues_api(s, lambda: self.appliance.calls)
        self.voicemail = VoicemailApi(
            s,
            self.data_dir,
            lambda: self.store.current().config,
            store=getattr(self.appliance, "voicemail", None),
        )

    # -- ports and alarms ---------------------------------------------------------------
    async def ports_list(self, params: NoParams, ctx: CallContext) -> JsonValue:
        ports: list[JsonValue] = [v.to_json() for v in self.appliance.port_views()]
        return {"ports": ports, "linecard": "up" if self.appliance.healthy() else "down"}

    async def alarms_list(self, params: NoParams, ctx: CallContext) -> JsonValue:
        alarms: list[JsonValue] = [a.to_json() for a in self.appliance.alarms.values()]
        return {"alarms": alarms}

    async def ports_levels(self, params: LevelsParams, ctx: CallContext) -> JsonValue:
        media = self.appliance.media.get(params.port)
        if media is None:
            known = ", ".join(str(p) for p in sorted(self.appliance.media)) or "none"
            raise ApiFault(
                ErrorCode.INVALID_PARAMS,
                f"no port {params.port} with audio (ports: {known})",
                "params.port",
            )
        levels: dict[str, JsonValue] = {"port": params.port}
        levels.update(media.levels.snapshot())
        return levels

    # -- SIP and calls -------------------------------------------------------------------
    async def sip_status(self, params: NoParams, ctx: CallContext) -> JsonValue:
        sip = self.appliance.sip
        if sip is None:
            return {"running": False, "legs_in_use": 0, "legs_max": 0, "registrations": []}
        status: JsonValue = sip.status()
        return status

    def _sip(self) -> SipBridge:
        sip = self.appliance.sip
        if sip is None or not sip.endpoint.running:
            raise ApiFault(ErrorCode.INVALID_STATE, "the SIP stack is not running")
        return sip

    async def sip_messages(self, params: MessagesParams, ctx: CallContext) -> JsonValue:
        traces = self._sip().endpoint.messages()
        if params.contains:
            traces = tuple(t for t in traces if params.contains in t.text)
        out: list[JsonValue] = [
            {
                "time": t.time,
                "direction": t.direction,
                "transport": t.transport,
                "remote": t.remote,
                "first_line": t.first_line,
                "text": t.text,
            }
            for t in traces[-params.limit :]
        ]
        return {"messages": out}

    async def sip_register_now(self, params: RegisterParams, ctx: CallContext) -> JsonValue:
        sip = self._sip()
        try:
            reg = await sip.register_now(params.account, params.timeout_s)
        except SipUsageError as exc:
            raise ApiFault(ErrorCode.INVALID_PARAMS, str(exc), "params.account") from None
        except TimeoutError:
            raise ApiFault(
                ErrorCode.TIMEOUT, f"no answer to the REGISTER within {params.timeout_s:g} s"
            ) from None
        result: JsonValue = reg.to_json()
        return result

    async def calls_list(self, params: NoParams, ctx: CallContext) -> JsonValue:
        sip = self.appliance.sip
        calls: list[JsonValue] = []
        if sip is not None:
            for leg in list(sip.legs.values()):
                quality: JsonValue = None
                if leg.call_id is not None and leg.state == "confirmed":
                    try:
                        q = await sip.endpoint.call_quality(leg.call_id)
                    except Exception as exc:  # the call ended while we asked
                        log.debug("quality of call %s: %s", leg.call_id, exc)
                    else:
                        quality = {
                            "codec": q.codec,
                            "rx_jitter_ms": q.rx_jitter_ms,
                            "rx_loss_pct": q.rx_loss_pct,
                            "rtt_ms": q.rtt_ms,
                            "mos": q.mos,
                            "jitter_buffer_ms": q.jitter_buffer_ms,
                        }
                calls.append(
                    {
                        "leg": leg.leg,
                        "direction": leg.direction,
                        "account": leg.account,
                        "remote": leg.remote,
                        "state": leg.state,
                        "port": leg.port,
                        "started": leg.started,
                        "answered": leg.answered,
                        "quality": quality,
                    }
                )
        local: list[JsonValue] = []
        now_ms = int(time.monotonic() * 1000)
        if self.appliance.calls is not None:
            local = [
                {
                    "ports": list(row.ports),
                    "leg": row.leg,
                    "from": row.from_,
                    "to": row.to,
                    "via": row.via,
                    "state": row.state,
                    "reason": row.reason,
                    "sip_code": row.sip_code,
                    "group": row.group,  # "group 600" / "queue 700" while in one
                    "hold": row.hold,
                    # call control's clock is monotonic ms: the API speaks seconds of age
                    "age_s": round(max(0, now_ms - row.started) / 1000, 1),
                }
                for row in self.appliance.calls.control.calls_view()
            ]
        return {"calls": calls, "local": local}

    # -- configuration ---------------------------------------------------------------------
    async def config_get(self, params: NoParams, ctx: CallContext) -> JsonValue:
        def read() -> dict[str, JsonValue]:
            current = self.store.current()
            return {"version": current.version, "toml": dumps_toml(current.config, redact=True)}

        return await asyncio.to_thread(read)

    async def config_validate(self, params: TomlParams, ctx: CallContext) -> JsonValue:
        def check() -> list[JsonValue]:
            try:
                loads_toml(params.toml, self.store.current().config)
            except ConfigError as exc:
                return [{"path": i.path, "message": i.message} for i in exc.issues]
            return []

        errors = await asyncio.to_thread(check)
        return {"valid": not errors, "errors": errors}

    async def _save(self, run: Any) -> JsonValue:
        head = self.store.head()
        try:
            info: VersionInfo = await asyncio.to_thread(run)
        except ConfigError as exc:
            raise _config_fault(exc, "toml") from None
        except VersionConflict as exc:
            raise _conflict(exc) from None
        current = self.store.current()
        self.write_network_file(current.config)
        changed = info.version != head
        if changed:
            self.server.publish("config.changed", _info(info))
            self.appliance.reconfigure(current.config, current.version)
        return {**_info(info), "changed": changed}

    async def config_apply(self, params: ApplyParams, ctx: CallContext) -> JsonValue:
        store = self.store

        def run() -> VersionInfo:
            config = loads_toml(params.toml, store.current().config)
            return store.apply(
                config,
                author=_author(ctx),
                summary=params.summary,
                expected_version=params.base_version,
            )

        return await self._save(run)

    async def config_history(self, params: HistoryParams, ctx: CallContext) -> JsonValue:
        infos = await asyncio.to_thread(self.store.history, params.limit)
        versions: list[JsonValue] = [_info(i) for i in infos]
        return {"versions": versions}

    async def config_diff(self, params: DiffParams, ctx: CallContext) -> JsonValue:
        store = self.store
        new = params.new if params.new is not None else store.head()
        try:
            changes = await asyncio.to_thread(store.diff, params.old, new)
        except UnknownVersion as exc:
            which = "old" if not _exists(store, params.old) else "new"
            raise ApiFault(ErrorCode.NOT_FOUND, str(exc), f"params.{which}") from None
        items: list[JsonValue] = [{"path": c.path, "text": str(c)} for c in changes]
        return {"old": params.old, "new": new, "changes": items}

    async def config_rollback(self, params: RollbackParams, ctx: CallContext) -> JsonValue:
        store = self.store
        if not _exists(store, params.version):
            raise ApiFault(
                ErrorCode.NOT_FOUND, f"no configuration version {params.version}", "params.version"
            )

        def run() -> VersionInfo:
            return store.rollback(
                params.version, author=_author(ctx), expected_version=params.base_version
            )

        return await self._save(run)

    async def config_export(self, params: ExportParams, ctx: CallContext) -> JsonValue:
        store = self.store

        def run() -> dict[str, JsonValue]:
            current = store.current()
            text = dumps_toml(current.config)
            if params.passphrase:
                text = backup.seal(text, params.passphrase)
            return {"text": text, "encrypted": bool(params.passphrase), "version": current.version}

        try:
            return await asyncio.to_thread(run)
        except backup.BackupError as exc:
            raise ApiFault(ErrorCode.INVALID_PARAMS, str(exc), "params.passphrase") from None

    async def config_import(self, params: ImportParams, ctx: CallContext) -> JsonValue:
        store = self.store
        text = params.text
        if backup.is_sealed(text):
            try:
                text = await asyncio.to_thread(backup.unseal, text, params.passphrase)
            except backup.BackupError as exc:
                where = "params.passphrase" if "passphrase" in str(exc) else "params.text"
                raise ApiFault(ErrorCode.INVALID_PARAMS, str(exc), where) from None

        def run() -> VersionInfo:
            config = loads_toml(text, store.current().config)
            return store.apply(
                config,
                author=_author(ctx),
                summary="restored from a backup",
                expected_version=params.base_version,
                action="import",
            )

        try:
            return await self._save(run)
        except ApiFault as fault:
            if fault.info.path == "params.toml":
                raise ApiFault(
                    fault.info.code, fault.info.message, "params.text", fault.info.data
                ) from None
            raise

    # -- logs -----------------------------------------------------------------------------
    async def logs_tail(self, params: TailParams, ctx: CallContext) -> JsonValue:
        records: list[JsonValue] = [
            r.to_json() for r in self.logs.tail(params.lines, params.level.upper(), params.contains)
        ]
        return {"records": records}

    # -- hardware tests ---------------------------------------------------------------------
    async def hwtest_run(self, params: HwtestParams, ctx: CallContext) -> JsonValue:
        try:
            job = self.server.jobs.start(
                "hwtest.linecard",
                lambda progress: self._hwtest(progress, params.k),
                title="Line-card tests",
            )
        except JobError as exc:
            raise ApiFault(ErrorCode.INVALID_STATE, str(exc)) from None
        return {"job": job}

    async def _hwtest(self, progress: JobProgress, k: str) -> JsonValue:
        when = dt.datetime.now(dt.UTC)
        report = self.data_dir / "hwtest" / f"report-{when:%Y%m%d-%H%M%S}-{progress.job_id}.txt"
        report.parent.mkdir(parents=True, exist_ok=True)
        # The suite runs in a child process: it brings up its own simulated card (or
        # drives the real one) with pytest, which must never block this loop.
        argv = [sys.executable, "-m", "firmware", "hwtest", "--progress-jsonl"]
        argv += ["--report", str(report)]
        if k:
            argv += ["-k", k]
        progress.update(0.0, "starting the test suite")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=MAX_HWTEST_LINE,
        )
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(HWTEST_TIMEOUT_S):
                while line := await proc.stdout.readline():
                    self._hwtest_line(progress, line)
                status = await proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if not report.exists():
            raise JobFailed(f"the test suite did not run (exit status {status})")
        text = await asyncio.to_thread(report.read_text)
        return {"report": text, "passed": status == 0, "path": str(report)}

    def _hwtest_line(self, progress: JobProgress, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith(HWTEST_PREFIX):
            return
        try:
            item = json.loads(line[len(HWTEST_PREFIX) :])
            total, done = int(item["total"]), int(item["done"])
        except (ValueError, KeyError, TypeError):
            log.warning("hwtest: unreadable progress line %r", line[:200])
            return
        test = str(item.get("test", ""))
        message = f"{item.get('result', '')} {test}".strip() if test else f"{total} tests"
        progress.update(done / total if total else None, message)

    # -- updates -----------------------------------------------------------------------------
    async def update_status(self, params: NoParams, ctx: CallContext) -> JsonValue:
        return await asyncio.to_thread(_update_status)


def _exists(store: ConfigStore, version: int) -> bool:
    try:
        store.get(version)
    except UnknownVersion:
        return False
    return True


def _update_status() -> dict[str, JsonValue]:
    from firmware.update import install
    from firmware.update.device import Device, DeviceConfig, config_path
    from firmware.update.errors import UpdateError

    path = config_path(None, None)
    if not os.path.exists(path):
        return {"available": False, "reason": f"no update configuration at {path}"}
    try:
        s = install.status(Device(DeviceConfig.load(path)))
    except (UpdateError, OSError) as exc:
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
    slots: dict[str, JsonValue] = {
        name: {**rec.to_obj(), "attempts_left": s.env.left[name]}
        for name, rec in s.state.slots.items()
    }
    return {
        "available": True,
        "booted": s.booted,
        "order": list(s.env.order),
        "last_good": s.state.last_good,
        "floor": s.state.floor,
        "slots": slots,
    }


__all__ = ["ControlApi", "network_file_text"]


DOC_BEGIN: Final = "<!-- BEGIN GENERATED: appliance methods (ponte run --api-docs) -->"
DOC_END: Final = "<!-- END GENERATED: appliance methods -->"


def methods_doc_block(server: ApiServer) -> str:
    """docs/api.md's table of the methods ``ponte run`` adds to the built-in ones."""
    from firmware.api import docgen

    builtin = ApiServer(server.path, credentials=server.auth.store).registry.names()
    specs = [spec for spec in server.method_specs() if spec.name not in builtin]
    return f"{DOC_BEGIN}\n{docgen.methods_table(specs)}{DOC_END}"
