"""Field checks used by the configuration schema.

Each check takes an already type-correct value and returns ``None`` when it is acceptable
or a message saying what is wrong (the caller prefixes the path).  Checks are pure and
never raise on any input of their declared type.
"""

from __future__ import annotations

import ipaddress
import re
import reprlib
import zoneinfo
from collections.abc import Callable
from typing import Any

from firmware.store.countries import KNOWN_COUNTRIES, known_impedances

Check = Callable[[Any], str | None]

# RFC 1123 section 2.1: letters, digits and hyphens; 63 octets a label, 253 a name.
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MAX_HOSTNAME_LEN = 253
# ITU-T E.164 section 6: at most 15 digits in an international number.
E164_MAX_DIGITS = 15
_PORT_MAX = 65535


_REPR = reprlib.Repr()
_REPR.maxlevel = 2  # hostile input may nest deeply; repr() itself would recurse
_REPR.maxstring = 40
_REPR.maxother = 40
_REPR.maxlist = _REPR.maxdict = 4


def show(value: object) -> str:
    """A short, bounded rendering of any value for an error message."""
    return _REPR.repr(value)


def in_range(lo: float, hi: float, unit: str = "") -> Check:
    def check(value: float) -> str | None:
        if lo <= value <= hi:
            return None
        suffix = f" {unit}" if unit else ""
        return f"{value}{suffix} is out of range {lo}..{hi}{suffix}"

    return check


def one_of_text(choices: tuple[str, ...], what: str) -> Check:
    def check(value: str) -> str | None:
        if value in choices:
            return None
        return f"unknown {what} {show(value)} (known: {', '.join(choices)})"

    return check


def country(value: str) -> str | None:
    if value in KNOWN_COUNTRIES:
        return None
    return f"unknown country {show(value)} (known: {', '.join(KNOWN_COUNTRIES)})"


def country_or_inherit(value: str) -> str | None:
    return None if value == "" else country(value)


def impedance(value: str) -> str | None:
    return one_of_text(known_impedances(), "impedance")(value)


def hostname_label(value: str) -> str | None:
    if _LABEL.match(value):
        return None
    return f"{show(value)} is not a host name (letters, digits and '-', at most 63)"


def host(value: str) -> str | None:
    """A DNS name or an IP address literal (IPv6 without brackets)."""
    if not value:
        return "a host name or address is required"
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if len(name) > MAX_HOSTNAME_LEN or not all(_LABEL.match(p) for p in name.split(".")):
        return f"{show(value)} is not a host name or IP address"
    return None


def host_or_empty(value: str) -> str | None:
    return None if value == "" else host(value)


def split_host_port(value: str) -> tuple[str, int | None] | str:
    """``host``, ``host:port``, ``[v6]:port``, ``v6``; an optional sip:/sips: scheme.

    Returns (host, port) or an error message.
    """
    rest = value
    for scheme in ("sips:", "sip:"):
        if rest.lower().startswith(scheme):
            rest = rest[len(scheme) :]
            break
    port_text: str | None = None
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            return f"{show(value)}: unclosed '[' in IPv6 address"
        name, tail = rest[1:end], rest[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                return f"{show(value)}: unexpected text after ']'"
            port_text = tail[1:]
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return f"{show(value)}: {show(name)} is not an IPv6 address"
    elif rest.count(":") == 1:
        name, port_text = rest.split(":")
    else:
        name = rest
    problem = host(name)
    if problem:
        return f"{show(value)}: {problem}"
    if port_text is None:
        return (name, None)
    if not port_text.isdigit() or not 1 <= int(port_text) <= _PORT_MAX:
        return f"{show(value)}: port {show(port_text)} is not 1..{_PORT_MAX}"
    return (name, int(port_text))


def host_port(value: str) -> str | None:
    if not value:
        return "required (host, host:port or sip:host:port)"
    result = split_host_port(value)
    return result if isinstance(result, str) else None


def host_port_or_empty(value: str) -> str | None:
    return None if value == "" else host_port(value)


def each(check: Check) -> Check:
    def check_all(values: tuple[Any, ...]) -> str | None:
        for i, value in enumerate(values):
            problem = check(value)
            if problem:
                return f"item {i}: {problem}"
        return None

    return check_all


def unique(values: tuple[Any, ...]) -> str | None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            return f"{show(value)} is listed twice"
        seen.add(value)
    return None


def all_of(*checks: Check) -> Check:
    def check(value: Any) -> str | None:
        for c in checks:
            problem = c(value)
            if problem:
                return problem
        return None

    return check


def non_empty(values: tuple[Any, ...] | str) -> str | None:
    return "must not be empty" if len(values) == 0 else None


def network(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{show(value)} is not an address or network (a.b.c.d/len or v6/len)"
    return None


def interface_address_or_empty(value: str) -> str | None:
    if value == "":
        return None
    if "/" not in value:
        return f"{show(value)} needs a prefix length (for example 192.168.1.10/24)"
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return f"{show(value)} is not an address with prefix length"
    return None


def ip_or_empty(value: str) -> str | None:
    if value == "":
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"{show(value)} is not an IP address"
    return None


def absolute_path_or_empty(value: str) -> str | None:
    if value == "" or value.startswith("/"):
        return None
    return f"{show(value)} must be an absolute path"


_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def name(value: str) -> str | None:
    if _NAME.match(value):
        return None
    return f"{show(value)} is not a name (1-32 of a-z, 0-9, '_', '-', starting alphanumeric)"


_EXTENSION = re.compile(r"^[0-9]{1,8}$")


def extension_number(value: str) -> str | None:
    if _EXTENSION.match(value):
        return None
    return f"{show(value)} is not an extension number (1 to 8 digits)"


def extension_or_empty(value: str) -> str | None:
    return None if value == "" else extension_number(value)


def phone_number_or_empty(value: str) -> str | None:
    if value == "":
        return None
    if re.fullmatch(rf"\+?[0-9]{{1,{E164_MAX_DIGITS}}}", value):
        return None
    return f"{show(value)} is not a phone number (optional '+', 1 to {E164_MAX_DIGITS} digits)"


def pin_or_empty(value: str) -> str | None:
    if value == "" or re.fullmatch(r"[0-9]{4,12}", value):
        return None
    return "a PIN is 4 to 12 digits"


_FEATURE_CODE = re.compile(r"^[*#][0-9]{1,4}$")


def feature_code(value: str) -> str | None:
    if _FEATURE_CODE.match(value):
        return None
    return f"{show(value)} is not a feature code ('*' or '#' then 1 to 4 digits)"


def digit_string(value: str) -> str | None:
    if re.fullmatch(r"[0-9*#]{0,32}", value):
        return None
    return f"{show(value)} may contain only 0-9, '*' and '#' (at most 32)"


# scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>, written by the console's password setter.
_PASSWORD_HASH = re.compile(
    r"^scrypt\$[0-9]{1,2}\$[0-9]{1,2}\$[0-9]{1,2}\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$"
)


def password_hash_or_empty(value: str) -> str | None:
    if value == "" or _PASSWORD_HASH.match(value):
        return None
    return "must be an scrypt hash (scrypt$logN$r$p$salt$hash), never a plain password"


def timezone(value: str) -> str | None:
    """An IANA time zone name the system's tz database has (``Europe/Rome``, ``UTC``)."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone {show(value)} (an IANA name such as 'Europe/Rome' or 'UTC')"
    return None
