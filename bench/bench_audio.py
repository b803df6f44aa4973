"""Audio path figures: DriftBuffer cost per frame on pjmedia's clock thread, and CPU per line."""

from __future__ import annotations

import time

from drivers.audio import DriftBuffer, PcmFormat

FRAMES = 200_000


def _per_frame_us(fmt: PcmFormat, ppm: float) -> float:
    """push + pop_into of one frame, with the producer ``ppm`` fast (slips happen)."""
    buf = DriftBuffer(fmt)
    frame = bytes(fmt.bytes_per_frame)
    out = bytearray(fmt.bytes_per_frame)
    # A quarter frame extra every 1 / (4 * ppm) frames makes the producer ppm fast.
    extra_every = round(1 / (4 * ppm * 1e-6)) if ppm else 0
    started = time.perf_counter()
    for k in range(FRAMES):
        buf.push(frame)
        if extra_every and k % extra_every == 0:
            buf.push(frame[: 2 * (fmt.samples_per_frame // 4)])
        buf.pop_into(out)
    elapsed = time.perf_counter() - started
    return elapsed / FRAMES * 1e6


def main() -> None:
    for fmt in (PcmFormat(8000), PcmFormat(16000)):
        for ppm in (0.0, 2000.0):
            us = _per_frame_us(fmt, ppm)
            # Two directions per line, 50 frames/s each: CPU share of one core per line.
            cpu = us * 2 * 50 / 1e6 * 100
            print(
                f"   drift buffer push+pop {fmt.rate // 1000:>2} kHz {ppm:>6.0f} ppm"
                f"   {us:7.2f} us/frame   {cpu:6.3f} % CPU per line   (target < 1 %)"
            )
