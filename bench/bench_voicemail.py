"""Voicemail figures: a one-minute message on disk, recording cost per frame, recovery of a
leftover journal, and the control path from the PIN's last digit to the menu prompt."""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np

from firmware.pbx import voicemail as vm
from firmware.store.schema import VoicemailConfig
from firmware.store.voicemail import VoicemailStore

FRAME_S = 0.020
RECORD_FRAMES = 3000  # one minute
PIN = "2468"


def _speech_like(frames: int) -> list[bytes]:
    rng = np.random.default_rng(5)
    t = np.arange(frames * 160) / 8000
    x = 4000 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    x += rng.normal(0, 300, t.size)
    pcm = np.clip(x, -32768, 32767).astype("<i2").tobytes()
    return [pcm[i * 320 : (i + 1) * 320] for i in range(frames)]


def _record(store: VoicemailStore, frames: list[bytes]) -> tuple[list[float], float]:
    """Append frames as a media thread would (a 'now' 20 ms apart, so the journal is synced
    every 25 frames); per-frame wall times in µs and the CPU time of the whole message."""
    rec = store.begin_message("101", "+4420", "bench")
    times = []
    cpu0 = time.process_time()
    for i, frame in enumerate(frames):
        started = time.perf_counter()
        rec.append(frame, now=i * FRAME_S)
        times.append((time.perf_counter() - started) * 1e6)
    cpu = time.process_time() - cpu0
    rec.finish()
    return times, cpu


def main() -> None:
    base = os.environ.get("PONTE_BENCH_DIR", tempfile.gettempdir())
    frames = _speech_like(RECORD_FRAMES)
    print("   a one-minute message (8 kHz mono) on disk, and recording it frame by frame:")
    for fmt in ("alaw", "ulaw", "pcm16"):
        with tempfile.TemporaryDirectory(dir=base, prefix=".bench-vm-") as tmp:
            cfg = VoicemailConfig(format=fmt, max_message_s=120)
            with VoicemailStore.open(tmp, cfg) as store:
                times, cpu = _record(store, frames)
                (info,) = store.messages("101")
                times.sort()
                print(
                    f"   {fmt:<6} {info.size / 1024:7.1f} KiB   append median "
                    f"{statistics.median(times):6.1f} µs  p99 {times[int(len(times) * 0.99)]:7.1f}"
                    f" µs  max {times[-1] / 1000:6.2f} ms   CPU {cpu / RECORD_FRAMES * 1e6:5.1f}"
                    f" µs/frame ({cpu / RECORD_FRAMES / FRAME_S * 100:.2f} % of one core)"
                )

    print("   recovery of a journal left by a killed recorder (open + recover):")
    for seconds, count in ((60, 1), (180, 1), (180, 10)):
        with tempfile.TemporaryDirectory(dir=base, prefix=".bench-vm-") as tmp:
            cfg = VoicemailConfig(max_message_s=180, max_messages=100)
            with VoicemailStore.open(tmp, cfg) as store:
                chunk = b"".join(_speech_like(50))
                for _ in range(count):
                    rec = store.begin_message("101")
                    for _ in range(seconds):
                        rec.append(chunk)
                    os.close(rec._fd)  # the process dies: no header fix, no rename, no row
            started = time.perf_counter()
            with VoicemailStore.open(tmp, cfg) as store:
                elapsed = time.perf_counter() - started
                assert len(store.messages("101")) == count
            print(f"   {count:>2} x {seconds:>3} s journal   {elapsed * 1000:8.1f} ms")

    print("   PIN's last digit -> menu prompt command (check PIN, load 50 messages):")
    with tempfile.TemporaryDirectory(dir=base, prefix=".bench-vm-") as tmp:
        with VoicemailStore.open(tmp, VoicemailConfig()) as store:
            one = b"".join(frames[:50])
            for _ in range(50):
                rec = store.begin_message("101")
                rec.append(one)
                rec.finish()
            samples = []
            for _ in range(200):
                menu = vm.MailboxMenu("101")
                menu.start(0.0)
                for d in PIN:
                    menu.handle(vm.Digit(d), 0.0)
                started = time.perf_counter()
                pending = menu.handle(vm.Digit("#"), 0.0)
                while pending:
                    command = pending.pop(0)
                    if isinstance(command, vm.Play):
                        break
                    event = vm.run_store_command(store, command, expected_pin=PIN, now=0.0)
                    if event is not None:
                        pending += menu.handle(event, 0.0)
                samples.append((time.perf_counter() - started) * 1000)
            samples.sort()
            print(
                f"   median {statistics.median(samples):6.2f} ms   p95 "
                f"{samples[int(len(samples) * 0.95)]:6.2f} ms   (then the prompt file's first "
                "frame: the player's latency)"
            )


if __name__ == "__main__":
    main()
