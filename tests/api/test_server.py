"""A real server and real clients over a real Unix socket: every error path, the caps."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from firmware.api.client import ApiClient, ApiError
from firmware.api.core import CallContext
from firmware.api.protocol import ApiFault, ErrorCode, JsonValue
from firmware.api.schema import NoParams
from firmware.api.server import SOCKET_MODE, ApiServer, ServerStartError, socket_group

from .conftest import Raw, make_server


async def test_socket_mode_and_group(server: ApiServer, sock_path: Path) -> None:
    st = os.stat(sock_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == SOCKET_MODE == 0o660
    assert st.st_gid == socket_group()[0]
    assert [p.name for p in sock_path.parent.iterdir()] == ["api.sock"]  # no temp name left


async def test_missing_group_is_logged(sock_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gid, found = socket_group()
    srv = make_server(sock_path)
    with caplog.at_level(logging.WARNING, logger="firmware.api.server"):
        await srv.start()
    await srv.stop()
    assert found or "group 'ponte' does not exist" in caplog.text
    assert gid == (os.getegid() if not found else gid)


async def test_socket_gets_the_named_group(sock_path: Path) -> None:
    import grp

    # Stand-in for 'ponte' (which the image creates): any other group we may chown to.
    usable = [
        g
        for g in grp.getgrall()
        if g.gr_gid != os.getegid() and (os.geteuid() == 0 or g.gr_gid in os.getgroups())
    ]
    if not usable:
        pytest.skip("no second group this user may give a file to")
    srv = make_server(sock_path, group=usable[0].gr_name)
    await srv.start()
    try:
        assert os.stat(sock_path).st_gid == usable[0].gr_gid
        assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o660
    finally:
        await srv.stop()


async def test_stale_socket_is_replaced(sock_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock_path))
    stale.close()  # the file stays, nobody listens: what a crashed server leaves
    srv = make_server(sock_path)
    await srv.start()
    async with ApiClient(sock_path) as api:
        assert (await api.call("api.version"))["protocol"] == "1.0"
    await srv.stop()
    assert not sock_path.exists()


async def test_live_server_is_not_displaced(server: ApiServer, sock_path: Path) -> None:
    second = make_server(sock_path)
    with pytest.raises(ServerStartError, match="in use"):
        await second.start()
    async with ApiClient(sock_path) as api:  # the first one still serves
        await api.call("api.version")


async def test_a_regular_file_is_not_touched(sock_path: Path) -> None:
    sock_path.write_text("precious")
    with pytest.raises(ServerStartError, match="not a socket"):
        await make_server(sock_path).start()
    assert sock_path.read_text() == "precious"


async def test_stop_leaves_a_replacement_socket_alone(sock_path: Path) -> None:
    srv = make_server(sock_path)
    await srv.start()
    sock_path.unlink()
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(sock_path))
    await srv.stop()
    assert sock_path.exists()  # not ours any more
    other.close()


# -- error paths over the wire ------------------------------------------------------------


async def test_errors_are_structured_and_the_connection_survives(
    server: ApiServer, sock_path: Path
) -> None:
    raw = await Raw.open(sock_path)
    await raw.send(b'{"id": 1, "method": "api.version"}\n')
    r = await raw.recv()
    assert r == {
        "id": 1,
        "error": {
            "code": "hello_required",
            "message": "send api.hello with version '1.0' before api.version",
            "path": "method",
        },
    }
    await raw.send_json({"id": 2, "method": "api.hello", "params": {"version": "2.0"}})
    r = await raw.recv()
    assert r["error"]["code"] == "unsupported_version"
    assert r["error"]["path"] == "params.version"
    assert r["error"]["data"] == {"supported": ["1.0"]}
    await raw.send_json({"id": 3, "method": "api.hello", "params": {"version": 1}})
    r = await raw.recv()
    assert r["error"] == {
        "code": "invalid_params",
        "message": "expected string, got integer",
        "path": "params.version",
    }
    await raw.hello()
    await raw.send(b'{"id": 4, "method": \n')
    r = await raw.recv()
    assert r["id"] is None and r["error"]["code"] == "parse_error" and r["error"]["path"] == ""
    r = await raw.call(5, "sytem.info")
    assert r["error"]["code"] == "unknown_method" and r["error"]["path"] == "method"
    assert "did you mean system.info" in r["error"]["message"]
    r = await raw.call(6, "jobs.get", {"job": 42})
    assert r["error"] == {
        "code": "invalid_params",
        "message": "expected string, got integer",
        "path": "params.job",
    }
    r = await raw.call(7, "jobs.get", {})
    assert r["error"]["path"] == "params.job" and "required" in r["error"]["message"]
    r = await raw.call(8, "events.subscribe", {"topics": ["ok", "Bad Topic"]})
    assert r["error"]["path"] == "params.topics[1]"
    r = await raw.call("nine", "jobs.get", {"job": "job-99"})
    assert r == {
        "id": "nine",
        "error": {"code": "not_found", "message": "no job 'job-99'", "path": "params.job"},
    }
    await raw.send(b"[1]\n")
    assert (await raw.recv())["error"]["code"] == "invalid_request"
    await raw.send(b"\xff\n")
    assert (await raw.recv())["error"]["code"] == "parse_error"
    r = await raw.call(10, "api.version")
    assert r["result"]["protocol"] == "1.0"  # still talking after all that
    await raw.close()


async def test_huge_message_is_refused_not_fatal(sock_path: Path) -> None:
    srv = make_server(sock_path, max_message=64 * 1024)
    await srv.start()
    raw = await Raw.open(sock_path)
    await raw.hello()
    blob = json.dumps({"id": 1, "method": "api.version", "params": {"x": "y" * 300_000}})
    await raw.send(blob.encode() + b"\n")
    r = await raw.recv()
    assert r["id"] is None and r["error"]["code"] == "message_too_large"
    assert r["error"]["data"] == {"limit": 64 * 1024}
    assert (await raw.call(2, "api.version"))["result"]["protocol"] == "1.0"
    await raw.close()
    await srv.stop()


async def test_one_byte_at_a_time(server: ApiServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    stream = (
        b'{"id":1,"method":"api.hello","params":{"version":"1.0","client":"slow"}}\r\n'
        b"\n"
        b'{"id":2,"method":"api.version"}\n'
        b'{"id":3,"method":"nope.nope"}\n'
    )
    for i in range(len(stream)):
        await raw.send(stream[i : i + 1])
    # Replies come in completion order (errors at once, calls when done): match by id.
    replies = sorted([await raw.recv() for _ in range(3)], key=lambda r: r["id"])
    assert [r["id"] for r in replies] == [1, 2, 3]
    assert replies[0]["result"]["protocol"] == "1.0"
    assert replies[1]["result"]["protocol"] == "1.0"
    assert replies[2]["error"]["code"] == "unknown_method"
    await raw.close()


async def test_duplicate_in_flight_id(sock_path: Path) -> None:
    srv = make_server(sock_path)
    release = asyncio.Event()

    async def wait(params: NoParams, ctx: CallContext) -> JsonValue:
        await release.wait()
        return "done"

    srv.register("test.wait", wait, NoParams, result="'done'", summary="waits")
    await srv.start()
    raw = await Raw.open(sock_path)
    await raw.hello()
    await raw.send_json({"id": 5, "method": "test.wait"})
    await raw.send_json({"id": 5, "method": "test.wait"})
    r = await raw.recv()
    assert r["error"]["code"] == "duplicate_id" and r["error"]["path"] == "id"
    release.set()
    assert await raw.recv() == {"id": 5, "result": "done"}
    await raw.close()
    await srv.stop()


@dataclass(frozen=True, slots=True)
class SleepParams:
    seconds: float = field(metadata={"min": 0})


async def test_timeouts_crashes_and_faults(
    sock_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    srv = make_server(sock_path)

    async def sleep(params: SleepParams, ctx: CallContext) -> JsonValue:
        await asyncio.sleep(params.seconds)
        return params.seconds

    async def crash(params: NoParams, ctx: CallContext) -> JsonValue:
        raise KeyError("secret detail")

    async def refuse(params: NoParams, ctx: CallContext) -> JsonValue:
        raise ApiFault(ErrorCode.INVALID_STATE, "port 3 is in a call", "params", {"port": 3})

    async def not_json(params: NoParams, ctx: CallContext) -> JsonValue:
        return {"when": object()}  # type: ignore[dict-item]  # the bug under test

    srv.register("test.sleep", sleep, SleepParams, result="seconds", summary="", timeout_s=0.2)
    srv.register("test.crash", crash, NoParams, result="-", summary="")
    srv.register("test.refuse", refuse, NoParams, result="-", summary="")
    srv.register("test.notjson", not_json, NoParams, result="-", summary="")
    await srv.start()
    async with ApiClient(sock_path) as api:
        with pytest.raises(ApiError) as info:
            await api.call("test.sleep", {"seconds": 30})
        assert info.value.code == "timeout"
        assert await api.call("test.sleep", {"seconds": 0}) == 0.0
        with caplog.at_level(logging.ERROR):
            with pytest.raises(ApiError) as info:
                await api.call("test.crash")
        assert info.value.code == "internal_error" and "secret" not in info.value.message
        assert "method test.crash failed" in caplog.text
        with pytest.raises(ApiError) as info:
            await api.call("test.refuse")
        assert (info.value.code, info.value.path, info.value.data) == (
            "invalid_state",
            "params",
            {"port": 3},
        )
        with pytest.raises(ApiError) as info:
            await api.call("test.notjson")
        assert info.value.code == "internal_error"
        assert await api.call("api.version")  # the connection survived all of it
    await srv.stop()


async def test_concurrent_clients(server: ApiServer, sock_path: Path) -> None:
    async def one(n: int) -> list[Any]:
        async with ApiClient(sock_path, client_name=f"c{n}") as api:
            return await asyncio.gather(*(api.call("jobs.list") for _ in range(20)))

    results = await asyncio.gather(*(one(n) for n in range(12)))
    assert all(r == {"jobs": []} for rs in results for r in rs)
    assert sum(len(rs) for rs in results) == 240


async def test_max_clients(sock_path: Path) -> None:
    srv = make_server(sock_path, max_clients=2)
    await srv.start()
    a, b = ApiClient(sock_path), ApiClient(sock_path)
    await a.connect()
    await b.connect()
    with pytest.raises(ApiError) as info:
        await ApiClient(sock_path).connect()
    assert info.value.code == "too_many_clients" and info.value.data == {"max_clients": 2}
    await a.close()
    for _ in range(1000):  # the server notices the hang-up asynchronously
        if srv.clients < 2:
            break
        await asyncio.sleep(0.01)
    async with ApiClient(sock_path) as c:
        await c.call("api.version")
    await b.close()
    await srv.stop()
    assert srv.refused_clients == 1


async def test_events_by_topic(server: ApiServer, sock_path: Path) -> None:
    async with ApiClient(sock_path) as calls, ApiClient(sock_path) as everything:
        assert await calls.subscribe("calls") == ["calls"]
        assert await everything.subscribe("*") == ["*"]
        server.publish("callsx", {"no": 1})  # not a calls.* topic
        server.publish("calls.ringing", {"port": 1, "from": "+3906123"})
        server.publish("ports.hook", {"port": 2})
        ev = await calls.next_event(5)
        assert (ev.topic, ev.data) == ("calls.ringing", {"port": 1, "from": "+3906123"})
        topics = [(await everything.next_event(5)).topic for _ in range(3)]
        assert topics == ["callsx", "calls.ringing", "ports.hook"]
        assert await calls.unsubscribe() == []
        server.publish("calls.ended", None)
        server.publish("calls.x", None)
        with pytest.raises(ApiError) as info:
            await calls.next_event(0.2)
        assert info.value.code == "client_timeout"
    with pytest.raises(Exception, match="invalid topic"):
        server.publish("Bad Topic", None)


async def test_slow_subscriber_is_capped_and_told(sock_path: Path) -> None:
    high_water = 32 * 1024
    srv = make_server(sock_path, event_high_water_bytes=high_water)
    await srv.start()
    raw = await Raw.open(sock_path)
    await raw.hello()
    assert "result" in await raw.call(1, "events.subscribe", {"topics": ["calls"]})
    payload = {"pad": "x" * 1000}
    published = 3000  # ~3 MB: far more than the socket buffers and the queue hold
    max_queued = 0
    for i in range(published):
        srv.publish("calls.tick", {"i": i, **payload})
        if i % 50 == 0:
            await asyncio.sleep(0)  # let the writer run into the full socket
        queued = srv.peers()[1].outbound.queued_bytes
        max_queued = max(max_queued, queued)
    assert max_queued <= high_water  # memory stays bounded while the client sleeps
    got, dropped = 0, 0
    while got + dropped < published:
        msg = await raw.recv()
        if msg["event"] == "api.events_dropped":
            dropped += msg["data"]["count"]
        else:
            got += 1
    assert dropped > 0 and got + dropped == published
    assert "result" in await raw.call(2, "api.version")  # still a working connection
    await raw.close()
    await srv.stop()


async def test_client_that_never_reads_replies_is_disconnected(sock_path: Path) -> None:
    srv = make_server(sock_path, outbound_max_bytes=256 * 1024)

    async def blob(params: NoParams, ctx: CallContext) -> JsonValue:
        return "b" * 100_000

    srv.register("test.blob", blob, NoParams, result="a big string", summary="")
    await srv.start()
    raw = await Raw.open(sock_path)
    await raw.hello()
    for i in range(200):  # 20 MB of replies asked for, none read
        raw.writer.write(json.dumps({"id": i, "method": "test.blob"}).encode() + b"\n")
    await raw.writer.drain()
    for _ in range(500):
        if srv.clients == 0:
            break
        await asyncio.sleep(0.01)
    assert srv.clients == 0  # the server let go of it; it did not buffer 20 MB
    data = await raw.reader.read()  # what reached the socket before the hang-up
    assert len(data) < 20_000_000
    await raw.close()
    await srv.stop()


async def test_stop_answers_in_flight_requests(sock_path: Path) -> None:
    srv = make_server(sock_path)

    async def forever(params: NoParams, ctx: CallContext) -> JsonValue:
        await asyncio.Event().wait()
        return None

    srv.register("test.forever", forever, NoParams, result="-", summary="", timeout_s=600)
    await srv.start()
    api = ApiClient(sock_path)
    await api.connect()
    call = asyncio.create_task(api.call("test.forever"))
    while not srv.peers()[1].inflight:
        await asyncio.sleep(0.01)
    await srv.stop()
    with pytest.raises(ApiError) as info:
        await call
    assert info.value.code == "shutting_down"
    await api.close()


# -- built-ins ----------------------------------------------------------------------------


async def test_methods_and_system_info(server: ApiServer, sock_path: Path) -> None:
    async with ApiClient(sock_path) as api:
        methods: Any = await api.call("api.methods")
        names = [m["name"] for m in methods["methods"]]
        assert names == sorted(server.registry.names())
        assert {"api.hello", "events.subscribe", "system.info", "auth.login"} <= set(names)
        sub = next(m for m in methods["methods"] if m["name"] == "events.subscribe")
        assert sub["params"]["required"] == ["topics"]
        assert sub["params"]["properties"]["topics"]["type"] == "array"
        info: Any = await api.call("system.info")
        assert info["pjsua2"] == "2.15.1.post1" and info["python"]
        assert info["memory"]["total_bytes"] > 0 and info["uptime_s"] > 0
        assert info["hostname"] == socket.gethostname()


async def test_jobs_progress_and_cancel(server: ApiServer, sock_path: Path) -> None:
    from firmware.api.jobs import JobFailed, JobProgress

    gate = asyncio.Event()

    async def work(progress: JobProgress) -> JsonValue:
        progress.update(0.5, "half way")
        await gate.wait()
        return {"ok": True}

    async def stuck(progress: JobProgress) -> JsonValue:
        await asyncio.Event().wait()
        return None

    async def bad(progress: JobProgress) -> JsonValue:
        raise JobFailed("line 2 has no loop current")

    @dataclass(frozen=True, slots=True)
    class StartParams:
        which: str

    async def start(params: StartParams, ctx: CallContext) -> JsonValue:
        fn = {"work": work, "stuck": stuck, "bad": bad}[params.which]
        return {"job": server.jobs.start(f"test.{params.which}", fn)}

    server.register("test.start", start, StartParams, result="{job}", summary="")
    async with ApiClient(sock_path) as api:
        await api.subscribe("jobs")
        job: Any = await api.call("test.start", {"which": "work"})
        started = await api.next_event(5)
        assert started.topic == "jobs.started" and started.data["job"] == job["job"]
        progress = await api.next_event(5)
        assert progress.topic == "jobs.progress"
        assert progress.data["progress"] == 0.5 and progress.data["message"] == "half way"
        gate.set()
        finished: Any = (await api.next_event(5)).data
        assert finished["state"] == "succeeded" and finished["result"] == {"ok": True}
        job = await api.call("test.start", {"which": "stuck"})
        await api.next_event(5)
        cancelled: Any = await api.call("jobs.cancel", {"job": job["job"]})
        assert cancelled["state"] == "cancelled"
        with pytest.raises(ApiError) as info:
            await api.call("jobs.cancel", {"job": job["job"]})
        assert info.value.code == "invalid_state"
        job = await api.call("test.start", {"which": "bad"})
        done: Any = await api.call("jobs.get", {"job": job["job"]})
        while done["state"] == "running":
            done = await api.call("jobs.get", {"job": job["job"]})
        assert done["state"] == "failed" and done["error"] == "line 2 has no loop current"
        listed: Any = await api.call("jobs.list")
        assert len(listed["jobs"]) == 3


async def test_silent_client_loses_its_slot(sock_path: Path) -> None:
    srv = make_server(sock_path, hello_timeout_s=0.5)
    await srv.start()
    raw = await Raw.open(sock_path)
    notice = await raw.recv()
    assert notice == {
        "event": "api.closing",
        "seq": 0,
        "data": {"reason": "no api.hello within 0.5 s"},
    }
    assert await raw.reader.read() == b""
    await raw.close()
    async with ApiClient(sock_path) as api:  # a client that says hello keeps its slot
        await asyncio.sleep(0.8)
        await api.call("api.version")
    await srv.stop()


async def test_stop_tells_clients_why(server: ApiServer, sock_path: Path) -> None:
    raw = await Raw.open(sock_path)
    await raw.hello()
    await server.stop()
    assert await raw.recv() == {
        "event": "api.closing",
        "seq": 0,
        "data": {"reason": "the server is stopping"},
    }
    await raw.close()


async def test_requests_beyond_the_inflight_cap_wait_unread(sock_path: Path) -> None:
    srv = make_server(sock_path, max_inflight=4)
    release = asyncio.Event()
    running: list[int] = []
    peak = 0

    @dataclass(frozen=True, slots=True)
    class N:
        n: int

    async def hold(params: N, ctx: CallContext) -> JsonValue:
        nonlocal peak
        running.append(params.n)
        peak = max(peak, len(running))
        await release.wait()
        running.remove(params.n)
        return params.n

    srv.register("test.hold", hold, N, result="n", summary="")
    await srv.start()
    async with ApiClient(sock_path) as api:
        calls = [asyncio.create_task(api.call("test.hold", {"n": i})) for i in range(20)]
        while len(running) < 4:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert len(running) == 4  # the other 16 wait; the server reads no further
        release.set()
        assert sorted(await asyncio.gather(*calls)) == list(range(20))
    assert peak == 4
    await srv.stop()


async def test_bad_events_are_the_publishers_bug(server: ApiServer) -> None:
    from firmware.api.protocol import ProtocolBug

    seq = server.bus.seq
    with pytest.raises(ProtocolBug):
        server.publish("calls.x", {"when": object()})  # type: ignore[dict-item]
    with pytest.raises(ProtocolBug):
        server.publish("calls.x", "x" * (2 << 20))
    with pytest.raises(ProtocolBug):
        server.publish("Calls", None)
    assert server.bus.seq == seq  # no gap for subscribers to puzzle over
    assert server.publish("calls.x", None) == seq + 1


async def test_decorated_methods_and_events_from_another_thread(sock_path: Path) -> None:
    import threading

    srv = make_server(sock_path)

    @dataclass(frozen=True, slots=True)
    class PortParams:
        port: int = field(metadata={"min": 1, "max": 8})

    @srv.method("ports.get", PortParams, result="{port, hook}", summary="One port")
    async def port_get(params: PortParams, ctx: CallContext) -> JsonValue:
        # a list[str] inside a dict: JSON results are covariant, no casts needed (mypy checks)
        return {"port": params.port, "hook": "on", "codecs": sorted({"PCMU", "PCMA"})}

    with pytest.raises(RuntimeError):
        srv.publish_threadsafe("ports.hook", None)  # not started: no loop to hand it to
    await srv.start()
    async with ApiClient(sock_path) as api:
        assert await api.call("ports.get", {"port": 2}) == {
            "port": 2,
            "hook": "on",
            "codecs": ["PCMA", "PCMU"],
        }
        with pytest.raises(ApiError) as info:
            await api.call("ports.get", {"port": 9})
        assert (info.value.path, info.value.message) == ("params.port", "must be <= 8, got 9")
        await api.subscribe("ports")

        def from_sip_thread() -> None:
            for i in range(3):
                srv.publish_threadsafe("ports.hook", {"port": i})

        thread = threading.Thread(target=from_sip_thread)
        thread.start()
        thread.join()
        assert [(await api.next_event(5)).data["port"] for _ in range(3)] == [0, 1, 2]
    await srv.stop()


async def test_garbage_interleaved_with_requests(server: ApiServer, sock_path: Path) -> None:
    import random

    rng = random.Random(7)  # fixed: a failure must reproduce
    raw = await Raw.open(sock_path)
    await raw.hello()
    lines: list[bytes] = []
    expected_ok: set[int] = set()
    for i in range(300):
        kind = rng.randrange(4)
        if kind == 0:
            lines.append(json.dumps({"id": i, "method": "api.version"}).encode())
            expected_ok.add(i)
        elif kind == 1:
            lines.append(
                bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b"")
            )
        elif kind == 2:
            lines.append(json.dumps({"id": i, "method": "jobs.get", "params": {"job": i}}).encode())
        else:
            good = json.dumps({"id": i, "method": "api.version"}).encode()
            lines.append(good[: rng.randrange(1, len(good))])  # truncated
    stream = b"\n".join(lines) + b"\n"
    pos = 0
    while pos < len(stream):  # random chunking, down to single bytes
        step = rng.choice([1, 2, 7, 100, 4096])
        await raw.send(stream[pos : pos + step])
        pos += step
    answered_ok: set[int] = set()
    for _ in range(sum(1 for line in lines if line.strip())):
        msg = await raw.recv()
        assert set(msg) in ({"id", "result"}, {"id", "error"}), msg
        if "error" in msg:
            assert msg["error"]["code"] in {str(c) for c in ErrorCode}
            assert msg["error"]["message"]
        else:
            answered_ok.add(msg["id"])
    assert answered_ok == expected_ok
    assert "result" in await raw.call("last", "api.version")
    await raw.close()


async def test_clients_lists_connections(server: ApiServer, sock_path: Path) -> None:
    async with (
        ApiClient(sock_path, client_name="console") as a,
        ApiClient(sock_path, client_name="crm-pop") as b,
    ):
        await b.subscribe("calls", "alarms")
        result = await a.call("api.clients")
        rows = {row["client"]: row for row in result["clients"]}
        assert rows["console"]["you"] is True and rows["crm-pop"]["you"] is False
        assert rows["crm-pop"]["subscriptions"] == ["alarms", "calls"]
        assert rows["console"]["requests_running"] == 1  # this very call
        assert result["refused"] == 0
