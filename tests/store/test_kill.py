"""A writer killed with SIGKILL at random moments never leaves a damaged store behind."""

from __future__ import annotations

import random
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
            # Unbuffered: readline() must not swallow later lines that communicate() then
            # would never see (it reads the pipe's file descriptor, not our buffer).
            bufsize=0,
        )
        assert proc.stdout is not None
        seen = b""
        mode = rng.random()
        # A fifth of the kills land while the writer is starting or opening the database;
        # the others after it is ready, half of them only once it has committed (so that
        # a loaded machine cannot turn the whole test into kills before any write).
        if mode >= 0.2:
            seen += proc.stdout.readline()
            assert seen == b"ready\n", "writer did not start"
        if mode >= 0.6:
            seen += proc.stdout.readline()
        time.sleep(rng.uniform(0, MAX_RUN_S))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        committed = _committed(seen + out)
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
    assert killed_after_writes >= ROUNDS // 3, "too few kills landed during writes"
    assert (tmp_path / DB_FILENAME).exists()
    print(f"{ROUNDS} kills, {last_seen} versions written")
