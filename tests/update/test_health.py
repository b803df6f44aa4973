"""The boot health check: probes within a deadline decide mark-good (issue 7, part 2)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.update import health
from firmware.update import state as st
from tests.update.helpers import Sim


class SipResponder:
    """A UDP peer that answers OPTIONS with 200 OK, like a trunk (or stays silent)."""

    def __init__(self, answer: bool) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.seen = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            self.seen += 1
            if not self.answer or not data.startswith(b"OPTIONS "):
                continue
            headers = [
                h for h in data.split(b"\r\n") if h.split(b":")[0] in (b"Via", b"Call-ID", b"CSeq")
            ]
            # A provisional response first, which must not count as an answer.
            for status in (b"SIP/2.0 100 Trying", b"SIP/2.0 200 OK"):
                self.sock.sendto(
                    b"\r\n".join([status, *headers, b"Content-Length: 0", b"", b""]), addr
                )

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def trunk() -> Iterator[SipResponder]:
    r = SipResponder(answer=True)
    yield r
    r.close()


@pytest.fixture
def dead_trunk() -> Iterator[SipResponder]:
    r = SipResponder(answer=False)
    yield r
    r.close()


def test_reachable_trunk_and_commands_pass(trunk: SipResponder) -> None:
    probes = [
        ("trunk", health.sip_trunk_probe("127.0.0.1", trunk.port)),
        ("linecard", health.command_probe([sys.executable, "-c", "pass"])),
    ]
    report = asyncio.run(health.run(probes, deadline_s=5))
    assert report.ok, report.render()
    assert trunk.seen >= 1


def test_silent_trunk_fails_at_the_deadline(dead_trunk: SipResponder) -> None:
    probes = [("trunk", health.sip_trunk_probe("127.0.0.1", dead_trunk.port))]
    report = asyncio.run(health.run(probes, deadline_s=0.6, retry_s=0.1))
    assert not report.ok and "no answer" in report.results[0].detail
    assert dead_trunk.seen >= 1


def test_failing_command_names_itself() -> None:
    probe = health.command_probe(["sh", "-c", "echo card missing >&2; exit 3"])
    report = asyncio.run(health.run([("linecard", probe)], deadline_s=1.0, retry_s=0.2))
    assert not report.ok
    assert "exited 3: card missing" in report.results[0].detail


def test_control_socket_probe(tmp_path: Path) -> None:
    path = str(tmp_path / "api.sock")
    missing = asyncio.run(health.run([("api", health.socket_probe(path))], 0.2, 0.1))
    assert not missing.ok
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(4)
    try:
        ok = asyncio.run(health.run([("api", health.socket_probe(path))], 2, 0.1))
        assert ok.ok
    finally:
        srv.close()


def test_sip_status_ignores_foreign_and_garbage() -> None:
    assert health.sip_status(b"SIP/2.0 200 OK\r\nCall-ID: abc@ponte\r\n\r\n", "abc") == 200
    assert health.sip_status(b"SIP/2.0 200 OK\r\nCall-ID: zzz@ponte\r\n\r\n", "abc") is None
    assert health.sip_status(b"\xff\x00garbage", "abc") is None
    assert health.sip_status(b"", "abc") is None


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware", "update", "--root", str(root), "health-check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_health_check_marks_good_only_when_healthy(
    sim: Sim, trunk: SipResponder, dead_trunk: SipResponder
) -> None:
    sim.install(sim.bundle(security_version=4))
    assert sim.power_on() == "B"
    bad = cli(sim.root, "--deadline", "0.5", "--trunk", f"127.0.0.1:{dead_trunk.port}")
    assert bad.returncode == 1 and "FAIL trunk" in bad.stdout
    assert sim.state().slots["B"].status == st.Status.PENDING and sim.state().floor == 1
    good = cli(sim.root, "--deadline", "5", "--trunk", f"127.0.0.1:{trunk.port}")
    assert good.returncode == 0, good.stderr
    assert sim.state().slots["B"].status == st.Status.GOOD and sim.state().floor == 4
