"""``ponte records``: list, summarise and export the call records of a data directory.

Works on ``DATA_DIR/records.db`` directly (SQLite allows it while ``ponte run`` writes),
so it answers on a box whose service is stopped.  Days and hours are in the box's time
zone (``system.timezone`` of the configuration there), unless ``--timezone`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

HELP = "list, summarise and export the call records (CSV)"


def configure(parser: argparse.ArgumentParser) -> None:
    from firmware.store.legs import DIRECTIONS, DISPOSITIONS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory holding records.db (default: $PONTE_DATA_DIR or /var/lib/ponte)",
    )
    common.add_argument("--since", help="from this date or date-time (ISO 8601), inclusive")
    common.add_argument("--until", help="to this date-time, exclusive; a bare date includes it")
    common.add_argument("--timezone", help="IANA zone for days and times (default: the box's)")
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--port", type=int, help="only legs on this port")
    filters.add_argument("--trunk", help="only legs on this trunk")
    filters.add_argument("--disposition", choices=DISPOSITIONS)
    filters.add_argument("--direction", choices=DIRECTIONS)
    filters.add_argument("--call", help="only the legs of this call id")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("list", parents=[common, filters], help="the records, newest first")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p = sub.add_parser("summary", parents=[common], help="the summary figures")
    p.add_argument("--json", action="store_true", help="as JSON")
    p = sub.add_parser("export", parents=[common, filters], help="CSV (RFC 4180), oldest first")
    p.add_argument("-o", "--output", default="-", help="file to write ('-': stdout, default)")


def main(args: argparse.Namespace) -> int:
    from firmware.store.db import StoreError
    from firmware.store.legs import RecordError

    try:
        return _main(args)
    except (StoreError, RecordError, ValueError) as exc:
        sys.stderr.write(f"ponte records: {exc}\n")
        return 1
    except BrokenPipeError:
        # `ponte records export | head`: the reader left; that is not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _timezone(data_dir: Path, name: str | None) -> tzinfo:
    from firmware.store.db import DB_FILENAME
    from firmware.store.records import zone
    from firmware.store.store import ConfigStore

    if name:
        import zoneinfo

        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"--timezone: unknown time zone {name!r}") from None
    if not (data_dir / DB_FILENAME).exists():
        return zone("UTC")
    with ConfigStore.open(data_dir) as config:
        return zone(config.current().config.system.timezone)


def _main(args: argparse.Namespace) -> int:
    from firmware.store.db import default_data_dir
    from firmware.store.records import RECORDS_FILENAME, RecordQuery, RecordStore, parse_when

    data_dir: Path = args.data_dir or default_data_dir()
    if not (data_dir / RECORDS_FILENAME).exists():
        sys.stderr.write(f"ponte records: no call records in {data_dir} (no {RECORDS_FILENAME})\n")
        return 1
    tz = _timezone(data_dir, args.timezone)
    since = None if args.since is None else parse_when(args.since, tz)
    until = None if args.until is None else parse_when(args.until, tz, end_of_day=True)
    with RecordStore.open(data_dir) as store:
        if args.action == "summary":
            summary = store.summary(since, until, tz)
            if args.json:
                sys.stdout.write(json.dumps(summary.to_json(), indent=2) + "\n")
            else:
                sys.stdout.write(_summary_text(summary.to_json()))
            return 0
        query = RecordQuery(
            since=since,
            until=until,
            port=args.port,
            trunk=args.trunk,
            disposition=args.disposition,
            direction=args.direction,
            call=args.call,
        )
        if args.action == "export":
            return _export(store, query, tz, args.output)
        if not 1 <= args.limit <= 1000:
            raise ValueError("--limit must be 1..1000")
        page = store.query(query, limit=args.limit)
        for stored in page.records:
            if args.json:
                sys.stdout.write(json.dumps(stored.to_json(), ensure_ascii=False) + "\n")
            else:
                sys.stdout.write(_line(stored.to_json(), tz) + "\n")
        if page.next_cursor is not None and not args.json:
            sys.stdout.write("(more: narrow --since/--until or raise --limit)\n")
    return 0


def _export(store: Any, query: Any, tz: tzinfo, output: str) -> int:
    if output == "-":
        # RFC 4180 wants CRLF between records; the csv module writes them, the stream
        # must not translate newlines.
        out = open(sys.stdout.fileno(), "w", encoding="utf-8", newline="", closefd=False)
        with out:
            store.export_csv(out, query, tz)
        return 0
    path = Path(output)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        rows = store.export_csv(f, query, tz)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sys.stderr.write(f"{rows} records written to {path}\n")
    return 0


def _line(r: dict[str, Any], tz: tzinfo) -> str:
    start = datetime.fromisoformat(r["start"]).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    source = r["source_number"] + (f" ({r['source_name']})" if r["source_name"] else "")
    destination = r["destination_number"] + (
        f" ({r['destination_name']})" if r["destination_name"] else ""
    )
    talk = f"{r['talk_s']:.0f} s" if r["answer"] else "-"
    return (
        f"{start}  {r['where']:<14} {r['direction']:<8} {source[:28]:<28} -> "
        f"{destination[:28]:<28} {r['disposition']:<9} {talk}"
    )


def _summary_text(s: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} %"

    lines = [
        f"time zone              {s['timezone']}",
        f"legs (seizures)        {s['legs']}  answered {s['answered_legs']}",
        f"calls                  {s['calls']}  answered {s['answered_calls']}",
        f"answer-seizure ratio   {pct(s['asr_pct'])}",
        "average call duration  "
        + ("-" if s["average_call_s"] is None else f"{s['average_call_s']:.1f} s"),
    ]
    busy = s["busiest_hour"]
    lines.append(
        "busiest hour           "
        + ("-" if busy is None else f"{busy['start']}  {busy['calls']} calls")
    )
    if s["per_day"]:
        lines.append("calls per day")
        lines += [
            f"  {d['day']}  {d['calls']:>6} calls  {d['minutes']:>9.1f} min" for d in s["per_day"]
        ]
    if s["per_port"]:
        lines.append("per port")
        lines += [
            f"  port {p['port']:<4} {p['legs']:>6} legs  {p['minutes']:>9.1f} min"
            for p in s["per_port"]
        ]
    if s["per_trunk"]:
        lines.append("per trunk")
        lines += [
            f"  {t['trunk']:<10} {t['legs']:>6} legs  {t['minutes']:>9.1f} min"
            for t in s["per_trunk"]
        ]
    return "\n".join(lines) + "\n"
