"""Inbound INVITE policy (issue 4 section 5): sans-IO, time passed in as ``now`` (seconds).

Every incoming INVITE gets exactly one ``Decision`` before it can reach a line:

- a banned source is refused (403) without further work;
- a configured trunk host is admitted as that trunk, never challenged and never counted;
- any other source outside the allowed networks gets 403 and counts as a failure;
- an allowed source is challenged with digest (SHA-256 and MD5 offered, RFC 8760) until it
  presents valid credentials; a wrong password or unknown user gets 403 and counts;
- ``threshold`` failures of one source within ``window_s`` ban it for ``ban_s``.

The 401 a provider sends to *our* REGISTER or INVITE is handled by pjsua2's client side and
never reaches this module, so a trunk's ordinary challenge cannot count as a failure.

Nonces are stateless: ``issued-ms.HMAC(secret, issued-ms:source)``, valid for ``nonce_ttl_s``.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from hashlib import sha256

from firmware.sip.digest import ALGORITHMS, digest_response, parse_digest
from firmware.sip.errors import PeerProtocolError, SipConfigError
from firmware.sip.firewall import Ban
from firmware.sip.message import SipRequestHead
from firmware.store.schema import Config

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_TRACKED_SOURCES = 4096  # cap on per-source failure/challenge state
MAX_BANNED_SOURCES = 65536  # cap on the ban table; the entry nearest expiry goes first
MAX_SEEN_RESPONSES = 4096  # cap on the replay cache
NONCE_TTL_S = 300.0  # how long a challenge may be answered
# A source that keeps sending INVITEs without ever answering the challenge is a scanner too:
# this many unanswered challenges within the window count as one failure.
MAX_UNANSWERED_CHALLENGES = 10
REALM_DEFAULT = "ponte"
# RFC 8760 section 2.4: offer the strongest algorithm first, MD5 last for old clients.
OFFERED_ALGORITHMS = ("SHA-256", "MD5")


class Verdict(Enum):
    ADMIT_TRUNK = "admit-trunk"
    ADMIT_USER = "admit-user"
    CHALLENGE = "challenge"
    FORBID = "forbid"
    BANNED = "banned"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    code: int  # SIP status to answer with; 0 when admitted
    reason: str
    peer: str = ""  # trunk name or authenticated user
    headers: tuple[tuple[str, str], ...] = ()  # extra header fields of the response
    counted_failure: bool = False

    @property
    def admitted(self) -> bool:
        return self.verdict in (Verdict.ADMIT_TRUNK, Verdict.ADMIT_USER)


@dataclass(frozen=True)
class TrunkHosts:
    trunk: str
    networks: tuple[str, ...]


@dataclass(frozen=True)
class PolicySettings:
    realm: str = REALM_DEFAULT
    users: tuple[tuple[str, str], ...] = ()  # (user name, password) of IP peers
    peer_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    trunks: tuple[TrunkHosts, ...] = ()
    ban_threshold: int = 5
    ban_window_s: float = 60.0
    ban_s: float = 3600.0
    nonce_ttl_s: float = NONCE_TTL_S
    # Offered in this order; some clients (sipp 3.6) answer only the first and know only MD5.
    algorithms: tuple[str, ...] = OFFERED_ALGORITHMS

    def __post_init__(self) -> None:
        if not self.algorithms or any(a not in ALGORITHMS for a in self.algorithms):
            raise SipConfigError(
                f"digest algorithms {self.algorithms} must be a non-empty subset of "
                f"{tuple(ALGORITHMS)}"
            )
        if self.ban_threshold < 1 or self.ban_window_s <= 0 or self.ban_s <= 0:
            raise SipConfigError("ban threshold, window and duration must be positive")
        if self.nonce_ttl_s <= 0:
            raise SipConfigError("nonce lifetime must be positive")
        if not self.realm or '"' in self.realm:
            raise SipConfigError(f"bad digest realm {self.realm!r}")
        for net in (*self.peer_networks, *(n for t in self.trunks for n in t.networks)):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise SipConfigError(f"{net!r} is not an IP address or network") from None


@dataclass
class _SourceState:
    failures: deque[float] = field(default_factory=deque)
    challenges: deque[float] = field(default_factory=deque)


class InboundPolicy:
    def __init__(self, settings: PolicySettings, secret: bytes) -> None:
        if len(secret) < 16:
            raise SipConfigError("the nonce secret needs at least 16 bytes")
        self._secret = secret
        self._settings = settings
        self._users = dict(settings.users)
        self._peer_nets: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in settings.peer_networks
        )
        self._trunk_nets: tuple[tuple[str, Network], ...] = tuple(
            (t.trunk, ipaddress.ip_network(n, strict=False))
            for t in settings.trunks
            for n in t.networks
        )
        self._sources: OrderedDict[str, _SourceState] = OrderedDict()
        self._banned: dict[str, float] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.counters: dict[str, int] = {v.value: 0 for v in Verdict}
        self.counters["failures"] = 0
        self.counters["bans"] = 0

    @property
    def settings(self) -> PolicySettings:
        return self._settings

    # ------------------------------------------------------------------ queries

    def banned_until(self, source: str, now: float) -> float | None:
        until = self._banned.get(source)
        if until is None:
            return None
        if until <= now:
            del self._banned[source]
            return None
        return until

    def active_bans(self, now: float) -> tuple[Ban, ...]:
        """The bans still running, for the kernel firewall (``NftFirewall.update_bans``)."""
        return tuple(
            Ban(source, max(1, math.ceil(until - now)))
            for source, until in self._banned.items()
            if until > now and _address(source) is not None
        )

    def trunk_for(self, source: str) -> str | None:
        addr = _address(source)
        if addr is None:
            return None
        for trunk, net in self._trunk_nets:
            if addr.version == net.version and addr in net:
                return trunk
        return None

    def screen(self, source: str, now: float) -> Decision | None:
        """Cheap pre-check on the source alone (before pjsua creates media for the INVITE).

        Returns the refusal for banned and disallowed sources, None when ``decide`` must look
        at the message.  Counts like ``decide`` would.
        """
        if self.banned_until(source, now) is not None:
            return self._count(Decision(Verdict.BANNED, 403, "Forbidden (banned)"))
        if self.trunk_for(source) is not None:
            return None
        addr = _address(source)
        if addr is None or not any(
            addr.version == n.version and addr in n for n in self._peer_nets
        ):
            return self._fail(source, now, "Forbidden (source not allowed)")
        return None

    # ------------------------------------------------------------------ the decision

    def decide(self, request: SipRequestHead, source: str, now: float) -> Decision:
        if request.method != "INVITE":
            raise ValueError(f"the inbound policy judges INVITEs, not {request.method}")
        early = self.screen(source, now)
        if early is not None:
            return early
        trunk = self.trunk_for(source)
        if trunk is not None:
            return self._count(Decision(Verdict.ADMIT_TRUNK, 0, "trunk host", peer=trunk))
        credentials = [
            v for v in request.get_all("authorization") if v.lower().startswith("digest")
        ]
        if not credentials:
            return self._challenge(source, now, stale=False)
        try:
            params = parse_digest(credentials[0])
        except PeerProtocolError as exc:
            return self._fail(source, now, f"Forbidden (bad credentials: {exc})")
        return self._verify(request, params, source, now)

    def _verify(
        self, request: SipRequestHead, params: dict[str, str], source: str, now: float
    ) -> Decision:
        user = params.get("username", "")
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in self._settings.algorithms:
            return self._fail(source, now, f"Forbidden (algorithm {algorithm[:20]!r})")
        if params.get("realm") != self._settings.realm:
            return self._fail(source, now, "Forbidden (wrong realm)")
        nonce = params.get("nonce", "")
        nonce_state = self._check_nonce(nonce, source, now)
        if nonce_state == "forged":
            return self._fail(source, now, "Forbidden (nonce not ours)")
        password = self._users.get(user)
        if password is None:
            return self._fail(source, now, "Forbidden (unknown user)")
        uri = params.get("uri", "")
        if uri != request.uri:
            return self._fail(source, now, "Forbidden (digest uri differs from Request-URI)")
        try:
            expected = digest_response(
                algorithm=algorithm,
                username=user,
                realm=self._settings.realm,
                password=password,
                method=request.method,
                uri=uri,
                nonce=nonce,
                qop=params.get("qop", ""),
                nc=params.get("nc", ""),
                cnonce=params.get("cnonce", ""),
            )
        except PeerProtocolError as exc:
            return self._fail(source, now, f"Forbidden ({exc})")
        if not hmac.compare_digest(expected, params.get("response", "").lower()):
            return self._fail(source, now, "Forbidden (wrong password)")
        if nonce_state == "stale":
            # Right password, old nonce: RFC 7616 section 3.3 says challenge again with stale.
            return self._challenge(source, now, stale=True)
        if expected in self._seen:
            return self._challenge(source, now, stale=True)  # a replayed INVITE
        self._seen[expected] = None
        while len(self._seen) > MAX_SEEN_RESPONSES:
            self._seen.popitem(last=False)
        state = self._sources.get(source)
        if state is not None:
            state.challenges.clear()
        return self._count(Decision(Verdict.ADMIT_USER, 0, "authenticated", peer=user))

    # ------------------------------------------------------------------ helpers

    def make_nonce(self, source: str, now: float) -> str:
        issued = int(now * 1000)
        return f"{issued}.{self._mac(issued, source)}"

    def _mac(self, issued: int, source: str) -> str:
        return hmac.new(self._secret, f"{issued}:{source}".encode(), sha256).hexdigest()[:32]

    def _check_nonce(self, nonce: str, source: str, now: float) -> str:
        issued_text, _, mac = nonce.partition(".")
        if not issued_text.isdigit() or len(issued_text) > 20:
            return "forged"
        issued = int(issued_text)
        if not hmac.compare_digest(mac, self._mac(issued, source)):
            return "forged"
        age = now - issued / 1000
        if age < 0 or age > self._settings.nonce_ttl_s:
            return "stale"
        return "fresh"

    def _challenge(self, source: str, now: float, *, stale: bool) -> Decision:
        state = self._state(source)
        _expire(state.challenges, now - self._settings.ban_window_s)
        state.challenges.append(now)
        if len(state.challenges) > MAX_UNANSWERED_CHALLENGES:
            state.challenges.clear()
            failed = self._fail(source, now, "Forbidden (challenges never answered)")
            if failed.verdict is Verdict.BANNED:
                return failed
        nonce = self.make_nonce(source, now)
        extra = ", stale=true" if stale else ""
        headers = tuple(
            (
                "WWW-Authenticate",
                f'Digest realm="{self._settings.realm}", nonce="{nonce}", '
                f'algorithm={alg}, qop="auth"{extra}',
            )
            for alg in self._settings.algorithms
        )
        return self._count(Decision(Verdict.CHALLENGE, 401, "Unauthorized", headers=headers))

    def _fail(self, source: str, now: float, reason: str) -> Decision:
        self.counters["failures"] += 1
        state = self._state(source)
        _expire(state.failures, now - self._settings.ban_window_s)
        state.failures.append(now)
        if len(state.failures) >= self._settings.ban_threshold:
            state.failures.clear()
            self._ban(source, now)
            return self._count(
                Decision(Verdict.BANNED, 403, f"{reason}; source banned", counted_failure=True)
            )
        return self._count(Decision(Verdict.FORBID, 403, reason, counted_failure=True))

    def _ban(self, source: str, now: float) -> None:
        self.counters["bans"] += 1
        self._banned[source] = now + self._settings.ban_s
        if len(self._banned) > MAX_BANNED_SOURCES:
            expired = [s for s, t in self._banned.items() if t <= now]
            for s in expired:
                del self._banned[s]
            while len(self._banned) > MAX_BANNED_SOURCES:
                del self._banned[min(self._banned, key=self._banned.__getitem__)]

    def _state(self, source: str) -> _SourceState:
        state = self._sources.get(source)
        if state is None:
            state = self._sources[source] = _SourceState()
            while len(self._sources) > MAX_TRACKED_SOURCES:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(source)
        return state

    def _count(self, decision: Decision) -> Decision:
        self.counters[decision.verdict.value] += 1
        return decision


def _expire(times: deque[float], horizon: float) -> None:
    while times and times[0] <= horizon:
        times.popleft()


def _address(source: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(source)
    except ValueError:
        return None


def policy_from_store(
    config: Config, resolve: Callable[[str], tuple[str, ...]] | None = None
) -> PolicySettings:
    """The inbound policy the stored configuration asks for.

    IP phones authenticate as an extension number with its ``sip_password`` (extensions
    without one have no IP phone); trunk hosts are the trunk's ``allowed_hosts`` or, when
    empty, its registrar's addresses: the registrar itself if it is an IP address, else
    what ``resolve(host)`` returns (a DNS lookup is I/O: the shell that builds this passes
    it, ``firmware.sip.provision.resolve_host``).  Without ``resolve`` a trunk whose
    registrar is a name gets no host-based admission.
    """
    return PolicySettings(
        realm=config.system.hostname or REALM_DEFAULT,
        users=tuple((e.number, e.sip_password) for e in config.extensions if e.sip_password),
        peer_networks=tuple(config.security.allowed_hosts),
        trunks=trunk_hosts_from_store(config, resolve),
        ban_threshold=config.security.ban.threshold,
        ban_window_s=float(config.security.ban.window_s),
        ban_s=float(config.security.ban.ban_s),
        algorithms=config.security.digest_algorithms,
    )


def trunk_hosts_from_store(
    config: Config, resolve: Callable[[str], tuple[str, ...]] | None = None
) -> tuple[TrunkHosts, ...]:
    """Hosts each enabled trunk accepts calls from (see ``policy_from_store``).

    Per-port accounts (ATA lines) come after the trunks: their provider's calls are admitted
    from its registrar too; where a trunk shares the host, the trunk's name is the peer and
    pjsua's account choice (by the Request-URI) still tells the two apart.
    """
    trunks: list[TrunkHosts] = []
    for trunk in config.sip.trunks:
        if not trunk.enabled:
            continue
        hosts = tuple(trunk.allowed_hosts) or _registrar_address(trunk.registrar, resolve)
        if hosts:
            trunks.append(TrunkHosts(trunk.name, hosts))
    for account in config.sip.accounts:
        if not account.enabled:
            continue
        hosts = _registrar_address(account.registrar, resolve)
        if hosts:
            trunks.append(TrunkHosts(account.name, hosts))
    return tuple(trunks)


def _registrar_address(
    registrar: str, resolve: Callable[[str], tuple[str, ...]] | None
) -> tuple[str, ...]:
    host = registrar.removeprefix("sips:").removeprefix("sip:")
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if _address(host) is not None:
        return (host,)
    if resolve is None:
        return ()
    return tuple(a for a in resolve(host) if _address(a) is not None)
