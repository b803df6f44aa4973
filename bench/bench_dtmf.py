"""DTMF detection cost: microseconds per 20 ms frame per line (median), issue 3 figures.

One detector per line is fed 160-sample frames one at a time, as the media path will.
The signals are what a line carries: silence, the speech and music corpus, and digits in
noise over dial tone.  The median over the mix is the figure the issue sets a target for.
"""

from __future__ import annotations

import time
from typing import Final

import numpy as np

from bench.conformance_dtmf import dial_tone
from bench.corpus import talk_corpus
from firmware.dsp.dtmf import DtmfDetector, generate_dtmf
from firmware.dsp.levels import rms_for_dbm0
from firmware.dsp.pcm import FRAME_SAMPLES, Pcm, to_pcm

TARGET_US: Final = 20.0  # issue 3: DTMF detection, µs per 20 ms frame per line (median)
REPEATS: Final = 3


def _frames(pcm: Pcm) -> list[Pcm]:
    n = pcm.size // FRAME_SAMPLES
    return list(pcm[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES))


def per_frame_us(pcm: Pcm) -> np.ndarray:
    """Time of each ``feed`` of a 160-sample frame, in µs (best of ``REPEATS`` passes)."""
    frames = _frames(pcm)
    best = np.full(len(frames), np.inf)
    for _ in range(REPEATS):
        detector = DtmfDetector()
        times = np.empty(len(frames))
        clock = time.perf_counter_ns
        for i, frame in enumerate(frames):
            start = clock()
            detector.feed(frame)
            times[i] = clock() - start
        best = np.minimum(best, times / 1000)
    return best


def signals() -> dict[str, Pcm]:
    digits = generate_dtmf("0123456789*#ABCD" * 20, level_dbm0=-20, on_ms=50, off_ms=50)
    noisy = digits.astype(np.float64)
    noisy += np.random.default_rng(0).normal(0, rms_for_dbm0(-32), noisy.size)
    noisy += dial_tone(noisy.size, "US")
    return {
        "silence": np.zeros(FRAME_SAMPLES * 1500, dtype=np.int16),
        "speech and music": talk_corpus(1.0),
        "digits in noise": to_pcm(noisy),
    }


def main() -> None:
    sig = signals()
    all_times = []
    for name, pcm in sig.items():
        times = per_frame_us(pcm)
        all_times.append(times)
        print(
            f"dtmf detect, {name:<18} {np.median(times):6.1f} µs/frame median"
            f"  (p99 {np.percentile(times, 99):.1f})"
        )
    mix = np.concatenate(all_times)
    print(
        f"dtmf detect, {'all signals':<18} {np.median(mix):6.1f} µs/frame median"
        f"  target ≤ {TARGET_US:.0f}"
    )


if __name__ == "__main__":
    main()
