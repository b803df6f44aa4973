"""A registrar given as a bare domain is found through DNS SRV (RFC 3263) with pjsua's resolver.

dnsmasq serves ``_sip._udp``/``_sip._tcp``/``_sips._tcp`` records for ``example.test`` that
point at a kamailio on a port nobody would guess, so a registration succeeds only if the SRV
record was used.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.sip.endpoint import SipEndpoint
from firmware.sip.errors import SipConfigError
from firmware.sip.events import RegistrationChanged
from firmware.sip.settings import (
    AccountSettings,
    EndpointSettings,
    TlsSettings,
    TransportSettings,
)
from tests.sip.helpers import wait_event
from tests.sip.peers import Dnsmasq, Kamailio, make_pki
from tests.sip.peers import TestPki as Pki

DOMAIN = "example.test"  # RFC 2606 section 2: reserved for tests
TARGET = f"sip-a.{DOMAIN}"
USERS = {"alice": "alicepw"}


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[tuple[Kamailio, Dnsmasq, Pki]]:
    if os.geteuid() != 0 or shutil.which("dnsmasq") is None:
        pytest.skip("needs root and dnsmasq (pjsua asks DNS on port 53 only)")
    pki = make_pki(tmp_path / "pki", dns_names=(DOMAIN,))
    kam = Kamailio(tmp_path / "kam", USERS, tls=pki)
    try:
        dns = Dnsmasq(
            tmp_path / "dns",
            srv={
                f"_sip._udp.{DOMAIN}": (TARGET, kam.port),
                f"_sip._tcp.{DOMAIN}": (TARGET, kam.port),
                f"_sips._tcp.{DOMAIN}": (TARGET, kam.tls_port),
            },
            hosts={TARGET: "127.0.0.1"},
        )
    except BaseException:
        kam.stop()
        raise
    yield kam, dns, pki
    dns.stop()
    kam.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_bare_domain_registers_through_srv(
    provider: tuple[Kamailio, Dnsmasq, Pki], transport: str
) -> None:
    kam, dns, pki = provider
    transports = [TransportSettings("udp")]
    if transport == "tcp":
        transports.append(TransportSettings("tcp"))
    if transport == "tls":
        # verify_server: kamailio's certificate names example.test, the domain we asked for
        tls = TlsSettings(str(pki.cert), str(pki.key), str(pki.ca_cert), verify_server=True)
        transports.append(TransportSettings("tls", tls=tls))
    acc = AccountSettings(
        name="provider",
        registrar=DOMAIN,
        username="alice",
        password="alicepw",
        transport=transport,  # type: ignore[arg-type]
        keepalive_s=0,
    )
    ep = SipEndpoint(
        EndpointSettings(transports=tuple(transports), accounts=(acc,), nameservers=(dns.address,))
    )
    await ep.start()
    try:
        ev = await wait_event(ep, RegistrationChanged, timeout=20)
        assert ev.registered, (ev, dns.queries(), kam.log_text()[-1500:])
        dump = kam.kamcmd("ul.dump")
        assert dump is not None and "alice" in dump
        if transport != "udp":
            assert transport in dump.lower()
    finally:
        await ep.stop()
    service = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}[transport]
    assert f"SRV {service}.{DOMAIN}" in dns.queries()


def test_nameservers_pjsua_cannot_use_are_refused_by_name() -> None:
    EndpointSettings(nameservers=("192.0.2.53", "192.0.2.54:53", "[2001:db8::53]:53", "::1"))
    with pytest.raises(SipConfigError, match=r"'dns\.example' is not an IP address"):
        EndpointSettings(nameservers=("dns.example",))
    with pytest.raises(SipConfigError, match=r"'127\.0\.0\.1:5353'.*port 53 only"):
        EndpointSettings(nameservers=("127.0.0.1:5353",))
    with pytest.raises(SipConfigError, match="at most 4"):
        EndpointSettings(nameservers=tuple(f"192.0.2.{i}" for i in range(5)))
