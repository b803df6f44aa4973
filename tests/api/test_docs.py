"""docs/api.md must describe what the server actually does."""

from __future__ import annotations

from pathlib import Path

from firmware.api.auth import MemoryCredentialStore
from firmware.api.client import CLIENT_CODES
from firmware.api.docgen import extract_block, generated_block
from firmware.api.protocol import ErrorCode
from firmware.api.server import ApiServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _server() -> ApiServer:
    return ApiServer("/nonexistent/api.sock", credentials=MemoryCredentialStore())


def test_method_table_is_generated_from_the_registry() -> None:
    text = DOC.read_text()
    expected = generated_block(_server().method_specs())
    assert extract_block(text) == expected, "docs/api.md is stale: run `ponte api docs`"


def test_every_method_and_error_code_is_documented() -> None:
    text = DOC.read_text()
    for name in _server().registry.names():
        assert f"`{name}`" in text, name
    for code in [*(str(c) for c in ErrorCode), *CLIENT_CODES]:
        assert f"`{code}`" in text, code
