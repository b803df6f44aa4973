"""``ponte api`` against a real server: call, watch, methods, docs, errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from firmware.api.server import ApiServer


async def _ponte(sock: Path, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "firmware",
        "api",
        *args,
        env={**os.environ, "PONTE_API_SOCKET": str(sock)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_call_and_errors(server: ApiServer, sock_path: Path) -> None:
    rc, out, _ = await _ponte(sock_path, "call", "api.version")
    assert rc == 0 and json.loads(out)["protocol"] == "1.0"
    rc, out, err = await _ponte(sock_path, "call", "jobs.get", '{"job": 1}')
    assert rc == 1 and err.startswith("ponte api: invalid_params at params.job: expected string")
    rc, _, err = await _ponte(sock_path, "call", "jobs.get", "{not json")
    assert rc == 2 and "PARAMS is not JSON" in err
    rc, _, err = await _ponte(sock_path, "--socket", str(sock_path) + ".nope", "call", "x.y")
    assert rc == 1 and "not_connected" in err


async def test_watch_prints_events(server: ApiServer, sock_path: Path) -> None:
    task = asyncio.create_task(_ponte(sock_path, "watch", "calls", "--count", "2"))
    while server.clients == 0 or not any(
        server.bus.subscriptions(p) for p in server.peers().values()
    ):
        await asyncio.sleep(0.02)
    server.publish("ports.hook", {"port": 1})
    server.publish("calls.ringing", {"port": 1})
    server.publish("calls.answered", {"port": 1})
    rc, out, _ = await task
    lines = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and [x["event"] for x in lines] == ["calls.ringing", "calls.answered"]
    assert lines[0]["data"] == {"port": 1} and lines[0]["seq"] == 2


async def test_methods_lists_everything(server: ApiServer, sock_path: Path) -> None:
    rc, out, _ = await _ponte(sock_path, "methods")
    assert rc == 0
    for name in server.registry.names():
        assert name in out
    rc, out, _ = await _ponte(sock_path, "methods", "--json")
    assert [m["name"] for m in json.loads(out)["methods"]] == server.registry.names()


async def test_serve_runs_until_sigterm(sock_dir: Path) -> None:
    import signal

    from firmware.api.client import ApiClient

    sock = sock_dir / "serve.sock"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "firmware",
        "api",
        "--socket",
        str(sock),
        "serve",
        "--credentials",
        str(sock_dir / "admin.json"),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(1000):
            if sock.exists():
                break
            await asyncio.sleep(0.01)
        async with ApiClient(sock) as api:
            # (no login here: the bare server hashes at the production cost, ~1-2 s each)
            assert (await api.call("auth.status"))["first_run"] is True
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert not sock.exists()
    assert b"control API stopped" in err
