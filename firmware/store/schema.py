"""The configuration document: frozen dataclasses whose defaults make a sensible fresh box.

Every field carries its documentation, an optional check and whether it is a secret in its
``metadata``; ``firmware.store.validate`` reads those to parse and validate a document and
``docs/configuration.md`` is generated from them, so the three cannot drift apart.

The types here are plain data.  A ``Config`` obtained from ``validate.parse``,
``ConfigStore.current()`` or ``default_config()`` has passed every check; one built by hand
(or with ``dataclasses.replace``) has not until it goes through ``validate.check``.  The
store never writes a document that fails it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from firmware.prompts.catalogue import LANGUAGES as PROMPT_LANGUAGES
from firmware.prompts.catalogue import NAME_RE as PROMPT_NAME_RE
from firmware.store import checks, ivrconfig
from firmware.store.countries import DEFAULT_COUNTRY, CidStandard
from firmware.store.digitmap import check_digit_map

T = TypeVar("T")

# Version of the document layout.  Bump it and add an upgrade step to
# ``validate.DOCUMENT_UPGRADES`` whenever a key is renamed, moved or changes meaning.
CONFIG_SCHEMA = 1

# pjsua2-python 2.15.1.post1 has PJSUA_MAX_ACC = 8: a 9th Account.create hits a C assertion
# and aborts the whole process (measured, DESIGN.md "pjsua2 as shipped").  The SIP core
# keeps 2 of them for itself (the local account for IP peers and the flood sink,
# firmware.sip.settings.RESERVED_ACCOUNTS, docs/capacity.md), which leaves 6.
MAX_SIP_ACCOUNTS = 6

MAX_FXS_PORTS = 16  # cap: the largest line card we plan for
MAX_FXO_PORTS = 8
MAX_LIST_ITEMS = 256  # cap on any list in the document
MAX_STRING_LEN = 1024  # cap on any string in the document

Srtp = Literal["off", "optional", "mandatory"]
DtmfMode = Literal["rfc4733", "info", "inband"]
TransportName = Literal["udp", "tcp", "tls"]
# "country": the profile's whole caller ID scheme (modulation, protocol, timing); naming a
# standard overrides the modulation only; "none" sends or expects no caller ID.
CallerIdStandard = Literal["country", "none", CidStandard]
Codec = Literal["G722", "PCMA", "PCMU", "GSM", "iLBC", "speex"]
NetworkMode = Literal["dhcp", "static"]
FirewallMode = Literal["auto", "on", "off"]
# Call recording: "on_demand" records from the moment a party dials
# features.codes.record_toggle until they dial it again or hang up.
RecordingPolicy = Literal["always", "never", "on_demand"]
# A route's own policy, or "extension": the extensions in the call decide.
RouteRecording = Literal["extension", "always", "never", "on_demand"]


def setting(default: T, doc: str, *, check: checks.Check | None = None, secret: bool = False) -> T:
    """A leaf field: default, one-line meaning, optional check, secret flag."""
    meta: dict[str, Any] = {"doc": doc, "check": check, "secret": secret}
    return field(default=default, metadata=meta)


def section(factory: Callable[[], T], doc: str, *, check: checks.Check | None = None) -> T:
    """A nested table or a list whose default is built fresh."""
    meta: dict[str, Any] = {"doc": doc, "check": check, "secret": False}
    return field(default_factory=factory, metadata=meta)


_gain = checks.in_range(-12.0, 12.0, "dB")  # SLIC/DAA programmable gain span we support

# ---------------------------------------------------------------------------- system


@dataclass(frozen=True)
class AdminConfig:
    username: str = setting("admin", "Login name of the console administrator.", check=checks.name)
    password_hash: str = setting(
        "",
        "scrypt hash of the admin password; empty forces the first-run wizard to set one.",
        check=checks.password_hash_or_empty,
        secret=True,
    )


@dataclass(frozen=True)
class SystemConfig:
    hostname: str = setting("ponte", "Host name of the box.", check=checks.hostname_label)
    country: str = setting(
        DEFAULT_COUNTRY,
        "Default country profile (tones, ring cadence, caller ID, line timing) for lines "
        "that do not name their own.",
        check=checks.country,
    )
    timezone: str = setting(
        "UTC", "IANA time zone for call records and time conditions.", check=checks.timezone
    )
    admin: AdminConfig = section(AdminConfig, "Console administrator.")


# ---------------------------------------------------------------------------- lines


@dataclass(frozen=True)
class FxsLine:
    enabled: bool = setting(True, "Whether the port is in service.")
    country: str = setting(
        "",
        "Country profile of this port; empty uses system.country.",
        check=checks.country_or_inherit,
    )
    gain_tx: float = setting(0.0, "Gain towards the phone, dB (-12..12).", check=_gain)
    gain_rx: float = setting(0.0, "Gain from the phone, dB (-12..12).", check=_gain)
    impedance: str = setting(
        "country", "Line impedance; 'country' uses the profile's.", check=checks.impedance
    )
    caller_id: CallerIdStandard = setting(
        "country", "Caller ID standard sent to the phone; 'country' uses the profile's."
    )
    extension: str = setting(
        "",
        "Extension number that rings this port (must be in extensions).",
        check=checks.extension_or_empty,
    )


@dataclass(frozen=True)
class FxoLine:
    enabled: bool = setting(True, "Whether the port is in service.")
    country: str = setting(
        "",
        "Country profile of this port; empty uses system.country.",
        check=checks.country_or_inherit,
    )
    gain_tx: float = setting(0.0, "Gain towards the exchange, dB (-12..12).", check=_gain)
    gain_rx: float = setting(0.0, "Gain from the exchange, dB (-12..12).", check=_gain)
    impedance: str = setting(
        "country", "Line impedance; 'country' uses the profile's.", check=checks.impedance
    )
    caller_id: CallerIdStandard = setting(
        "country", "Caller ID standard expected from the exchange; 'country' uses the profile's."
    )
    number: str = setting(
        "",
        "The line's own PSTN number (for records and outgoing caller ID).",
        check=checks.phone_number_or_empty,
    )
    destination: str = setting(
        "",
        "Number incoming calls on this line are routed to, like a number dialled on the box "
        "(an extension, or an outside number a route sends to a trunk); empty rejects them.",
        check=checks.digit_string,
    )


def _default_fxs() -> tuple[FxsLine, ...]:
    return (FxsLine(extension="101"), FxsLine(extension="102"))


def _default_fxo() -> tuple[FxoLine, ...]:
    return (FxoLine(destination="101"),)


@dataclass(frozen=True)
class LinesConfig:
    fxs: tuple[FxsLine, ...] = section(
        _default_fxs, "Analogue phone ports, index 0 is port 1 on the case."
    )
    fxo: tuple[FxoLine, ...] = section(
        _default_fxo, "Analogue exchange-line ports, index 0 is FXO port 1 on the case."
    )


# ---------------------------------------------------------------------------- SIP


@dataclass(frozen=True)
class UdpTransport:
    enabled: bool = setting(True, "Listen for SIP over UDP.")
    port: int = setting(5060, "UDP port.", check=checks.in_range(1, 65535))


@dataclass(frozen=True)
class TcpTransport:
    enabled: bool = setting(False, "Listen for SIP over TCP.")
    port: int = setting(5060, "TCP port.", check=checks.in_range(1, 65535))


@dataclass(frozen=True)
class TlsTransport:
    enabled: bool = setting(
        False, "Listen for SIP over TLS (TLS 1.2; pjsua2 bundles OpenSSL 1.0.2)."
    )
    port: int = setting(5061, "TLS port.", check=checks.in_range(1, 65535))
    cert_file: str = setting(
        "",
        "PEM certificate chain (absolute path); empty with key_file: a self-signed one is made.",
        check=checks.absolute_path_or_empty,
    )
    key_file: str = setting(
        "", "PEM private key (absolute path).", check=checks.absolute_path_or_empty
    )
    ca_file: str = setting(
        "",
        "PEM CA bundle for verifying peers; empty uses the system's.",
        check=checks.absolute_path_or_empty,
    )
    verify_server: bool = setting(True, "Verify the certificate of servers we connect to.")
    require_client_cert: bool = setting(False, "Require and verify client certificates.")


@dataclass(frozen=True)
class TransportsConfig:
    udp: UdpTransport = section(UdpTransport, "SIP over UDP.")
    tcp: TcpTransport = section(TcpTransport, "SIP over TCP.")
    tls: TlsTransport = section(TlsTransport, "SIP over TLS.")


@dataclass(frozen=True)
class NatConfig:
    rport: bool = setting(True, "Ask for and use rport (RFC 3581).")
    contact_rewrite: bool = setting(True, "Rewrite Contact with the address the registrar saw.")
    stun_servers: tuple[str, ...] = setting(
        (), "STUN servers, host or host:port.", check=checks.each(checks.host_port)
    )
    keepalive_s: int = setting(
        15, "NAT keep-alive interval, seconds; 0 turns it off.", check=checks.in_range(0, 3600)
    )


_codecs_check = checks.all_of(checks.non_empty, checks.unique)
# RFC 3261 section 10.2.1.1: default registration expiry is 3600 s; providers often want less.
_expiry_check = checks.in_range(60, 86400, "s")


@dataclass(frozen=True)
class Registration:
    """What a trunk and a per-port account have in common: one pjsua2 Account each."""

    KEY: ClassVar[str] = "name"

    name: str = setting("", "Unique name, used by routes ('trunk:NAME').", check=checks.name)
    enabled: bool = setting(True, "Whether it is created at all (counts towards the 6 accounts).")
    registrar: str = setting(
        "", "Registrar / proxy: host, host:port or sip:host:port.", check=checks.host_port
    )
    display_name: str = setting("", "Display name sent in From for calls from this account.")
    username: str = setting("", "SIP user (the user part of our address of record).")
    auth_username: str = setting("", "Digest authentication user if it differs from username.")
    password: str = setting("", "Digest password.", secret=True)
    realm: str = setting("", "Digest realm; empty accepts any realm the server names.")
    outbound_proxy: str = setting(
        "", "Outbound proxy, host[:port]; empty for none.", check=checks.host_port_or_empty
    )
    expiry_s: int = setting(
        600, "Registration expiry requested, seconds (60..86400).", check=_expiry_check
    )
    retry_s: int = setting(
        60,
        "Wait before retrying a failed registration, seconds.",
        check=checks.in_range(10, 3600, "s"),
    )
    transport: TransportName = setting("udp", "Transport used towards the registrar.")
    srtp: Srtp = setting("off", "SRTP (SDES): off, optional or mandatory.")
    codecs: tuple[Codec, ...] = setting(
        ("G722", "PCMA", "PCMU"), "Codecs in order of preference.", check=_codecs_check
    )
    dtmf: DtmfMode = setting("rfc4733", "How DTMF is sent: rfc4733, info or inband.")
    nat: NatConfig = section(NatConfig, "NAT traversal.")


@dataclass(frozen=True)
class Trunk(Registration):
    register: bool = setting(True, "Send REGISTER; false for IP-authenticated trunks.")
    destination: str = setting(
        "",
        "Extension that incoming calls ring; empty matches the called number against extensions.",
        check=checks.extension_or_empty,
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        "Addresses/networks allowed to send us calls on this trunk; empty means the registrar's.",
        check=checks.each(checks.network),
    )


@dataclass(frozen=True)
class Account(Registration):
    fxs: int = setting(
        0,
        "FXS port (0-based) this account belongs to, as on an ATA.",
        check=checks.in_range(0, MAX_FXS_PORTS - 1),
    )


@dataclass(frozen=True)
class SipConfig:
    transports: TransportsConfig = section(TransportsConfig, "Listening transports.")
    trunks: tuple[Trunk, ...] = section(tuple, "Provider trunks; the box is the PBX.")
    accounts: tuple[Account, ...] = section(
        tuple, "Per-FXS-port accounts; each port registers its own number."
    )
    user_agent: str = setting("Ponte", "User-Agent header value.")


# ---------------------------------------------------------------------------- numbering


@dataclass(frozen=True)
class Extension:
    KEY: ClassVar[str] = "number"

    number: str = setting(
        "", "Extension number, 1 to 8 digits, unique.", check=checks.extension_number
    )
    name: str = setting("", "Display name (caller ID name for internal calls).")
    voicemail: bool = setting(True, "Has a voicemail box.")
    voicemail_pin: str = setting(
        "",
        "Voicemail PIN, 4 to 12 digits; empty means not set yet.",
        check=checks.pin_or_empty,
        secret=True,
    )
    sip_password: str = setting(
        "",
        "Digest password for an IP phone using this extension; empty means no IP phone.",
        secret=True,
    )
    recording: RecordingPolicy = setting(
        "never", "Record this extension's calls: always, never or on_demand (feature code)."
    )
    allowed_patterns: tuple[str, ...] = setting(
        (),
        "Digit maps of the external numbers (as dialled) this extension may call; "
        "empty: any the toll-fraud rules allow.",
        check=checks.each(check_digit_map),
    )


def _default_extensions() -> tuple[Extension, ...]:
    return (Extension(number="101", name="Port 1"), Extension(number="102", name="Port 2"))


@dataclass(frozen=True)
class Route:
    KEY: ClassVar[str] = "name"

    name: str = setting("", "Unique name of the route.", check=checks.name)
    pattern: str = setting("", "Digit map the dialled number must match.", check=check_digit_map)
    to: str = setting("", "Destination: 'extensions', 'fxo:N' (0-based port) or 'trunk:NAME'.")
    strip: int = setting(
        0, "Digits removed from the front before sending.", check=checks.in_range(0, 32)
    )
    prefix: str = setting("", "Digits added in front after stripping.", check=checks.digit_string)
    recording: RouteRecording = setting(
        "extension",
        "Record calls on this route: always, never, on_demand, or 'extension' to let the "
        "calling extension's policy decide.",
    )


def _default_routes() -> tuple[Route, ...]:
    return (
        Route(name="emergency", pattern="112|911|999", to="fxo:0"),
        Route(name="internal", pattern="[1-9]xx", to="extensions"),
        Route(name="outside", pattern="0[1-9]x.T", to="fxo:0", strip=1),
    )


@dataclass(frozen=True)
class DialPlanConfig:
    digit_map: str = setting(
        "112|911|999|[1-9]xx|0[1-9]x.T|*xx|*xxx",
        "Digit map deciding when a number is complete.",
        check=check_digit_map,
    )
    # ITU-T Q.35 leaves it to the network; 4 s is the usual inter-digit timer (the 'T').
    inter_digit_timeout_ms: int = setting(
        4000,
        "Inter-digit timeout, ms (the 'T' in digit maps).",
        check=checks.in_range(1000, 30000, "ms"),
    )
    emergency_numbers: tuple[str, ...] = setting(
        ("112", "911", "999"),
        "Numbers always routable, whatever the toll-fraud rules say.",
        check=checks.each(checks.extension_number),
    )
    routes: tuple[Route, ...] = section(
        _default_routes, "Routes, tried in order; first match wins."
    )


# ---------------------------------------------------------------------------- features


@dataclass(frozen=True)
class FeatureCodes:
    forward_all_on: str = setting(
        "*72", "Forward all calls: on (then dial the number).", check=checks.feature_code
    )
    forward_all_off: str = setting("*73", "Forward all calls: off.", check=checks.feature_code)
    forward_busy_on: str = setting("*90", "Forward on busy: on.", check=checks.feature_code)
    forward_busy_off: str = setting("*91", "Forward on busy: off.", check=checks.feature_code)
    forward_no_answer_on: str = setting(
        "*92", "Forward on no answer: on.", check=checks.feature_code
    )
    forward_no_answer_off: str = setting(
        "*93", "Forward on no answer: off.", check=checks.feature_code
    )
    dnd_on: str = setting("*78", "Do not disturb: on.", check=checks.feature_code)
    dnd_off: str = setting("*79", "Do not disturb: off.", check=checks.feature_code)
    last_call_return: str = setting("*69", "Call back the last caller.", check=checks.feature_code)
    voicemail: str = setting("*98", "Voicemail menu.", check=checks.feature_code)
    pickup: str = setting("*88", "Pick up a call ringing in the group.", check=checks.feature_code)
    call_waiting_off: str = setting(
        "*70", "Disable call waiting for the next call.", check=checks.feature_code
    )
    queue_login: str = setting(
        "*45",
        "Queue agent: log in to every queue the extension is a member of.",
        check=checks.feature_code,
    )
    queue_logout: str = setting(
        "*46", "Queue agent: log out of every queue.", check=checks.feature_code
    )
    # Asterisk features.conf's default for one-touch recording (automon) is *1.
    record_toggle: str = setting(
        "*1",
        "During a call: start or stop recording it (extensions or routes set to on_demand).",
        check=checks.feature_code,
    )


@dataclass(frozen=True)
class FeaturesConfig:
    codes: FeatureCodes = section(
        FeatureCodes, "Feature codes; unique, none a prefix of another, none matched by a route."
    )
    call_waiting: bool = setting(True, "Call waiting on FXS ports.")
    three_way: bool = setting(True, "Three-way calling by hook flash.")
    transfer: bool = setting(True, "Blind and attended transfer by hook flash.")
    no_answer_timeout_s: int = setting(
        20,
        "Ring time before forward-on-no-answer or voicemail, s.",
        check=checks.in_range(5, 300, "s"),
    )


# ---------------------------------------------------------------------------- security


@dataclass(frozen=True)
class BanConfig:
    threshold: int = setting(
        5,
        "Failed authentications from one source before it is banned.",
        check=checks.in_range(1, 1000),
    )
    window_s: int = setting(
        60, "Window in which failures are counted, s.", check=checks.in_range(1, 86400, "s")
    )
    ban_s: int = setting(
        3600, "How long a source stays banned, s.", check=checks.in_range(1, 30 * 86400, "s")
    )


@dataclass(frozen=True)
class TollFraudConfig:
    international_prefix: str = setting(
        "00", "Prefix that makes a number international.", check=checks.digit_string
    )
    allow_international: bool = setting(False, "Allow international calls at all.")
    max_external_calls: int = setting(
        2, "Concurrent calls to trunks/FXO at most.", check=checks.in_range(0, 4)
    )
    pin: str = setting(
        "",
        "PIN asked before external calls; empty for none.",
        check=checks.pin_or_empty,
        secret=True,
    )


# The algorithms SIP digest has (RFC 8760 section 2.6), in the order section 2.4 asks a
# server to offer them: the strongest first, MD5 last for old clients.  firmware.sip.digest
# implements exactly these.
DIGEST_ALGORITHMS: tuple[str, ...] = ("SHA-256", "MD5")


@dataclass(frozen=True)
class SecurityConfig:
    allowed_hosts: tuple[str, ...] = setting(
        ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
        "Networks IP phones may send SIP from (trunks add their own hosts).",
        check=checks.each(checks.network),
    )
    sip_rate_limit_per_s: int = setting(
        20,
        "SIP requests per second accepted from one source (kernel firewall).",
        check=checks.in_range(1, 1000),
    )
    digest_algorithms: tuple[str, ...] = setting(
        DIGEST_ALGORITHMS,
        "Digest algorithms offered to IP phones, most preferred first; put MD5 first for "
        "phones that answer only the first challenge and know only MD5.",
        check=checks.all_of(
            checks.non_empty,
            checks.unique,
            checks.each(checks.one_of_text(DIGEST_ALGORITHMS, "digest algorithm")),
        ),
    )
    ban: BanConfig = section(BanConfig, "Banning sources that fail authentication.")
    toll_fraud: TollFraudConfig = section(TollFraudConfig, "Rules against toll fraud.")
    firewall: FirewallMode = setting(
        "auto",
        "Kernel SIP rate limits and bans (nftables): on, off, or auto (on with a real "
        "line card, off in simulation).",
    )


# ---------------------------------------------------------------------------- network


@dataclass(frozen=True)
class NetworkConfig:
    mode: NetworkMode = setting("dhcp", "dhcp or static addressing.")
    address: str = setting(
        "",
        "Static address with prefix length, e.g. 192.168.1.10/24.",
        check=checks.interface_address_or_empty,
    )
    gateway: str = setting("", "Static default gateway.", check=checks.ip_or_empty)
    dns: tuple[str, ...] = setting(
        (),
        "DNS servers (static mode; DHCP supplies its own).",
        check=checks.each(checks.ip_or_empty),
    )
    ntp: tuple[str, ...] = setting(
        ("pool.ntp.org",), "NTP servers.", check=checks.each(checks.host)
    )


# ---------------------------------------------------------------------------- conferences

# DESIGN.md "pjsua2 as shipped": at most 4 concurrent calls per process
# (firmware.sip.limits.PJSUA_MAX_CALLS; the store sits below firmware.sip, a test keeps the
# two equal).  A conference room can hold at most these SIP legs plus the analogue ports.
MAX_SIP_CALLS = 4
MAX_CONFERENCE_PARTICIPANTS = 32  # firmware.dsp.mixer.MAX_PARTICIPANTS


@dataclass(frozen=True)
class ConferenceRoom:
    KEY: ClassVar[str] = "number"

    number: str = setting(
        "", "Number dialled to join the room, 1 to 8 digits, unique.", check=checks.extension_number
    )
    name: str = setting("", "Display name of the room.")
    pin: str = setting(
        "",
        "PIN asked before joining, 4 to 12 digits; empty lets everyone in.",
        check=checks.pin_or_empty,
        secret=True,
    )
    max_participants: int = setting(
        6,
        "Participants at most; no more than the SIP bridge's 4 legs plus the analogue ports.",
        check=checks.in_range(2, MAX_CONFERENCE_PARTICIPANTS),
    )
    tones: bool = setting(True, "Play a short cue to the room when someone joins or leaves.")


@dataclass(frozen=True)
class ConferenceConfig:
    rooms: tuple[ConferenceRoom, ...] = section(tuple, "Dial-in conference rooms.")
    mute_toggle: str = setting(
        "*6", "Digits a participant dials to mute or unmute themselves.", check=checks.feature_code
    )
    pin_attempts: int = setting(
        3, "Wrong PINs before the caller is cleared.", check=checks.in_range(1, 10)
    )
    pin_timeout_s: int = setting(
        10,
        "Seconds to wait for the PIN's next digit before asking again.",
        check=checks.in_range(3, 60, "s"),
    )


# ---------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class RecordingConfig:
    retention_days: int = setting(
        90,
        "Recordings older than this many days are deleted (at start and daily); 0 keeps them.",
        check=checks.in_range(0, 3650, "days"),
    )
    max_total_mb: int = setting(
        2048,
        "Size cap of all recordings, MB; the oldest go first beyond it.  0 means no cap.",
        check=checks.in_range(0, 1_000_000, "MB"),
    )


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RecordsConfig:
    retention_days: int = setting(
        365,
        "Call records older than this many days are deleted; 0 keeps them whatever their age.",
        check=checks.in_range(0, 3650, "days"),
    )
    max_rows: int = setting(
        100_000,
        "At most this many call records (legs) are kept; the oldest go first (~200 bytes each).",
        check=checks.in_range(1000, 1_000_000),
    )


# ---------------------------------------------------------------------------- IVR

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _prompt_names(values: tuple[str, ...]) -> str | None:
    for value in values:
        if not PROMPT_NAME_RE.match(value):
            return (
                f"{checks.show(value)} is not a prompt name (1-48 of a-z, 0-9 and '-'; "
                "see ponte prompts list)"
            )
    return None


def _prompt_language(value: str) -> str | None:
    if value == "" or value in PROMPT_LANGUAGES:
        return None
    return (
        f"unknown prompt language {checks.show(value)} (known: {', '.join(PROMPT_LANGUAGES)}; "
        "empty for the system country's)"
    )


@dataclass(frozen=True)
class IvrOption:
    digit: str = setting("", "The key: 0-9, '*' or '#'.", check=ivrconfig.option_digit)
    to: str = setting(
        "hangup",
        "Destination: extension:N, voicemail:N, menu:NAME, dial:NUMBER, repeat or hangup.",
        check=ivrconfig.destination,
    )


@dataclass(frozen=True)
class IvrMenu:
    KEY: ClassVar[str] = "name"

    name: str = setting("", "Unique name of the menu.", check=checks.name)
    prompts: tuple[str, ...] = setting(
        ("welcome", "enter-extension-or-wait"),
        "Prompts played one after the other (catalogue names or custom uploads).",
        check=_prompt_names,
    )
    options: tuple[IvrOption, ...] = section(tuple, "Keys and where they lead.")
    direct_dial: str = setting(
        "",
        "Digit map of extensions callers may dial from this menu; empty for none.",
        check=ivrconfig.digit_map_or_empty,
    )
    timeout_s: int = setting(
        6, "Wait for a key after the prompt ends, s.", check=checks.in_range(1, 60, "s")
    )
    max_retries: int = setting(
        2,
        "Times the menu is played again after invalid input or silence.",
        check=checks.in_range(0, 10),
    )
    invalid: str = setting(
        "hangup",
        "Where to go when input is still invalid after the retries.",
        check=ivrconfig.final_destination,
    )
    timeout: str = setting(
        "hangup",
        "Where to go when the caller still says nothing after the retries.",
        check=ivrconfig.final_destination,
    )


@dataclass(frozen=True)
class OfficeHours:
    days: tuple[Weekday, ...] = setting(
        ("mon", "tue", "wed", "thu", "fri"), "Days these hours apply to.", check=checks.unique
    )
    start: str = setting(
        "08:00", "Opening time HH:MM (system.timezone).", check=ivrconfig.clock_time
    )
    end: str = setting("17:00", "Closing time HH:MM, after start.", check=ivrconfig.clock_time)


@dataclass(frozen=True)
class IvrConfig:
    enabled: bool = setting(False, "Whether calls to the IVR number reach the auto-attendant.")
    number: str = setting(
        "",
        "Number that reaches the IVR: dial it, or use it as a line or trunk destination.",
        check=checks.extension_or_empty,
    )
    language: str = setting(
        "",
        "Prompt language (en, de, fr, es, it, nl, pt); empty uses the system country's.",
        check=_prompt_language,
    )
    open_menu: str = setting("", "Entry menu during office hours (always, without hours).")
    closed_menu: str = setting("", "Entry menu outside office hours.")
    holiday_menu: str = setting("", "Entry menu on holidays; empty uses closed_menu.")
    office_hours: tuple[OfficeHours, ...] = section(
        tuple, "Weekly opening hours; none means always open."
    )
    holidays: tuple[str, ...] = setting(
        (),
        "Closed dates: YYYY-MM-DD, or MM-DD for every year.",
        check=checks.each(ivrconfig.holiday),
    )
    menus: tuple[IvrMenu, ...] = section(tuple, "The menus of the auto-attendant.")


# ---------------------------------------------------------------------------- voicemail

VoicemailFormat = Literal["alaw", "ulaw", "pcm16"]


@dataclass(frozen=True)
class VoicemailConfig:
    max_message_s: int = setting(
        180, "Longest message a caller may leave, s.", check=checks.in_range(5, 600, "s")
    )
    max_messages: int = setting(
        100,
        "Messages (new and saved) a mailbox holds; callers to a full box hear it is full.",
        check=checks.in_range(1, 1000),
    )
    max_greeting_s: int = setting(
        60, "Longest greeting a box owner may record, s.", check=checks.in_range(5, 300, "s")
    )
    format: VoicemailFormat = setting(
        "alaw",
        "Encoding of message WAV files: G.711 alaw/ulaw (8 kB/s) or pcm16 (16 kB/s).",
    )
    pin_attempts: int = setting(
        5,
        "Consecutive wrong PINs (over any number of calls) before a mailbox locks.",
        check=checks.in_range(1, 20),
    )
    lockout_s: int = setting(
        900,
        "How long a mailbox stays locked after too many wrong PINs, s.",
        check=checks.in_range(10, 86400, "s"),
    )


# ---------------------------------------------------------------------------- groups and queues

# How a group or queue chooses whom to ring (docs/features.md "Ring groups").
HuntStrategy = Literal["simultaneous", "sequential", "round_robin", "least_recent"]
MAX_GROUP_MEMBERS = 16  # cap: a small office's phones (MAX_FXS_PORTS)


def group_destination(value: str) -> str | None:
    """``hangup``, ``voicemail:BOX`` or a number (an extension, ring group or queue)."""
    if value == "hangup":
        return None
    kind, sep, ref = value.partition(":")
    if sep:
        if kind != "voicemail" or checks.extension_number(ref) is not None:
            return (
                f"{checks.show(value)} is not a destination (hangup, voicemail:BOX or a "
                "number: an extension, ring group or queue)"
            )
        return None
    if checks.extension_number(value) is not None:
        return (
            f"{checks.show(value)} is not a destination (hangup, voicemail:BOX or a "
            "number: an extension, ring group or queue)"
        )
    return None


def _member_count(values: tuple[str, ...]) -> str | None:
    if len(values) > MAX_GROUP_MEMBERS:
        return f"{len(values)} members, at most {MAX_GROUP_MEMBERS}"
    return None


_members_check = checks.all_of(checks.each(checks.extension_number), checks.unique, _member_count)


def _prompt_or_empty(value: str) -> str | None:
    return None if value == "" else _prompt_names((value,))


def _period_or_never(value: int) -> str | None:
    return None if value == 0 else checks.in_range(10, 600, "s")(value)


@dataclass(frozen=True)
class RingGroup:
    KEY: ClassVar[str] = "number"

    number: str = setting(
        "",
        "Number dialled to ring the group, 1 to 8 digits, unique.",
        check=checks.extension_number,
    )
    name: str = setting("", "Display name of the group.")
    members: tuple[str, ...] = setting(
        (),
        "Extensions rung, in order (sequential and round-robin follow it).",
        check=_members_check,
    )
    strategy: HuntStrategy = setting(
        "simultaneous",
        "simultaneous (all at once), sequential, round_robin (after the last one tried) or "
        "least_recent (the member idle longest).",
    )
    ring_s: int = setting(
        15,
        "How long one member rings before the next is tried (not simultaneous), s.",
        check=checks.in_range(5, 300, "s"),
    )
    timeout_s: int = setting(
        60,
        "How long the group rings in all before no_answer takes the call, s.",
        check=checks.in_range(5, 3600, "s"),
    )
    no_answer: str = setting(
        "hangup",
        "Where an unanswered call goes: hangup, voicemail:BOX, or a number (an extension, "
        "ring group or queue).",
        check=group_destination,
    )


@dataclass(frozen=True)
class Queue:
    KEY: ClassVar[str] = "number"

    number: str = setting(
        "",
        "Number dialled to join the queue, 1 to 8 digits, unique.",
        check=checks.extension_number,
    )
    name: str = setting("", "Display name of the queue.")
    members: tuple[str, ...] = setting(
        (),
        "Extensions that may answer (agents); each logs in with features.codes.queue_login.",
        check=_members_check,
    )
    strategy: HuntStrategy = setting(
        "round_robin", "How logged-in agents are rung (as for ring groups)."
    )
    ring_s: int = setting(
        15,
        "How long one agent rings before the next is tried, s.",
        check=checks.in_range(5, 300, "s"),
    )
    announce: str = setting(
        "queue-all-busy",
        "Prompt played to a caller on arrival (catalogue name or custom upload); empty: none.",
        check=_prompt_or_empty,
    )
    music_on_hold: str = setting(
        "",
        "WAV file played while waiting (absolute path); empty: the built-in music.",
        check=checks.absolute_path_or_empty,
    )
    position_period_s: int = setting(
        30,
        "How often a caller hears 'you are caller number N', s; 0: never.",
        check=_period_or_never,
    )
    max_wait_s: int = setting(
        300,
        "Longest wait before the caller goes to overflow, s.",
        check=checks.in_range(10, 7200, "s"),
    )
    overflow: str = setting(
        "hangup",
        "Where a caller goes after max_wait_s or when the queue is full: hangup, "
        "voicemail:BOX, or a number (an extension, ring group or queue).",
        check=group_destination,
    )
    max_callers: int = setting(
        10,
        "Callers waiting at most; the next one goes to overflow at once.",
        check=checks.in_range(1, 64),
    )


# ---------------------------------------------------------------------------- root


@dataclass(frozen=True)
class Config:
    system: SystemConfig = section(SystemConfig, "The box itself.")
    lines: LinesConfig = section(LinesConfig, "Analogue ports.")
    sip: SipConfig = section(SipConfig, "SIP transports, trunks and accounts.")
    extensions: tuple[Extension, ...] = section(_default_extensions, "Internal numbers.")
    dialplan: DialPlanConfig = section(DialPlanConfig, "Digit collection and routing.")
    features: FeaturesConfig = section(FeaturesConfig, "Calling features.")
    security: SecurityConfig = section(SecurityConfig, "Inbound security.")
    network: NetworkConfig = section(NetworkConfig, "IP addressing, DNS and time.")
    conference: ConferenceConfig = section(ConferenceConfig, "Dial-in conference rooms.")
    recording: RecordingConfig = section(RecordingConfig, "Call recording storage.")
    records: RecordsConfig = section(RecordsConfig, "Call detail records: how long they are kept.")
    ivr: IvrConfig = section(IvrConfig, "IVR auto-attendant: menus and time conditions.")
    voicemail: VoicemailConfig = section(VoicemailConfig, "Mailboxes and messages.")
    ring_groups: tuple[RingGroup, ...] = section(tuple, "Ring groups: one number, several phones.")
    queues: tuple[Queue, ...] = section(
        tuple, "Call queues: callers wait with music until an agent answers."
    )


def default_config(fxs_ports: int = 2, fxo_ports: int = 1) -> Config:
    """A fresh box for a card with this many ports: extension 101.. on the FXS ports,
    incoming FXO calls ring the first extension, outside line by dialling 0."""
    if not (0 <= fxs_ports <= MAX_FXS_PORTS and 0 <= fxo_ports <= MAX_FXO_PORTS):
        raise ValueError(f"port counts out of range: {fxs_ports} FXS, {fxo_ports} FXO")
    numbers = [str(101 + i) for i in range(fxs_ports)]
    first = numbers[0] if numbers else ""
    routes = [Route(name="internal", pattern="[1-9]xx", to="extensions")]
    if fxo_ports:
        routes.insert(0, Route(name="emergency", pattern="112|911|999", to="fxo:0"))
        routes.append(Route(name="outside", pattern="0[1-9]x.T", to="fxo:0", strip=1))
    return Config(
        lines=LinesConfig(
            fxs=tuple(FxsLine(extension=n) for n in numbers),
            fxo=tuple(FxoLine(destination=first) for _ in range(fxo_ports)),
        ),
        extensions=tuple(Extension(number=n, name=f"Port {i + 1}") for i, n in enumerate(numbers)),
        dialplan=DialPlanConfig(routes=tuple(routes)),
    )
