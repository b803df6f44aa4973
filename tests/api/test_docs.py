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


def test_limits_table_matches_the_constants() -> None:
    from firmware.api import core, events, protocol, server

    text = DOC.read_text()
    rows = {
        "| message size (either way) | 1 MiB |": protocol.MAX_MESSAGE_BYTES == 1 << 20,
        "| clients | 32 |": server.MAX_CLIENTS == 32,
        "| requests running per client | 16 |": core.MAX_INFLIGHT_PER_CLIENT == 16,
        "| request time | 30 s by default": core.DEFAULT_REQUEST_TIMEOUT_S == 30,
        "| queued events per client | 256 KiB |": protocol.EVENT_HIGH_WATER_BYTES == 256 << 10,
        "| queued output per client | 4 MiB |": protocol.OUTBOUND_MAX_BYTES == 4 << 20,
        "| subscriptions per client | 64 patterns |": events.MAX_SUBSCRIPTIONS == 64,
        "| first message | `api.hello` within 10 s |": server.HELLO_TIMEOUT_S == 10,
    }
    for row, matches in rows.items():
        assert row in text, row
        assert matches, row
