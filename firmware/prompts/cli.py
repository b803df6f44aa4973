"""``ponte prompts`` (also ``python -m firmware.prompts``): build, list and check prompts."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from firmware.prompts.build import PromptBuildError, build
from firmware.prompts.catalogue import LANGUAGES, VOICES, catalogue
from firmware.prompts.library import CHECKOUT_DIR, PromptLibrary, Source

HELP = "build the espeak-ng prompts, list them, or check which ones a directory lacks"


def _languages(text: str) -> tuple[str, ...]:
    langs = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in langs if x not in VOICES]
    if bad or not langs:
        raise argparse.ArgumentTypeError(
            f"unknown language(s) {', '.join(bad) or '(none)'}; known: {', '.join(LANGUAGES)}"
        )
    return langs


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="render every catalogue prompt (cached)")
    b.add_argument("--out", type=Path, default=CHECKOUT_DIR, help="output directory")
    b.add_argument(
        "--languages", type=_languages, default=LANGUAGES, help="comma-separated, default all"
    )
    b.add_argument("--jobs", type=int, default=None, help="espeak-ng processes at once")
    ls = sub.add_parser("list", help="prompt names and their text")
    ls.add_argument("--language", default="en")
    c = sub.add_parser("check", help="which prompts a language would play as the error tone")
    c.add_argument("--generated", type=Path, default=CHECKOUT_DIR)
    c.add_argument("--custom", type=Path, default=None)
    c.add_argument("--language", default="en")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    cat = catalogue()
    if args.action == "build":
        try:
            report = build(args.out, args.languages, jobs=args.jobs)
        except PromptBuildError as exc:
            print(f"prompts: {exc}", file=sys.stderr)
            return 1
        print(
            f"prompts: {len(cat.names)} x {len(report.languages)} languages in {args.out}: "
            f"{report.rendered} rendered, {report.cached} cached, {report.removed} removed, "
            f"{report.seconds:.1f} s"
        )
        return 0
    if args.action == "list":
        for name in cat.names:
            print(f"{name:<28} {cat.text(name, args.language)}")
        return 0
    library = PromptLibrary(args.generated, args.custom)
    logging.getLogger("firmware.prompts.library").setLevel(logging.ERROR)
    missing = library.missing(cat.names, args.language)
    english = [n for n in cat.names if library.get(n, args.language).source is Source.ENGLISH]
    print(f"{len(cat.names)} prompts; {len(missing)} missing; {len(english)} fall back to English")
    for name in missing:
        print(f"missing: {name}")
    return 1 if missing else 0


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.prompts", description=HELP)
    configure(parser)
    return main(parser.parse_args(argv))
