"""Just enough SIP message parsing for the inbound policy: request line and header fields.

pjsua2 hands us the whole received message as text (``SipRxData.wholeMsg``); pjsip has
already parsed it once, so anything here that does not parse is the peer's fault.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.sip.errors import PeerProtocolError

# RFC 3261 section 18.1.1 bounds UDP requests near the path MTU; pjsip's own receive buffer
# (PJSIP_MAX_PKT_LEN) is 4000 bytes.  TCP can carry more, so cap generously but cap.
MAX_MESSAGE_CHARS = 65535
MAX_HEADER_FIELDS = 256

# RFC 3261 section 7.3.3 compact header forms we look at.
COMPACT_FORMS = {"f": "from", "t": "to", "i": "call-id", "v": "via", "m": "contact"}


@dataclass(frozen=True)
class SipRequestHead:
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]  # (lower-case long name, value) in message order

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [value for field, value in self.headers if field == key]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None


def parse_request(message: str) -> SipRequestHead:
    """The request line and header fields of a SIP request (the body is ignored)."""
    if len(message) > MAX_MESSAGE_CHARS:
        raise PeerProtocolError(f"SIP message of {len(message)} chars exceeds {MAX_MESSAGE_CHARS}")
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("SIP/2.0"):
        raise PeerProtocolError(f"not a SIP request line: {lines[0][:80]!r}")
    method, uri = parts[0], parts[1]
    if not method.isalpha() or not method.isupper():
        raise PeerProtocolError(f"bad SIP method {method[:20]!r}")
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":  # RFC 3261 section 7.3.1: folded continuation line
            if not fields:
                raise PeerProtocolError("continuation line before any header field")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise PeerProtocolError(f"header line without a name: {line[:80]!r}")
        key = name.strip().lower()
        fields.append((COMPACT_FORMS.get(key, key), value.strip()))
        if len(fields) > MAX_HEADER_FIELDS:
            raise PeerProtocolError(f"more than {MAX_HEADER_FIELDS} header fields")
    return SipRequestHead(method, uri, tuple(fields))


def source_host(src_address: str) -> str:
    """The IP of pjsua's ``srcAddress`` ("1.2.3.4:5060" or "[::1]:5060")."""
    if src_address.startswith("["):
        end = src_address.find("]")
        if end < 0:
            raise PeerProtocolError(f"bad source address {src_address!r}")
        return src_address[1:end]
    host, sep, _port = src_address.rpartition(":")
    return host if sep else src_address
