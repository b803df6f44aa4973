"""HTTP digest authentication as SIP uses it (RFC 3261 section 22, RFC 7616, RFC 8760).

Pure functions: parse a ``Digest ...`` credentials or challenge value and compute the
expected response.  MD5 and SHA-256 (RFC 8760 section 2.6 lists both for SIP).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from firmware.sip.errors import PeerProtocolError

ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}
MAX_PARAMS = 32  # a Digest credentials value has about ten parameters
MAX_VALUE_CHARS = 1024


def parse_digest(value: str) -> dict[str, str]:
    """Parameters of ``Digest k=v, k="v", ...`` with names lower-cased and quotes removed."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise PeerProtocolError(f"not a Digest credential: {value[:40]!r}")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise PeerProtocolError(f"Digest parameter without '=': {rest[i : i + 40]!r}")
        name = rest[i:eq].strip().lower()
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            out: list[str] = []
            i += 1
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:  # RFC 3261 quoted-pair
                    i += 1
                out.append(rest[i])
                i += 1
            if i >= n:
                raise PeerProtocolError(f"unterminated quoted value of {name!r}")
            i += 1
            val = "".join(out)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            val = rest[i:end].strip()
            i = end
        if not name or len(val) > MAX_VALUE_CHARS:
            raise PeerProtocolError(f"bad Digest parameter {name[:20]!r}")
        if name in params:
            raise PeerProtocolError(f"Digest parameter {name!r} given twice")
        params[name] = val
        if len(params) > MAX_PARAMS:
            raise PeerProtocolError(f"more than {MAX_PARAMS} Digest parameters")
    return params


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str = "",
    nc: str = "",
    cnonce: str = "",
) -> str:
    """The ``response`` value a client with this password computes (RFC 7616 section 3.4.1)."""
    h = ALGORITHMS.get(algorithm)
    if h is None:
        raise PeerProtocolError(f"unsupported digest algorithm {algorithm!r}")
    ha1 = h(f"{username}:{realm}:{password}".encode())
    ha2 = h(f"{method}:{uri}".encode())
    if qop:
        if qop != "auth":
            raise PeerProtocolError(f"unsupported qop {qop!r} (only 'auth')")
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{ha2}".encode())
