"""Kernel rate limits for SIP, per source: an nftables ruleset generated from configuration.

Defence in depth in front of the in-process flood guard (docs/capacity.md): a single source
that sends more than ``rate_per_s`` SIP packets per second to the box's SIP ports, or opens
more than ``conn_per_s`` TCP/TLS connections per second, is dropped by the kernel before
pjsip parses anything.  Banned sources (the inbound policy's bans) are dropped outright until
their ban expires.  Trunk hosts are exempt from the per-source rate (a provider may be busy).

Pure text generation: the service applies it with ``nft -f`` (root), tests apply it inside
a network namespace they create.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from firmware.sip.errors import SipConfigError

TABLE = "ponte_sip"
MAX_BANNED = 65536  # cap on ban elements written into the ruleset
METER_SIZE = 65535  # per-source rate state the kernel keeps (nftables dynamic set size)
METER_TIMEOUT_S = 60  # a quiet source's rate state is forgotten after this
BURST_FACTOR = 2  # packets allowed in one burst, as a multiple of the per-second rate
# RFC 3261 section 18: a SIP request and its retransmissions fit far below this per second;
# a registration, a call set-up with 100/180/200/ACK and an OPTIONS ping are a handful.
MIN_RATE_PER_S = 1
MAX_RATE_PER_S = 10000


@dataclass(frozen=True)
class Ban:
    source: str
    remaining_s: int

    def __post_init__(self) -> None:
        ipaddress.ip_address(self.source)  # raises ValueError naming the bad address
        if self.remaining_s < 1:
            raise ValueError(f"ban of {self.source}: remaining time {self.remaining_s} s < 1")


@dataclass(frozen=True)
class FirewallSettings:
    ports: tuple[int, ...]
    rate_per_s: int = 20  # store: security.sip_rate_limit_per_s
    conn_per_s: int = 5
    exempt: tuple[str, ...] = ()  # trunk hosts/networks

    def __post_init__(self) -> None:
        if not self.ports:
            raise SipConfigError("the SIP firewall needs at least one port")
        for port in self.ports:
            if not 1 <= port <= 65535:
                raise SipConfigError(f"SIP port {port} outside 1..65535")
        for rate in (self.rate_per_s, self.conn_per_s):
            if not MIN_RATE_PER_S <= rate <= MAX_RATE_PER_S:
                raise SipConfigError(f"rate {rate}/s outside {MIN_RATE_PER_S}..{MAX_RATE_PER_S}")
        for net in self.exempt:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise SipConfigError(f"exempt host {net!r} is not an address or network") from None


def nft_ruleset(settings: FirewallSettings, bans: Iterable[Ban] = ()) -> str:
    """The whole ``inet ponte_sip`` table; applying it replaces any earlier version."""
    ports = ", ".join(str(p) for p in sorted(set(settings.ports)))
    v4 = [n for n in settings.exempt if ipaddress.ip_network(n, strict=False).version == 4]
    v6 = [n for n in settings.exempt if ipaddress.ip_network(n, strict=False).version == 6]
    banned4: list[str] = []
    banned6: list[str] = []
    for i, ban in enumerate(bans):
        if i >= MAX_BANNED:
            break
        target = banned4 if ipaddress.ip_address(ban.source).version == 4 else banned6
        target.append(f"{ban.source} timeout {ban.remaining_s}s")
    rate, burst = settings.rate_per_s, settings.rate_per_s * BURST_FACTOR
    conn, cburst = settings.conn_per_s, settings.conn_per_s * BURST_FACTOR
    meter = f"size {METER_SIZE}; flags dynamic,timeout; timeout {METER_TIMEOUT_S}s;"
    lines = [
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        f"    set banned4 {{ type ipv4_addr; flags timeout; {_elements(banned4)}}}",
        f"    set banned6 {{ type ipv6_addr; flags timeout; {_elements(banned6)}}}",
        f"    set rate4 {{ type ipv4_addr; {meter} }}",
        f"    set rate6 {{ type ipv6_addr; {meter} }}",
        f"    set conn4 {{ type ipv4_addr; {meter} }}",
        f"    set conn6 {{ type ipv6_addr; {meter} }}",
        "    chain input {",
        "        type filter hook input priority filter - 10; policy accept;",
        f"        meta l4proto {{ udp, tcp }} th dport {{ {ports} }} jump sip",
        "    }",
        "    chain sip {",
        "        ip saddr @banned4 drop",
        "        ip6 saddr @banned6 drop",
    ]
    if v4:
        lines.append(f"        ip saddr {{ {', '.join(v4)} }} accept")
    if v6:
        lines.append(f"        ip6 saddr {{ {', '.join(v6)} }} accept")
    lines += [
        "        tcp flags & (syn | ack) == syn update @conn4 "
        f"{{ ip saddr limit rate over {conn}/second burst {cburst} packets }} drop",
        "        tcp flags & (syn | ack) == syn update @conn6 "
        f"{{ ip6 saddr limit rate over {conn}/second burst {cburst} packets }} drop",
        f"        update @rate4 {{ ip saddr limit rate over {rate}/second burst {burst} packets }}"
        " drop",
        f"        update @rate6 {{ ip6 saddr limit rate over {rate}/second burst {burst} packets }}"
        " drop",
        "    }",
        "}",
        "",
    ]
    return "\n".join(lines)


def _elements(items: list[str]) -> str:
    return f"elements = {{ {', '.join(items)} }}; " if items else ""
