"""A process that inserts call records in batches as fast as it can, until it is killed.

Run by test_records_kill.py.  Record number N is ``record_factory.leg_for(N)`` and gets seq
N, so the survivor can check every row it finds.  After each commit it prints the last seq.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from firmware.store.records import RecordStore
from tests.store.record_factory import leg_for

BATCH = 25


def main(data_dir: str) -> None:
    with RecordStore.open(data_dir) as store:
        print("ready", flush=True)
        while True:
            first = store.last_seq() + 1
            seqs = store.insert([leg_for(n) for n in range(first, first + BATCH)])
            print(seqs[-1], flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
