"""Digit maps in the MGCP style (RFC 3435 section 2.1.5), as the dial plan writes them.

``[2-9]xx|0[1-9]x.T|112|911``: alternatives separated by ``|``; an element is a digit,
``*``, ``#``, ``A``-``D``, ``x`` (any digit) or a ``[...]`` set of digits and ranges; ``.``
repeats the element before it zero or more times; ``T`` marks the inter-digit timer.

The store only needs to validate maps and find out whether a dialled string (a feature
code) is matched by one; collecting digits against a map in real time belongs to the PBX.
"""

from __future__ import annotations

import re

MAX_DIGIT_MAP_LEN = 512  # cap: a map is typed by people, this is generous
_SINGLE = set("0123456789*#ABCD")


class DigitMapError(ValueError):
    """The digit map text is not well formed; the message says where."""


def _compile_alternative(alt: str, where: int) -> str:
    out: list[str] = []
    i = 0
    last_repeatable = False
    while i < len(alt):
        ch = alt[i].upper() if alt[i] in "abcdt" else alt[i]
        if ch in _SINGLE:
            out.append(re.escape(ch))
            last_repeatable = True
        elif ch == "X" or alt[i] == "x":
            out.append("[0-9]")
            last_repeatable = True
        elif ch == "[":
            end = alt.find("]", i)
            if end < 0:
                raise DigitMapError(f"unclosed '[' at position {where + i}")
            body = alt[i + 1 : end]
            if not body:
                raise DigitMapError(f"empty '[]' at position {where + i}")
            if not re.fullmatch(r"(?:[0-9*#](?:-[0-9])?)+", body):
                raise DigitMapError(f"bad set '[{body}]' at position {where + i}")
            for lo, hi in re.findall(r"([0-9])-([0-9])", body):
                if lo > hi:
                    raise DigitMapError(f"backwards range '{lo}-{hi}' at position {where + i}")
            out.append("[" + body.replace("*", r"\*") + "]")
            i = end
            last_repeatable = True
        elif ch == ".":
            if not last_repeatable:
                raise DigitMapError(f"'.' with nothing to repeat at position {where + i}")
            out.append("*")
            last_repeatable = False
        elif ch == "T":
            if i != len(alt) - 1:
                raise DigitMapError(f"'T' must end an alternative (position {where + i})")
        else:
            raise DigitMapError(f"unexpected {alt[i]!r} at position {where + i}")
        i += 1
    if not out:
        raise DigitMapError(f"empty alternative at position {where}")
    return "".join(out)


def compile_digit_map(text: str) -> re.Pattern[str]:
    """Compile to a regular expression matching complete dialled strings."""
    if len(text) > MAX_DIGIT_MAP_LEN:
        raise DigitMapError(f"longer than {MAX_DIGIT_MAP_LEN} characters")
    body = text.strip()
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1]
    if not body:
        raise DigitMapError("empty digit map")
    parts: list[str] = []
    pos = 0
    for alt in body.split("|"):
        parts.append(_compile_alternative(alt.strip(), pos))
        pos += len(alt) + 1
    return re.compile("(?:" + "|".join(parts) + ")")


def check_digit_map(text: str) -> str | None:
    try:
        compile_digit_map(text)
    except DigitMapError as exc:
        return f"bad digit map: {exc}"
    return None


def matches(text: str, dialled: str) -> bool:
    return compile_digit_map(text).fullmatch(dialled) is not None
