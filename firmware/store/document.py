"""Operations on plain configuration documents: paths, diffs, TOML, redacted secrets.

Paths look like ``lines.fxs[1].gain_rx``: dotted keys, ``[i]`` for array items.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_origin

import tomli_w

from firmware.store.schema import Config
from firmware.store.validate import (
    REDACTED,
    ConfigError,
    ConfigIssue,
    Document,
    parse,
    schema_hints,
    to_document,
)

MAX_TOML_BYTES = 1 << 20  # cap: a real configuration is a few kB

_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[0-9]+\])*)$")

Step = str | int


class PathError(ValueError):
    """A path does not name anything in the configuration."""


def parse_path(path: str) -> list[Step]:
    if not path:
        return []
    steps: list[Step] = []
    for segment in path.split("."):
        m = _SEGMENT.match(segment)
        if not m:
            raise PathError(f"{path!r}: bad path segment {segment!r} (expected key or key[index])")
        steps.append(m.group(1))
        steps.extend(int(i) for i in re.findall(r"\[([0-9]+)\]", m.group(2)))
    return steps


def format_path(steps: list[Step]) -> str:
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out = f"{out}.{step}" if out else step
    return out


def get_path(doc: Any, path: str) -> Any:
    node = doc
    done: list[Step] = []
    for step in parse_path(path):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise PathError(f"{format_path([*done, step])}: no such item ({size} present)")
        elif not isinstance(node, Mapping) or step not in node:
            raise PathError(f"{format_path([*done, step])}: no such key")
        node = node[step]
        done.append(step)
    return node


def set_path(doc: Document, path: str, value: Any) -> Document:
    """A copy of ``doc`` with ``path`` set; ``[len]`` on an array appends."""
    steps = parse_path(path)
    if not steps:
        raise PathError("an empty path names the whole document; use import instead")
    new: Document = _copy(doc)
    node: Any = new
    for i, step in enumerate(steps[:-1]):
        node = _child(node, step, steps[: i + 1])
    last = steps[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last > len(node):
            size = len(node) if isinstance(node, list) else 0
            raise PathError(f"{path}: no such item ({size} present; [{size}] appends)")
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    else:
        if not isinstance(node, dict):
            raise PathError(f"{path}: parent is not a table")
        node[last] = value
    return new


def delete_path(doc: Document, path: str) -> Document:
    """A copy of ``doc`` without ``path``: an array item is removed (later items move up),
    a key is dropped (so it takes its default when the document is parsed)."""
    steps = parse_path(path)
    if not steps:
        raise PathError("an empty path names the whole document")
    new: Document = _copy(doc)
    node: Any = new
    for i, step in enumerate(steps[:-1]):
        node = _child(node, step, steps[: i + 1])
    _child(node, steps[-1], steps)  # raises PathError naming a missing item or key
    del node[steps[-1]]
    return new


def _child(node: Any, step: Step, done: list[Step]) -> Any:
    if isinstance(step, int):
        if isinstance(node, list) and step < len(node):
            return node[step]
        size = len(node) if isinstance(node, list) else 0
        raise PathError(f"{format_path(done)}: no such item ({size} present)")
    if isinstance(node, dict) and step in node:
        return node[step]
    raise PathError(f"{format_path(done)}: no such key")


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def schema_field_at(path: str) -> tuple[Any, dataclasses.Field[Any] | None]:
    """The declared type at a path (and its field, when it ends on one)."""
    tp: Any = Config
    fld: dataclasses.Field[Any] | None = None
    for step in parse_path(path):
        if isinstance(step, int):
            if get_origin(tp) is not tuple:
                raise PathError(
                    f"{path}: {format_path([step])} indexes something that is not an array"
                )
            tp = get_args(tp)[0]
            fld = None
            continue
        if not (dataclasses.is_dataclass(tp) and isinstance(tp, type)):
            raise PathError(f"{path}: {step!r} is below a value, not a table")
        fields = {f.name: f for f in dataclasses.fields(tp)}
        if step not in fields:
            raise PathError(f"{path}: unknown key {step!r}")
        fld = fields[step]
        tp = schema_hints(tp)[step]
    return tp, fld


def is_secret(path: str) -> bool:
    try:
        _, fld = schema_field_at(path)
    except PathError:
        return False
    return bool(fld is not None and fld.metadata.get("secret"))


# ---------------------------------------------------------------------------- diff

_ABSENT = object()


@dataclass(frozen=True)
class Change:
    path: str
    old: Any  # ``Change.ABSENT`` when the path did not exist
    new: Any

    ABSENT = _ABSENT

    def __str__(self) -> str:
        if is_secret(self.path):
            return f"{self.path}: (secret changed)"
        return f"{self.path}: {_render(self.old)} -> {_render(self.new)}"


def _render(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    return str(value)


def flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(doc, list) and doc and all(isinstance(v, Mapping) for v in doc):
        for i, value in enumerate(doc):
            out.update(flatten(value, f"{prefix}[{i}]"))
    else:
        out[prefix] = doc
    return out


def diff_documents(old: Document, new: Document) -> list[Change]:
    a, b = flatten(old), flatten(new)
    changes = []
    for path in sorted(set(a) | set(b), key=_sort_key):
        before, after = a.get(path, _ABSENT), b.get(path, _ABSENT)
        if before == after and type(before) is type(after):
            continue
        # An empty array of tables on one side and its items on the other: the items say it.
        if (before == [] and after is _ABSENT) or (after == [] and before is _ABSENT):
            prefix = path + "["
            if any(p.startswith(prefix) for p in (b if before == [] else a)):
                continue
        changes.append(Change(path, before, after))
    return changes


def _sort_key(path: str) -> list[tuple[int, str | int]]:
    return [(1, int(s)) if s.isdigit() else (0, s) for s in re.split(r"[.\[\]]+", path) if s]


def diff(old: Config, new: Config) -> list[Change]:
    return diff_documents(to_document(old), to_document(new))


# ---------------------------------------------------------------------------- TOML


def dumps_toml(config: Config, *, redact: bool = False) -> str:
    header = "# Ponte configuration.  Import with: ponte config import FILE\n" + (
        "# Secrets are redacted: importing keeps the box's current ones.\n" if redact else ""
    )
    return header + tomli_w.dumps(to_document(config, redact=redact, with_schema=True))


def loads_toml(text: str, current: Config | None = None) -> Config:
    """Parse and validate TOML text; redacted secrets are taken from ``current``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TOML_BYTES:
        raise ConfigError([ConfigIssue("", f"file larger than {MAX_TOML_BYTES} bytes")])
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue("", f"not valid TOML: {exc}")]) from None
    except (ValueError, RecursionError) as exc:  # tomllib's own limits on hostile input
        raise ConfigError([ConfigIssue("", f"not valid TOML: {exc}")]) from None
    return parse_with_secrets(doc, current)


def parse_with_secrets(doc: Document, current: Config | None) -> Config:
    issues: list[ConfigIssue] = []
    restored = restore_secrets(doc, current, issues)
    try:
        config = parse(restored)
    except ConfigError as exc:
        raise ConfigError(issues + list(exc.issues)) from None
    if issues:
        raise ConfigError(issues)
    return config


def restore_secrets(doc: Any, current: Config | None, issues: list[ConfigIssue]) -> Any:
    """Replace ``REDACTED`` secrets by the current value of the same item.

    Items of arrays with a key (trunks by name, extensions by number) are matched by that
    key, so a reordered export still gets the right password; other arrays by index.
    """
    cur = to_document(current) if current is not None else None
    return _restore(doc, cur, Config, "", issues)


def _restore(node: Any, cur: Any, tp: Any, path: str, issues: list[ConfigIssue]) -> Any:
    if dataclasses.is_dataclass(tp) and isinstance(tp, type) and isinstance(node, Mapping):
        hints = schema_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        out: dict[Any, Any] = {}
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            fld = fields.get(key) if isinstance(key, str) else None
            if fld is None:
                out[key] = value
                continue
            cur_value = cur.get(key) if isinstance(cur, Mapping) else None
            if fld.metadata.get("secret") and value == REDACTED:
                if isinstance(cur_value, str) and cur_value:
                    out[key] = cur_value
                else:
                    issues.append(
                        ConfigIssue(
                            sub, "secret was redacted in the export and the box has none to keep"
                        )
                    )
                    out[key] = ""
                continue
            out[key] = _restore(value, cur_value, hints[key], sub, issues)
        return out
    if get_origin(tp) is tuple and isinstance(node, list):
        item_tp = get_args(tp)[0]
        key_name = getattr(item_tp, "KEY", None)
        cur_items = cur if isinstance(cur, list) else []
        result = []
        for i, item in enumerate(node):
            match: Any = None
            if key_name and isinstance(item, Mapping):
                match = next(
                    (
                        c
                        for c in cur_items
                        if isinstance(c, Mapping) and c.get(key_name) == item.get(key_name)
                    ),
                    None,
                )
            elif i < len(cur_items):
                match = cur_items[i]
            result.append(_restore(item, match, item_tp, f"{path}[{i}]", issues))
        return result
    return node
