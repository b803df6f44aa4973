"""docs/configuration.md carries the key reference generated from the schema, verbatim."""

from __future__ import annotations

from pathlib import Path

from firmware.store.reference import reference_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_reference_in_docs_is_current() -> None:
    text = DOC.read_text()
    assert reference_markdown() in text, (
        "run: ponte config reference, and paste it into docs/configuration.md"
    )


def test_every_key_is_documented() -> None:
    from firmware.store.document import flatten
    from firmware.store.validate import to_document

    from .helpers import rich_config

    text = DOC.read_text()
    for path in flatten(to_document(rich_config())):
        key = path.rsplit(".", 1)[-1].split("[")[0]
        assert f"| `{key}` |" in text, path
