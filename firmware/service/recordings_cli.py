"""``ponte recordings``: list call recordings and export one as a WAV file, over the control API.

Recordings need the admin login: the password comes from ``$PONTE_ADMIN_PASSWORD``, a file
(``--password-file``) or, at a terminal, a prompt.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import os
import sys
from pathlib import Path
from typing import Any, Final

HELP = "list call recordings and export them as WAV files"
PASSWORD_ENV: Final = "PONTE_ADMIN_PASSWORD"
MAX_EXPORT_CHUNKS: Final = 100_000  # 50 GB at 512 KiB: a loop that never ends is a server bug


def configure(parser: argparse.ArgumentParser) -> None:
    from firmware.api.client import SOCKET_ENV, default_socket_path

    parser.add_argument(
        "--socket",
        default=default_socket_path(),
        metavar="PATH",
        help=f"control socket (default: ${SOCKET_ENV} or /run/ponte/api.sock)",
    )
    parser.add_argument(
        "--password-file", metavar="FILE", help=f"admin password (default: ${PASSWORD_ENV})"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="recordings, newest first")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--since", help="ISO 8601 date-time (UTC unless it names a zone)")
    ls.add_argument("--until", help="ISO 8601 date-time, exclusive")
    ls.add_argument("--party", default="", help="only calls with this caller or callee")
    ex = sub.add_parser("export", help="copy one recording to a WAV file")
    ex.add_argument("id", type=int)
    ex.add_argument("output", help="file to write ('-' for standard output)")


def _say(text: str, *, err: bool = False) -> None:
    # A CLI entry point (ruff's T20 exemption covers files named cli.py only).
    (sys.stderr if err else sys.stdout).write(text + "\n")


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        return Path(args.password_file).read_text().rstrip("\n")
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if sys.stdin.isatty():
        return getpass.getpass("admin password: ")
    raise SystemExit(f"ponte recordings: set ${PASSWORD_ENV} or use --password-file")


def main(args: argparse.Namespace) -> int:
    from firmware.api.client import ApiError, SyncApiClient

    try:
        with SyncApiClient(args.socket, client_name="ponte-recordings") as api:
            api.login(_password(args))
            if args.action == "list":
                return _list(api, args)
            return _export(api, args)
    except ApiError as exc:
        _say(f"ponte recordings: {exc}", err=True)
        return 1
    except OSError as exc:
        _say(f"ponte recordings: {exc}", err=True)
        return 1


def _list(api: Any, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit, "party": args.party}
    if args.since:
        params["since"] = args.since
    if args.until:
        params["until"] = args.until
    rows = api.call("recordings.list", params)["recordings"]
    _say(f"{'id':>6}  {'started (UTC)':<19}  {'caller':<12} {'callee':<12} {'length':>8}  reason")
    for r in rows:
        started = r["started_at"][:19].replace("T", " ")
        secs = r["duration_ms"] / 1000
        flag = " (salvaged)" if r["salvaged"] else ""
        _say(
            f"{r['id']:>6}  {started:<19}  {r['caller']:<12} {r['callee']:<12} "
            f"{secs:>7.1f}s  {r['reason']}{flag}"
        )
    _say(f"{len(rows)} recording(s)")
    return 0


def _export(api: Any, args: argparse.Namespace) -> int:
    chunks: list[bytes] = []
    offset = 0
    for _ in range(MAX_EXPORT_CHUNKS):
        reply = api.call("recordings.export", {"id": args.id, "offset": offset})
        data = base64.b64decode(reply["data"])
        chunks.append(data)
        offset += len(data)
        if reply["eof"] or not data:
            break
    body = b"".join(chunks)
    if args.output == "-":
        sys.stdout.buffer.write(body)
    else:
        out = Path(args.output)
        tmp = out.with_name(f".{out.name}.part")
        tmp.write_bytes(body)
        os.replace(tmp, out)
        _say(f"recording {args.id}: {len(body)} bytes written to {out}", err=True)
    return 0
