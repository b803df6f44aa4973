"""Canonical JSON: the one byte sequence that is signed and checked.

Sorted keys, no whitespace, ASCII only, integers only (no floats, no NaN), no
duplicate keys.  A document is accepted only if re-encoding it gives back the exact
bytes, so two different byte strings can never carry the same signed meaning.
"""

from __future__ import annotations

import json
from typing import Any

from firmware.update.errors import FormatError


def encode(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_float(text: str) -> Any:
    raise FormatError(f"non-integer number {text[:20]!r}")


def decode(data: bytes, *, what: str) -> Any:
    """Parse canonical JSON; anything else raises ``FormatError`` naming ``what``."""
    try:
        obj = json.loads(
            data.decode("ascii"),
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
    except FormatError as exc:
        raise FormatError(f"{what}: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"{what} is not valid JSON: {str(exc)[:80]}") from None
    if encode(obj) != data:
        raise FormatError(f"{what} is not in canonical form")
    return obj
