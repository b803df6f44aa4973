"""``ponte console``: the installer console on this terminal."""

from __future__ import annotations

import argparse

HELP = "the installer console (a terminal UI over the control API)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help="control API socket (default: $PONTE_API_SOCKET or /run/ponte/api.sock)",
    )


def main(args: argparse.Namespace) -> int:
    from tui.app import run

    return run(args.socket)
