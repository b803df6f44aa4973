"""The appliance as a whole: off-hook to dial tone, and memory of ``ponte run``.

- off-hook in the simulator to the first dial-tone sample leaving the appliance
  (issue 2 target: median 30 ms or less);
- RSS of ``ponte run`` with 8 simulated ports, the simulator excluded (target 60 MB or less).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drivers.sim.simulator import Simulator
from firmware.service.appliance import Appliance, Options
from hwtests.rig import LoopThread

ROUNDS = 40
DIAL_TONE_TARGET_MS = 30.0
RSS_TARGET_MB = 60.0


def off_hook_to_dial_tone() -> list[float]:
    sim_loop = LoopThread()  # the card runs on its own thread, as a card is its own computer
    sim = Simulator(fxs=2, fxo=1, country="US")
    sim_loop.run(sim.start())
    latencies: list[float] = []

    async def measure() -> None:
        with tempfile.TemporaryDirectory() as data:
            app = Appliance(Options(Path(data), linecard=sim.url, audio=sim.audio_url, sip_port=0))
            await app.start()
            try:
                media = app.media[1]
                await asyncio.sleep(0.5)
                for _ in range(ROUNDS):
                    started = time.monotonic()
                    sim_loop.call(sim.handset(1).off_hook)
                    while media.tone_started_at is None:
                        await asyncio.sleep(0.0005)
                    latencies.append((media.tone_started_at - started) * 1000)
                    sim_loop.call(sim.handset(1).on_hook)
                    while app.ports[1].state != "idle":
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(0.1)
            finally:
                await app.stop()

    try:
        asyncio.run(measure())
    finally:
        sim_loop.run(sim.stop())
        sim_loop.close()
    return latencies


def rss_of_ponte_run(fxs: int = 6, fxo: int = 2) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(f"{tmp}/notify")
        notify.settimeout(60)
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "firmware", "run", "--data-dir", f"{tmp}/data"),
                *("--fxs", str(fxs), "--fxo", str(fxo), "--stderr", "--log-level", "WARNING"),
                *("--sip-port", "0"),
            ],
            env=dict(os.environ, NOTIFY_SOCKET=f"{tmp}/notify"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while not notify.recv(4096).startswith(b"READY=1"):
                pass
            time.sleep(2.0)  # a few hundred frames per port through the media loops
            status = Path(f"/proc/{proc.pid}/status").read_text()
            kib = next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
            )
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            notify.close()
    return kib / 1024


def main() -> None:
    lat = sorted(off_hook_to_dial_tone())
    median = statistics.median(lat)
    p90 = lat[int(len(lat) * 0.9) - 1]
    verdict = "meets" if median <= DIAL_TONE_TARGET_MS else "MISSES"
    print(
        f"off-hook to first dial-tone sample: median {median:.1f} ms, p90 {p90:.1f} ms, "
        f"max {lat[-1]:.1f} ms over {len(lat)} rounds "
        f"(target <= {DIAL_TONE_TARGET_MS:.0f} ms median: {verdict})"
    )
    rss = rss_of_ponte_run()
    verdict = "meets" if rss <= RSS_TARGET_MB else "MISSES"
    print(f"RSS of ponte run, 8 simulated ports: {rss:.1f} MB", end=" ")
    print(f"(target <= {RSS_TARGET_MB:.0f} MB: {verdict})")


if __name__ == "__main__":
    main()
