"""The method table of docs/api.md, generated from the registry so it cannot drift.

``ponte api docs`` prints it; ``tests/api/test_docs.py`` checks docs/api.md holds exactly
this text between the markers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from firmware.api.core import MethodSpec
from firmware.api.schema import signature

BEGIN_MARKER: Final = "<!-- BEGIN GENERATED: methods (ponte api docs) -->"
END_MARKER: Final = "<!-- END GENERATED: methods -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def methods_table(specs: Iterable[MethodSpec[Any]]) -> str:
    lines = [
        "| Method | Params | Result | Login | Summary |",
        "|---|---|---|---|---|",
    ]
    for spec in specs:
        lines.append(
            f"| `{spec.name}` | `{_cell(signature(spec.params_type))}` | {_cell(spec.result)} "
            f"| {'yes' if spec.requires_login else 'no'} | {_cell(spec.summary)} |"
        )
    return "\n".join(lines) + "\n"


def generated_block(specs: Iterable[MethodSpec[Any]]) -> str:
    return f"{BEGIN_MARKER}\n{methods_table(specs)}{END_MARKER}"


def extract_block(markdown: str) -> str | None:
    start = markdown.find(BEGIN_MARKER)
    end = markdown.find(END_MARKER)
    if start < 0 or end < start:
        return None
    return markdown[start : end + len(END_MARKER)]
