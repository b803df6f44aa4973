"""The stored configuration mapped to the SIP core's settings, and what that mapping refuses."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from firmware.sip.endpoint import SipEndpoint
from firmware.sip.errors import SipConfigError, SipLimitError
from firmware.sip.firewall import nft_ruleset
from firmware.sip.policy import TrunkHosts, policy_from_store
from firmware.sip.provision import (
    REQUESTS_PER_CHALLENGED_CALL,
    SELF_SIGNED_DIR,
    endpoint_settings_from_store,
    ensure_self_signed,
    firewall_settings_from_store,
    nameservers_from_store,
    parse_resolv_conf,
    resolve_host,
    system_nameservers,
)
from firmware.store.schema import (
    Account,
    BanConfig,
    Config,
    Extension,
    NetworkConfig,
    SecurityConfig,
    TcpTransport,
    TlsTransport,
    TransportsConfig,
    Trunk,
    UdpTransport,
)
from tests.sip.peers import free_port, make_pki


def with_sip(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, sip=dataclasses.replace(config.sip, **changes))


def trunk(**changes: Any) -> Trunk:
    base = Trunk(name="provider", registrar="192.0.2.10", username="alice", password="pw")
    return dataclasses.replace(base, **changes)


def test_default_box_listens_on_udp_with_the_store_rates(tmp_path: Path) -> None:
    config = dataclasses.replace(
        Config(),
        network=NetworkConfig(mode="static", address="192.0.2.5/24", dns=("192.0.2.53",)),
        security=SecurityConfig(sip_rate_limit_per_s=40),
    )
    settings = endpoint_settings_from_store(
        config, bind_host="127.0.0.1", data_dir=tmp_path, line_ports=(1, 2, 3)
    )
    assert [(t.kind, t.host, t.port) for t in settings.transports] == [("udp", "127.0.0.1", 5060)]
    assert settings.accounts == ()
    assert settings.nameservers == ("192.0.2.53",)
    assert settings.line_ports == (1, 2, 3)
    assert settings.per_source_sessions_per_s == 40 / REQUESTS_PER_CHALLENGED_CALL
    assert not (tmp_path / SELF_SIGNED_DIR).exists()  # no TLS, no certificate


def test_trunks_accounts_and_transports_are_mapped(tmp_path: Path) -> None:
    config = with_sip(
        Config(),
        transports=TransportsConfig(
            udp=UdpTransport(port=5070), tcp=TcpTransport(enabled=True, port=5071)
        ),
        trunks=(trunk(transport="tcp", codecs=("PCMA", "PCMU")),),
        accounts=(
            Account(name="port1", registrar="192.0.2.11", username="101", fxs=0),
            Account(name="off", registrar="192.0.2.11", username="102", enabled=False),
        ),
    )
    settings = endpoint_settings_from_store(
        config, bind_host="::1", data_dir=tmp_path, system_nameservers=("192.0.2.1",)
    )
    assert [(t.kind, t.host, t.port) for t in settings.transports] == [
        ("udp", "::1", 5070),
        ("tcp", "::1", 5071),
    ]
    assert [a.name for a in settings.accounts] == ["provider", "port1"]
    assert settings.accounts[0].transport == "tcp"
    assert settings.codecs == ("PCMA", "PCMU")
    assert settings.nameservers == ("192.0.2.1",)  # network.dns empty: the system's


def test_errors_name_the_configuration_path(tmp_path: Path) -> None:
    def build(config: Config) -> None:
        endpoint_settings_from_store(config, bind_host="127.0.0.1", data_dir=tmp_path)

    with pytest.raises(SipConfigError, match=r"sip\.trunks\[0\]\.transport: tcp"):
        build(with_sip(Config(), trunks=(trunk(transport="tcp"),)))
    with pytest.raises(SipConfigError, match=r"sip\.trunks\[1\] \(b\): .*mandatory SRTP"):
        build(with_sip(Config(), trunks=(trunk(name="a"), trunk(name="b", srtp="mandatory"))))
    with pytest.raises(SipConfigError, match=r"sip\.transports: no transport is enabled"):
        build(with_sip(Config(), transports=TransportsConfig(udp=UdpTransport(enabled=False))))
    tls_only_cert = TlsTransport(enabled=True, cert_file="/etc/hostname")
    with pytest.raises(SipConfigError, match=r"sip\.transports\.tls\.key_file: .*go together"):
        build(with_sip(Config(), transports=TransportsConfig(tls=tls_only_cert)))
    missing = TlsTransport(enabled=True, cert_file="/nonexistent/c.pem", key_file="/etc/hostname")
    with pytest.raises(SipConfigError, match=r"sip\.transports\.tls\.cert_file: /nonexistent"):
        build(with_sip(Config(), transports=TransportsConfig(tls=missing)))
    with pytest.raises(SipConfigError, match=r"network\.dns: .*'dns\.example'"):
        build(dataclasses.replace(Config(), network=NetworkConfig(dns=("dns.example",))))
    seven = tuple(trunk(name=f"t{i}") for i in range(7))
    with pytest.raises(SipLimitError, match="at most 6 trunks"):
        build(with_sip(Config(), trunks=seven))


async def test_tls_without_a_certificate_gets_a_self_signed_one_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    # UDP on a free port too: the default 5060 may be taken (make run, a parallel test).
    config = with_sip(
        Config(),
        transports=TransportsConfig(
            udp=UdpTransport(port=free_port()), tls=TlsTransport(enabled=True, port=port)
        ),
    )
    with caplog.at_level(logging.WARNING, logger="firmware.sip.provision"):
        settings = endpoint_settings_from_store(config, bind_host="127.0.0.1", data_dir=tmp_path)
    assert any("self-signed" in r.message for r in caplog.records)
    tls = settings.transports[1].tls
    assert tls is not None
    cert_file, key_file = Path(tls.cert_file), Path(tls.key_file)
    assert cert_file.parent == tmp_path / SELF_SIGNED_DIR
    assert key_file.stat().st_mode & 0o077 == 0  # the key is the owner's alone
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "ponte" in names.get_values_for_type(x509.DNSName)
    # a second start keeps the same certificate and says nothing
    caplog.clear()
    first = cert_file.read_bytes()
    again = endpoint_settings_from_store(config, bind_host="127.0.0.1", data_dir=tmp_path)
    assert again.transports[1].tls == tls and cert_file.read_bytes() == first
    assert not any("self-signed" in r.message for r in caplog.records)
    # and pjsua2's OpenSSL 1.0.2 takes it: the TLS transport comes up on the port
    ep = SipEndpoint(settings)
    await ep.start()
    try:
        assert ep.transport("tls").port == port
    finally:
        await ep.stop()


def test_a_certificate_near_its_end_is_made_anew(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")  # valid for one day only: inside the renewal margin
    directory = tmp_path / "tls"
    directory.mkdir()
    (directory / "self-signed-cert.pem").write_bytes(pki.cert.read_bytes())
    (directory / "self-signed-key.pem").write_bytes(pki.key.read_bytes())
    cert, _ = ensure_self_signed(directory, "box", ("192.0.2.5", "0.0.0.0"))
    assert cert.read_bytes() != pki.cert.read_bytes()
    made = x509.load_pem_x509_certificate(cert.read_bytes())
    names = made.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["192.0.2.5"]


def test_dns_servers_from_the_store_or_the_system(tmp_path: Path) -> None:
    dns = ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5")
    config = dataclasses.replace(Config(), network=NetworkConfig(mode="static", dns=dns))
    assert nameservers_from_store(config, ("198.51.100.1",)) == dns[:4]
    assert nameservers_from_store(Config(), ("198.51.100.1",)) == ("198.51.100.1",)
    text = (
        "# generated\nsearch lan\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\n"
        "nameserver 2001:db8::53\nnameserver 192.0.2.53\noptions edns0\nnameserver\n"
    )
    assert parse_resolv_conf(text) == ("192.0.2.53", "2001:db8::53")
    conf = tmp_path / "resolv.conf"
    conf.write_text(text)
    assert system_nameservers(conf) == ("192.0.2.53", "2001:db8::53")
    assert system_nameservers(tmp_path / "missing") == ()


def test_trunk_hosts_resolve_and_feed_the_policy_and_the_firewall() -> None:
    config = dataclasses.replace(
        with_sip(
            Config(),
            trunks=(
                trunk(name="byname", registrar="sip:provider.test:5060"),
                trunk(name="listed", registrar="provider.test", allowed_hosts=("198.51.100.0/24",)),
                trunk(name="byip", registrar="192.0.2.10"),
                trunk(name="off", registrar="192.0.2.99", enabled=False),
            ),
            transports=TransportsConfig(tls=TlsTransport(enabled=True)),
        ),
        extensions=(Extension(number="101", sip_password="s3cret"), Extension(number="102")),
        security=SecurityConfig(
            allowed_hosts=("10.0.0.0/8",),
            sip_rate_limit_per_s=30,
            ban=BanConfig(threshold=3, window_s=10, ban_s=120),
        ),
    )
    asked: list[str] = []

    def resolve(host: str) -> tuple[str, ...]:
        asked.append(host)
        return ("203.0.113.7", "not-an-address")

    policy = policy_from_store(config, resolve)
    assert asked == ["provider.test"]  # allowed_hosts win; IP registrars need no lookup
    assert policy.trunks == (
        TrunkHosts("byname", ("203.0.113.7",)),
        TrunkHosts("listed", ("198.51.100.0/24",)),
        TrunkHosts("byip", ("192.0.2.10",)),
    )
    assert policy.users == (("101", "s3cret"),)
    assert policy.peer_networks == ("10.0.0.0/8",)
    assert (policy.ban_threshold, policy.ban_window_s, policy.ban_s) == (3, 10.0, 120.0)
    fw = firewall_settings_from_store(config, policy.trunks)
    assert fw is not None
    assert fw.ports == (5060, 5061) and fw.rate_per_s == 30
    assert fw.exempt == ("203.0.113.7", "198.51.100.0/24", "192.0.2.10")
    assert "ip saddr { 203.0.113.7, 198.51.100.0/24, 192.0.2.10 } accept" in nft_ruleset(fw)
    off = with_sip(Config(), transports=TransportsConfig(udp=UdpTransport(enabled=False)))
    assert firewall_settings_from_store(off) is None


def test_resolve_host_uses_the_system_resolver() -> None:
    assert "127.0.0.1" in resolve_host("localhost")
    assert resolve_host("name.invalid") == ()  # RFC 6761 section 6.4: never resolves
