"""``system.info``: versions, uptime, load and memory, read from /proc.

The parsers are pure functions of the files' text so they can be tested on any input;
:class:`SystemInfo` reads the files and keeps the previous CPU sample to report usage
between two calls.  pjsua2's version comes from the installed distribution's metadata:
importing pjsua2 here would start the SIP stack's C library in the API process.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware.api.protocol import JsonValue

PONTE_DISTRIBUTION: Final = "ponte"
PJSUA2_DISTRIBUTION: Final = "pjsua2-python"


@dataclass(frozen=True, slots=True)
class CpuSample:
    busy: int  # jiffies spent not idle
    total: int


def parse_proc_stat(text: str) -> CpuSample:
    """The aggregate ``cpu`` line of /proc/stat (proc(5)): user nice system idle iowait ..."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:]]
            if len(values) < 4:
                raise ValueError("/proc/stat cpu line has fewer than 4 fields")
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            # guest time is already counted in user/nice (proc(5)); fields 9+ are guest
            total = sum(values[:8])
            return CpuSample(total - idle, total)
    raise ValueError("/proc/stat has no aggregate cpu line")


def cpu_percent(before: CpuSample, after: CpuSample) -> float | None:
    total = after.total - before.total
    if total <= 0:
        return None
    return round(100.0 * (after.busy - before.busy) / total, 1)


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo -> {field: bytes} (the file says kB and means KiB)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts:
            continue
        try:
            value = int(parts[0])
        except ValueError:
            continue
        out[name.strip()] = value * 1024 if parts[1:] == ["kB"] else value
    return out


def parse_uptime(text: str) -> float:
    return float(text.split()[0])


def parse_loadavg(text: str) -> list[float]:
    return [float(v) for v in text.split()[:3]]


def distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class SystemInfo:
    def __init__(
        self, proc: Path = Path("/proc"), clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.proc = proc
        self.clock = clock
        self.started = clock()
        self._cpu = self._read_cpu()

    def _read(self, name: str) -> str | None:
        try:
            return (self.proc / name).read_text()
        except OSError:
            return None

    def _read_cpu(self) -> CpuSample | None:
        text = self._read("stat")
        try:
            return parse_proc_stat(text) if text is not None else None
        except ValueError:
            return None

    def snapshot(self) -> dict[str, JsonValue]:
        cpu = self._read_cpu()
        usage = cpu_percent(self._cpu, cpu) if cpu and self._cpu else None
        if cpu is not None:
            self._cpu = cpu
        mem_text = self._read("meminfo")
        mem = parse_meminfo(mem_text) if mem_text else {}
        up_text = self._read("uptime")
        load_text = self._read("loadavg")
        return {
            "version": distribution_version(PONTE_DISTRIBUTION),
            "hostname": socket.gethostname(),
            "uptime_s": parse_uptime(up_text) if up_text else None,
            "service_uptime_s": round(self.clock() - self.started, 3),
            "cpu": {
                "count": os.cpu_count(),
                "percent": usage,  # since the previous system.info call
                "load": [*parse_loadavg(load_text)] if load_text else None,
            },
            "memory": {
                "total_bytes": mem.get("MemTotal"),
                "available_bytes": mem.get("MemAvailable"),
            },
            "python": platform.python_version(),
            "pjsua2": distribution_version(PJSUA2_DISTRIBUTION),
        }
