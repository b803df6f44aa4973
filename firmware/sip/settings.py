"""Typed settings of the SIP core, independent of pjsua2 and mapped from the stored configuration.

The store's ``Trunk``/``Account`` describe what an installer wants; ``AccountSettings`` is what
the endpoint thread turns into a pjsua2 ``AccountConfig``.  Validation here covers what pjsua2
would otherwise refuse late or, worse, abort on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from firmware.sip.admission import (
    DEFAULT_BURST,
    DEFAULT_MEDIA_SESSIONS_PER_S,
    PER_SOURCE_BURST,
    PER_SOURCE_SESSIONS_PER_S,
)
from firmware.sip.errors import SipConfigError, SipLimitError
from firmware.sip.events import TransportKind
from firmware.sip.limits import PJSUA_MAX_ACCOUNTS, PJSUA_MAX_CALLS
from firmware.store.schema import Registration, SipConfig, Trunk

SrtpMode = Literal["off", "optional", "mandatory"]
DtmfMode = Literal["rfc4733", "info", "inband"]

# TLS 1.2 AEAD suites with forward secrecy, by their IANA code points (RFC 5289 section 3.2,
# RFC 5288 section 3); pjsua2's OpenSSL backend names ciphers by exactly these numbers.
# OpenSSL 1.0.2 has no ChaCha20-Poly1305, so these are the strongest it can offer.
TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 = 0xC02C
TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 = 0xC030
TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 = 0xC02B
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xC02F
TLS_DHE_RSA_WITH_AES_256_GCM_SHA384 = 0x009F
TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 = 0x009E
STRONG_TLS12_CIPHERS: tuple[int, ...] = (
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    TLS_DHE_RSA_WITH_AES_256_GCM_SHA384,
    TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,
)

# Accounts the endpoint creates for itself: the local account IP peers call (and the default
# pjsua picks for an INVITE it cannot place) and the flood guard's sink account
# (docs/capacity.md).  Both count towards PJSUA_MAX_ACCOUNTS.
RESERVED_ACCOUNTS = 2
MAX_USER_ACCOUNTS = PJSUA_MAX_ACCOUNTS - RESERVED_ACCOUNTS

# Codec names of the configuration -> pjsua codec ids (pjmedia codec "name/clock/channels").
CODEC_IDS: dict[str, tuple[str, ...]] = {
    "G722": ("G722/16000/1",),
    "PCMA": ("PCMA/8000/1",),
    "PCMU": ("PCMU/8000/1",),
    "GSM": ("GSM/8000/1",),
    "iLBC": ("iLBC/8000/1",),
    "speex": ("speex/16000/1", "speex/8000/1", "speex/32000/1"),
}

# RFC 3261 section 10.2.1.1 leaves expiry to the registrar; pjsua refuses 0 as "use default".
MIN_EXPIRY_S = 60
MAX_EXPIRY_S = 86400
MAX_STUN_SERVERS = 8  # cap; pjsua tries them in order
# pjsua.h: pjsua_config.nameserver has room for 4 servers; more is PJ_ETOOMANY at libInit.
MAX_NAMESERVERS = 4
# RFC 1035 section 4.2: DNS servers listen on port 53.  pjsua 2.15's resolver set-up passes
# no port list to pj_dns_resolver_set_ns, so it asks port 53 only; "host:port" is refused
# at libInit (measured: PJLIB_UTIL_EDNSINNSADDR).
DNS_PORT = 53
# pjsua's conference bridge has PJSUA_MAX_CONF_PORTS (254) slots; calls and players need
# theirs too.  A box has a handful of lines; this cap only catches nonsense.
MAX_LINE_PORTS = 64


def _check_port(port: int, what: str) -> None:
    if not 0 <= port <= 65535:
        raise SipConfigError(f"{what}: port {port} outside 0..65535 (0 picks a free one)")


@dataclass(frozen=True)
class TlsSettings:
    cert_file: str
    key_file: str
    ca_file: str = ""
    verify_server: bool = True
    verify_client: bool = False
    require_client_cert: bool = False
    ciphers: tuple[int, ...] = STRONG_TLS12_CIPHERS

    def __post_init__(self) -> None:
        if not self.cert_file or not self.key_file:
            raise SipConfigError("TLS transport needs a certificate file and a key file")
        if not self.ciphers:
            raise SipConfigError("TLS transport needs at least one cipher")
        if self.require_client_cert and not self.ca_file:
            raise SipConfigError("requiring client certificates needs a CA file to verify them")


@dataclass(frozen=True)
class TransportSettings:
    kind: TransportKind
    host: str = "127.0.0.1"
    port: int = 0
    tls: TlsSettings | None = None

    def __post_init__(self) -> None:
        _check_port(self.port, f"{self.kind} transport")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise SipConfigError(
                f"{self.kind} transport: bind address {self.host!r} is not an IP address"
            ) from None
        if (self.kind == "tls") != (self.tls is not None):
            raise SipConfigError(
                f"{self.kind} transport: TLS settings belong to, and only to, a TLS transport"
            )


@dataclass(frozen=True)
class AccountSettings:
    """One pjsua2 account: a trunk, a per-port account, or a peer-only local account."""

    name: str
    registrar: str  # host, host:port or sip:host:port
    username: str
    password: str = ""
    auth_username: str = ""
    realm: str = ""  # empty: answer any realm the server names
    display_name: str = ""
    register: bool = True
    outbound_proxy: str = ""
    expiry_s: int = 600
    retry_s: int = 60
    transport: TransportKind = "udp"
    srtp: SrtpMode = "off"
    dtmf: DtmfMode = "rfc4733"
    rport: bool = True
    contact_rewrite: bool = True
    use_stun: bool = False
    keepalive_s: int = 15
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise SipConfigError("an account needs a name")
        if not self.registrar:
            raise SipConfigError(f"account {self.name!r}: no registrar/domain")
        if not self.username:
            raise SipConfigError(f"account {self.name!r}: no user name")
        if not MIN_EXPIRY_S <= self.expiry_s <= MAX_EXPIRY_S:
            raise SipConfigError(
                f"account {self.name!r}: expiry {self.expiry_s} s outside "
                f"{MIN_EXPIRY_S}..{MAX_EXPIRY_S}"
            )
        if self.retry_s < 1:
            raise SipConfigError(f"account {self.name!r}: retry interval must be >= 1 s")
        if self.srtp == "mandatory" and self.transport != "tls":
            raise SipConfigError(
                f"account {self.name!r}: mandatory SRTP needs the TLS transport "
                "(SDES keys would cross the network in clear text)"
            )

    @property
    def domain(self) -> str:
        """Host part of our address of record: the registrar without scheme and port."""
        host = self.registrar.removeprefix("sips:").removeprefix("sip:")
        if host.startswith("["):
            return host[: host.index("]") + 1]
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

    @property
    def registrar_uri(self) -> str:
        host = self.registrar.removeprefix("sips:").removeprefix("sip:")
        suffix = "" if self.transport == "udp" else f";transport={self.transport}"
        return f"sip:{host}{suffix}"

    @property
    def id_uri(self) -> str:
        uri = f"<sip:{self.username}@{self.domain}>"
        if self.display_name:
            escaped = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
            return f'"{escaped}" {uri}'
        return uri

    @property
    def proxy_uri(self) -> str:
        if not self.outbound_proxy:
            return ""
        host = self.outbound_proxy.removeprefix("sip:")
        suffix = "" if self.transport == "udp" else f";transport={self.transport}"
        return f"sip:{host}{suffix};lr"


@dataclass(frozen=True)
class EndpointSettings:
    transports: tuple[TransportSettings, ...] = (TransportSettings("udp"),)
    accounts: tuple[AccountSettings, ...] = ()
    user_agent: str = "Ponte"
    max_calls: int = PJSUA_MAX_CALLS
    codecs: tuple[str, ...] = ("G722", "PCMA", "PCMU")
    stun_servers: tuple[str, ...] = ()
    # DNS servers for pjsip's own resolver: with them a registrar given as a bare domain is
    # found through SRV records (RFC 3263 section 4.2); without them pjsip asks the system
    # resolver for A/AAAA records only.  IP addresses, port 53 (DNS_PORT).
    nameservers: tuple[str, ...] = ()
    log_level: int = 3  # pjlib levels: 1 error, 2 warning, 3 info, 4-6 debug
    local_user: str = "ponte"  # user part of the local account IP peers call
    events_cap: int = 1024  # events in flight towards the loop before we drop and count
    # The flood guard (docs/capacity.md): a sink account and a media-session budget.
    guard: bool = True
    media_sessions_per_s: float = DEFAULT_MEDIA_SESSIONS_PER_S
    media_burst: float = DEFAULT_BURST
    per_source_sessions_per_s: float = PER_SOURCE_SESSIONS_PER_S
    per_source_burst: float = PER_SOURCE_BURST
    # Lines whose audio gets a port in the conference bridge (firmware.sip.audio), by number.
    line_ports: tuple[int, ...] = ()
    # Keep the last SIP messages for diagnostics (SipEndpoint.messages(); pjsip logs them at
    # level 4, which then runs through the log writer but never reaches Python logging).
    trace_messages: bool = True

    def __post_init__(self) -> None:
        if len(set(self.line_ports)) != len(self.line_ports):
            raise SipConfigError(f"line ports must be unique: {self.line_ports}")
        if any(p < 0 for p in self.line_ports) or len(self.line_ports) > MAX_LINE_PORTS:
            raise SipConfigError(
                f"line ports {self.line_ports}: at most {MAX_LINE_PORTS}, numbered from 0"
            )
        if not self.transports:
            raise SipConfigError("the endpoint needs at least one transport")
        if not 1 <= self.max_calls <= PJSUA_MAX_CALLS:
            raise SipLimitError(
                f"max_calls {self.max_calls}: this pjsua2 build allows 1..{PJSUA_MAX_CALLS} "
                "concurrent calls (DESIGN.md)"
            )
        check_account_count(len(self.accounts))
        names = [a.name for a in self.accounts]
        if len(set(names)) != len(names):
            raise SipConfigError(f"account names must be unique: {names}")
        for codec in self.codecs:
            if codec not in CODEC_IDS:
                raise SipConfigError(f"unknown codec {codec!r}; known: {sorted(CODEC_IDS)}")
        if len(self.stun_servers) > MAX_STUN_SERVERS:
            raise SipConfigError(f"at most {MAX_STUN_SERVERS} STUN servers")
        kinds = {t.kind for t in self.transports}
        for acc in self.accounts:
            if acc.transport not in kinds:
                raise SipConfigError(
                    f"account {acc.name!r} uses {acc.transport} but no {acc.transport} "
                    "transport is configured"
                )
            if acc.use_stun and not self.stun_servers:
                raise SipConfigError(f"account {acc.name!r} wants STUN but no server is set")
        check_nameservers(self.nameservers)
        if not 1 <= self.events_cap <= 1_000_000:
            raise SipConfigError(f"events_cap {self.events_cap} outside 1..1000000")


def check_nameservers(servers: tuple[str, ...]) -> None:
    """Refuse what pjsua's resolver set-up would refuse at libInit, naming the entry."""
    if len(servers) > MAX_NAMESERVERS:
        raise SipConfigError(
            f"{len(servers)} DNS servers given; pjsua holds at most {MAX_NAMESERVERS}"
        )
    for server in servers:
        host, port = _split_host_port(server)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise SipConfigError(f"DNS server {server!r} is not an IP address") from None
        if port not in (None, DNS_PORT):
            raise SipConfigError(
                f"DNS server {server!r}: this pjsua2 build asks DNS servers on port {DNS_PORT} only"
            )


def nameserver_address(server: str) -> str:
    """The address pjsua wants for a checked DNS server entry (without a port)."""
    return _split_host_port(server)[0]


def _split_host_port(text: str) -> tuple[str, int | None]:
    """``a.b.c.d``, ``a.b.c.d:53``, ``::1``, ``[::1]:53`` -> (address, port or None)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            return text, None
        port = rest[1:]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        return text, None
    if not port.isdigit() or len(port) > 5:
        return text, None
    return host, int(port)


def check_account_count(count: int) -> None:
    """Refuse more accounts than pjsua2 can hold: the one beyond would abort the process."""
    if count > MAX_USER_ACCOUNTS:
        raise SipLimitError(
            f"{count} SIP accounts configured; this pjsua2 build holds {PJSUA_MAX_ACCOUNTS} "
            f"(DESIGN.md) and the box keeps {RESERVED_ACCOUNTS} for itself, so at most "
            f"{MAX_USER_ACCOUNTS} trunks and per-port accounts together"
        )


def account_from_store(reg: Registration) -> AccountSettings:
    """The stored trunk or per-port account as the SIP core needs it."""
    trunk = reg if isinstance(reg, Trunk) else None
    return AccountSettings(
        name=reg.name,
        registrar=reg.registrar,
        username=reg.username,
        password=reg.password,
        auth_username=reg.auth_username,
        realm=reg.realm,
        display_name=reg.display_name,
        register=trunk.register if trunk is not None else True,
        outbound_proxy=reg.outbound_proxy,
        expiry_s=reg.expiry_s,
        retry_s=reg.retry_s,
        transport=reg.transport,
        srtp=reg.srtp,
        dtmf=reg.dtmf,
        rport=reg.nat.rport,
        contact_rewrite=reg.nat.contact_rewrite,
        use_stun=bool(reg.nat.stun_servers),
        keepalive_s=reg.nat.keepalive_s,
        allowed_hosts=trunk.allowed_hosts if trunk is not None else (),
    )


@dataclass(frozen=True)
class _Collected:
    accounts: list[AccountSettings] = field(default_factory=list)
    stun: list[str] = field(default_factory=list)


def endpoint_from_store(
    sip: SipConfig, transports: tuple[TransportSettings, ...]
) -> EndpointSettings:
    """Accounts, codecs and STUN servers of the stored configuration.

    pjsua 2.15 keeps codec priorities and STUN servers per endpoint, not per account: the
    first enabled registration's codec order wins and STUN servers are pooled.
    """
    out = _Collected()
    codecs: tuple[str, ...] = ("G722", "PCMA", "PCMU")
    for reg in (*sip.trunks, *sip.accounts):
        if not reg.enabled:
            continue
        if not out.accounts:
            codecs = tuple(reg.codecs)
        out.accounts.append(account_from_store(reg))
        out.stun.extend(s for s in reg.nat.stun_servers if s not in out.stun)
    check_account_count(len(out.accounts))
    return EndpointSettings(
        transports=transports,
        accounts=tuple(out.accounts),
        user_agent=sip.user_agent,
        codecs=codecs,
        stun_servers=tuple(out.stun),
    )
