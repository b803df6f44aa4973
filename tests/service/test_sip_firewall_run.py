"""``ponte run`` loads the SIP firewall when security.firewall says so, and removes it on stop.

The appliance runs inside a network namespace the test creates, so its nftables table is
the namespace's and the host's firewall is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from firmware.api.client import ApiClient
from firmware.sip.firewall import TABLE
from tests.sip.netns import network_namespace, nft_in

START_TIMEOUT_S = 90  # two Python processes importing numpy on a loaded 2-core machine


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ponte-fw-"))  # sockaddr_un paths are short
    yield root / "data"
    shutil.rmtree(root, ignore_errors=True)


def config_set(data: Path, path: str, value: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "firmware", "config", "set", path, value, "--data-dir", str(data)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def start(
    data: Path, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], TextIO]:
    log = (data.parent / "ponte.log").open("w")
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "firmware", "run", "--simulate", "--fxs", "2",
         "--fxo", "1", "--data-dir", str(data), "--stderr"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env=env or {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
    )  # fmt: skip
    return proc, log


def wait_log(data: Path, proc: subprocess.Popen[bytes], text: str) -> str:
    path = data.parent / "ponte.log"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        log = path.read_text()
        if text in log:
            return log
        assert proc.poll() is None, f"ponte run exited:\n{log}"
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the log:\n{path.read_text()}")


def test_firewall_on_loads_the_table_and_stop_removes_it(data_dir: Path) -> None:
    with network_namespace() as ns:
        config_set(data_dir, "security.firewall", "on")
        proc, log = start(data_dir, ("ip", "netns", "exec", ns))
        try:
            wait_log(data_dir, proc, "simulation ready")
            assert "SIP firewall loaded: ports 5060, 20/s per source" in wait_log(
                data_dir, proc, "SIP firewall loaded"
            )
            listed = nft_in(ns, "list", "table", "inet", TABLE)
            assert listed.returncode == 0 and "dport 5060" in listed.stdout, listed
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        assert "SIP firewall removed" in (data_dir.parent / "ponte.log").read_text()
        assert nft_in(ns, "list", "table", "inet", TABLE).returncode != 0


async def test_without_nft_the_box_runs_on_with_an_alarm(data_dir: Path) -> None:
    config_set(data_dir, "security.firewall", "on")
    # a PATH without /usr/sbin: nft is not found, as on a box built without nftables
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["PATH"] = "/usr/bin:/bin"
    proc, log = start(data_dir, env=env)
    try:
        wait_log(data_dir, proc, "simulation ready")
        assert "SIP firewall not loaded: loading the SIP firewall: cannot run nft" in wait_log(
            data_dir, proc, "SIP firewall not loaded"
        )
        async with ApiClient(data_dir / "api.sock", client_name="test", timeout=30) as api:
            alarms = (await api.call("alarms.list"))["alarms"]
        assert [(a["id"], a["severity"]) for a in alarms] == [("sip.firewall", "major")]
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_simulation_leaves_the_firewall_off_by_default(data_dir: Path) -> None:
    with network_namespace() as ns:
        proc, log = start(data_dir, ("ip", "netns", "exec", ns))
        try:
            text = wait_log(data_dir, proc, "SIP firewall off (security.firewall = auto)")
            assert "SIP firewall loaded" not in text
            assert nft_in(ns, "list", "table", "inet", TABLE).returncode != 0
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
