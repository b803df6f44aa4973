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
import time

from bench.bench_services import ponte_run
from firmware.dsp.moh import music_on_hold
from firmware.prompts.library import PromptLibrary
from firmware.service.queues import HoldLink, music_frames
from firmware.store.schema import Config, Queue

FRAMES = 50_000  # 1000 s of audio
FRAME_BYTES = 320  # 20 ms at 8 kHz, 16-bit
PHONES = 8
WINDOW_S = 10.0


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


def _with_queue(config: Config) -> Config:
    # The only member is never logged in: every caller waits, hearing the music.
    queue = Queue(number="700", members=(f"{100 + PHONES}",), max_wait_s=7200, max_callers=64)
    return dataclasses.replace(config, queues=(queue,))


def _real_run() -> list[tuple[int, float]]:
    figures: list[tuple[int, float]] = []
    with ponte_run(PHONES, _with_queue) as box:
        time.sleep(1.0)  # let the start settle
        figures.append((0, box.cpu_pct(WINDOW_S)))
        waiting = 0
        for target in (PHONES // 2, PHONES):
            while waiting < target:
                waiting += 1
                box.handset(waiting, "off-hook")
                box.wait_log(f"port {waiting}: OffHook", timeout=30)
                box.handset(waiting, "dial", digits="700")
                box.wait_log(f"port {waiting}: waiting in queue 700", timeout=30)
            time.sleep(1.0)
            figures.append((waiting, box.cpu_pct(WINDOW_S)))
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
