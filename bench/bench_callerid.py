"""Caller ID receive cost: microseconds per 20 ms frame per line (median), FSK and CAS."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Protocol

import numpy as np

from firmware.dsp.callerid import fsk, transmit, type2
from firmware.dsp.callerid.messages import CallSetup, DateTime
from firmware.dsp.pcm import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from firmware.dsp.profiles import get_profile

CALL = CallSetup(date_time=DateTime(11, 25, 18, 30), number="0612345678", name="PONTE BENCH")
REPEATS = 30


class _Receiver(Protocol):
    def feed(self, frame: Pcm, /) -> object: ...


def _frames(pcm: Pcm) -> list[Pcm]:
    usable = len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES
    return list(pcm[:usable].reshape(-1, FRAME_SAMPLES))


def _median_us(make: Callable[[], _Receiver], frames: list[Pcm]) -> tuple[float, float]:
    """Median over every frame of every repeat, each timed alone (robust to load spikes)."""
    times: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(REPEATS):
        feed = make().feed
        for frame in frames:
            started = clock()
            feed(frame)
            times.append(clock() - started)
    times.sort()
    return statistics.median(times) / 1000, times[len(times) * 9 // 10] / 1000


def main() -> None:
    rng = np.random.default_rng(0)
    silence = np.zeros(SAMPLE_RATE, dtype=np.int16)
    noise = rng.normal(0, 300, SAMPLE_RATE).astype(np.int16)
    for standard in ("bell202", "v23"):
        burst = np.concatenate([silence[:800], fsk.modulate_message(CALL, standard=standard)])
        for label, audio in (("burst", burst), ("silence", silence), ("noise", noise)):
            us, p90 = _median_us(partial(fsk.FskDemodulator, standard), _frames(audio))
            print(
                f"   callerid fsk {standard} demod ({label}): {us:.1f} us/frame/line median, "
                f"{p90:.1f} 90th percentile"
            )
    cas = np.concatenate([silence[:800], type2.cas_tone(), silence[:800]])
    for label, audio in (("cas", cas), ("noise", noise)):
        us, p90 = _median_us(type2.CasDetector, _frames(audio))
        print(
            f"   callerid cas detector ({label}): {us:.1f} us/frame/line median, "
            f"{p90:.1f} 90th percentile"
        )

    # Rendering what an FXS port sends with a call (the service does it off the event loop).
    for code in ("US", "GB", "NL"):
        spec = get_profile(code).callerid
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            rendered = transmit.render_on_hook(
                spec, number="0612345678", name="PONTE BENCH", when=CALL.date_time
            )
            rendered.line_audio()
            times.append(time.perf_counter() - started)
        print(
            f"   callerid render on-hook {code} ({spec.standard}, {spec.alerting}): "
            f"{statistics.median(times) * 1000:.2f} ms median, "
            f"{rendered.duration_ms} ms of line audio"
        )
