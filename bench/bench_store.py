"""Configuration store figures: save latency (synchronous=FULL), load, validation, TOML."""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from firmware.store import ConfigStore, Extension, check, default_config, dumps_toml, loads_toml
from firmware.store.schema import Config

SAVES = 300


def _variant(config: Config, i: int) -> Config:
    fxs = list(config.lines.fxs)
    fxs[0] = dataclasses.replace(fxs[0], gain_rx=float(i % 13 - 6))
    extra = tuple(Extension(number=str(3000 + n), name=f"desk {n}") for n in range(40))
    return dataclasses.replace(
        config,
        lines=dataclasses.replace(config.lines, fxs=tuple(fxs)),
        extensions=config.extensions + extra,
    )


def _time(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _report(name: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"   {name:<36} median {statistics.median(samples):8.3f} ms   p95 {p95:8.3f} ms")


def main() -> None:
    # fsync cost depends on the file system: set PONTE_BENCH_DIR to measure on the real one
    # when the temporary directory is a tmpfs.
    base = os.environ.get("PONTE_BENCH_DIR", tempfile.gettempdir())
    with tempfile.TemporaryDirectory(dir=base, prefix=".bench-store-") as tmp:
        store = ConfigStore.open(tmp, defaults=default_config(8, 4))
        config = store.current().config
        counter = iter(range(1, 10**9))
        _report(
            "save a version (fsync'd)",
            _time(lambda: store.apply(_variant(config, next(counter)), author="bench"), SAVES),
        )
        _report("load the current version", _time(store.current, 200))
        big = store.current().config
        _report("validate a document", _time(lambda: check(big), 200))
        text = dumps_toml(big)
        _report("export TOML", _time(lambda: dumps_toml(big), 200))
        _report("import TOML (parse + validate)", _time(lambda: loads_toml(text, big), 200))
        _report("diff two versions", _time(lambda: store.diff(2, 3), 200))
        store.close()
        size = sum(f.stat().st_size for f in Path(tmp).iterdir())
        print(
            f"   {'database size after ' + str(SAVES + 1) + ' versions':<36} {size / 1024:8.0f} KiB"
        )
        print(f"   {'TOML export size':<36} {len(text.encode()) / 1024:8.1f} KiB")
        print(f"   (directory: {base})")


if __name__ == "__main__":
    main()
