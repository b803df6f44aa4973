"""A process that records voicemail messages one after another, until it is killed.

Run by test_kill.py as ``recorder_proc.py DATA_DIR FORMAT STOP_AT``.  Frame k of every
message is the constant sample value ``frame_value(k)``, so that the survivor can check
every sample of what it finds.  It reports on stdout: ``begin ID``, ``wrote ID N`` (N frames
are in the journal), ``done ID``, ``deleting ID`` / ``deleted ID`` (it empties the box
when the quota refuses a message).

STOP_AT names a point where the process announces ``at POINT`` and waits to be killed:
``none`` (killed at a random moment), ``header`` (journal created, no header yet),
``seal`` (recording over, header not fixed), ``rename`` (header fixed, not renamed),
``index`` (renamed, index row not committed).  The point is reached on the third message.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from firmware.store import voicemail as vs
from firmware.store.schema import VoicemailConfig

FRAMES_PER_MESSAGE = 300  # 6 s, over the 5 s cap of the test's configuration
QUOTA = 6
CAP_S = 5
TRIGGER_ON = 3


def frame_value(k: int) -> int:
    return (k % 200) * 100 - 10000


def settings(fmt: str) -> VoicemailConfig:
    return VoicemailConfig(max_message_s=CAP_S, max_messages=QUOTA, format=fmt)  # type: ignore[arg-type]


def say(*words: object) -> None:
    print(*words, flush=True)


def main(data_dir: str, fmt: str, stop_at: str) -> None:
    store = vs.VoicemailStore.open(data_dir, settings(fmt))
    say("ready")
    count = 0

    def park(point: str) -> None:
        if point == stop_at and count == TRIGGER_ON:
            say("at", point)
            time.sleep(3600)

    def hook(name: str, point: str, target: Any = vs) -> None:
        original = getattr(target, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            park(point)
            return original(*args, **kwargs)

        setattr(target, name, wrapped)

    hook("journal_header", "header")
    hook("_commit_journal", "seal", vs.VoicemailStore)
    hook("_index_file", "index", vs.VoicemailStore)
    real_seal = vs.seal_file

    def seal_then_park(path: Path) -> Any:
        out = real_seal(path)
        park("rename")
        return out

    vs.seal_file = seal_then_park

    while True:
        count += 1
        try:
            rec = store.begin_message("101", f"+4420{count:04d}", f"Caller {count}")
        except vs.MailboxFull:
            for m in store.messages("101"):
                say("deleting", m.id)
                store.delete("101", m.id)
                say("deleted", m.id)
            count -= 1
            continue
        say("begin", rec.id)
        for k in range(FRAMES_PER_MESSAGE):
            frame = np.full(160, frame_value(k), "<i2").tobytes()
            if not rec.append(frame):
                break
            if k % 10 == 9:
                say("wrote", rec.id, k + 1)
                time.sleep(0.002)
        info = rec.finish()
        say("done", rec.id, info.duration_ms if info else 0)
        if os.environ.get("RECORDER_ONE_SHOT"):
            return


if __name__ == "__main__":
    main(*sys.argv[1:4])
