"""Queue figures: CPU of music on hold per waiting caller.

1. The media path alone: ``HoldLink.next_frame`` (what a waiting caller's media thread calls
   every 20 ms) while music plays and while an announcement is spoken, in microseconds of
   process CPU per frame.
2. A real ``ponte run`` in simulation with 8 phones: the appliance process's CPU (user +
   system, /proc/PID/stat) idle, then with 4 and 8 callers waiting in a queue that has no
   agent logged in, each over the same window.  The difference per caller is what a waiting
   caller costs the box, everything included (its media thread, the timers, the prompts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drivers.sim.control import request
from firmware.dsp.moh import music_on_hold
from firmware.prompts.library import PromptLibrary
from firmware.service.queues import HoldLink, music_frames
from firmware.store import ConfigStore, default_config
from firmware.store.schema import Queue

FRAMES = 50_000  # 1000 s of audio
FRAME_BYTES = 320  # 20 ms at 8 kHz, 16-bit
PHONES = 8
WINDOW_S = 10.0
START_TIMEOUT_S = 90.0


def _link_us(speaking: bool) -> float:
    music = music_frames(music_on_hold().astype("<i2").tobytes(), FRAME_BYTES)
    link = HoldLink(music, FRAME_BYTES)
    speech = PromptLibrary().get("queue-all-busy").pcm.astype("<i2").tobytes()
    started = time.process_time()
    for _ in range(FRAMES // 500):
        if speaking:
            link.say(speech[: 500 * FRAME_BYTES])
        for _ in range(500):
            link.next_frame()
    return (time.process_time() - started) / FRAMES * 1e6


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime (proc(5), fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_percent(pid: int) -> float:
    cpu0, t0 = _cpu_s(pid), time.monotonic()
    time.sleep(WINDOW_S)
    return (_cpu_s(pid) - cpu0) / (time.monotonic() - t0) * 100


def _wait_for(log: Path, text: str, count: int = 1, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text().count(text) >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{text!r} not in the log of ponte run:\n{log.read_text()[-2000:]}")


def _real_run() -> list[tuple[int, float]]:
    root = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    data = root / "data"
    store = ConfigStore.open(data, defaults=default_config(PHONES, 0))
    try:
        config = store.current().config
        queue = Queue(number="700", members=(f"{100 + PHONES}",), max_wait_s=7200, max_callers=64)
        store.apply(dataclasses.replace(config, queues=(queue,)), author="bench", summary="q")
    finally:
        store.close()
    log = root / "ponte.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "firmware", "run", "--data-dir", str(data)),
                *("--sip-port", "0", "--fxs", str(PHONES), "--fxo", "0", "--stderr"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    figures: list[tuple[int, float]] = []
    try:
        _wait_for(log, "control API listening")
        time.sleep(2.0)  # let the start settle
        figures.append((0, _cpu_percent(proc.pid)))
        waiting = 0
        for target in (PHONES // 2, PHONES):
            while waiting < target:
                waiting += 1
                sock = data / "sim.sock"
                request(sock, {"target": "handset", "number": waiting, "action": "off-hook"})
                _wait_for(log, f"port {waiting}: OffHook", timeout=30)
                request(
                    sock,
                    {"target": "handset", "number": waiting, "action": "dial", "digits": "700"},
                )
                _wait_for(log, f"port {waiting}: waiting in queue 700", timeout=30)
            time.sleep(1.0)
            figures.append((waiting, _cpu_percent(proc.pid)))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
    return figures


def main() -> None:
    music_us, speech_us = _link_us(False), _link_us(True)
    print(
        f"   HoldLink.next_frame  music {music_us:5.2f} us/frame   announcement "
        f"{speech_us:5.2f} us/frame   "
        f"({music_us / 20_000 * 100:.3f} % of one core per waiting caller)"
    )
    figures = _real_run()
    idle = figures[0][1]
    for n, cpu in figures:
        extra = f"   {(cpu - idle) / n:5.2f} %/caller over idle" if n else ""
        print(f"   ponte run, {n} callers waiting: process CPU {cpu:5.1f} % of one core{extra}")
    print(
        f"   ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {PHONES} simulated phones, "
        f"{WINDOW_S:.0f} s windows, 2-core VM under parallel load: CPU time, not wall clock)"
    )
