"""Choosing where a complete number goes (sans-IO, pure).

Routes are tried in order, first match wins (docs/dialplan.md).  A route names a
destination: ``extensions`` (the number, after strip/prefix, is looked up among the
extensions and rings the FXS port that has it), ``fxo:N`` (0-based exchange line) or
``trunk:NAME``.  Emergency numbers are always routable: when no route takes them they
go out on the first exchange line, else the first trunk.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.store.digitmap import compile_digit_map
from firmware.store.schema import Config, Route


@dataclass(frozen=True, slots=True)
class ToExtension:
    number: str
    name: str
    fxs: int  # 0-based index among the FXS lines of the configuration


@dataclass(frozen=True, slots=True)
class ToFxo:
    fxo: int  # 0-based index among the FXO lines


@dataclass(frozen=True, slots=True)
class ToTrunk:
    trunk: str


@dataclass(frozen=True, slots=True)
class ToVoicemail:
    """An extension's voicemail box (a forwarding target); voicemail itself is the apps'."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class ToGroup:
    """A ring group or queue (``ring_groups[].number``, ``queues[].number``): a route to
    ``extensions`` whose number is one of them (firmware.pbx.groups)."""

    number: str


Destination = ToExtension | ToFxo | ToTrunk | ToVoicemail | ToGroup


@dataclass(frozen=True, slots=True)
class Routed:
    dialled: str
    number: str  # what goes to the destination, after strip and prefix
    route: str  # the route's name; "emergency fallback" when none matched
    destination: Destination
    emergency: bool = False


@dataclass(frozen=True, slots=True)
class NoRoute:
    dialled: str
    reason: str
    busy: bool = False  # the destination exists but is in use (busy tone, not congestion)


Decision = Routed | NoRoute


def manipulate(number: str, strip: int, prefix: str) -> str:
    if strip < 0:
        raise ValueError(f"strip must be >= 0, got {strip}")
    return prefix + number[strip:]


class Router:
    """The routes of one configuration, patterns compiled once."""

    def __init__(self, config: Config) -> None:
        self._config = config
        plan = config.dialplan
        self._routes = [(r, compile_digit_map(r.pattern)) for r in plan.routes]
        self._emergency = frozenset(plan.emergency_numbers)
        ports = {line.extension: i for i, line in enumerate(config.lines.fxs) if line.extension}
        self._extensions = {
            e.number: (e.name, ports.get(e.number)) for e in config.extensions if e.number
        }
        self._fxo_enabled = [line.enabled for line in config.lines.fxo]
        self._fxs_enabled = [line.enabled for line in config.lines.fxs]
        self._trunks = {t.name: t.enabled for t in config.sip.trunks}
        self._groups = {g.number for g in config.ring_groups} | {q.number for q in config.queues}

    def route(self, dialled: str) -> Decision:
        emergency = dialled in self._emergency
        for route, pattern in self._routes:
            if pattern.fullmatch(dialled) is None:
                continue
            decision = self._to(route, dialled, emergency)
            if isinstance(decision, Routed) or not emergency:
                return decision
            # An emergency route that cannot carry the call: try the next one, then fallback.
        if emergency:
            return self._emergency_fallback(dialled)
        return NoRoute(dialled, "no route matches the number")

    def extension(self, number: str) -> ToExtension | NoRoute:
        """The FXS port that extension ``number`` rings, or why it rings none."""
        found = self._extensions.get(number)
        if found is None:
            return NoRoute(number, f"no extension {number}")
        name, fxs = found
        if fxs is None:
            return NoRoute(number, f"extension {number} rings no FXS port")
        if not self._fxs_enabled[fxs]:
            return NoRoute(number, f"FXS port of extension {number} is disabled")
        return ToExtension(number, name, fxs)

    def _to(self, route: Route, dialled: str, emergency: bool) -> Decision:
        number = manipulate(dialled, route.strip, route.prefix)
        where = f"route {route.name!r}"
        to = route.to
        if to == "extensions":
            if number in self._groups:
                return Routed(dialled, number, route.name, ToGroup(number), emergency)
            found = self.extension(number)
            if isinstance(found, NoRoute):
                return NoRoute(dialled, f"{where}: {found.reason}")
            return Routed(dialled, number, route.name, found, emergency)
        if to.startswith("fxo:"):
            index = int(to[4:]) if to[4:].isdigit() else -1
            if not 0 <= index < len(self._fxo_enabled):
                return NoRoute(dialled, f"{where}: there is no FXO line {to[4:]}")
            if not self._fxo_enabled[index]:
                return NoRoute(dialled, f"{where}: FXO line {index} is disabled")
            return Routed(dialled, number, route.name, ToFxo(index), emergency)
        if to.startswith("trunk:"):
            name = to[6:]
            if not self._trunks.get(name, False):
                return NoRoute(dialled, f"{where}: trunk {name!r} is missing or disabled")
            return Routed(dialled, number, route.name, ToTrunk(name), emergency)
        return NoRoute(dialled, f"{where}: destination {to!r} is not understood")

    def _emergency_fallback(self, dialled: str) -> Decision:
        for index, enabled in enumerate(self._fxo_enabled):
            if enabled:
                return Routed(dialled, dialled, "emergency fallback", ToFxo(index), True)
        for name, enabled in self._trunks.items():
            if enabled:
                return Routed(dialled, dialled, "emergency fallback", ToTrunk(name), True)
        return NoRoute(dialled, "emergency number, but no exchange line or trunk is in service")
