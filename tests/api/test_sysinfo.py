"""system.info's /proc parsers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from firmware.api.sysinfo import (
    CpuSample,
    SystemInfo,
    cpu_percent,
    parse_loadavg,
    parse_meminfo,
    parse_proc_stat,
    parse_uptime,
)

STAT = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\nintr 1\n"


def test_proc_stat() -> None:
    assert parse_proc_stat(STAT) == CpuSample(busy=150, total=1000)
    with pytest.raises(ValueError):
        parse_proc_stat("intr 1\n")
    assert cpu_percent(CpuSample(150, 1000), CpuSample(250, 1200)) == 50.0
    assert cpu_percent(CpuSample(1, 1), CpuSample(1, 1)) is None


def test_meminfo_uptime_loadavg() -> None:
    mem = parse_meminfo("MemTotal:  1000 kB\nMemAvailable: 500 kB\nHugePages_Total: 0\nbad\n")
    assert mem == {"MemTotal": 1024000, "MemAvailable": 512000, "HugePages_Total": 0}
    assert parse_uptime("123.45 678.9\n") == 123.45
    assert parse_loadavg("0.5 0.25 0.1 1/100 42\n") == [0.5, 0.25, 0.1]


def test_snapshot_from_a_fake_proc(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text(STAT)
    (tmp_path / "meminfo").write_text("MemTotal: 2 kB\nMemAvailable: 1 kB\n")
    info = SystemInfo(tmp_path, clock=lambda: 5.0)
    (tmp_path / "stat").write_text("cpu  200 0 50 900 50 0 0 0\n")
    snap: Any = info.snapshot()
    assert snap["cpu"] == {"count": os.cpu_count(), "percent": 50.0, "load": None}
    assert snap["memory"] == {"total_bytes": 2048, "available_bytes": 1024}
    assert snap["uptime_s"] is None  # missing file: reported as unknown, not an error
    assert snap["pjsua2"] == "2.15.1.post1"  # from metadata, without importing pjsua2
