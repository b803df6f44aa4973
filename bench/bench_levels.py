"""Cost of the per-port level meter (``ports.levels``) in the media loop's 20 ms frame."""

from __future__ import annotations

import time
import tracemalloc
from typing import Final

import numpy as np

from firmware.service.linelevels import LineLevels

FRAMES: Final = 50_000  # 1000 s of one port's audio
SAMPLES: Final = 160  # 20 ms at 8 kHz


def main() -> None:
    rng = np.random.default_rng(1)
    frames = [
        rng.integers(-8000, 8000, SAMPLES, dtype=np.int16).astype("<i2").tobytes()
        for _ in range(64)
    ]
    levels = LineLevels(SAMPLES)
    for frame in frames:  # warm up
        levels.heard(frame)
    started = time.perf_counter()
    for i in range(FRAMES):
        frame = frames[i & 63]
        levels.heard(frame)
        levels.played(frame)
    took = time.perf_counter() - started
    per_frame_us = took / FRAMES * 1e6
    print(f"   levels: {per_frame_us:.1f} us per 20 ms frame (heard + played)")
    print(f"   share of one core for 8 ports: {8 * per_frame_us / 20_000 * 100:.2f} %")
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(1000):
        levels.heard(frames[i & 63])
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"   memory retained after 1000 frames: {grown} bytes")
