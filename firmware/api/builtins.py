"""The methods every Ponte API server has: api.*, events.*, system.info, jobs.*, auth.*."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from firmware.api.auth import (
    PASSWORD_MAX_CHARS,
    SESSION_ABSOLUTE_S,
    SESSION_IDLE_S,
    AuthError,
)
from firmware.api.core import HELLO_METHOD, CallContext, HelloParams, MethodSpec
from firmware.api.events import MAX_SUBSCRIPTIONS, WELL_KNOWN_TOPICS, valid_pattern
from firmware.api.jobs import JobError
from firmware.api.protocol import PROTOCOL_VERSION, ApiFault, ErrorCode, JsonValue
from firmware.api.schema import FieldError, NoParams

if TYPE_CHECKING:
    from firmware.api.server import ApiServer

_TOPICS_DOC = "topic patterns: 'calls' receives calls and calls.*; '*' receives everything"


@dataclass(frozen=True, slots=True)
class SubscribeParams:
    topics: list[str] = field(
        metadata={"doc": _TOPICS_DOC, "min_length": 1, "max_length": MAX_SUBSCRIPTIONS}
    )

    def __post_init__(self) -> None:
        for i, topic in enumerate(self.topics):
            if not valid_pattern(topic):
                raise FieldError(
                    f"topics[{i}]", f"{topic!r} is not a topic pattern (a.b.c lower-case or *)"
                )


@dataclass(frozen=True, slots=True)
class UnsubscribeParams:
    topics: list[str] | None = field(
        default=None, metadata={"doc": "patterns to drop; omitted or null drops all"}
    )


@dataclass(frozen=True, slots=True)
class JobParams:
    job: str = field(metadata={"doc": "job id from the method that started it", "max_length": 64})


@dataclass(frozen=True, slots=True)
class LoginParams:
    password: str = field(metadata={"doc": "the admin password", "max_length": PASSWORD_MAX_CHARS})


@dataclass(frozen=True, slots=True)
class ResumeParams:
    token: str = field(metadata={"doc": "token from auth.login", "max_length": 128})


@dataclass(frozen=True, slots=True)
class ChangePasswordParams:
    old_password: str = field(metadata={"max_length": PASSWORD_MAX_CHARS})
    new_password: str = field(metadata={"max_length": PASSWORD_MAX_CHARS})


def _auth_fault(exc: AuthError, password_field: str) -> ApiFault:
    data: dict[str, JsonValue] | None = (
        {"retry_after_s": round(exc.retry_after, 1)} if exc.retry_after is not None else None
    )
    if exc.reason == "locked_out":
        return ApiFault(ErrorCode.LOCKED_OUT, exc.message, None, data)
    if exc.reason == "weak_password":
        return ApiFault(ErrorCode.INVALID_PARAMS, exc.message, "params.new_password")
    return ApiFault(ErrorCode.AUTH_FAILED, exc.message, f"params.{password_field}", data)


def register_builtins(server: ApiServer) -> None:
    reg = server.register

    server.registry.add(
        MethodSpec(
            HELLO_METHOD,
            None,
            HelloParams,
            "{protocol, server, server_version, client_id, max_message_bytes}",
            "Open the conversation: must be the first request; refuses another major version",
        )
    )

    async def version(params: NoParams, ctx: CallContext) -> JsonValue:
        return {"protocol": PROTOCOL_VERSION, "server_version": server.version}

    reg(
        "api.version",
        version,
        NoParams,
        result="{protocol, server_version}",
        summary="Protocol and firmware versions",
    )

    async def methods(params: NoParams, ctx: CallContext) -> JsonValue:
        return {
            "methods": [spec.describe() for spec in server.method_specs()],
            "topics": list(WELL_KNOWN_TOPICS),
        }

    reg(
        "api.methods",
        methods,
        NoParams,
        result="{methods: [{name, summary, params (JSON schema), signature, result, "
        "requires_login, timeout_s}], topics: [well-known topic]}",
        summary="Every method with its parameter schema (introspection)",
    )

    async def clients(params: NoParams, ctx: CallContext) -> JsonValue:
        return {
            "clients": [
                {
                    "client_id": peer.id,
                    "client": peer.client_name,
                    "you": peer is ctx.peer,
                    "logged_in": peer.session is not None,
                    "subscriptions": sorted(server.bus.subscriptions(peer)),
                    "requests_running": len(peer.inflight),
                    "queued_bytes": peer.outbound.queued_bytes,
                    "events_dropped": peer.outbound.dropped_total,
                }
                for peer in server.peers().values()
            ],
            "refused": server.refused_clients,
            "events_published": server.bus.published,
        }

    reg(
        "api.clients",
        clients,
        NoParams,
        result="{clients: [{client_id, client, you, logged_in, subscriptions, "
        "requests_running, queued_bytes, events_dropped}], refused, events_published}",
        summary="Who is connected and how their queues are doing (diagnostics)",
    )

    async def subscribe(params: SubscribeParams, ctx: CallContext) -> JsonValue:
        try:
            current = server.bus.subscribe(ctx.peer, params.topics)
        except ValueError as exc:
            raise ApiFault(ErrorCode.INVALID_PARAMS, str(exc), "params.topics") from None
        return {"topics": [*sorted(current)], "seq": server.bus.seq}

    reg(
        "events.subscribe",
        subscribe,
        SubscribeParams,
        result="{topics: [every pattern now subscribed], seq: last event seq so far}",
        summary="Receive events on these topics (adds to earlier subscriptions)",
    )

    async def unsubscribe(params: UnsubscribeParams, ctx: CallContext) -> JsonValue:
        remaining = server.bus.unsubscribe(ctx.peer, params.topics)
        return {"topics": [*sorted(remaining)]}

    reg(
        "events.unsubscribe",
        unsubscribe,
        UnsubscribeParams,
        result="{topics: [patterns still subscribed]}",
        summary="Stop receiving events",
    )

    async def info(params: NoParams, ctx: CallContext) -> JsonValue:
        return server.sysinfo.snapshot()

    reg(
        "system.info",
        info,
        NoParams,
        result="{version, hostname, uptime_s, service_uptime_s, cpu: {count, percent, load}, "
        "memory: {total_bytes, available_bytes}, python, pjsua2}",
        summary="Firmware and library versions, uptime, CPU and memory",
    )

    async def jobs_list(params: NoParams, ctx: CallContext) -> JsonValue:
        return {"jobs": [job.to_json() for job in server.jobs.list()]}

    reg(
        "jobs.list",
        jobs_list,
        NoParams,
        result="{jobs: [job]}",
        summary="Running and recently finished jobs",
    )

    def _job_fault(exc: JobError) -> ApiFault:
        code = ErrorCode.NOT_FOUND if exc.reason == "not_found" else ErrorCode.INVALID_STATE
        return ApiFault(code, str(exc), "params.job")

    async def jobs_get(params: JobParams, ctx: CallContext) -> JsonValue:
        try:
            return server.jobs.get(params.job).to_json()
        except JobError as exc:
            raise _job_fault(exc) from None

    reg(
        "jobs.get",
        jobs_get,
        JobParams,
        result="job: {job, kind, title, state, progress, message, result, error}",
        summary="One job's state",
    )

    async def jobs_cancel(params: JobParams, ctx: CallContext) -> JsonValue:
        try:
            job = await server.jobs.cancel(params.job)
        except JobError as exc:
            raise _job_fault(exc) from None
        return job.to_json()

    reg(
        "jobs.cancel",
        jobs_cancel,
        JobParams,
        result="job (state 'cancelled')",
        summary="Cancel a running job and wait for it to end",
    )

    async def auth_status(params: NoParams, ctx: CallContext) -> JsonValue:
        now = server.clock()
        session = ctx.peer.session
        logged_in = session is not None and not session.expired(now)
        return {
            "first_run": server.auth.first_run(),
            "must_change_password": server.auth.must_change(),
            "logged_in": logged_in,
            "locked_for_s": server.auth.lockout.retry_after(now),
        }

    reg(
        "auth.status",
        auth_status,
        NoParams,
        result="{first_run, must_change_password, logged_in, locked_for_s (null if not)}",
        summary="What the console should show: first-run wizard, login, lock-out",
    )

    def _session_result(token: str, must_change: bool) -> JsonValue:
        return {
            "token": token,
            "must_change_password": must_change,
            "idle_timeout_s": SESSION_IDLE_S,
            "absolute_timeout_s": SESSION_ABSOLUTE_S,
        }

    async def login(params: LoginParams, ctx: CallContext) -> JsonValue:
        try:
            token, session = await server.auth.login(params.password)
        except AuthError as exc:
            raise _auth_fault(exc, "password") from None
        ctx.peer.session = session
        return _session_result(token, session.must_change)

    reg(
        "auth.login",
        login,
        LoginParams,
        result="{token, must_change_password, idle_timeout_s, absolute_timeout_s}",
        summary="Log this connection in with the admin password",
    )

    async def resume(params: ResumeParams, ctx: CallContext) -> JsonValue:
        session = server.auth.sessions.lookup(params.token, server.clock())
        if session is None:
            raise ApiFault(
                ErrorCode.AUTH_FAILED, "unknown or expired session token", "params.token"
            )
        ctx.peer.session = session
        return {"must_change_password": session.must_change}

    reg(
        "auth.resume",
        resume,
        ResumeParams,
        result="{must_change_password}",
        summary="Log this connection in with a session token",
    )

    async def change_password(params: ChangePasswordParams, ctx: CallContext) -> JsonValue:
        try:
            token, session = await server.auth.change_password(
                params.old_password, params.new_password
            )
        except AuthError as exc:
            raise _auth_fault(exc, "old_password") from None
        for peer in server.peers().values():
            peer.session = None  # every other session was revoked with the old password
        ctx.peer.session = session
        return _session_result(token, False)

    reg(
        "auth.change_password",
        change_password,
        ChangePasswordParams,
        result="{token, ...} a new session; every other session is logged out",
        summary="Set the admin password (needs the current one; ends first run)",
    )

    async def logout(params: NoParams, ctx: CallContext) -> JsonValue:
        session = ctx.peer.session
        if session is not None:
            server.auth.sessions.revoke(session)
            ctx.peer.session = None
        return {"logged_out": session is not None}

    reg(
        "auth.logout",
        logout,
        NoParams,
        result="{logged_out: whether a session ended}",
        summary="End this connection's session",
    )
