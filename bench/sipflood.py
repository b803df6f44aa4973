"""SIP INVITE floods against one pjsua2 process in a child (it may abort; we must not).

The child (``python -m bench.sipflood child guard|noguard``) runs a ``SipEndpoint`` that
admits 127.0.0.1 as a trunk host, answers every call it is offered and hangs it up once
confirmed: the shortest complete call.  sipp (``uac_remote_bye.xml``, from shared/peers)
drives INVITEs at a fixed rate.  ``run_flood`` reports whether the child survived.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SCENARIO = Path(__file__).parent / "data" / "uac_remote_bye.xml"
CHILD_READY_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class FloodResult:
    rate: int
    seconds: float
    guard: bool
    alive: bool
    answered: int  # calls the child answered
    sunk: int  # INVITEs the guard sent to the sink account
    sipp_ok: int
    sipp_failed: int
    elapsed_s: float  # how long sipp took to send them all
    aborted_with: str  # the child's last stderr line when it died


async def _child(guard: bool) -> None:
    # Imported here: the parent process must never load pjsua2.
    from firmware.sip.endpoint import SipEndpoint
    from firmware.sip.events import CallStateChanged, IncomingCall
    from firmware.sip.policy import InboundPolicy, PolicySettings, TrunkHosts
    from firmware.sip.settings import EndpointSettings

    policy = InboundPolicy(
        PolicySettings(trunks=(TrunkHosts("flood", ("127.0.0.1/32",)),)), os.urandom(32)
    )
    ep = SipEndpoint(EndpointSettings(guard=guard, log_level=1), policy)
    await ep.start()
    print(json.dumps({"port": ep.transport("udp").port}), flush=True)
    answered = 0

    async def consume() -> None:
        nonlocal answered
        while True:
            event = await ep.next_event()
            with contextlib.suppress(Exception):  # the call may be gone already
                if isinstance(event, IncomingCall):
                    await ep.answer(event.call_id, 200)
                    answered += 1
                elif isinstance(event, CallStateChanged) and event.state == "confirmed":
                    await ep.hangup(event.call_id)

    task = asyncio.create_task(consume())
    try:
        while True:
            await asyncio.sleep(0.5)
            sunk = await ep.call(
                lambda core: core.counters.sunk_by_rate + core.counters.sunk_by_policy
            )
            print(json.dumps({"answered": answered, "sunk": sunk}), flush=True)
    finally:
        task.cancel()
        await ep.stop()


def run_flood(rate: int, seconds: float, *, guard: bool, limit: int = 200) -> FloodResult:
    """sipp at ``rate`` INVITE/s for ``seconds`` (at most ``limit`` calls open)."""
    with tempfile.TemporaryDirectory(prefix="ponte-flood-") as tmp:
        out_path = Path(tmp) / "child.out"
        err_path = Path(tmp) / "child.err"
        with out_path.open("w") as out, err_path.open("w") as err:
            child = subprocess.Popen(
                [sys.executable, "-m", "bench.sipflood", "child", "guard" if guard else "noguard"],
                stdout=out,
                stderr=err,
                cwd=Path(__file__).parent.parent,
            )
        try:
            port = _wait_port(out_path, child)
            calls = max(1, int(rate * seconds))
            started = time.monotonic()
            sipp = subprocess.Popen(
                [
                    "sipp", "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", "0", "-mp", "0",
                    "-s", "101", "-r", str(rate), "-l", str(limit), "-m", str(calls),
                    "-timeout", str(int(seconds) + 15), "-recv_timeout", "3000",
                    f"127.0.0.1:{port}",
                ],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, cwd=tmp,
            )  # fmt: skip
            try:
                # sipp waits out its timeouts when the child is gone; no need to wait with it
                deadline = time.monotonic() + seconds + 60
                while sipp.poll() is None and child.poll() is None:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                if sipp.poll() is None:
                    sipp.send_signal(signal.SIGINT)  # sipp prints its final counters on INT
                sipp_out, _ = sipp.communicate(timeout=30)
            finally:
                if sipp.poll() is None:
                    sipp.kill()
                    sipp.wait()
            elapsed = time.monotonic() - started
            time.sleep(1.0)  # a late abort shows within this
            alive = child.poll() is None
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        stats = [json.loads(line) for line in out_path.read_text().splitlines() if line[:1] == "{"]
        last = next((s for s in reversed(stats) if "answered" in s), {"answered": 0, "sunk": 0})
        err_lines = [ln for ln in err_path.read_text().splitlines() if ln.strip()]
        return FloodResult(
            rate=rate,
            seconds=seconds,
            guard=guard,
            alive=alive,
            answered=int(last["answered"]),
            sunk=int(last["sunk"]),
            sipp_ok=_sipp_counter(sipp_out, "Successful call"),
            sipp_failed=_sipp_counter(sipp_out, "Failed call"),
            elapsed_s=elapsed,
            aborted_with="" if alive else (err_lines[-1] if err_lines else "?"),
        )


def _wait_port(path: Path, child: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + CHILD_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in path.read_text().splitlines():
            if line.startswith('{"port"'):
                return int(json.loads(line)["port"])
        if child.poll() is not None:
            raise RuntimeError(f"flood child exited with {child.returncode} before listening")
        time.sleep(0.05)
    raise RuntimeError("flood child did not report its port")


def _sipp_counter(text: str, name: str) -> int:
    found = re.findall(rf"{name}\s*\|\s*\d+\s*\|\s*(\d+)", text)
    return int(found[-1]) if found else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        asyncio.run(_child(sys.argv[2] == "guard"))
