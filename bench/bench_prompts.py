"""Prompt figures: espeak-ng build time (cold and cached), lookup time, IVR step time."""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from firmware.pbx.ivr import IvrPlan, PlayPrompts
from firmware.prompts.build import build
from firmware.prompts.catalogue import LANGUAGES, catalogue
from firmware.prompts.library import PromptLibrary
from firmware.prompts.speech import say_number
from firmware.store.validate import parse

LOOKUPS = 20_000


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def _ivr_plan() -> IvrPlan:
    menus = [
        {
            "name": "main",
            "options": [{"digit": "1", "to": "menu:sales"}, {"digit": "0", "to": "extension:101"}],
            "direct_dial": "[2-9]xx",
        },
        {"name": "sales", "options": [{"digit": "1", "to": "extension:102"}]},
    ]
    doc = {"ivr": {"enabled": True, "number": "500", "open_menu": "main", "menus": menus}}
    return IvrPlan.from_config(parse(doc))


def main() -> None:
    if shutil.which("espeak-ng") is None:
        print("   espeak-ng is not installed: no build figures")
        return
    names = len(catalogue().names)
    with tempfile.TemporaryDirectory(prefix="bench-prompts-") as tmp:
        out = Path(tmp)
        cold = build(out, ["en"])
        print(
            f"   build, cold, 1 language:         {cold.seconds:7.2f} s  "
            f"({names} prompts, {cold.seconds / names * 1000:.0f} ms each)"
        )
        warm = build(out, ["en"])
        print(f"   build, all cached, 1 language:   {warm.seconds * 1000:7.1f} ms")
        everything = build(out, LANGUAGES)
        print(
            f"   build, cold, {len(LANGUAGES) - 1} more languages:    {everything.seconds:7.2f} s  "
            f"({everything.rendered} rendered)"
        )
        size = sum(p.stat().st_size for p in out.rglob("*.wav"))
        print(f"   size of all prompts ({len(LANGUAGES)} languages):  {size / 1e6:7.1f} MB")

        lib = PromptLibrary(out, out / "custom")
        first = []
        for name in catalogue().names[:200]:
            started = time.perf_counter()
            lib.get(name, "de")
            first.append((time.perf_counter() - started) * 1e6)
        print(f"   lookup, first (reads the file):  {statistics.median(first):7.1f} µs median")
        cached = _per_call_us(lambda: lib.get("welcome", "de"), LOOKUPS)
        print(f"   lookup, cached:                  {cached:7.2f} µs")
        seq = _per_call_us(lambda: lib.sequence(say_number(1234), "de"), 2000)
        print(f"   say_number(1234) joined, cached: {seq:7.1f} µs")
        lib.invalidate()
        miss = _per_call_us(lambda: lib.get("no-such-prompt", "de"), 1)
        print(f"   lookup, miss -> error tone:      {miss:7.1f} µs")

    plan = _ivr_plan()
    when = dt.datetime.now(dt.UTC)

    def one_call() -> None:
        s = plan.session()
        play = s.start(0, when)[0]
        assert isinstance(play, PlayPrompts)
        s.digit("1", 100)
        s.digit("1", 200)

    print(f"   IVR session, start + 2 keys:     {_per_call_us(one_call, 5000):7.1f} µs")
