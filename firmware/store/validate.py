"""Parse and validate configuration documents, collecting every problem with its path.

``parse(doc)`` turns a plain document (what TOML or JSON gives: dicts, lists, str, int,
float, bool) into a ``Config`` or raises ``ConfigError`` listing every problem, such as
``lines.fxs[2].country: unknown country 'XX'``.  Nothing else is ever raised for any
input.  ``to_document(config)`` is the inverse; ``check(config)`` validates a ``Config``
built in Python by round-tripping it.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast, get_args, get_origin, get_type_hints

from firmware.store import schema
from firmware.store.checks import show
from firmware.store.digitmap import DigitMapError, compile_digit_map, feature_code_clash
from firmware.store.ivrconfig import ivr_issues
from firmware.store.schema import (
    CONFIG_SCHEMA,
    MAX_LIST_ITEMS,
    MAX_SIP_ACCOUNTS,
    MAX_STRING_LEN,
    Config,
)

Document = dict[str, Any]
D = TypeVar("D")

# Top-level key carrying the document layout version in exported files.
SCHEMA_KEY = "schema_version"


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(ValueError):
    """A document was refused; ``issues`` names every problem found."""

    def __init__(self, issues: list[ConfigIssue] | tuple[ConfigIssue, ...]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Invalid:
    pass


_INVALID = _Invalid()


class _Parser:
    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []

    def fail(self, path: str, message: str) -> _Invalid:
        self.issues.append(ConfigIssue(path, message))
        return _INVALID

    def value(self, tp: Any, raw: object, path: str) -> Any:
        origin = get_origin(tp)
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            return self.fail(path, f"expected true or false, got {_kind(raw)} {show(raw)}")
        if tp is int:
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            return self.fail(path, f"expected an integer, got {_kind(raw)} {show(raw)}")
        if tp is float:
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                try:
                    number = float(raw)
                except OverflowError:
                    return self.fail(path, "number too large")
                if math.isfinite(number):
                    return number
                return self.fail(path, f"expected a finite number, got {show(raw)}")
            return self.fail(path, f"expected a number, got {_kind(raw)} {show(raw)}")
        if tp is str:
            if not isinstance(raw, str):
                return self.fail(path, f"expected a string, got {_kind(raw)} {show(raw)}")
            if len(raw) > MAX_STRING_LEN:
                return self.fail(path, f"longer than {MAX_STRING_LEN} characters")
            bad = next((c for c in raw if _is_control(c)), None)
            if bad is not None:
                return self.fail(path, f"contains the control character {bad!r}")
            return raw
        if origin is Literal:
            choices = get_args(tp)
            if isinstance(raw, str) and raw in choices:
                return raw
            return self.fail(
                path, f"must be one of {', '.join(map(repr, choices))}, got {show(raw)}"
            )
        if origin is tuple:
            item_type = get_args(tp)[0]
            if not isinstance(raw, list | tuple):
                return self.fail(path, f"expected an array, got {_kind(raw)} {show(raw)}")
            if len(raw) > MAX_LIST_ITEMS:
                return self.fail(path, f"more than {MAX_LIST_ITEMS} items")
            items = [self.value(item_type, item, f"{path}[{i}]") for i, item in enumerate(raw)]
            if any(item is _INVALID for item in items):
                return _INVALID
            return tuple(items)
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self.table(tp, raw, path)
        raise TypeError(f"unsupported schema type {tp!r} at {path}")  # pragma: no cover

    def table(self, cls: type[D], raw: object, path: str) -> D:
        """Always returns an instance: a field that fails keeps its default (the failure is
        recorded), so that the rules between fields can still run and be reported."""
        if not isinstance(raw, Mapping):
            self.fail(path, f"expected a table, got {_kind(raw)} {show(raw)}")
            return cls()
        hints = schema_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for key in raw:
            if key not in fields:
                hint = difflib.get_close_matches(str(key), list(fields), n=1)
                more = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.fail(join(path, str(key)), f"unknown key{more}")
        kwargs: dict[str, Any] = {}
        for name, f in fields.items():
            sub = join(path, name)
            if name in raw:
                value = self.value(hints[name], raw[name], sub)
                if value is _INVALID:
                    continue
                if f.metadata.get("secret") and value == REDACTED:
                    # Taken as a secret, an export of it would read back as "keep the old one".
                    self.fail(sub, f"{REDACTED!r} is what a redacted export writes, not a secret")
                    continue
                kwargs[name] = value
            check = f.metadata.get("check")
            if check is not None:
                problem = check(kwargs[name] if name in kwargs else field_default(f))
                if problem:
                    self.fail(sub, problem)
                    kwargs.pop(name, None)
        return cls(**kwargs)


def _is_control(char: str) -> bool:
    # Settings are single-line text: no control characters, and no lone surrogates (they
    # cannot be written to a UTF-8 file, so the document could not be exported).
    return unicodedata.category(char) in ("Cc", "Cs") and char != "\t"


_HINTS: dict[type, dict[str, Any]] = {}


def schema_hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls, vars(schema))
    return _HINTS[cls]


def field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    factory = cast(Callable[[], Any], f.default_factory)
    return factory()


# ---------------------------------------------------------------------------- cross-field rules


def _route_target(to: str, config: Config) -> str | None:
    if to == "extensions":
        return None
    kind, _, ref = to.partition(":")
    if kind == "fxo":
        if not ref.isdigit():
            return f"{to!r}: FXO port must be a number (fxo:0 is the first port)"
        if int(ref) >= len(config.lines.fxo):
            return f"{to!r}: there is no FXO port {ref} ({len(config.lines.fxo)} configured)"
        return None
    if kind == "trunk":
        names = [t.name for t in config.sip.trunks]
        if ref not in names:
            return f"{to!r}: no trunk named {ref!r} (trunks: {', '.join(names) or 'none'})"
        return None
    return f"{to!r} is not a destination ('extensions', 'fxo:N' or 'trunk:NAME')"


def _fxo_destination(number: str, config: Config, known_ext: set[str]) -> str | None:
    """An exchange line's destination is routed like a dialled number: the first route that
    matches takes it (docs/dialplan.md); an unusable one would leave every call ringing."""
    for route in config.dialplan.routes:
        try:
            pattern = compile_digit_map(route.pattern)
        except DigitMapError:
            continue  # reported on the route itself
        if pattern.fullmatch(number) is None:
            continue
        if route.to.startswith("fxo:"):
            line = f"route {route.name!r} sends {number!r} to an exchange line"
            return f"{line}: a line cannot call a line"
        if route.to != "extensions":
            return None
        target = route.prefix + number[route.strip :]
        if target not in known_ext:
            return f"extension {target!r} is not defined in extensions (route {route.name!r})"
        return None
    return f"no route in dialplan.routes matches {number!r}"


def _duplicates(values: list[str]) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            yield i, value
        seen.add(value)


# Codes dialled during a call (DTMF heard by call control), not against the digit map.
IN_CALL_CODES = frozenset({"record_toggle"})


def cross_checks(config: Config) -> list[ConfigIssue]:
    """Rules between fields; run only on a document whose fields are each valid."""
    out: list[ConfigIssue] = []

    def add(path: str, message: str) -> None:
        out.append(ConfigIssue(path, message))

    ext_numbers = [e.number for e in config.extensions]
    for i, number in _duplicates(ext_numbers):
        add(f"extensions[{i}].number", f"extension {number!r} is defined twice")
    known_ext = set(ext_numbers)
    reachable = known_ext | ({config.ivr.number} if config.ivr.number else set())
    reachable |= hunt_numbers(config)
    reachable |= {r.number for r in config.conference.rooms}  # a trunk may ring a room too
    for i, fxs in enumerate(config.lines.fxs):
        if fxs.extension and fxs.extension not in known_ext:
            add(
                f"lines.fxs[{i}].extension",
                f"extension {fxs.extension!r} is not defined in extensions",
            )
    for i, fxo in enumerate(config.lines.fxo):
        # The IVR's number is taken before the routes (docs/ivr.md).
        if fxo.destination and fxo.destination not in (config.ivr.number, *hunt_numbers(config)):
            problem = _fxo_destination(fxo.destination, config, known_ext)
            if problem:
                add(f"lines.fxo[{i}].destination", problem)
    if len(config.lines.fxs) > schema.MAX_FXS_PORTS:
        add("lines.fxs", f"at most {schema.MAX_FXS_PORTS} FXS ports")
    if len(config.lines.fxo) > schema.MAX_FXO_PORTS:
        add("lines.fxo", f"at most {schema.MAX_FXO_PORTS} FXO ports")

    sip = config.sip
    transports = sip.transports
    enabled_transports = {
        name
        for name, t in (("udp", transports.udp), ("tcp", transports.tcp), ("tls", transports.tls))
        if t.enabled
    }
    if not enabled_transports:
        add("sip.transports", "at least one transport must be enabled")
    # Both or neither: with neither, the SIP core makes a self-signed certificate
    # (firmware.sip.provision.ensure_self_signed).
    if transports.tls.enabled and bool(transports.tls.cert_file) != bool(transports.tls.key_file):
        have, missing = (
            ("cert_file", "key_file") if transports.tls.cert_file else ("key_file", "cert_file")
        )
        add(f"sip.transports.tls.{missing}", f"required with {have} (a certificate needs its key)")
    if (
        transports.tls.enabled
        and transports.tcp.enabled
        and transports.tls.port == transports.tcp.port
    ):
        add("sip.transports.tls.port", f"port {transports.tls.port} is already used by TCP")

    names = [t.name for t in sip.trunks] + [a.name for a in sip.accounts]
    kinds = [f"sip.trunks[{i}]" for i in range(len(sip.trunks))] + [
        f"sip.accounts[{i}]" for i in range(len(sip.accounts))
    ]
    for i, name in _duplicates(names):
        add(f"{kinds[i]}.name", f"name {name!r} is used twice among trunks and accounts")
    registrations: list[tuple[str, schema.Registration]] = [
        (f"sip.trunks[{i}]", t) for i, t in enumerate(sip.trunks)
    ] + [(f"sip.accounts[{i}]", a) for i, a in enumerate(sip.accounts)]
    for path, reg in registrations:
        if reg.enabled and reg.transport not in enabled_transports:
            add(
                f"{path}.transport", f"transport {reg.transport!r} is not enabled in sip.transports"
            )
        if reg.srtp == "mandatory" and reg.transport != "tls":
            # SDES keys travel in the SDP: without TLS they are readable on the wire.
            add(f"{path}.srtp", "mandatory SRTP needs transport 'tls' (SDES keys travel in SIP)")
        if reg.enabled and not reg.username and (not isinstance(reg, schema.Trunk) or reg.register):
            add(f"{path}.username", "required to register")
    for i, t in enumerate(sip.trunks):
        if t.destination and t.destination not in reachable:
            add(
                f"sip.trunks[{i}].destination",
                f"extension {t.destination!r} is not defined in extensions",
            )
    used_ports: dict[int, int] = {}
    for i, account in enumerate(sip.accounts):
        if account.fxs >= len(config.lines.fxs):
            add(
                f"sip.accounts[{i}].fxs",
                f"there is no FXS port {account.fxs} ({len(config.lines.fxs)} configured)",
            )
        elif account.enabled and account.fxs in used_ports:
            add(
                f"sip.accounts[{i}].fxs",
                f"FXS port {account.fxs} already has sip.accounts[{used_ports[account.fxs]}]",
            )
        elif account.enabled:
            used_ports[account.fxs] = i
    count = sip_account_count(config)
    if count > MAX_SIP_ACCOUNTS:
        add(
            "sip",
            f"{count} SIP accounts would be created (enabled trunks + enabled accounts) but "
            f"the SIP core holds at most {MAX_SIP_ACCOUNTS} (pjsua2's 8 less the box's own "
            "2); "
            f"disable or remove {count - MAX_SIP_ACCOUNTS}",
        )

    plan = config.dialplan
    route_names = [r.name for r in plan.routes]
    for i, name in _duplicates(route_names):
        add(f"dialplan.routes[{i}].name", f"route name {name!r} is used twice")
    for i, route in enumerate(plan.routes):
        problem = _route_target(route.to, config)
        if problem:
            add(f"dialplan.routes[{i}].to", problem)

    codes = dataclasses.asdict(config.features.codes)
    for key, code in codes.items():
        path = f"features.codes.{key}"
        for other_key, other in codes.items():
            if other_key == key:
                continue
            if other == code and other_key < key:
                add(path, f"{code!r} is also features.codes.{other_key}")
            elif other != code and other.startswith(code):
                add(
                    path,
                    f"{code!r} is a prefix of features.codes.{other_key} {other!r}, "
                    "which could never be dialled",
                )
        for i, route in enumerate(plan.routes):
            try:
                hit = compile_digit_map(route.pattern).fullmatch(code)
            except DigitMapError:  # refused by the field check, reported there
                continue
            if hit:
                add(
                    path,
                    f"{code!r} clashes with dialplan.routes[{i}] {route.name!r} "
                    f"pattern {route.pattern!r}",
                )
        if code in plan.emergency_numbers:
            add(path, f"{code!r} is an emergency number")
        if key not in IN_CALL_CODES:
            try:
                clash = feature_code_clash(plan.digit_map, code)
            except DigitMapError:  # refused by the field check, reported there
                clash = None
            if clash:
                add(path, f"{clash} (dialplan.digit_map {plan.digit_map!r})")

    out += [ConfigIssue(path, message) for path, message in ivr_issues(config)]

    net = config.network
    if net.mode == "static":
        if not net.address:
            add("network.address", "required in static mode")
        if not net.gateway:
            add("network.gateway", "required in static mode")
        if net.address and net.gateway:
            iface = ipaddress.ip_interface(net.address)
            gateway = ipaddress.ip_address(net.gateway)
            if gateway not in iface.network:
                add("network.gateway", f"{net.gateway} is not in {iface.network}")
        if not net.dns:
            add("network.dns", "at least one DNS server is required in static mode")
    for i, server in enumerate(net.dns):
        if server == "":
            add(f"network.dns[{i}]", "empty address")
    out += _conference_checks(config, known_ext)
    out += _group_checks(config, known_ext)
    return out


def hunt_numbers(config: Config) -> set[str]:
    """The numbers of the ring groups and queues (taken before the routes, like rooms)."""
    return {g.number for g in config.ring_groups} | {q.number for q in config.queues}


def _group_checks(config: Config, known_ext: set[str]) -> list[ConfigIssue]:
    """Ring groups and queues: numbers unique among every number the box answers, members
    that are extensions, destinations that exist (docs/features.md "Ring groups")."""
    out: list[ConfigIssue] = []
    hunts: list[tuple[str, schema.RingGroup | schema.Queue]] = [
        (f"ring_groups[{i}]", g) for i, g in enumerate(config.ring_groups)
    ] + [(f"queues[{i}]", q) for i, q in enumerate(config.queues)]
    taken: dict[str, str] = {n: "an extension" for n in known_ext}
    for i, r in enumerate(config.conference.rooms):
        taken.setdefault(r.number, f"conference.rooms[{i}]")
    if config.ivr.number:
        taken.setdefault(config.ivr.number, "ivr.number")
    boxes = {e.number for e in config.extensions if e.voicemail}
    numbers = known_ext | hunt_numbers(config)
    for path, hunt in hunts:
        owner = taken.get(hunt.number)
        if owner is not None:
            out.append(ConfigIssue(f"{path}.number", f"{hunt.number!r} is already {owner}"))
        else:
            taken[hunt.number] = path
        for j, member in enumerate(hunt.members):
            if member not in known_ext:
                out.append(
                    ConfigIssue(
                        f"{path}.members[{j}]", f"extension {member!r} is not defined in extensions"
                    )
                )
        key = "no_answer" if isinstance(hunt, schema.RingGroup) else "overflow"
        target: str = getattr(hunt, key)
        if target.startswith("voicemail:"):
            if target[10:] not in boxes:
                out.append(
                    ConfigIssue(
                        f"{path}.{key}",
                        f"{target!r}: extension {target[10:]!r} has no voicemail box",
                    )
                )
        elif target != "hangup":
            if target == hunt.number:
                out.append(ConfigIssue(f"{path}.{key}", f"{target!r} is this one's own number"))
            elif target not in numbers:
                out.append(
                    ConfigIssue(
                        f"{path}.{key}",
                        f"{target!r} is neither an extension nor a ring group or queue number",
                    )
                )
    return out


def conference_capacity(config: Config) -> int:
    """Participants a room can hold at most: every SIP leg and every analogue port."""
    return schema.MAX_SIP_CALLS + len(config.lines.fxs) + len(config.lines.fxo)


def _conference_checks(config: Config, known_ext: set[str]) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    rooms = config.conference.rooms
    for i, number in _duplicates([r.number for r in rooms]):
        out.append(
            ConfigIssue(f"conference.rooms[{i}].number", f"room {number!r} is defined twice")
        )
    capacity = conference_capacity(config)
    for i, room in enumerate(rooms):
        path = f"conference.rooms[{i}]"
        if room.number in known_ext:
            out.append(
                ConfigIssue(f"{path}.number", f"{room.number!r} is already an extension number")
            )
        if room.max_participants > capacity:
            out.append(
                ConfigIssue(
                    f"{path}.max_participants",
                    f"{room.max_participants} participants cannot all be connected: the "
                    f"bridge takes {schema.MAX_SIP_CALLS} SIP legs and the box has "
                    f"{len(config.lines.fxs)} FXS and {len(config.lines.fxo)} FXO ports "
                    f"({capacity} at most)",
                )
            )
    return out


def sip_account_count(config: Config) -> int:
    """pjsua2 accounts the SIP layer will create for this configuration."""
    return sum(t.enabled for t in config.sip.trunks) + sum(a.enabled for a in config.sip.accounts)


# ---------------------------------------------------------------------------- upgrades

# from-version -> function returning the document in from-version + 1's layout.
DOCUMENT_UPGRADES: dict[int, Callable[[Document], Document]] = {}


def _upgrade(doc: Mapping[str, Any]) -> Document | ConfigError:
    body = dict(doc)
    version = body.pop(SCHEMA_KEY, CONFIG_SCHEMA)
    if not isinstance(version, int) or isinstance(version, bool):
        return ConfigError([ConfigIssue(SCHEMA_KEY, f"expected an integer, got {show(version)}")])
    if version > CONFIG_SCHEMA:
        return ConfigError(
            [
                ConfigIssue(
                    SCHEMA_KEY,
                    f"document version {version} is newer than this firmware's ({CONFIG_SCHEMA})",
                )
            ]
        )
    if version < 1:
        return ConfigError([ConfigIssue(SCHEMA_KEY, f"unknown document version {version}")])
    while version < CONFIG_SCHEMA:
        body = DOCUMENT_UPGRADES[version](body)
        version += 1
    return body


# ---------------------------------------------------------------------------- entry points


def parse(doc: object) -> Config:
    """Validate a plain document; raise ``ConfigError`` naming every problem."""
    if not isinstance(doc, Mapping):
        raise ConfigError([ConfigIssue("", f"a configuration is a table, got {_kind(doc)}")])
    upgraded = _upgrade(doc)
    if isinstance(upgraded, ConfigError):
        raise upgraded
    parser = _Parser()
    result = parser.table(Config, upgraded, "")
    failed = [issue.path for issue in parser.issues]
    # Rules between fields run on the document with failed fields at their defaults; a
    # rule's complaint about a path already reported (or its parent or child) would only
    # echo the first problem, so it is left out.
    related = [i for i in cross_checks(result) if not any(_related(i.path, p) for p in failed)]
    issues = parser.issues + related
    if issues:
        raise ConfigError(issues)
    return result


def _related(a: str, b: str) -> bool:
    def within(inner: str, outer: str) -> bool:
        return inner == outer or outer == "" or inner.startswith((outer + ".", outer + "["))

    return within(a, b) or within(b, a)


def to_document(config: Config, *, redact: bool = False, with_schema: bool = False) -> Document:
    """Plain dicts/lists/scalars; secrets replaced by ``REDACTED`` when asked."""
    doc = cast(Document, _plain(config, redact))
    if with_schema:
        return {SCHEMA_KEY: CONFIG_SCHEMA, **doc}
    return doc


# Placeholder written instead of a secret by a redacted export.  On import it means "keep
# the secret the box already has for this item".
REDACTED = "<redacted>"


def _plain(value: object, redact: bool) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: Document = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if redact and f.metadata.get("secret") and item:
                out[f.name] = REDACTED
            else:
                out[f.name] = _plain(item, redact)
        return out
    if isinstance(value, tuple):
        return [_plain(v, redact) for v in value]
    return value


def check(config: Config) -> Config:
    """Validate a ``Config`` built in Python; returns it unchanged or raises ``ConfigError``."""
    parse(to_document(config))
    return config
