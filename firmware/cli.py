"""The single ``ponte`` command.

Subcommands live next to the code they drive; this module only knows their names and
imports the chosen one lazily, so that ``ponte console`` never loads pjsua2 and
``ponte dsp`` never opens the line card.  A subcommand module provides::

    HELP: str                                    # one line for ``ponte --help``
    def configure(parser: argparse.ArgumentParser) -> None
    def main(args: argparse.Namespace) -> int
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

# name -> module.  Keep sorted; add a line when a subsystem grows a command.
COMMANDS: dict[str, str] = {
    "config": "firmware.store.cli",
    "bundle": "image.cli",
    "update": "firmware.update.cli",
    "api": "firmware.api.cli",
    "dsp": "firmware.dsp.cli",
    "sim": "firmware.service.sim_cli",
    "run": "firmware.service.cli",
    "hwtest": "hwtests.cli",
    "console": "tui.cli",
    "recordings": "firmware.service.recordings_cli",
    "records": "firmware.store.records_cli",
    "voicemail": "firmware.store.voicemail.cli",
    "prompts": "firmware.prompts.cli",
}


class SubcommandModule(Protocol):
    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def main(self, args: argparse.Namespace) -> int: ...


def load(name: str) -> SubcommandModule:
    return cast(SubcommandModule, importlib.import_module(COMMANDS[name]))


def _usage() -> str:
    lines = ["usage: ponte COMMAND [options]", "", "commands:"]
    for name in sorted(COMMANDS):
        lines.append(f"  {name:<10} {load(name).HELP}")
    lines += ["", "Run 'ponte COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"ponte: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = load(name)
    parser = argparse.ArgumentParser(prog=f"ponte {name}", description=module.HELP)
    module.configure(parser)
    return module.main(parser.parse_args(rest))


if __name__ == "__main__":
    sys.exit(main())
