"""Several processes editing at once: optimistic concurrency loses no update."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from firmware.store import ConfigStore, default_config

WRITER = str(Path(__file__).with_name("writer_proc.py"))

WRITERS = 4
WRITES_EACH = 12


def test_concurrent_read_modify_write_loses_nothing(tmp_path: Path) -> None:
    ConfigStore.open(tmp_path, defaults=default_config(fxs_ports=WRITERS)).close()
    procs = [
        subprocess.Popen(
            [sys.executable, WRITER, str(tmp_path), "race", str(port), str(WRITES_EACH)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for port in range(WRITERS)
    ]
    conflicts = 0
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        conflicts += int(out.strip())
    with ConfigStore.open(tmp_path) as store:
        assert store.head() == 1 + WRITERS * WRITES_EACH
        # Each writer's last value survived every other writer's saves.
        assert [p.gain_tx for p in store.current().config.lines.fxs] == [
            float(WRITES_EACH)
        ] * WRITERS
        authors = [h.author for h in store.history()]
        for port in range(WRITERS):
            assert authors.count(f"racer {port}") == WRITES_EACH
    print(f"{conflicts} conflicts detected and retried")
