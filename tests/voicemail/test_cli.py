"""``ponte voicemail list|export`` on a data directory, as a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from firmware.dsp.wavio import read_wav
from firmware.store.voicemail import VoicemailStore


def ponte(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "firmware", "voicemail", *args],
        capture_output=True,
        timeout=120,
        cwd=cwd,
    )


def test_list_and_export(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with VoicemailStore.open(data) as store:
        rec = store.begin_message("101", "+4420", 'Ann, "the" caller')
        rec.append(np.full(8000, 500, np.int16).tobytes())
        info = rec.finish()
        assert info is not None
        live = store.begin_message("101")  # a recording in progress is left alone
        live.append(np.zeros(160, np.int16).tobytes())
        out = ponte("list", "--data-dir", str(data))
        assert out.returncode == 0, out.stderr
        text = out.stdout.decode()
        assert "box 101: 1 new, 0 saved, default greeting" in text
        assert info.id in text and '+4420 Ann, "the" caller' in text and "1.0 s" in text
        assert live.path.exists()
        live.abandon()

    out = ponte("list", "101", "--json", "--data-dir", str(data))
    doc = json.loads(out.stdout)
    assert doc["boxes"][0]["messages"][0]["caller_name"] == 'Ann, "the" caller'

    out = ponte("export", "101", info.id, "--data-dir", str(data), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    exported = tmp_path / f"{info.id}.wav"
    assert read_wav(exported.read_bytes()).seconds == 1.0
    out = ponte("export", "101", info.id, "-", "--data-dir", str(data))
    assert out.stdout == exported.read_bytes()


def test_errors_name_what_was_wrong(tmp_path: Path) -> None:
    out = ponte("list", "--data-dir", str(tmp_path / "nothing"))
    assert out.returncode == 1 and b"no voicemail in" in out.stderr
    assert not (tmp_path / "nothing").exists()  # looking does not create anything
    with VoicemailStore.open(tmp_path):
        pass
    out = ponte("export", "101", "20261125-000000-00000000", "--data-dir", str(tmp_path))
    assert out.returncode == 1 and b"no message 20261125-000000-00000000" in out.stderr
    out = ponte("export", "../x", "y", "--data-dir", str(tmp_path))
    assert out.returncode == 1 and b"not an extension number" in out.stderr
    out = ponte("list", "1x", "--data-dir", str(tmp_path))
    assert out.returncode == 1 and b"not an extension number" in out.stderr
