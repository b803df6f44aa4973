"""``python -m firmware.prompts`` (``ponte prompts``) as a user runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware.prompts.catalogue import catalogue


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware.prompts", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_list_shows_every_prompt_in_the_language() -> None:
    out = run("list", "--language", "de")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(catalogue().names)
    assert any(line.split()[0] == "goodbye" and "Auf Wiederhören." in line for line in lines)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_build_then_check(tmp_path: Path) -> None:
    out = run("build", "--out", str(tmp_path), "--languages", "it")
    assert out.returncode == 0, out.stderr
    assert f"{len(catalogue().names)} rendered, 0 cached" in out.stdout
    assert (tmp_path / "it" / "vm-main-menu.wav").is_file()
    # Italian has every prompt; German falls back to nothing (no en, no de): all missing.
    ok = run("check", "--generated", str(tmp_path), "--language", "it")
    assert ok.returncode == 0 and "0 missing" in ok.stdout, ok.stdout
    bad = run("check", "--generated", str(tmp_path), "--language", "de")
    assert bad.returncode == 1 and f"{len(catalogue().names)} missing" in bad.stdout


def test_bad_language_is_named() -> None:
    out = run("build", "--languages", "en,xx")
    assert out.returncode == 2
    assert "unknown language(s) xx; known: en, de, fr, es, it, nl, pt" in out.stderr
