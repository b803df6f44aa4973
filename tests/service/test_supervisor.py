"""sd_notify through python-systemd to a NOTIFY_SOCKET this test owns."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.service.supervisor import Supervisor, watchdog_interval_s


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return out


def test_ready_status_and_stopping_reach_the_socket(notify_socket: socket.socket) -> None:
    sup = Supervisor()
    sup.ready("2 FXS, 1 FXO up")
    sup.status("2 FXS, 1 FXO up")  # unchanged: not sent again
    sup.status("line card lost")
    sup.stopping()
    msgs = received(notify_socket)
    assert msgs == [
        "READY=1\nSTATUS=2 FXS, 1 FXO up",
        "STATUS=line card lost",
        "STOPPING=1\nSTATUS=stopping",
    ]


async def test_watchdog_keepalives_follow_health(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "40000")  # keep-alive every 20 ms
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    healthy = True
    sup = Supervisor(healthy=lambda: healthy)
    sup.start_watchdog()
    await asyncio.sleep(0.15)
    beats = received(notify_socket)
    assert beats and set(beats) == {"WATCHDOG=1"}
    healthy = False
    await asyncio.sleep(0.03)
    received(notify_socket)  # drain one that may have been in flight
    await asyncio.sleep(0.1)
    assert received(notify_socket) == []
    await sup.stop()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "2000000"}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "bogus"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
    ],
)
def test_watchdog_interval_from_environment(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval_s(env) == expected
