"""``ponte hwtest``: the technician's run and report, against the simulator."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hwtests.cli import Outcome, render


def ponte(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_the_simulated_card_passes_and_the_report_says_so(tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    proc = ponte("hwtest", "--report", str(report))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = report.read_text()
    assert "result:    11 passed, 0 failed, 0 skipped" in text
    assert "CARD PASSES" in text
    assert "flash_ms=500" in text
    assert "ports:     FXS,FXS,FXO" in text


def test_a_card_at_a_serial_url_is_tested_through_it(tmp_path: Path) -> None:
    control = tmp_path / "sim.sock"
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firmware",
            "sim",
            "start",
            "--fxs",
            "1",
            "--fxo",
            "1",
            "--listen",
            "socket://127.0.0.1:0",
            "--control",
            str(control),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert sim.stdout is not None
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = sim.stdout.readline()
            if line.startswith("linecard:"):
                url = line.split(":", 1)[1].strip()
        assert url, "simulator did not start"
        report = tmp_path / "report.txt"
        # The tests that need no hands at the bench.
        proc = ponte(
            "hwtest", "--linecard", url, "--report", str(report),
            "-k", "handshake or status or polarity or rejected or seize",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        text = report.read_text()
        assert f"card:      {url}" in text
        assert "result:    5 passed, 0 failed, 0 skipped" in text
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def test_a_failure_is_named_and_fails_the_card() -> None:
    import datetime as dt

    text = render(
        [
            Outcome("flash is timed", "FAIL", 0.5, "assert 700 <= 5", [("flash_ms", 700)]),
            Outcome("polarity", "PASS", 0.1),
        ],
        "/dev/ttyS1",
        dt.datetime(2026, 1, 2, 3, 4, 5),
    )
    assert "FAIL  flash is timed" in text and "flash_ms=700" in text
    assert "      assert 700 <= 5" in text
    assert "result:    1 passed, 1 failed, 0 skipped" in text
    assert text.rstrip().endswith("CARD FAILS")
