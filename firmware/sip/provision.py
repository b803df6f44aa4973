"""From the stored configuration to the SIP core's settings, with the I/O that takes.

``endpoint_settings_from_store`` builds the whole ``EndpointSettings`` (transports, accounts,
DNS servers, flood-guard rates); ``firewall_settings_from_store`` the kernel rules'
settings; both name the configuration path at fault when something cannot work.  The I/O
helpers (``resolve_host``, ``system_nameservers``, ``ensure_self_signed``) are blocking:
the service calls them from an executor, or before its loop runs.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import logging
import os
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from firmware.sip.admission import DEFAULT_MEDIA_SESSIONS_PER_S
from firmware.sip.errors import SipConfigError
from firmware.sip.firewall import FirewallSettings
from firmware.sip.policy import TrunkHosts
from firmware.sip.settings import (
    MAX_NAMESERVERS,
    EndpointSettings,
    TlsSettings,
    TransportSettings,
    account_from_store,
    check_nameservers,
    endpoint_from_store,
)
from firmware.store.schema import Config, Registration

log = logging.getLogger(__name__)

# What one IP phone's challenged call costs in requests from its address: INVITE, ACK of the
# 401 (RFC 3261 section 17.1.1.3), INVITE with credentials (section 22.2), ACK of the 200
# (section 13.2.2.4) and BYE (section 15.1.1).  security.sip_rate_limit_per_s divided by
# this is the calls per second one source may start (20/s -> 4 calls/s).
REQUESTS_PER_CHALLENGED_CALL = 5

# Where a TLS transport without a configured certificate gets its own, under the data dir.
SELF_SIGNED_DIR = "tls"
SELF_SIGNED_CERT = "self-signed-cert.pem"
SELF_SIGNED_KEY = "self-signed-key.pem"
SELF_SIGNED_DAYS = 3650  # a box is installed for years; nobody will be there to renew it
SELF_SIGNED_RENEW_DAYS = 30  # a certificate this close to its end is made anew at start

# Debian's ca-certificates bundle: "empty ca_file uses the system's" means this file, passed
# explicitly, rather than wherever the wheel's bundled OpenSSL 1.0.2 was built to look.
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RESOLV_CONF = Path("/etc/resolv.conf")
MAX_RESOLVED_ADDRESSES = 16  # cap on the addresses one registrar name may bring in


def endpoint_settings_from_store(
    config: Config,
    *,
    bind_host: str,
    data_dir: Path,
    line_ports: tuple[int, ...] = (),
    system_nameservers: tuple[str, ...] = (),
) -> EndpointSettings:
    """The SIP core's settings for ``config``, listening on ``bind_host``.

    ``system_nameservers`` (``system_nameservers()``) are used when ``network.dns`` is empty,
    as it is with DHCP.  May write a self-signed certificate under ``data_dir`` (once).
    """
    transports = transports_from_store(config, bind_host=bind_host, data_dir=data_dir)
    kinds = {t.kind for t in transports}
    for path, reg in _registrations(config):
        if not reg.enabled:
            continue
        if reg.transport not in kinds:
            raise SipConfigError(
                f"{path}.transport: {reg.transport}, but sip.transports.{reg.transport} "
                "is not enabled"
            )
        try:
            account_from_store(reg)
        except SipConfigError as exc:
            raise SipConfigError(f"{path} ({reg.name}): {exc}") from None
    try:
        base = endpoint_from_store(config.sip, transports)
    except SipConfigError as exc:
        raise SipConfigError(f"sip: {exc}") from None
    nameservers = nameservers_from_store(config, system_nameservers)
    rate = config.security.sip_rate_limit_per_s / REQUESTS_PER_CHALLENGED_CALL
    return dataclasses.replace(
        base,
        nameservers=nameservers,
        line_ports=line_ports,
        per_source_sessions_per_s=min(rate, DEFAULT_MEDIA_SESSIONS_PER_S),
        per_source_burst=max(1.0, min(rate, DEFAULT_MEDIA_SESSIONS_PER_S)),
    )


def transports_from_store(
    config: Config, *, bind_host: str, data_dir: Path
) -> tuple[TransportSettings, ...]:
    t = config.sip.transports
    out: list[TransportSettings] = []
    try:
        if t.udp.enabled:
            out.append(TransportSettings("udp", host=bind_host, port=t.udp.port))
        if t.tcp.enabled:
            out.append(TransportSettings("tcp", host=bind_host, port=t.tcp.port))
    except SipConfigError as exc:
        raise SipConfigError(f"sip.transports: {exc}") from None
    if t.tls.enabled:
        tls = _tls_from_store(config, bind_host=bind_host, data_dir=data_dir)
        out.append(TransportSettings("tls", host=bind_host, port=t.tls.port, tls=tls))
    if not out:
        raise SipConfigError("sip.transports: no transport is enabled (udp, tcp or tls)")
    return tuple(out)


def _tls_from_store(config: Config, *, bind_host: str, data_dir: Path) -> TlsSettings:
    tls = config.sip.transports.tls
    where = "sip.transports.tls"
    if bool(tls.cert_file) != bool(tls.key_file):
        missing = "key_file" if tls.cert_file else "cert_file"
        raise SipConfigError(f"{where}.{missing}: a certificate and its key go together")
    if tls.cert_file:
        cert, key = Path(tls.cert_file), Path(tls.key_file)
    else:
        cert, key = ensure_self_signed(
            data_dir / SELF_SIGNED_DIR, config.system.hostname, (bind_host,)
        )
    for name, path in (("cert_file", cert), ("key_file", key), ("ca_file", tls.ca_file)):
        if path and not Path(path).is_file():
            raise SipConfigError(f"{where}.{name}: {path} is not a readable file")
    ca = tls.ca_file or (str(SYSTEM_CA_BUNDLE) if SYSTEM_CA_BUNDLE.is_file() else "")
    if tls.require_client_cert and not ca:
        raise SipConfigError(f"{where}.ca_file: requiring client certificates needs a CA bundle")
    try:
        return TlsSettings(
            cert_file=str(cert),
            key_file=str(key),
            ca_file=ca,
            verify_server=tls.verify_server,
            require_client_cert=tls.require_client_cert,
        )
    except SipConfigError as exc:
        raise SipConfigError(f"{where}: {exc}") from None


def _registrations(config: Config) -> Iterable[tuple[str, Registration]]:
    for i, trunk in enumerate(config.sip.trunks):
        yield f"sip.trunks[{i}]", trunk
    for i, account in enumerate(config.sip.accounts):
        yield f"sip.accounts[{i}]", account


# ---------------------------------------------------------------------- DNS


def nameservers_from_store(config: Config, system: tuple[str, ...] = ()) -> tuple[str, ...]:
    """``network.dns`` when the installer gave any, else the system's (DHCP's) servers."""
    configured = tuple(d for d in config.network.dns if d)
    if configured:
        if len(configured) > MAX_NAMESERVERS:
            log.warning(
                "network.dns lists %d servers; the SIP resolver uses the first %d",
                len(configured),
                MAX_NAMESERVERS,
            )
        chosen = configured[:MAX_NAMESERVERS]
        try:
            check_nameservers(chosen)
        except SipConfigError as exc:
            raise SipConfigError(f"network.dns: {exc}") from None
        return chosen
    return system[:MAX_NAMESERVERS]


def system_nameservers(resolv_conf: Path = RESOLV_CONF) -> tuple[str, ...]:
    """The ``nameserver`` lines of resolv.conf(5) that pjsua can use (plain IP addresses)."""
    try:
        text = resolv_conf.read_text(errors="replace")
    except OSError as exc:
        log.warning("no DNS servers for SIP from %s: %s", resolv_conf, exc)
        return ()
    return parse_resolv_conf(text)


def parse_resolv_conf(text: str) -> tuple[str, ...]:
    servers: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "nameserver":
            continue
        if "%" in words[1]:  # a link-local "fe80::1%eth0": pjsua takes no scope id
            continue
        try:
            ipaddress.ip_address(words[1])
        except ValueError:
            continue
        if words[1] not in servers:
            servers.append(words[1])
    return tuple(servers[:MAX_NAMESERVERS])


def resolve_host(host: str) -> tuple[str, ...]:
    """A/AAAA addresses of ``host`` through the system resolver; () when it does not resolve.

    For the trunk hosts of the inbound policy and the firewall (``policy_from_store``'s
    ``resolve``).  A trunk found through SRV records sends from the SRV targets, which this
    does not look up: such a trunk should list its hosts in ``allowed_hosts``.
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
    except (OSError, UnicodeError) as exc:
        log.warning(
            "trunk registrar %s does not resolve (%s): no calls admitted from it", host, exc
        )
        return ()
    out: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in out:
            out.append(address)
    return tuple(out[:MAX_RESOLVED_ADDRESSES])


# ---------------------------------------------------------------------- TLS certificate


def ensure_self_signed(
    directory: Path, hostname: str, addresses: Iterable[str] = ()
) -> tuple[Path, Path]:
    """(certificate, key) under ``directory``: made once, made anew only near their end.

    An ECDSA P-256 key (the TLS 1.2 ECDHE-ECDSA suites of ``settings.STRONG_TLS12_CIPHERS``)
    and a self-signed certificate for ``hostname`` and the concrete ``addresses``.  Peers
    that verify certificates will refuse it until an installer configures a real one.
    """
    cert_path, key_path = directory / SELF_SIGNED_CERT, directory / SELF_SIGNED_KEY
    now = datetime.datetime.now(datetime.UTC)
    if cert_path.is_file() and key_path.is_file():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            renew_at = cert.not_valid_after_utc - datetime.timedelta(days=SELF_SIGNED_RENEW_DAYS)
            if now < renew_at:
                return cert_path, key_path
            log.warning("self-signed TLS certificate %s runs out: making a new one", cert_path)
        except ValueError as exc:
            log.warning("self-signed TLS certificate %s unreadable (%s): new one", cert_path, exc)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    alt: list[x509.GeneralName] = [x509.DNSName(hostname)]
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if not ip.is_unspecified:
            alt.append(x509.IPAddress(ip))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_atomically(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # OpenSSL 1.0.2 reads this one
            serialization.NoEncryption(),
        ),
        mode=0o600,
    )
    _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    log.warning(
        "TLS is enabled without a certificate: made a self-signed one, %s (peers that verify "
        "certificates will refuse it; set sip.transports.tls.cert_file and key_file)",
        cert_path,
    )
    return cert_path, key_path


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------- firewall


def firewall_settings_from_store(
    config: Config, trunk_hosts: tuple[TrunkHosts, ...] = ()
) -> FirewallSettings | None:
    """The kernel rules for ``config``'s SIP ports; None when no transport listens.

    ``trunk_hosts`` (the inbound policy's, ``PolicySettings.trunks``) are exempt from the
    per-source rate: a provider may bring many calls at once.
    """
    t = config.sip.transports
    ports = tuple(
        port
        for enabled, port in ((t.udp.enabled, t.udp.port), (t.tcp.enabled, t.tcp.port),
                              (t.tls.enabled, t.tls.port))
        if enabled
    )  # fmt: skip
    if not ports:
        return None
    exempt = tuple(dict.fromkeys(n for trunk in trunk_hosts for n in trunk.networks))
    try:
        return FirewallSettings(
            ports=ports, rate_per_s=config.security.sip_rate_limit_per_s, exempt=exempt
        )
    except SipConfigError as exc:
        raise SipConfigError(f"security: {exc}") from None
