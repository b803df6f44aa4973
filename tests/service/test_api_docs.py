"""docs/api.md lists exactly the methods ``ponte run`` registers."""

from __future__ import annotations

from pathlib import Path

from firmware.service.cli import api_docs_block
from firmware.service.control import DOC_BEGIN, DOC_END

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_appliance_method_table_is_generated_from_the_registry() -> None:
    text = DOC.read_text()
    start, end = text.find(DOC_BEGIN), text.find(DOC_END)
    assert 0 <= start < end, "docs/api.md has no appliance methods table"
    assert text[start : end + len(DOC_END)] == api_docs_block(), (
        "docs/api.md is stale: paste `ponte run --api-docs`"
    )
