"""The client library: errors, reconnects, the sync wrapper, and what it may import."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from firmware.api.auth import FACTORY_PASSWORD
from firmware.api.client import ApiClient, ApiError, SyncApiClient
from firmware.api.protocol import ErrorCode

from .conftest import make_server


def test_client_imports_nothing_else_from_firmware() -> None:
    code = (
        "import sys, firmware.api.client\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith(('firmware', 'drivers',"
        " 'tui', 'pjsua2', 'textual')))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out.split(",") == ["firmware", "firmware.api", "firmware.api.client"]


def test_client_names_match_the_server() -> None:
    from firmware.api import client, protocol, server

    assert client.PROTOCOL_VERSION == protocol.PROTOCOL_VERSION
    assert client.DEFAULT_SOCKET_PATH == server.DEFAULT_SOCKET_PATH
    assert client.SOCKET_ENV == server.SOCKET_ENV
    assert client.MAX_LINE_BYTES >= protocol.MAX_MESSAGE_BYTES
    assert client.EVENTS_DROPPED_TOPIC == protocol.EVENTS_DROPPED_TOPIC
    assert client.CLOSING_TOPIC == protocol.CLOSING_TOPIC
    assert not set(client.CLIENT_CODES) & {str(c) for c in ErrorCode}


def test_api_error_from_garbage() -> None:
    err = ApiError.from_json({"code": "x", "message": "m", "path": "params.a", "data": {"k": 1}})
    assert (err.code, err.message, err.path, err.data) == ("x", "m", "params.a", {"k": 1})
    assert str(err) == "x at params.a: m"
    assert ApiError.from_json([1]).code == "bad_response"


async def test_not_connected(sock_path: Path) -> None:
    with pytest.raises(ApiError) as info:
        await ApiClient(sock_path).connect()
    assert info.value.code == "not_connected"
    with pytest.raises(ApiError) as info:
        await ApiClient(sock_path).call("api.version")
    assert info.value.code == "not_connected"


async def test_reconnect_restores_subscriptions_and_login(sock_path: Path) -> None:
    srv = make_server(sock_path)
    await srv.start()
    api = ApiClient(sock_path, auto_reconnect=True)
    await api.connect()
    await api.subscribe("alarms")
    await api.login(FACTORY_PASSWORD)
    # Restarting the server loses its sessions: use the same server object to keep them.
    peers_before = set(srv.peers())
    for peer in srv.peers().values():
        peer.close("test: simulated drop")
    while api.connected:
        await asyncio.sleep(0.01)
    assert api.close_reason == "test: simulated drop"
    srv.publish("alarms.fan", {"on": True})  # nobody subscribed right now: lost, by design
    assert (await api.call("auth.status"))["logged_in"] is True
    assert set(srv.peers()) != peers_before
    srv.publish("alarms.temp", {"c": 80})
    notice = await api.next_event(5)  # protocol notices reach every client, subscribed or not
    assert (notice.topic, notice.data) == ("api.closing", {"reason": "test: simulated drop"})
    ev = await api.next_event(5)
    assert (ev.topic, ev.data) == ("alarms.temp", {"c": 80})
    await api.close()
    await srv.stop()


async def test_events_stop_with_connection_lost(sock_path: Path) -> None:
    srv = make_server(sock_path)
    await srv.start()
    api = ApiClient(sock_path)
    await api.connect()
    await api.subscribe("*")
    srv.publish("system.bye", None)
    await srv.stop()
    assert (await api.next_event(5)).topic == "system.bye"  # queued events still delivered
    assert (await api.next_event(5)).data == {"reason": "the server is stopping"}
    assert api.close_reason == "the server is stopping"
    with pytest.raises(ApiError) as info:
        await api.next_event(5)
    assert info.value.code == "connection_lost"
    with pytest.raises(ApiError):
        await api.call("api.version")
    await api.close()


async def test_local_event_queue_is_bounded(sock_path: Path) -> None:
    srv = make_server(sock_path)
    await srv.start()
    async with ApiClient(sock_path, max_queued_events=10) as api:
        await api.subscribe("calls")
        for i in range(50):
            srv.publish("calls.x", i)
        await api.call("api.version")  # the events before this reply have arrived
        got = [(await api.next_event(1)).data for _ in range(10)]
        assert got == list(range(40, 50)) and api.events_dropped_locally == 40
    await srv.stop()


def test_sync_client_from_another_thread(sock_path: Path) -> None:
    ready = threading.Event()
    done: list[Any] = []
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        srv = make_server(sock_path)
        await srv.start()
        ready.set()
        stop = asyncio.Event()
        done.append((asyncio.get_running_loop(), stop))
        await stop.wait()
        await srv.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    try:
        assert ready.wait(10)
        with SyncApiClient(sock_path) as api:
            assert api.call("api.version")["protocol"] == "1.0"
            with pytest.raises(ApiError) as info:
                api.call("jobs.get", {"job": None})
            assert info.value.path == "params.job"
    finally:
        srv_loop, stop = done[0]
        srv_loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
