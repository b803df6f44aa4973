"""``ponte config``: show, change, export, import, history, diff and roll back the configuration."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Literal, get_origin

HELP = "show, change, export/import, diff and roll back the configuration"


def configure(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="directory holding ponte.db (default: $PONTE_DATA_DIR or /var/lib/ponte)",
    )
    common.add_argument(
        "--author", default=argparse.SUPPRESS, help="name recorded in the audit log"
    )
    parser.add_argument("--data-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--author", default=None, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = sub.add_parser("show", parents=[common], help="print the configuration or one part of it")
    p.add_argument(
        "path", nargs="?", default="", help="e.g. lines.fxs[0] or sip.trunks[0].registrar"
    )
    p.add_argument("--version", type=int, help="an earlier version instead of the current one")
    p.add_argument("--secrets", action="store_true", help="show passwords and PINs")

    p = sub.add_parser(
        "set", parents=[common], help="change one value (a TOML value; text may be bare)"
    )
    p.add_argument("path")
    p.add_argument("value")
    p.add_argument(
        "--expect-version", type=int, help="refuse if the current version is not this one"
    )

    p = sub.add_parser(
        "unset", parents=[common], help="remove an array item, or reset a key to its default"
    )
    p.add_argument("path", help="e.g. sip.trunks[1] or lines.fxs[0].gain_rx")
    p.add_argument(
        "--expect-version", type=int, help="refuse if the current version is not this one"
    )

    p = sub.add_parser(
        "export", parents=[common], help="write the configuration as TOML ('-' for stdout)"
    )
    p.add_argument("file")
    p.add_argument(
        "--redact", action="store_true", help="replace passwords and PINs by a placeholder"
    )
    p.add_argument("--version", type=int, help="an earlier version instead of the current one")

    p = sub.add_parser("import", parents=[common], help="validate a TOML file and make it current")
    p.add_argument("file")
    p.add_argument(
        "--expect-version", type=int, help="refuse if the current version is not this one"
    )

    p = sub.add_parser("history", parents=[common], help="list the versions, newest first")
    p.add_argument("--limit", type=int, default=50)

    p = sub.add_parser("diff", parents=[common], help="what changed from version V1 to V2")
    p.add_argument("v1", type=int)
    p.add_argument("v2", type=int)

    p = sub.add_parser(
        "rollback", parents=[common], help="make version V current again (as a new version)"
    )
    p.add_argument("version", type=int)
    p.add_argument(
        "--expect-version", type=int, help="refuse if the current version is not this one"
    )

    p = sub.add_parser("validate", parents=[common], help="check a TOML file without applying it")
    p.add_argument("file")

    sub.add_parser("reference", parents=[common], help="print the key reference (Markdown)")


def _author(args: argparse.Namespace) -> str:
    if args.author:
        return str(args.author)
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):
        return "cli"


def _err(message: str) -> int:
    print(f"ponte config: {message}", file=sys.stderr)
    return 1


def main(args: argparse.Namespace) -> int:
    from firmware.store.db import StoreError
    from firmware.store.document import PathError
    from firmware.store.validate import ConfigError

    try:
        return _run(args)
    except ConfigError as exc:
        print(
            f"ponte config: refused, {len(exc.issues)} problem(s); nothing was changed:",
            file=sys.stderr,
        )
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return 1
    except (StoreError, PathError) as exc:
        return _err(str(exc))
    except OSError as exc:
        return _err(f"{exc.filename or ''}: {exc.strerror or exc}")


def _data_dir(args: argparse.Namespace) -> Path:
    from firmware.store.db import default_data_dir

    return Path(args.data_dir) if args.data_dir else default_data_dir()


def _run(args: argparse.Namespace) -> int:
    from firmware.store.db import DB_FILENAME
    from firmware.store.document import loads_toml
    from firmware.store.store import ConfigStore

    if args.action == "reference":
        from firmware.store.reference import reference_markdown

        print(reference_markdown(), end="")
        return 0
    if args.action == "validate":
        text = _read(args.file)
        db_file = _data_dir(args) / DB_FILENAME
        current = None
        if db_file.exists():
            with ConfigStore.open(_data_dir(args)) as store:
                current = store.current().config
        loads_toml(text, current)
        print(f"{args.file}: valid")
        return 0

    with ConfigStore.open(_data_dir(args)) as store:
        handler = _HANDLERS[args.action]
        return handler(store, args)


def _read(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    with open(name, encoding="utf-8") as f:
        return f.read()


def _show(store: Any, args: argparse.Namespace) -> int:
    import tomli_w

    from firmware.store.document import get_path, parse_path
    from firmware.store.validate import to_document

    config = store.current().config if args.version is None else store.get(args.version).config
    doc = to_document(config, redact=not args.secrets)
    value = get_path(doc, args.path)
    steps = parse_path(args.path)
    if isinstance(value, dict):
        print(tomli_w.dumps(value), end="")
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        key = next((s for s in reversed(steps) if isinstance(s, str)), "items")
        print(tomli_w.dumps({key: value}), end="")
    else:
        print(tomli_w.dumps({"v": value}).removeprefix("v = "), end="")
    return 0


def _parse_value(path: str, text: str) -> Any:
    from firmware.store.document import schema_field_at

    tp, _ = schema_field_at(path)
    textual = tp is str or get_origin(tp) is Literal
    if textual and not text.startswith(('"', "'")):
        return text  # bare text for a text field: no quoting needed on the command line
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        if textual:
            return text
        raise ValueError(
            f"{path}: {text!r} is not a TOML value (numbers, true/false, [..], {{..}})"
        ) from None


def _set(store: Any, args: argparse.Namespace) -> int:
    from firmware.store.document import set_path
    from firmware.store.validate import to_document

    try:
        value = _parse_value(args.path, args.value)
    except ValueError as exc:
        return _err(str(exc))
    current = store.current()
    doc = set_path(to_document(current.config), args.path, value)
    return _save(store, current.version, doc, args)


def _save(store: Any, read_version: int, doc: dict[str, Any], args: argparse.Namespace) -> int:
    expected = read_version if args.expect_version is None else args.expect_version
    info = store.apply_document(doc, author=_author(args), expected_version=expected)
    if info.version == read_version:
        print(f"no change (version {info.version})")
    else:
        print(f"version {info.version}: {info.summary}")
    return 0


def _unset(store: Any, args: argparse.Namespace) -> int:
    from firmware.store.document import delete_path
    from firmware.store.validate import to_document

    current = store.current()
    doc = delete_path(to_document(current.config), args.path)
    return _save(store, current.version, doc, args)


def _export(store: Any, args: argparse.Namespace) -> int:
    text = store.export_toml(args.version, redact=args.redact)
    if args.file == "-":
        sys.stdout.write(text)
        return 0
    _write_atomic(Path(args.file), text, private=not args.redact)
    print(f"wrote {args.file}" + (" (secrets redacted)" if args.redact else " (contains secrets)"))
    return 0


def _write_atomic(path: Path, text: str, *, private: bool) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _import(store: Any, args: argparse.Namespace) -> int:
    before = store.head()
    info = store.import_toml(
        _read(args.file), author=_author(args), expected_version=args.expect_version
    )
    if info.version == before:
        print(f"no change (version {info.version})")
    else:
        print(f"version {info.version}: {info.summary}")
    return 0


def _history(store: Any, args: argparse.Namespace) -> int:
    head = store.head()
    for info in store.history(args.limit):
        mark = "*" if info.version == head else " "
        when = info.created_at.strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"{mark}{info.version:>5}  {when}  {info.author:<16}  {info.action:<16}  {info.summary}"
        )
    return 0


def _diff(store: Any, args: argparse.Namespace) -> int:
    changes = store.diff(args.v1, args.v2)
    for change in changes:
        print(change)
    if not changes:
        print(f"versions {args.v1} and {args.v2} are identical")
    return 0


def _rollback(store: Any, args: argparse.Namespace) -> int:
    before = store.head()
    info = store.rollback(args.version, author=_author(args), expected_version=args.expect_version)
    if info.version == before:
        print(
            f"version {args.version} has the same content as the current one ({before}); "
            "nothing to do"
        )
    else:
        print(f"version {info.version}: {info.summary}")
    return 0


_HANDLERS = {
    "show": _show,
    "set": _set,
    "unset": _unset,
    "export": _export,
    "import": _import,
    "history": _history,
    "diff": _diff,
    "rollback": _rollback,
}
