"""FXO media loop per-frame cost: caller-ID receivers and the call-progress detector."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from firmware.dsp.callerid import analysis
from firmware.dsp.profiles import get_profile
from firmware.dsp.progress import CallProgressDetector
from firmware.dsp.tones import render
from firmware.service.callerid_rx import CallerIdReceiver
from firmware.service.simkit import DspKit

FRAME = 160
FRAMES = 3000  # 60 s of line audio per figure


def _per_frame(feed: Callable[[np.ndarray], object], pcm: np.ndarray) -> float:
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]
    t0 = time.perf_counter()
    for frame in frames:
        feed(frame)
    return (time.perf_counter() - t0) / len(frames) * 1e6


def _line(name: str, value: float, unit: str, target: str = "") -> None:
    print(f"   {name:<52} {value:>10.1f} {unit:<6} {target}")


def main() -> None:
    quiet = np.zeros(FRAMES * FRAME, dtype=np.int16)
    rng = np.random.default_rng(1)
    noise = (rng.normal(0, 30, FRAMES * FRAME)).astype(np.int16)  # about -55 dBm0 (RMS 30)
    for code in ("US", "GB", "SE"):
        rx = CallerIdReceiver(get_profile(code))
        _line(
            f"{code} caller-ID receiver, quiet line, per 20 ms frame",
            _per_frame(rx.feed, quiet),
            "us",
        )
        _line(
            f"{code} caller-ID receiver, -55 dBm0 noise, per frame",
            _per_frame(rx.feed, noise),
            "us",
        )
    us = get_profile("US")
    burst = analysis.render(
        analysis.build_message("mdmf", number="5551234", name="ALICE", date="11251830"),
        spec=us.callerid,
    )
    reps = np.tile(np.concatenate([burst, np.zeros(4000, np.int16)]), 20)
    rx = CallerIdReceiver(us)
    _line("US receiver, back-to-back Bell 202 bursts, per frame", _per_frame(rx.feed, reps), "us")
    busy = render(get_profile("DE").tones["busy"], FRAMES * 20)
    progress = CallProgressDetector(get_profile("DE"))
    _line("DE call-progress detector, busy tone, per frame", _per_frame(progress.feed, busy), "us")
    kit = DspKit()
    for code in ("US", "GB", "NL"):
        renderer = kit.exchange(code).caller_id
        assert renderer is not None
        t0 = time.perf_counter()
        for _ in range(50):
            renderer("5551234", None if code == "NL" else "ALICE", "11251830")
        _line(
            f"{code} simulated exchange: render one caller-ID burst",
            (time.perf_counter() - t0) / 50 * 1e3,
            "ms",
        )


if __name__ == "__main__":
    main()
