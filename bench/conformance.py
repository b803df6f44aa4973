"""``make conformance``: one accuracy table from every ``bench.conformance_*`` module.

Each module provides ``report() -> list[tuple[str, str, str]]`` (measure, result, target)
from real measurements.  ``python -m bench.conformance progress`` runs only the modules
whose name contains one of the arguments.  A module that fails is reported in the table
and makes the exit status 1; the others still run.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback

import bench

Row = tuple[str, str, str]


def modules(wanted: list[str]) -> list[str]:
    names = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("conformance_")
    )
    return [n for n in names if not wanted or any(w in n for w in wanted)]


def collect(name: str) -> tuple[list[Row], float, str | None]:
    started = time.perf_counter()
    try:
        rows = importlib.import_module(f"bench.{name}").report()
        for row in rows:
            if len(row) != 3 or not all(isinstance(c, str) for c in row):
                raise TypeError(f"report() rows must be 3 strings, got {row!r}")
        return list(rows), time.perf_counter() - started, None
    except Exception as exc:  # one broken section must not hide the others
        traceback.print_exc(file=sys.stderr)
        return [], time.perf_counter() - started, f"{type(exc).__name__}: {exc}"


def table(sections: list[tuple[str, list[Row], float, str | None]]) -> str:
    header = ("area", "measure", "result", "target")
    lines: list[tuple[str, ...]] = []
    for name, rows, _, error in sections:
        area = name.removeprefix("conformance_")
        if error is not None:
            lines.append((area, "(section failed)", f"ERROR {error}", ""))
        for measure, result, target in rows:
            lines.append((area, measure, result, target))
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(4)]
    widths[1] = min(widths[1], 64)
    out = []
    sep = "-+-".join("-" * w for w in widths)
    out.append(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    out.append(sep)
    last_area = None
    for row in lines:
        if last_area is not None and row[0] != last_area:
            out.append(sep)
        shown = (row[0] if row[0] != last_area else "", *row[1:])
        out.append(" | ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
        last_area = row[0]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    names = modules(argv)
    if not names:
        print(f"no bench.conformance_* module matches {argv}", file=sys.stderr)
        return 2
    sections = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows, seconds, error = collect(name)
        print(f"  {name}: {len(rows)} rows in {seconds:.1f} s", file=sys.stderr, flush=True)
        sections.append((name, rows, seconds, error))
    print(table(sections))
    return 1 if any(error for *_, error in sections) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
