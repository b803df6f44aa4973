"""Stop, start and restart the endpoint 10 times with 4 calls up, in a child process.

Two calls go out to a sipp UAS, two come in from a sipp UAC through the trunk policy; then
the endpoint is stopped or restarted under them.  A Call object left behind would abort the
child at ``libDestroy`` or exit (DESIGN.md), and leaked pjsua call slots would refuse the
next cycle's calls, so the child's exit code and its report show both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CYCLES = 10

CHILD = r"""
import asyncio, gc, json, subprocess, sys, threading
from firmware.sip import endpoint as E
from firmware.sip.events import CallStateChanged, IncomingCall
from firmware.sip.policy import InboundPolicy, PolicySettings, TrunkHosts
from firmware.sip.settings import EndpointSettings
from tests.sip.peers import free_port

CYCLES, tmp = int(sys.argv[1]), sys.argv[2]

def live_calls(collect=True):
    if collect:  # only while the endpoint thread is gone: it owns the pjsua2 objects
        gc.collect()
    return sum(isinstance(o, E._Call) for o in gc.get_objects())

async def main():
    uas_port = free_port()
    uas = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-mp", str(free_port())],
        cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    policy = InboundPolicy(
        PolicySettings(trunks=(TrunkHosts("provider", ("127.0.0.1/32",)),)), b"k" * 32)
    ep = E.SipEndpoint(EndpointSettings(), policy)
    report = {"confirmed": [], "calls_up": [], "calls_after_stop": [], "restarts": 0}
    await ep.start()
    try:
        for cycle in range(CYCLES):
            target = f"127.0.0.1:{ep.transport('udp').port}"
            uac = subprocess.Popen(
                ["sipp", "-sn", "uac", "-i", "127.0.0.1", "-p", str(free_port()),
                 "-mp", str(free_port()), "-s", "ponte", "-m", "2", "-l", "2", "-r", "2",
                 "-d", "60000", target],
                cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            for _ in range(2):
                await ep.make_call("local", f"sip:uas@127.0.0.1:{uas_port}")
            confirmed = set()
            async with asyncio.timeout(60):
                while len(confirmed) < 4:
                    event = await ep.next_event()
                    if isinstance(event, IncomingCall):
                        await ep.answer(event.call_id, 200)
                    elif isinstance(event, CallStateChanged) and event.state == "confirmed":
                        confirmed.add(event.call_id)
            report["confirmed"].append(len(confirmed))
            report["calls_up"].append(live_calls(collect=False))
            if cycle % 2:
                await ep.restart()
                report["restarts"] += 1
            else:
                await ep.stop()
                report["calls_after_stop"].append(live_calls())
                await ep.start()
            uac.terminate()
            uac.wait(10)
    finally:
        await ep.stop()
        uas.terminate()
        uas.wait(10)
    report["calls_at_end"] = live_calls()
    report["threads"] = [t.name for t in threading.enumerate() if t.name == "pjsua2"]
    print(json.dumps(report))

asyncio.run(main())
"""


def test_stop_and_restart_with_four_calls_up_ten_times(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(CYCLES), str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]  # an abort is -6 (SIGABRT)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["confirmed"] == [4] * CYCLES  # pjsua had every call slot back each cycle
    assert min(report["calls_up"]) >= 4  # the count sees the Call objects while they live
    assert report["calls_after_stop"] == [0] * (CYCLES // 2)
    assert report["restarts"] == CYCLES // 2
    assert report["calls_at_end"] == 0 and report["threads"] == []
