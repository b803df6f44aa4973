"""Caller and called identities in SIP header fields, both ways (sans-IO, plain strings).

Incoming: the number and name an analogue phone shows come from P-Asserted-Identity when the
trunk asserts one (RFC 3325 section 9.1), else from From; a Privacy header asking to hide the
identity (RFC 3323 section 4.2, RFC 3325 section 9.3) or an anonymous From (RFC 3323 section
4.1.1.3) withholds both.  The called number is the user part of the Request-URI, else of To.

Outgoing: the From of an INVITE carries the caller ID an FXO line decoded: name as the display
name, number as the user part, in the account's domain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from firmware.sip.errors import PeerProtocolError
from firmware.sip.events import CallerIdentity
from firmware.sip.message import SipRequestHead

# RFC 3323 section 4.2 priv-values that ask us not to pass the identity on.  "id" is RFC 3325
# section 9.3's; "user" and "header" hide user-level and header identity information; "none"
# asks for nothing and "session"/"critical" concern the body and failure handling.
WITHHOLD_PRIVACY = frozenset({"id", "user", "header"})
# RFC 3323 section 4.1.1.3: an anonymous From; the host part is "anonymous.invalid".
ANONYMOUS_USERS = frozenset({"anonymous", "restricted", "unavailable", "unknown"})
ANONYMOUS_HOSTS = frozenset({"anonymous.invalid"})
MAX_FIELD_CHARS = 1024  # a header field longer than this is not a caller identity
MAX_NAME_CHARS = 50  # caller ID names are shorter (ETSI EN 300 659-3 name: 50 characters)
MAX_NUMBER_CHARS = 32

_NAME_ADDR = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>')


@dataclass(frozen=True)
class Party:
    """One name-addr or addr-spec: display name (may be empty), URI, user part of the URI."""

    name: str
    uri: str
    user: str
    host: str


def parse_party(value: str) -> Party:
    """A From/To/P-Asserted-Identity value (RFC 3261 section 25.1 name-addr or addr-spec)."""
    if len(value) > MAX_FIELD_CHARS:
        raise PeerProtocolError(f"identity field of {len(value)} chars exceeds {MAX_FIELD_CHARS}")
    m = _NAME_ADDR.match(value)
    if m:
        quoted, token, uri = m.groups()
        name = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else (token or "").strip()
    else:
        # addr-spec: header parameters after ";" belong to the field, not the URI
        uri, name = value.strip().split(";", 1)[0], ""
    uri = uri.strip()
    user, host = _user_host(uri)
    return Party(name.strip(), uri, user, host)


def _user_host(uri: str) -> tuple[str, str]:
    scheme, sep, rest = uri.partition(":")
    if not sep:
        raise PeerProtocolError(f"not a URI: {uri[:80]!r}")
    scheme = scheme.lower()
    if scheme == "tel":  # RFC 3966: the number is everything before the parameters
        return unquote(rest.split(";", 1)[0]), ""
    if scheme not in ("sip", "sips"):
        raise PeerProtocolError(f"unsupported URI scheme {scheme!r} in {uri[:80]!r}")
    rest = rest.split("?", 1)[0]
    if "@" not in rest:
        return "", rest.split(";", 1)[0]
    userinfo, _, hostport = rest.rpartition("@")
    # RFC 3261 section 19.1.1: user ":" password; RFC 4694-style user parameters after ";"
    user = unquote(userinfo.split(":", 1)[0].split(";", 1)[0])
    host = hostport.split(";", 1)[0]
    return user, host


def _clean_number(user: str) -> str | None:
    # RFC 3966 section 5.1.1 visual separators are dropped; anything else non-dialable
    # means the user part is a name ("alice"), not a number.
    number = re.sub(r"[-.() ]", "", user)
    if not number or len(number) > MAX_NUMBER_CHARS:
        return None
    if not re.fullmatch(r"\+?[0-9*#]+", number):
        return None
    return number


def _is_anonymous(party: Party) -> bool:
    return (
        party.user.lower() in ANONYMOUS_USERS
        or party.host.lower() in ANONYMOUS_HOSTS
        or party.name.lower() in ANONYMOUS_USERS
    )


@dataclass(frozen=True)
class CallerInfo:
    number: str | None
    name: str | None


def caller_of(request: SipRequestHead) -> CallerInfo:
    """Caller number and name of an INVITE, or None for what is withheld or absent."""
    privacy: set[str] = set()
    for value in request.get_all("privacy"):
        privacy.update(v.strip().lower() for v in value.split(";"))
    if privacy & WITHHOLD_PRIVACY:
        return CallerInfo(None, None)
    asserted: list[Party] = []
    for value in request.get_all("p-asserted-identity"):
        # RFC 3325 section 9.1: one sip/sips and one tel URI may be asserted, comma-separated.
        for part in _split_commas(value):
            try:
                asserted.append(parse_party(part))
            except PeerProtocolError:
                continue
    source: Party | None = None
    if asserted:
        # the number from the first URI that has one (often the tel URI), the name from the
        # first that has one
        numbered = [p for p in asserted if _clean_number(p.user)]
        first = numbered[0] if numbered else asserted[0]
        asserted_name = next((p.name for p in asserted if p.name), "")
        source = Party(asserted_name, first.uri, first.user, first.host)
    if source is None:
        raw = request.get("from")
        if raw is None:
            return CallerInfo(None, None)
        source = parse_party(raw)
    if _is_anonymous(source):
        return CallerInfo(None, None)
    return CallerInfo(_clean_number(source.user), source.name[:MAX_NAME_CHARS] or None)


def _split_commas(value: str) -> list[str]:
    """Split a header value at commas outside quotes and angle brackets."""
    parts, depth, quoted, start = [], 0, False, 0
    escaped = False
    for i, c in enumerate(value):
        if escaped:
            escaped = False
        elif c == "\\" and quoted:
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif not quoted and c == "<":
            depth += 1
        elif not quoted and c == ">":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and c == ",":
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    return [p.strip() for p in parts if p.strip()]


def called_of(request: SipRequestHead) -> str:
    """The number or user the INVITE is for: Request-URI user part, else the To's."""
    try:
        user, _host = _user_host(request.uri)
    except PeerProtocolError:
        user = ""
    if user:
        return user
    to = request.get("to")
    if to is None:
        return ""
    try:
        return parse_party(to).user
    except PeerProtocolError:
        return ""


def from_header(caller: CallerIdentity, account_uri: str) -> str:
    """The From value (RFC 3261 section 20.20) presenting ``caller`` in the account's domain.

    ``account_uri`` is the account's own URI (``"Name" <sip:user@host>`` or ``sip:user@host``);
    its host, port and parameters are kept, its user and display name replaced.
    """
    party = parse_party(account_uri)
    scheme = party.uri.split(":", 1)[0].lower()
    if scheme not in ("sip", "sips") or not party.host:
        raise PeerProtocolError(f"account URI {account_uri!r} has no SIP host")
    user = caller.number or party.user
    uri = f"{scheme}:{user}@{party.host}" if user else f"{scheme}:{party.host}"
    if caller.name:
        escaped = caller.name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{uri}>'
    return f"<{uri}>"


def refer_target(value: str) -> tuple[str, str]:
    """User part and host (without port) of a Refer-To value (RFC 3515 section 2.1: a
    name-addr or addr-spec; an embedded Replaces header after "?" is not part of either)."""
    party = parse_party(value)
    host = party.host
    if host.startswith("["):
        host = host[: host.find("]") + 1]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return party.user, host.lower()
