"""A process inserting call records, killed with SIGKILL, never leaves a damaged store:
every batch it reported is there, whole, and at most one unreported batch beyond it."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from firmware.store.records import RecordQuery, RecordStore

from .record_factory import leg_for
from .records_writer_proc import BATCH

WRITER = Path(__file__).with_name("records_writer_proc.py")
ROUNDS = 12
MAX_RUN_S = 0.3


def test_sigkill_while_inserting_keeps_every_committed_batch(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    last_seen = 0
    kills_after_writes = 0
    for _ in range(ROUNDS):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        assert proc.stdout is not None
        seen = proc.stdout.readline()
        assert seen == b"ready\n", proc.stderr.read() if proc.stderr else ""
        if rng.random() < 0.7:
            seen += proc.stdout.readline()  # most kills land once it has committed
        time.sleep(rng.uniform(0, MAX_RUN_S))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        reported = max([int(x) for x in (seen + out).split() if x.isdigit()], default=0)
        kills_after_writes += reported > last_seen

        with RecordStore.open(tmp_path) as store:
            assert store.db.integrity_check() == ["ok"]
            count = store.count()
            committed = max(reported, last_seen)
            assert committed <= count <= committed + BATCH
            assert count % BATCH == 0, "a batch was half written"
            assert store.last_seq() == count
            for stored in store.iterate(RecordQuery()):
                assert stored.record == leg_for(stored.seq)
            last_seen = count
    assert kills_after_writes >= ROUNDS // 3, "too few kills landed during writes"
    assert last_seen > 0
