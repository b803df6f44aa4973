"""A process that saves configuration versions as fast as it can, until it is killed.

Run by test_kill.py.  Each version's content is derived from its number, so that the
survivor can check that the version it finds is whole: hostname ``v<N>``, port 1's gain
``N mod 13 - 6`` and ``N mod 40 + 1`` extra extensions (so documents change size and span
several pages).  After each commit it prints the version number.
"""

from __future__ import annotations

import dataclasses
import sys

from firmware.store import ConfigStore, Extension, VersionConflict
from firmware.store.schema import Config


def expected(config: Config, version: int) -> Config:
    fxs = list(config.lines.fxs)
    fxs[0] = dataclasses.replace(fxs[0], gain_rx=float(version % 13 - 6))
    extra = tuple(
        Extension(number=str(2000 + i), name=f"extra {i} of v{version}")
        for i in range(version % 40 + 1)
    )
    base = tuple(e for e in config.extensions if not e.number.startswith("2"))
    return dataclasses.replace(
        config,
        system=dataclasses.replace(config.system, hostname=f"v{version}"),
        lines=dataclasses.replace(config.lines, fxs=tuple(fxs)),
        extensions=base + extra,
    )


def main(data_dir: str) -> None:
    with ConfigStore.open(data_dir) as store:
        print("ready", flush=True)
        while True:
            current = store.current()
            target = expected(current.config, current.version + 1)
            info = store.apply(target, author="writer", expected_version=current.version)
            print(info.version, flush=True)


def race(data_dir: str, port: int, count: int) -> None:
    """Set FXS port ``port``'s gain to 1, 2, .. ``count``, each a read-modify-write with
    the version read as ``expected_version``, retrying when another writer got in first."""
    conflicts = 0
    with ConfigStore.open(data_dir) as store:
        for k in range(1, count + 1):
            while True:
                current = store.current()
                fxs = list(current.config.lines.fxs)
                fxs[port] = dataclasses.replace(fxs[port], gain_tx=float(k))
                lines = dataclasses.replace(current.config.lines, fxs=tuple(fxs))
                try:
                    store.apply(
                        dataclasses.replace(current.config, lines=lines),
                        author=f"racer {port}",
                        expected_version=current.version,
                    )
                    break
                except VersionConflict:
                    conflicts += 1
    print(conflicts, flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "race":
        race(sys.argv[1], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main(sys.argv[1])
