"""The IVR section's grammar and its rules between fields (docs/ivr.md).

A destination is written as text in the configuration:

- ``extension:N``  ring extension N
- ``voicemail:N``  leave a message in extension N's mailbox
- ``menu:NAME``    go to another menu of the IVR
- ``dial:NUMBER``  route NUMBER through the dial plan (an outside line, a trunk, ...)
- ``repeat``       play the current menu again (an option only)
- ``hangup``       say goodbye and hang up

:func:`parse_destination` turns the text into one of the frozen dataclasses below;
:func:`ivr_issues` checks the section against the rest of the configuration, naming the
path of every problem (``ivr.menus[1].options[0].to: no menu named 'salse'``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from firmware.store.digitmap import DigitMapError, compile_digit_map, parse_digit_map

if TYPE_CHECKING:
    from firmware.store.schema import Config

OPTION_DIGITS: Final = frozenset("0123456789*#")
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")
_NUMBER = re.compile(r"^[0-9*#]{1,32}$")


@dataclass(frozen=True, slots=True)
class GoExtension:
    number: str


@dataclass(frozen=True, slots=True)
class GoVoicemail:
    mailbox: str


@dataclass(frozen=True, slots=True)
class GoMenu:
    menu: str


@dataclass(frozen=True, slots=True)
class GoDial:
    number: str


@dataclass(frozen=True, slots=True)
class GoRepeat:
    pass


@dataclass(frozen=True, slots=True)
class GoHangup:
    pass


IvrDestination = GoExtension | GoVoicemail | GoMenu | GoDial | GoRepeat | GoHangup

DESTINATION_FORMS: Final = (
    "'extension:N', 'voicemail:N', 'menu:NAME', 'dial:NUMBER', 'repeat' or 'hangup'"
)


class DestinationError(ValueError):
    """Destination text that is not one of :data:`DESTINATION_FORMS`."""


def parse_destination(text: str) -> IvrDestination:
    if text == "repeat":
        return GoRepeat()
    if text == "hangup":
        return GoHangup()
    kind, sep, ref = text.partition(":")
    if sep and ref:
        if kind == "extension" and ref.isascii() and ref.isdigit() and len(ref) <= 8:
            return GoExtension(ref)
        if kind == "voicemail" and ref.isascii() and ref.isdigit() and len(ref) <= 8:
            return GoVoicemail(ref)
        if kind == "menu" and re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", ref):
            return GoMenu(ref)
        if kind == "dial" and _NUMBER.match(ref):
            return GoDial(ref)
    raise DestinationError(f"{text!r} is not a destination ({DESTINATION_FORMS})")


def destination_text(dest: IvrDestination) -> str:
    match dest:
        case GoExtension(number):
            return f"extension:{number}"
        case GoVoicemail(mailbox):
            return f"voicemail:{mailbox}"
        case GoMenu(menu):
            return f"menu:{menu}"
        case GoDial(number):
            return f"dial:{number}"
        case GoRepeat():
            return "repeat"
        case GoHangup():
            return "hangup"


# ---------------------------------------------------------------------------- field checks


def destination(value: str) -> str | None:
    try:
        parse_destination(value)
    except DestinationError as exc:
        return str(exc)
    return None


def final_destination(value: str) -> str | None:
    """Where a menu sends the caller after the last retry: anything but ``repeat``."""
    if value == "repeat":
        return "'repeat' here would never end; use 'menu:NAME' or 'hangup'"
    return destination(value)


def option_digit(value: str) -> str | None:
    if len(value) == 1 and value in OPTION_DIGITS:
        return None
    return f"{value!r} is not one key (0-9, '*' or '#')"


def clock_time(value: str) -> str | None:
    if _TIME.match(value):
        return None
    return f"{value!r} is not a time of day HH:MM (00:00 to 24:00)"


def parse_clock(value: str) -> int:
    """Minutes since midnight of ``HH:MM`` (24:00 is 1440)."""
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def holiday(value: str) -> str | None:
    """``YYYY-MM-DD`` for one date, ``MM-DD`` for the same date every year."""
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            dt.date.fromisoformat(value)
            return None
        if re.fullmatch(r"[0-9]{2}-[0-9]{2}", value):
            dt.date.fromisoformat(f"2000-{value}")  # a leap year: 02-29 is a date
            return None
    except ValueError:
        pass
    return f"{value!r} is not a date (YYYY-MM-DD, or MM-DD for every year)"


def digit_map_or_empty(value: str) -> str | None:
    if value == "":
        return None
    try:
        parse_digit_map(value)
    except DigitMapError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------- cross checks


def _first_digits(digit_map: str) -> frozenset[str]:
    """Keys that can start a number the map accepts."""
    out: set[str] = set()
    for alt in parse_digit_map(digit_map):
        for element in alt.elements:
            out |= element.symbols
            if not element.repeat:
                break
    return frozenset(out)


def ivr_issues(config: Config) -> list[tuple[str, str]]:
    """(path, message) for every rule of the ``ivr`` section that ``config`` breaks."""
    ivr = config.ivr
    out: list[tuple[str, str]] = []
    menus = {m.name: i for i, m in enumerate(ivr.menus)}
    menu_list = ", ".join(menus) or "none"
    extensions = {e.number: e for e in config.extensions}
    # extension:N may name a ring group or queue too (docs/features.md "Ring groups").
    hunts = {g.number for g in config.ring_groups} | {q.number for q in config.queues}
    routes = []
    for r in config.dialplan.routes:
        try:
            routes.append(compile_digit_map(r.pattern))
        except DigitMapError:  # reported by the route's own check
            continue

    seen: set[str] = set()
    for i, menu in enumerate(ivr.menus):
        if menu.name in seen:
            out.append((f"ivr.menus[{i}].name", f"menu name {menu.name!r} is used twice"))
        seen.add(menu.name)

    def check_target(path: str, text: str) -> None:
        try:
            dest = parse_destination(text)
        except DestinationError:  # reported by the field check
            return
        match dest:
            case GoMenu(name) if name not in menus:
                out.append((path, f"no menu named {name!r} (menus: {menu_list})"))
            case GoExtension(number) if number not in extensions and number not in hunts:
                out.append((path, f"extension {number!r} is not defined in extensions"))
            case GoVoicemail(number):
                ext = extensions.get(number)
                if ext is None:
                    out.append((path, f"extension {number!r} is not defined in extensions"))
                elif not ext.voicemail:
                    out.append((path, f"extension {number!r} has no voicemail box"))
            case GoDial(number) if not any(p.fullmatch(number) for p in routes):
                out.append((path, f"no route of dialplan.routes matches {number!r}"))
            case _:
                pass

    for name, key in (
        ("open_menu", ivr.open_menu),
        ("closed_menu", ivr.closed_menu),
        ("holiday_menu", ivr.holiday_menu),
    ):
        if key and key not in menus:
            out.append((f"ivr.{name}", f"no menu named {key!r} (menus: {menu_list})"))
    if ivr.enabled and not ivr.open_menu:
        out.append(("ivr.open_menu", "required when the IVR is enabled"))
    if ivr.enabled and not ivr.number:
        out.append(("ivr.number", "required when the IVR is enabled"))
    if ivr.number:
        if ivr.number in extensions:
            out.append(("ivr.number", f"{ivr.number!r} is already an extension"))
        if ivr.number in config.dialplan.emergency_numbers:
            out.append(("ivr.number", f"{ivr.number!r} is an emergency number"))
        if ivr.number in {room.number for room in config.conference.rooms}:
            out.append(("ivr.number", f"{ivr.number!r} is also a conference room"))
    if ivr.office_hours and not ivr.closed_menu and ivr.enabled:
        out.append(("ivr.closed_menu", "required when office_hours are set"))
    for i, hours in enumerate(ivr.office_hours):
        path = f"ivr.office_hours[{i}]"
        if clock_time(hours.start) or clock_time(hours.end):
            continue
        if parse_clock(hours.start) >= parse_clock(hours.end):
            out.append(
                (
                    f"{path}.end",
                    f"{hours.end} is not after {hours.start}; split hours past midnight "
                    "into two entries",
                )
            )
        if not hours.days:
            out.append((f"{path}.days", "name at least one day"))
    for i, day in _repeated(list(ivr.holidays)):
        out.append((f"ivr.holidays[{i}]", f"{day!r} is listed twice"))

    for i, menu in enumerate(ivr.menus):
        path = f"ivr.menus[{i}]"
        digits: dict[str, int] = {}
        direct = frozenset[str]()
        if menu.direct_dial and not digit_map_or_empty(menu.direct_dial):
            direct = _first_digits(menu.direct_dial)
        for j, option in enumerate(menu.options):
            opath = f"{path}.options[{j}]"
            if option.digit in digits:
                out.append(
                    (
                        f"{opath}.digit",
                        f"key {option.digit!r} is also {path}.options[{digits[option.digit]}] "
                        f"in menu {menu.name!r}",
                    )
                )
            else:
                digits[option.digit] = j
            if option.digit in direct:
                out.append(
                    (
                        f"{opath}.digit",
                        f"key {option.digit!r} also starts an extension in direct_dial "
                        f"{menu.direct_dial!r}; the caller could never reach both",
                    )
                )
            check_target(f"{opath}.to", option.to)
        check_target(f"{path}.invalid", menu.invalid)
        check_target(f"{path}.timeout", menu.timeout)
        if not menu.prompts and not menu.options and not menu.direct_dial:
            out.append((path, f"menu {menu.name!r} has no prompt, no option and no direct dial"))

    for cycle in _silent_cycles(config):
        names = " -> ".join(ivr.menus[i].name for i in cycle)
        out.append(
            (
                f"ivr.menus[{cycle[0]}]",
                f"menus {names} lead to each other and none plays a prompt: a caller "
                "would hear silence for ever",
            )
        )
    return out


def _repeated(values: list[str]) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            yield i, value
        seen.add(value)


def _silent_cycles(config: Config) -> list[list[int]]:
    """Cycles of menus (by option, invalid or timeout) in which no menu has a prompt."""
    menus = config.ivr.menus
    index = {m.name: i for i, m in enumerate(menus)}
    silent = [not m.prompts for m in menus]
    edges: list[list[int]] = [[] for _ in menus]
    for i, menu in enumerate(menus):
        targets = [o.to for o in menu.options] + [menu.invalid, menu.timeout]
        for text in targets:
            try:
                dest = parse_destination(text)
            except DestinationError:
                continue
            if isinstance(dest, GoMenu) and dest.menu in index:
                edges[i].append(index[dest.menu])
    cycles: list[list[int]] = []
    reported: set[frozenset[int]] = set()
    # The shortest way back to each silent menu through silent menus only (breadth first:
    # polynomial however the menus are wired).
    for start in range(len(menus)):
        if not silent[start]:
            continue
        parent: dict[int, int] = {}
        queue = deque([start])
        found: int | None = None
        while queue and found is None:
            node = queue.popleft()
            for nxt in edges[node]:
                if nxt == start:
                    found = node
                    break
                if silent[nxt] and nxt not in parent:
                    parent[nxt] = node
                    queue.append(nxt)
        if found is None:
            continue
        path = [found]
        while path[-1] != start:
            path.append(parent[path[-1]])
        path.reverse()
        if frozenset(path) not in reported:
            reported.add(frozenset(path))
            cycles.append([*path, start])
    return cycles
