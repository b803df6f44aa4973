"""The configuration as the console edits it: a plain document from the TOML text.

The console never interprets the configuration: it edits the document the appliance sent
(``config.get``) and sends the whole document back (``config.validate``/``config.apply``),
which answers with every error and its path.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import tomli_w

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def loads(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def dumps(doc: dict[str, Any]) -> str:
    return tomli_w.dumps(doc)


def steps(path: str) -> list[str | int]:
    return [int(i) if i else k for k, i in _STEP.findall(path)]


def get(doc: Any, path: str) -> Any:
    node = doc
    for step in steps(path):
        node = node[step]
    return node


def set_(doc: Any, path: str, value: Any) -> None:
    *parents, leaf = steps(path)
    node = doc
    for step in parents:
        node = node[step]
    node[leaf] = value


def field_id(path: str) -> str:
    """A widget id for a document path (ids allow letters, digits, - and _)."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "_", path)


def flatten(node: Any, prefix: str) -> list[tuple[str, Any]]:
    """Editable leaves under ``prefix``: scalars and lists of scalars, in document order."""
    out: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out += flatten(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        for i, item in enumerate(node):
            out += flatten(item, f"{prefix}[{i}]")
    else:
        out.append((prefix, node))
    return out


def parse_value(text: str, like: Any) -> Any:
    """The typed value for ``text``, shaped like the current value; ValueError says why."""
    text = text.strip()
    if isinstance(like, bool):
        raise ValueError("use the switch")
    if isinstance(like, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if isinstance(like, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    if isinstance(like, list):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def show_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
