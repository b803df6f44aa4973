"""A person at a shell: `ponte sim start` in one process, `ponte sim ...` commands in others."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from drivers.linecard import protocol as p
from drivers.linecard.link import Link


class RunningSim:
    def __init__(self, proc: asyncio.subprocess.Process, control: Path, url: str) -> None:
        self.proc = proc
        self.control = control
        self.url = url

    async def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "firmware",
            "sim",
            *args,
            "--control",
            str(self.control),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        result = subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), err.decode())
        if ok:
            assert result.returncode == 0, result.stderr
        return result


@pytest_asyncio.fixture
async def running_sim(tmp_path: Path) -> AsyncIterator[RunningSim]:
    control = tmp_path / "sim.sock"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "firmware",
        "sim",
        "start",
        "--fxs",
        "2",
        "--fxo",
        "1",
        "--country",
        "DE",
        "--listen",
        "socket://127.0.0.1:0",
        "--control",
        str(control),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: dict[str, str] = {}
    async with asyncio.timeout(30):
        while len(lines) < 3:
            line = (await proc.stdout.readline()).decode()
            assert line, "simulator exited before it was ready"
            key, _, value = line.partition(":")
            lines[key.strip()] = value.strip()
    assert lines["control"] == str(control)
    sim = RunningSim(proc, control, lines["linecard"])
    try:
        yield sim
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 10)


async def next_of(link: Link, kind: type, timeout: float = 5.0) -> p.Message:
    async with asyncio.timeout(timeout):
        async for event in link:
            if isinstance(event, kind):
                assert isinstance(event, p.Message)
                return event
    raise AssertionError("link closed")


async def test_cli_drives_a_running_simulator(running_sim: RunningSim, tmp_path: Path) -> None:
    sim = running_sim
    async with Link(sim.url) as link:
        card = await link.wait_connected(timeout=5)
        assert card.ports == (p.PortKind.FXS, p.PortKind.FXS, p.PortKind.FXO)

        await sim.cli("handset", "1", "off-hook")
        hook = await next_of(link, p.HookChange)
        assert isinstance(hook, p.HookChange) and (hook.port, hook.off_hook) == (1, True)

        recording = tmp_path / "h1.wav"
        await sim.cli("handset", "1", "record", str(recording), "--seconds", "0.3")
        result = await sim.cli("handset", "1", "dial", "2", "--pulse")
        assert "ends_in=" in result.stdout
        pulses = [await next_of(link, p.HookChange) for _ in range(4)]
        edges = [(m.off_hook, m.timestamp_ms) for m in pulses if isinstance(m, p.HookChange)]
        assert [off for off, _ in edges] == [False, True, False, True]
        assert edges[0][1] > hook.timestamp_ms
        # 10 pps: 60 ms break, 40 ms make, measured on the card's clock.
        assert [b[1] - a[1] for a, b in itertools.pairwise(edges)] == [60, 40, 60]
        await sim.cli("handset", "1", "on-hook")

        await sim.cli("co", "ring", "1", "--caller-id", "5551234")
        ring = await next_of(link, p.RingDetect)
        assert isinstance(ring, p.RingDetect) and (ring.port, ring.active) == (3, True)
        status = json.loads((await sim.cli("co", "status", "1")).stdout)
        assert status["state"] == "ringing" and status["caller_id"] == "5551234"

        whole = json.loads((await sim.cli("status")).stdout)
        assert whole["country"] == "DE" and whole["host_connected"] is True
        assert whole["handsets"][0]["off_hook"] is False
        assert recording.exists()


async def test_cli_reports_errors_clearly(running_sim: RunningSim, tmp_path: Path) -> None:
    bad = await running_sim.cli("handset", "9", "off-hook", ok=False)
    assert bad.returncode == 1 and "no handset 9: handsets are 1..2" in bad.stderr
    twice = await running_sim.cli("co", "answer", "1", ok=False)
    assert "cannot answer while idle" in twice.stderr
    missing = await running_sim.cli("handset", "1", "play", str(tmp_path / "nope.wav"), ok=False)
    assert "cannot play" in missing.stderr and "nope.wav" in missing.stderr
    await running_sim.cli("stop")
    assert await asyncio.wait_for(running_sim.proc.wait(), 10) == 0
    gone = await running_sim.cli("status", ok=False)
    assert "no simulator is running" in gone.stderr
