"""The key reference in docs/configuration.md, generated from the schema's field metadata.

A test checks that the document contains exactly this text, so the documentation cannot
fall behind the schema.  Regenerate with ``ponte config reference``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args, get_origin

import tomli_w

from firmware.store.countries import KNOWN_COUNTRIES, known_impedances
from firmware.store.schema import Config
from firmware.store.validate import field_default, schema_hints

BEGIN = "<!-- BEGIN GENERATED KEY REFERENCE: ponte config reference -->"
END = "<!-- END GENERATED KEY REFERENCE -->"


def _type_name(tp: Any) -> str:
    if tp is bool:
        return "boolean"
    if tp is int:
        return "integer"
    if tp is float:
        return "number"
    if tp is str:
        return "string"
    if get_origin(tp) is Literal:
        return " \\| ".join(f'`"{a}"`' for a in get_args(tp))
    if get_origin(tp) is tuple:
        item = get_args(tp)[0]
        if dataclasses.is_dataclass(item):
            return "array of tables"
        return f"array of {_type_name(item)}"
    if dataclasses.is_dataclass(tp):
        return "table"
    raise TypeError(tp)  # pragma: no cover - every schema type is listed above


def _default_text(value: Any) -> str:
    if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
        return f"{len(value)} item{'s' if len(value) > 1 else ''}, see the fresh box below"
    if isinstance(value, tuple):
        text = "[" + ", ".join(_scalar(v) for v in value) + "]"
    else:
        text = _scalar(value)
    # GitHub tables split cells at '|' even inside code spans unless it is escaped.
    return f"`{text.replace('|', chr(92) + '|')}`"


def _scalar(value: Any) -> str:
    return tomli_w.dumps({"v": value}).removeprefix("v = ").strip()


def _section(cls: type, title: str, out: list[str]) -> None:
    hints = schema_hints(cls)
    rows: list[str] = []
    nested: list[tuple[type, str]] = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        doc = str(f.metadata.get("doc", "")).replace("|", "\\|")
        if f.metadata.get("secret"):
            doc += " *Secret: redacted by `export --redact`.*"
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            nested.append((tp, f"[{_join(title, f.name)}]"))
            continue
        if get_origin(tp) is tuple and dataclasses.is_dataclass(get_args(tp)[0]):
            nested.append((get_args(tp)[0], f"[[{_join(title, f.name)}]]"))
        check = f.metadata.get("check")
        default = field_default(f)
        shown = "*required*" if check is not None and check(default) else _default_text(default)
        rows.append(f"| `{f.name}` | {_type_name(tp)} | {shown} | {doc} |")
    if rows:
        out.append(f"### `{title or '(top level)'}`" if title else "### Top level")
        out.append("")
        out.append("| key | type | default | meaning |")
        out.append("|---|---|---|---|")
        out.extend(rows)
        out.append("")
    for sub, sub_title in nested:
        _section(sub, sub_title, out)


def _join(title: str, name: str) -> str:
    bare = title.strip("[]")
    return f"{bare}.{name}" if bare else name


def reference_markdown() -> str:
    out: list[str] = [BEGIN, ""]
    out.append(f"Country codes: {', '.join(f'`{c}`' for c in KNOWN_COUNTRIES)}.")
    out.append("")
    out.append(f"Impedance names: {', '.join(f'`{i}`' for i in known_impedances())}.")
    out.append("")
    _section(Config, "", out)
    out.append(END)
    return "\n".join(out) + "\n"
