"""A writer killed with SIGKILL at random moments never leaves a damaged store behind."""

from __future__ import annotations

import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from firmware.store import DB_FILENAME, ConfigStore

from .writer_proc import expected

WRITER = Path(__file__).with_name("writer_proc.py")
ROUNDS = 20
MAX_RUN_S = 0.25  # how long a writer may run before it is killed


def _committed(out: bytes) -> int:
    numbers = [int(line) for line in out.split() if line.isdigit()]
    return max(numbers, default=0)


def test_sigkill_mid_write_leaves_the_last_commit_intact(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    last_seen = 1
    killed_after_writes = 0
    for _ in range(ROUNDS):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        # Some kills land while the writer is still starting or opening the database.
        if rng.random() < 0.8:
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, "writer did not start"
        time.sleep(rng.uniform(0, MAX_RUN_S))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        committed = _committed(out)
        killed_after_writes += committed > 0

        with ConfigStore.open(tmp_path) as store:
            assert store.db.integrity_check() == ["ok"]
            current = store.current()  # parses and validates the whole document
            # Everything the writer reported as committed is there, and at most the one
            # commit it had no time to report beyond it.
            assert current.version >= max(committed, last_seen)
            assert current.version <= max(committed, last_seen) + 1
            if current.version > 1:
                previous = store.get(current.version - 1).config
                assert current.config == expected(previous, current.version)
            versions = [h.version for h in store.history()]
            assert versions == list(range(current.version, 0, -1))
            last_seen = current.version
    assert killed_after_writes >= ROUNDS // 2, "too few kills landed during writes"
    assert (tmp_path / DB_FILENAME).exists()
    print(f"{ROUNDS} kills, {last_seen} versions written")
