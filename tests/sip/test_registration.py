"""Trunk registration against a real kamailio with digest authentication (UDP and TLS)."""

from __future__ import annotations

import pytest

from firmware.sip.endpoint import SipEndpoint
from firmware.sip.events import RegistrationChanged, RegistrationRetryScheduled
from firmware.sip.settings import (
    AccountSettings,
    EndpointSettings,
    TlsSettings,
    TransportSettings,
    account_from_store,
)
from firmware.store.schema import NatConfig, Trunk
from tests.sip.helpers import wait_event
from tests.sip.peers import Kamailio, make_pki

USERS = {"alice": "alicepw", "bob": "bobpw"}


@pytest.fixture
def kamailio(tmp_path):
    kam = Kamailio(tmp_path / "kam", USERS)
    yield kam
    kam.stop()


async def test_trunk_from_the_store_registers_over_udp(kamailio: Kamailio) -> None:
    trunk = Trunk(
        name="provider",
        registrar=f"127.0.0.1:{kamailio.port}",
        username="alice",
        password="alicepw",
        realm="127.0.0.1",
        expiry_s=120,
        nat=NatConfig(keepalive_s=0),
    )
    settings = EndpointSettings(
        transports=(TransportSettings("udp"),), accounts=(account_from_store(trunk),)
    )
    ep = SipEndpoint(settings)
    await ep.start()
    try:
        ev = await wait_event(ep, RegistrationChanged, lambda e: e.account == "provider")
        assert ev.registered and ev.code == 200
        assert 0 < ev.expires_s <= 120
        dump = kamailio.kamcmd("ul.dump")
        assert dump is not None and "alice" in dump
        assert f"127.0.0.1:{ep.transport('udp').port}" in dump
    finally:
        await ep.stop()
    # stop() unregistered: the registrar no longer knows the contact
    dump = kamailio.kamcmd("ul.dump")
    assert dump is not None and "alice" not in dump


async def test_wrong_password_is_a_clear_failure_with_back_off(kamailio: Kamailio) -> None:
    acc = AccountSettings(
        name="provider",
        registrar=f"127.0.0.1:{kamailio.port}",
        username="bob",
        password="not-bobs",
        retry_s=30,
    )
    ep = SipEndpoint(EndpointSettings(accounts=(acc,)))
    await ep.start()
    try:
        ev = await wait_event(ep, RegistrationChanged)
        assert not ev.registered
        assert ev.code in (401, 403)
        retry = await wait_event(ep, RegistrationRetryScheduled)
        assert retry.attempt == 1 and 27 <= retry.delay_s <= 33
        dump = kamailio.kamcmd("ul.dump")
        assert dump is not None and "bob" not in dump
    finally:
        await ep.stop()


async def test_registration_over_tls_verifying_the_registrar(tmp_path) -> None:
    pki = make_pki(tmp_path / "pki")
    kam = Kamailio(tmp_path / "kam", USERS, tls=pki)
    try:
        tls = TlsSettings(str(pki.cert), str(pki.key), str(pki.ca_cert), verify_server=True)
        acc = AccountSettings(
            name="secure",
            registrar=f"127.0.0.1:{kam.tls_port}",
            username="alice",
            password="alicepw",
            transport="tls",
            srtp="mandatory",
        )
        settings = EndpointSettings(
            transports=(TransportSettings("udp"), TransportSettings("tls", tls=tls)),
            accounts=(acc,),
        )
        ep = SipEndpoint(settings)
        await ep.start()
        try:
            ev = await wait_event(ep, RegistrationChanged, timeout=15)
            assert ev.registered, ev
            dump = kam.kamcmd("ul.dump")
            assert dump is not None and "alice" in dump and "tls" in dump.lower()
        finally:
            await ep.stop()
    finally:
        kam.stop()


async def test_tls_registrar_with_an_untrusted_certificate_is_refused(tmp_path) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other")  # a CA that did not sign kamailio's certificate
    kam = Kamailio(tmp_path / "kam", USERS, tls=pki)
    try:
        tls = TlsSettings(str(other.cert), str(other.key), str(other.ca_cert))
        acc = AccountSettings(
            name="secure",
            registrar=f"127.0.0.1:{kam.tls_port}",
            username="alice",
            password="alicepw",
            transport="tls",
        )
        settings = EndpointSettings(
            transports=(TransportSettings("udp"), TransportSettings("tls", tls=tls)),
            accounts=(acc,),
        )
        ep = SipEndpoint(settings)
        await ep.start()
        try:
            ev = await wait_event(ep, RegistrationChanged, timeout=15)
            assert not ev.registered
            dump = kam.kamcmd("ul.dump")
            assert dump is not None and "alice" not in dump
        finally:
            await ep.stop()
    finally:
        kam.stop()


async def test_failed_registration_is_retried_with_growing_delays(kamailio: Kamailio) -> None:
    acc = AccountSettings(
        name="provider",
        registrar=f"127.0.0.1:{kamailio.port}",
        username="bob",
        password="not-bobs",
        retry_s=1,
    )
    ep = SipEndpoint(EndpointSettings(accounts=(acc,)))
    await ep.start()
    try:
        delays = []
        for attempt in (1, 2):
            failed = await wait_event(ep, RegistrationChanged, timeout=10)
            assert not failed.registered
            retry = await wait_event(ep, RegistrationRetryScheduled, timeout=10)
            assert retry.attempt == attempt
            delays.append(retry.delay_s)
        # the second attempt really went out (a second failure came back) and waits longer
        assert 0.9 <= delays[0] <= 1.1 and 1.8 <= delays[1] <= 2.2
    finally:
        await ep.stop()


async def test_call_over_tls_with_mandatory_srtp_from_baresip_via_kamailio(tmp_path) -> None:
    import asyncio

    from firmware.sip.events import CallStateChanged, IncomingCall
    from firmware.sip.policy import InboundPolicy, PolicySettings, TrunkHosts
    from tests.sip.baresip import Baresip

    pki = make_pki(tmp_path / "pki")
    kam = Kamailio(tmp_path / "kam", USERS, tls=pki)
    phone = None
    ep = None
    try:
        tls = TlsSettings(str(pki.cert), str(pki.key), str(pki.ca_cert))
        acc = AccountSettings(
            name="provider", registrar=f"127.0.0.1:{kam.tls_port}", username="alice",
            password="alicepw", transport="tls", srtp="mandatory",
        )  # fmt: skip
        policy = InboundPolicy(
            PolicySettings(trunks=(TrunkHosts("provider", ("127.0.0.1/32",)),)), b"x" * 32
        )
        ep = SipEndpoint(
            EndpointSettings(
                transports=(TransportSettings("udp"), TransportSettings("tls", tls=tls)),
                accounts=(acc,),
            ),
            policy,
        )
        await ep.start()
        assert (await wait_event(ep, RegistrationChanged, timeout=15)).registered
        phone = Baresip(
            tmp_path / "bs",
            f"<sip:bob@127.0.0.1:{kam.tls_port};transport=tls>;auth_pass=bobpw;"
            "regint=300;mediaenc=srtp-mand",
            pki,
        )
        # baresip may register before our control connection exists: ask the registrar
        for _ in range(100):
            if "AoR: bob" in (kam.kamcmd("ul.dump") or ""):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"baresip did not register: {phone.log_text()[-1500:]}")
        phone.command("dial", f"sip:alice@127.0.0.1:{kam.tls_port};transport=tls")
        incoming = await wait_event(ep, IncomingCall, timeout=15)
        assert incoming.account == "provider" and incoming.peer == "provider"
        await ep.answer(incoming.call_id, 200)
        await wait_event(ep, CallStateChanged, lambda e: e.state == "confirmed", timeout=15)
        await asyncio.to_thread(phone.wait_event, "CALL_ESTABLISHED")
        # both sides demand SRTP: the call exists only because SDES keys were agreed
        media = await ep.call(
            lambda core: [str(m.type) for m in core.calls[incoming.call_id].getInfo().media]
        )
        assert media
        await ep.hangup(incoming.call_id)
        await asyncio.to_thread(phone.wait_event, "CALL_CLOSED")
    finally:
        if ep is not None:
            await ep.stop()
        if phone is not None:
            phone.stop()
        kam.stop()


def pj_proto_rtp_savp() -> int:
    # pjmedia/transport.h PJMEDIA_TP_PROTO_RTP_SAVP; read from pjsua2 itself, which is
    # already loaded in this process by the endpoint.
    import pjsua2

    return int(pjsua2.PJMEDIA_TP_PROTO_RTP_SAVP)
