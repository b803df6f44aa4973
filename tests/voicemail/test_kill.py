"""A recorder killed with SIGKILL at any moment never loses a message or leaves the index
and the files disagreeing: every message it started is there after recovery, playable,
with every frame it had written."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from firmware.dsp import g711
from firmware.dsp.wavio import read_wav
from firmware.store.voicemail import JOURNAL_SUFFIX, VoicemailStore

from .recorder_proc import CAP_S, QUOTA, frame_value, settings

RECORDER = Path(__file__).with_name("recorder_proc.py")
ROOT = Path(__file__).resolve().parents[2]
POINTS = ("header", "seal", "rename", "index")
READ_TIMEOUT_S = 60.0  # a loaded 2-core machine may take long to start a Python child


def expected_pcm(frames: int, fmt: str) -> np.ndarray:
    pcm = np.repeat(np.array([frame_value(k) for k in range(frames)], np.int16), 160)
    if fmt == "alaw":
        return g711.alaw_round_trip(pcm)
    if fmt == "ulaw":
        return g711.ulaw_round_trip(pcm)
    return pcm


class Round:
    def __init__(self, data_dir: Path, fmt: str, stop_at: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(RECORDER), str(data_dir), fmt, stop_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            cwd=ROOT,
        )
        self.lines: list[list[str]] = []

    def read_until(self, word: str) -> list[str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + READ_TIMEOUT_S
        while time.monotonic() < deadline:
            raw = self.proc.stdout.readline()
            if not raw:
                _, err = self.proc.communicate(timeout=30)
                raise AssertionError(f"recorder ended: {err.decode()[-2000:]}")
            parts = raw.decode().split()
            self.lines.append(parts)
            if parts and parts[0] == word:
                return parts
        raise AssertionError(f"recorder never said {word!r}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        out, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL, err.decode()
        self.lines += [line.split() for line in out.decode().splitlines()]


def check_after(data_dir: Path, fmt: str, lines: list[list[str]], history: dict[str, int]) -> None:
    """Recover as the next boot would, then check every message against what was said."""
    with VoicemailStore.open(data_dir, settings(fmt)) as store:
        assert store.db.integrity_check() == ["ok"]
        messages = {m.id: m for m in store.messages("101")}
        box = store.box_dir("101")
        files = {p.stem for p in box.glob("*.wav") if p.name != "greeting.wav"}
        assert files == set(messages), "index and files disagree"
        assert not list(box.glob(f"*{JOURNAL_SUFFIX}")), "a journal survived recovery"
        assert len(messages) <= QUOTA
        # What the recorder reported: started messages and frames written.
        deleting: set[str] = set()
        deleted: set[str] = set()
        for parts in lines:
            if parts[0] == "begin":
                history.setdefault(parts[1], 0)
            elif parts[0] == "wrote":
                history[parts[1]] = max(history.get(parts[1], 0), int(parts[2]))
            elif parts[0] == "deleting":
                deleting.add(parts[1])
            elif parts[0] == "deleted":
                deleted.add(parts[1])
        for mid, frames in history.items():
            if mid in deleted:
                assert mid not in messages, f"{mid} came back after deletion"
                continue
            if mid in deleting:
                continue  # killed mid-delete: either way is right
            if frames == 0 and mid not in messages:
                continue  # killed before a frame was written: nothing to keep
            assert mid in messages, f"message {mid} with {frames} frames was lost"
            info = messages[mid]
            audio = read_wav(store.path_of("101", mid).read_bytes())
            assert audio.encoding == fmt and audio.rate == 8000
            got = audio.pcm.size // 160
            assert audio.pcm.size % 160 == 0
            assert frames <= got <= CAP_S * 50, (mid, frames, got)
            assert info.duration_ms == got * 20
            assert np.array_equal(audio.pcm, expected_pcm(got, fmt)), f"{mid}: samples damaged"
            assert info.caller_number.startswith("+4420")
        assert store.mwi_state().get("101", 0) == sum(m.state == "new" for m in messages.values())
    # Settled: deleted messages, and ones killed mid-delete that recovery found deleted.
    for mid in list(history):
        if mid in deleted or (mid in deleting and mid not in messages):
            del history[mid]


@pytest.mark.parametrize("fmt", ["pcm16", "alaw"])
def test_sigkill_at_every_point_loses_nothing(tmp_path: Path, fmt: str) -> None:
    rng = random.Random(20261125)
    history: dict[str, int] = {}
    started: set[str] = set()
    plan = [*POINTS, *POINTS, *(["none"] * 8)]
    rng.shuffle(plan)
    for stop_at in plan:
        r = Round(tmp_path, fmt, stop_at)
        r.read_until("ready")
        if stop_at == "none":
            # One whole message first, so how many messages a round starts does not hang
            # on how far the recorder ran ahead of this reader before the kill.
            r.read_until("done")
            r.read_until(rng.choice(["begin", "wrote", "done"]))
            time.sleep(rng.uniform(0, 0.05))
        else:
            r.read_until("at")
        r.kill()
        started |= {parts[1] for parts in r.lines if parts[0] == "begin"}
        check_after(tmp_path, fmt, r.lines, history)
    assert len(started) >= 2 * len(plan), "too few messages recorded across the kills"


def test_sox_plays_a_recovered_message(tmp_path: Path) -> None:
    r = Round(tmp_path, "alaw", "seal")
    r.read_until("at")  # the third message is recorded and waits to be sealed
    r.kill()
    with VoicemailStore.open(tmp_path, settings("alaw")) as store:
        messages = store.messages("101")
        assert len(messages) == 3
        path = store.path_of("101", messages[-1].id)
    out = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True)
    assert float(out.stdout) == pytest.approx(CAP_S, abs=0.001)
    stat = subprocess.run(
        ["sox", str(path), "-n", "stat"], capture_output=True, text=True, check=True
    )
    assert "Maximum amplitude" in stat.stderr
