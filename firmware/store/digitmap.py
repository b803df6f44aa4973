"""Digit maps in the MGCP style (RFC 3435 section 2.1.5), as the dial plan writes them.

``[2-9]xx|0[1-9]x.T|112|911``: alternatives separated by ``|``; an element is a digit,
``*``, ``#``, ``A``-``D``, ``x`` (any digit) or a ``[...]`` set of digits and ranges; ``.``
repeats the element before it zero or more times; ``T`` marks the inter-digit timer.

The store only needs to validate maps and find out whether a dialled string (a feature
code) is matched by one; collecting digits against a map in real time belongs to the PBX.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_DIGIT_MAP_LEN = 512  # cap: a map is typed by people, this is generous
_SINGLE = set("0123456789*#ABCD")
_DIGITS = frozenset("0123456789")


class DigitMapError(ValueError):
    """The digit map text is not well formed; the message says where."""


@dataclass(frozen=True, slots=True)
class Element:
    """One position of an alternative: the symbols it accepts, possibly repeated (``.``)."""

    symbols: frozenset[str]
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class Alternative:
    """One ``|``-separated pattern; ``timer`` when it ends in ``T``."""

    elements: tuple[Element, ...]
    timer: bool = False


def _set_symbols(body: str) -> frozenset[str]:
    out: set[str] = set()
    for lo, hi, single in re.findall(r"([0-9])-([0-9])|([0-9*#])", body):
        if single:
            out.add(single)
        else:
            out.update(str(d) for d in range(int(lo), int(hi) + 1))
    return frozenset(out)


def _parse_alternative(alt: str, where: int) -> Alternative:
    out: list[Element] = []
    timer = False
    i = 0
    last_repeatable = False
    while i < len(alt):
        ch = alt[i].upper() if alt[i] in "abcdt" else alt[i]
        if ch in _SINGLE:
            out.append(Element(frozenset(ch)))
            last_repeatable = True
        elif ch == "X" or alt[i] == "x":
            out.append(Element(_DIGITS))
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
            out.append(Element(_set_symbols(body)))
            i = end
            last_repeatable = True
        elif ch == ".":
            if not last_repeatable:
                raise DigitMapError(f"'.' with nothing to repeat at position {where + i}")
            out[-1] = Element(out[-1].symbols, repeat=True)
            last_repeatable = False
        elif ch == "T":
            if i != len(alt) - 1:
                raise DigitMapError(f"'T' must end an alternative (position {where + i})")
            timer = True
        else:
            raise DigitMapError(f"unexpected {alt[i]!r} at position {where + i}")
        i += 1
    if not out:
        raise DigitMapError(f"empty alternative at position {where}")
    return Alternative(tuple(out), timer)


def _element_regex(element: Element) -> str:
    chars = "".join(sorted(element.symbols))
    body = re.escape(chars) if len(chars) == 1 else "[" + re.escape(chars) + "]"
    return body + ("*" if element.repeat else "")


def parse_digit_map(text: str) -> tuple[Alternative, ...]:
    """The alternatives of a digit map, for matching digit by digit (firmware.pbx.digits)."""
    if len(text) > MAX_DIGIT_MAP_LEN:
        raise DigitMapError(f"longer than {MAX_DIGIT_MAP_LEN} characters")
    body = text.strip()
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1]
    if not body:
        raise DigitMapError("empty digit map")
    parts: list[Alternative] = []
    pos = 0
    for alt in body.split("|"):
        parts.append(_parse_alternative(alt.strip(), pos))
        pos += len(alt) + 1
    return tuple(parts)


def compile_digit_map(text: str) -> re.Pattern[str]:
    """Compile to a regular expression matching complete dialled strings."""
    alternatives = parse_digit_map(text)
    parts = ["".join(_element_regex(e) for e in alt.elements) for alt in alternatives]
    return re.compile("(?:" + "|".join(parts) + ")")


def check_digit_map(text: str) -> str | None:
    try:
        compile_digit_map(text)
    except DigitMapError as exc:
        return f"bad digit map: {exc}"
    return None


def matches(text: str, dialled: str) -> bool:
    return compile_digit_map(text).fullmatch(dialled) is not None


def _split_alternatives(text: str) -> list[str]:
    return [alt.strip() for alt in text.split("|")]


def _positions_after(alternatives: tuple[Alternative, ...], dialled: str) -> set[tuple[int, int]]:
    """Where each alternative stands after ``dialled`` (a small NFA, as the PBX runs it)."""

    def closure(positions: set[tuple[int, int]]) -> set[tuple[int, int]]:
        out, todo = set(positions), list(positions)
        while todo:
            a, i = todo.pop()
            elements = alternatives[a].elements
            if i < len(elements) and elements[i].repeat and (a, i + 1) not in out:
                out.add((a, i + 1))
                todo.append((a, i + 1))
        return out

    positions = closure({(a, 0) for a in range(len(alternatives))})
    for digit in dialled:
        moved: set[tuple[int, int]] = set()
        for a, i in positions:
            elements = alternatives[a].elements
            if i < len(elements) and digit in elements[i].symbols:
                moved.add((a, i) if elements[i].repeat else (a, i + 1))
        positions = closure(moved)
    return positions


def feature_code_clash(text: str, code: str) -> str | None:
    """Why feature code ``code`` cannot be dialled under digit map ``text``, or None.

    A code is dialled like a number: the map must complete on it, and must not complete
    (a unique match without ``T``, RFC 3435 section 2.1.5) on a shorter part of it.
    """
    alternatives = parse_digit_map(text)
    names = _split_alternatives(text)
    for n in range(1, len(code)):
        positions = _positions_after(alternatives, code[:n])
        done = [a for a, i in positions if i == len(alternatives[a].elements)]
        grows = any(i < len(alternatives[a].elements) for a, i in positions)
        complete = [a for a in done if not alternatives[a].timer]
        if complete and not grows:
            return (
                f"the digit map alternative {names[complete[0]]!r} completes on "
                f"{code[:n]!r} before {code!r} is dialled"
            )
    positions = _positions_after(alternatives, code)
    if not any(i == len(alternatives[a].elements) for a, i in positions):
        return f"{code!r} is not matched by the digit map, so it can never be dialled"
    return None
