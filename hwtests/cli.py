"""``ponte hwtest``: run the line-card contract suite and write a report to hand over."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

HELP = "run the line-card hardware tests (the simulator unless --linecard) and write a report"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--linecard",
        metavar="URL",
        help="the card under test: /dev/ttyS1, /dev/ttyUSB0, socket://HOST:PORT, a pty; "
        "a technician answers the prompts.  Without it the simulator is tested.",
    )
    parser.add_argument(
        "--report",
        type=Path,
        help="where to write the report (default: hwtest-report-YYYYmmdd-HHMMSS.txt here)",
    )
    parser.add_argument("-k", metavar="EXPR", help="run only the tests matching EXPR")
    parser.add_argument(
        "--progress-jsonl",
        action="store_true",
        help="also print one JSON line per test, prefixed with "
        f"{PROGRESS_PREFIX.strip()!r} (the appliance's hwtest.run job reads them)",
    )


PROGRESS_PREFIX = "@@ponte-hwtest "


@dataclass
class Outcome:
    name: str
    result: str
    seconds: float
    detail: str = ""
    figures: list[tuple[str, object]] = field(default_factory=list)


class ReportPlugin:
    """Collects one line per test for the technician's report."""

    def __init__(self, on_progress: Callable[[dict[str, object]], None] | None = None) -> None:
        self.outcomes: list[Outcome] = []
        self.total = 0
        self.on_progress = on_progress

    def pytest_collection_finish(self, session: Any) -> None:
        self.total = len(session.items)
        if self.on_progress is not None:
            self.on_progress({"total": self.total, "done": 0})

    def pytest_runtest_logreport(self, report: Any) -> None:
        name = report.nodeid.split("::")[-1].removeprefix("test_").replace("_", " ")
        if report.when == "teardown" and self.outcomes and self.outcomes[-1].name == name:
            # The figures fixture records its values when it is torn down.
            self.outcomes[-1].figures = list(report.user_properties)
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            result = "SKIP" if report.skipped else ("PASS" if report.passed else "FAIL")
            detail = ""
            if report.skipped and isinstance(report.longrepr, tuple):
                detail = str(report.longrepr[2])
            elif report.failed:
                detail = _first_error_line(str(report.longrepr))
            self.outcomes.append(
                Outcome(name, result, report.duration, detail, list(report.user_properties))
            )
            if self.on_progress is not None:
                self.on_progress(
                    {
                        "total": self.total,
                        "done": len(self.outcomes),
                        "test": name,
                        "result": result,
                    }
                )


def _print_progress(item: dict[str, object]) -> None:
    print(PROGRESS_PREFIX + json.dumps(item), flush=True)


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("E "):
            return line[1:].strip()
    return text.strip().splitlines()[-1] if text.strip() else ""


def render(outcomes: list[Outcome], target: str, when: dt.datetime) -> str:
    try:
        ours = version("ponte")
    except PackageNotFoundError:
        ours = "unknown"
    counts = {r: sum(o.result == r for o in outcomes) for r in ("PASS", "FAIL", "SKIP")}
    figures = {k: v for o in outcomes for k, v in o.figures}
    lines = [
        "Ponte line-card test report",
        "===========================",
        f"date:      {when:%Y-%m-%d %H:%M:%S} UTC",
        f"card:      {target}",
        f"firmware:  {figures.get('firmware', 'unknown')}",
        f"ports:     {figures.get('ports', 'unknown')}",
        f"tested by: ponte {ours} on {platform.node()}",
        f"result:    {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped",
        "",
    ]
    width = max((len(o.name) for o in outcomes), default=10)
    for o in outcomes:
        line = f"{o.result:<4}  {o.name:<{width}}  {o.seconds:6.2f} s"
        shown = [f"{k}={v}" for k, v in o.figures if k not in ("firmware", "ports")]
        if shown:
            line += "  " + " ".join(shown)
        lines.append(line)
        if o.detail:
            lines.append(f"      {o.detail}")
    verdict = "CARD PASSES" if counts["FAIL"] == 0 and counts["PASS"] else "CARD FAILS"
    lines += ["", verdict, ""]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    import pytest

    when = dt.datetime.now(dt.UTC)
    report_path = args.report or Path(f"hwtest-report-{when:%Y%m%d-%H%M%S}.txt")
    suite = Path(__file__).resolve().parent
    pytest_args = ["-c", os.devnull, "--rootdir", str(suite), "-p", "no:cacheprovider", "-q"]
    pytest_args += [str(suite / "test_linecard_contract.py")]
    if args.linecard:
        pytest_args += ["--linecard", args.linecard, "-s"]  # -s: the technician sees prompts
    if args.k:
        pytest_args += ["-k", args.k]
    plugin = ReportPlugin(_print_progress if args.progress_jsonl else None)
    status = pytest.main(pytest_args, plugins=[plugin])
    if not plugin.outcomes:
        print(f"ponte hwtest: no test ran (pytest status {status})", file=sys.stderr)
        return 2
    text = render(plugin.outcomes, args.linecard or "simulator", when)
    try:
        report_path.write_text(text)
    except OSError as e:
        print(f"ponte hwtest: cannot write {report_path}: {e}", file=sys.stderr)
        print(text)
        return 2
    print(text)
    print(f"report written to {report_path}")
    return 0 if all(o.result != "FAIL" for o in plugin.outcomes) else 1
