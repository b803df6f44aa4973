"""Per-line receive cost: microseconds per 20 ms frame, median, on this machine.

Each detector gets a realistic mix (speech from the corpus, a busy tone, a caller ID
burst, DTMF digits) so that its busy paths run, not only the silent ones.  Targets from
issue 3: DTMF detection <= 20 us, the whole per-line receive analysis <= 50 us.
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from firmware.dsp.levels import LevelMeter
from firmware.dsp.pcm import FRAME_SAMPLES, Pcm
from firmware.dsp.profiles import get_profile
from firmware.dsp.progress import CallProgressDetector
from firmware.dsp.tones import TonePlayer

SECONDS = 30  # of line audio per measurement (1500 frames)
ROUNDS = 3


def _optional(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        return None


def line_audio() -> Pcm:
    """Speech, then busy tone, then a caller ID burst and DTMF when those modules exist."""
    parts = []
    corpus = _optional("bench.corpus")
    if corpus is not None:
        parts.append(corpus.speech_corpus(SECONDS / 60 / 2, seed=3))
    profile = get_profile("US")
    parts.append(TonePlayer(profile.tones["busy"]).render_ms(SECONDS * 1000 / 4))
    cid = _optional("firmware.dsp.callerid")
    if cid is not None:
        parts.append(cid.modulate_message(cid.CallSetup(number="5551234", name="BENCH")))
    dtmf = _optional("firmware.dsp.dtmf")
    if dtmf is not None:
        parts.append(dtmf.generate_dtmf("0123456789*#ABCD"))
    pcm = np.concatenate(parts)
    need = SECONDS * 8000
    reps = -(-need // pcm.size)
    return np.tile(pcm, reps)[:need]


def per_frame_us(make: Callable[[], Callable[[Pcm], object]], pcm: Pcm) -> float:
    """Median microseconds per frame over ROUNDS runs of a fresh detector."""
    frames = [pcm[i : i + FRAME_SAMPLES] for i in range(0, pcm.size, FRAME_SAMPLES)]
    samples: list[int] = []
    for _ in range(ROUNDS):
        feed = make()
        for frame in frames:
            t0 = time.perf_counter_ns()
            feed(frame)
            samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000


def receivers() -> dict[str, Callable[[], Callable[[Pcm], object]]]:
    profile = get_profile("US")
    out: dict[str, Callable[[], Callable[[Pcm], object]]] = {
        "call-progress detection": lambda: CallProgressDetector(profile).feed,
        "level meter": lambda: LevelMeter().feed,
    }
    dtmf = _optional("firmware.dsp.dtmf")
    if dtmf is not None:
        out["DTMF detection"] = lambda: dtmf.DtmfDetector().feed
    cid = _optional("firmware.dsp.callerid")
    if cid is not None:
        out["caller ID demodulation (Bell 202)"] = lambda: cid.FskDemodulator("bell202").feed
    return out


def combined() -> Callable[[Pcm], object]:
    """The line receiver (shares the frame conversion and power), else the parts in turn."""
    receive = _optional("firmware.dsp.receive")
    if receive is not None:
        return receive.LineReceiver(get_profile("US")).feed  # type: ignore[no-any-return]
    feeds = [make() for make in receivers().values()]

    def feed(frame: Pcm) -> None:
        for f in feeds:
            f(frame)

    return feed


def main() -> None:
    pcm = line_audio()
    targets = {"DTMF detection": "<= 20 us"}
    for name, make in receivers().items():
        us = per_frame_us(make, pcm)
        print(f"   {name:<40} {us:8.1f} us/frame/line  {targets.get(name, '')}")
    missing = [m for m in ("firmware.dsp.dtmf", "firmware.dsp.callerid") if not _optional(m)]
    us = per_frame_us(combined, pcm)
    label = "whole receive analysis" + (f" (without {', '.join(missing)})" if missing else "")
    print(f"   {label:<40} {us:8.1f} us/frame/line  <= 50 us")


if __name__ == "__main__":
    main()
