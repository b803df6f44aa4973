"""``ponte records`` on a data directory, as an installer runs it."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

from firmware.store import ConfigStore
from firmware.store.records import CSV_COLUMNS, RecordStore

from .record_factory import T0, leg_for


def ponte(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "firmware", "records", *args],
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_list_summary_and_export(tmp_path: Path) -> None:
    with ConfigStore.open(tmp_path) as config:  # the box's zone: Berlin
        current = config.current().config
        system = dataclasses.replace(current.system, timezone="Europe/Berlin")
        config.apply(dataclasses.replace(current, system=system), author="test")
    with RecordStore.open(tmp_path) as store:
        store.insert([leg_for(i) for i in range(1, 31)])
    d = str(tmp_path)

    listed = ponte("list", "--data-dir", d, "--port", "2", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.decode().splitlines()]
    assert [r["id"] for r in rows] == [f"leg-{i}" for i in range(29, 0, -4)]
    text = ponte("list", "--data-dir", d, "--limit", "3").stdout.decode()
    assert "2025-11-24 17:00:30" in text and "(more:" in text  # local (Berlin) time

    summary = ponte("summary", "--data-dir", d, "--json")
    figures = json.loads(summary.stdout)
    assert figures["timezone"] == "Europe/Berlin" and figures["legs"] == 30
    assert figures["answered_legs"] == 20 and figures["asr_pct"] == 66.67
    assert ponte("summary", "--data-dir", d).stdout.decode().count("answer-seizure ratio") == 1

    out = tmp_path / "records.csv"
    done = ponte("export", "--data-dir", d, "--since", "2025-11-24T17:00:10", "-o", str(out))
    assert done.returncode == 0 and b"21 records written" in done.stderr
    raw = out.read_bytes()
    assert raw.count(b"\r\n") == 22
    parsed = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert parsed[0] == list(CSV_COLUMNS) and parsed[1][1] == "leg-10"
    assert parsed[1][9] == "2025-11-24T17:00:10.000+01:00"
    piped = ponte("export", "--data-dir", d, "--since", "2025-11-24T17:00:10")
    assert piped.stdout == raw


def test_errors_say_what_was_wrong(tmp_path: Path) -> None:
    missing = ponte("list", "--data-dir", str(tmp_path))
    assert missing.returncode == 1 and b"no call records" in missing.stderr
    RecordStore.open(tmp_path).close()
    bad = ponte("summary", "--data-dir", str(tmp_path), "--since", "last tuesday")
    assert bad.returncode == 1 and b"not an ISO 8601" in bad.stderr
    zone = ponte("summary", "--data-dir", str(tmp_path), "--timezone", "Mars/Base")
    assert zone.returncode == 1 and b"unknown time zone" in zone.stderr
    assert T0 > 0
