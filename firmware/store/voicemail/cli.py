"""``ponte voicemail``: list mailboxes and messages, export a message's WAV file.

Works on the data directory directly, read-only: safe while ``ponte run`` records (it
neither recovers nor changes anything; the running service does that).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from firmware.store.voicemail import VoicemailStore

HELP = "list voicemail boxes and messages, export a message as WAV"


def configure(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="the appliance's data directory (default: $PONTE_DATA_DIR or /var/lib/ponte)",
    )
    parser.add_argument("--data-dir", default=None, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = sub.add_parser("list", parents=[common], help="boxes, counts and messages")
    p.add_argument("box", nargs="?", help="one box (extension number); default: all")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--deleted", action="store_true", help="also list deleted messages")

    p = sub.add_parser("export", parents=[common], help="copy a message's WAV file")
    p.add_argument("box", help="extension number")
    p.add_argument("id", help="message id (from list)")
    p.add_argument("file", nargs="?", help="where to write it ('-' for stdout; default ID.wav)")


def _data_dir(args: argparse.Namespace) -> Path:
    from firmware.store.db import default_data_dir

    return Path(args.data_dir) if args.data_dir else default_data_dir()


def main(args: argparse.Namespace) -> int:
    from firmware.store.voicemail import (
        INDEX_FILENAME,
        VOICEMAIL_DIR,
        VoicemailError,
        VoicemailStore,
    )

    data_dir = _data_dir(args)
    if not (data_dir / VOICEMAIL_DIR / INDEX_FILENAME).exists():
        print(f"ponte voicemail: no voicemail in {data_dir}", file=sys.stderr)
        return 1
    try:
        with VoicemailStore.open(data_dir, recover=False) as store:
            if args.action == "list":
                return _list(store, args)
            return _export(store, args)
    except VoicemailError as exc:
        print(f"ponte voicemail: {exc}", file=sys.stderr)
        return 1


def _list(store: VoicemailStore, args: argparse.Namespace) -> int:
    from firmware.store.voicemail import State, check_box

    states: tuple[State, ...] = ("new", "saved", "deleted") if args.deleted else ("new", "saved")
    boxes = [check_box(args.box)] if args.box else store.boxes()
    report: list[dict[str, Any]] = []
    for box in boxes:
        counts = store.counts(box)
        report.append(
            {
                "box": box,
                "new": counts.new,
                "saved": counts.saved,
                "greeting": store.greeting_path(box) is not None,
                "messages": [m.to_json() for m in store.messages(box, states)],
            }
        )
    if args.json:
        print(json.dumps({"boxes": report}, indent=2))
        return 0
    for item in report:
        greeting = "own greeting" if item["greeting"] else "default greeting"
        print(f"box {item['box']}: {item['new']} new, {item['saved']} saved, {greeting}")
        for m in item["messages"]:
            caller = " ".join(x for x in (m["caller_number"], m["caller_name"]) if x)
            print(
                f"  {m['id']}  {m['state']:<7} {m['received_at']}  "
                f"{m['duration_ms'] / 1000:6.1f} s  {caller or '(unknown caller)'}"
            )
    return 0


def _export(store: VoicemailStore, args: argparse.Namespace) -> int:
    info = store.message(args.box, args.id)  # UnknownMessage / BadName: a VoicemailError
    source = store.path_of(info.box, info.id)
    if args.file == "-":
        with source.open("rb") as f:
            shutil.copyfileobj(f, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return 0
    target = Path(args.file or f"{info.id}.wav")
    shutil.copyfile(source, target)
    print(f"{target}: {info.duration_ms / 1000:.1f} s, {info.size} bytes ({info.encoding})")
    return 0
