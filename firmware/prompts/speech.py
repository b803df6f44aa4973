"""Saying numbers, digits and dates as sequences of catalogue prompt names (pure).

A number is spoken as at most three prompts: thousands, hundreds, then the rest below a
hundred (``1234`` -> ``num-1000 num-200 num-34``); each prompt was rendered from its
numeral by espeak-ng in the prompt's language, so the words are that language's.
"""

from __future__ import annotations

import datetime as dt

from firmware.prompts.catalogue import MAX_NUMBER, MONTH_NAMES, WEEKDAY_NAMES

SYMBOL_NAMES = {"*": "star", "#": "hash"}


def say_number(n: int) -> tuple[str, ...]:
    """Prompt names that say ``n`` (0 .. MAX_NUMBER)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"say_number needs an int, got {type(n).__name__}")
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"say_number covers 0..{MAX_NUMBER}, got {n}")
    if n < 100:
        return (f"num-{n}",)
    out: list[str] = []
    thousands, rest = divmod(n, 1000)
    if thousands:
        out.append(f"num-{thousands * 1000}")
    hundreds, rest = divmod(rest, 100)
    if hundreds:
        out.append(f"num-{hundreds * 100}")
    if rest:
        out.append(f"num-{rest}")
    return tuple(out)


def say_digits(digits: str) -> tuple[str, ...]:
    """One prompt per dialling symbol: ``"10#"`` -> ``num-1 num-0 hash``."""
    out: list[str] = []
    for ch in digits:
        if ch.isdigit() and ch.isascii():
            out.append(f"num-{ch}")
        elif ch in SYMBOL_NAMES:
            out.append(SYMBOL_NAMES[ch])
        else:
            raise ValueError(f"{ch!r} in {digits!r} is not a digit, '*' or '#'")
    return tuple(out)


def say_date(when: dt.date) -> tuple[str, ...]:
    """Weekday, day of the month, month: ``Monday 3 March``."""
    return (WEEKDAY_NAMES[when.weekday()], *say_number(when.day), MONTH_NAMES[when.month - 1])


def say_time(when: dt.time | dt.datetime) -> tuple[str, ...]:
    """24-hour clock: ``at 14 5``; on the hour ``at 9 o'clock`` ("um 9 Uhr")."""
    out = ["at", *say_number(when.hour)]
    if when.minute:
        out += say_number(when.minute)
    else:
        out.append("o-clock")
    return tuple(out)


def say_count(n: int, singular: str, plural: str) -> tuple[str, ...]:
    """``you have`` style counts: the number, then the singular or plural prompt."""
    return (*say_number(n), singular if n == 1 else plural)
