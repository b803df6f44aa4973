"""An IP phone on the box end to end: baresip calls a real ``ponte run`` as extension 101.

The phone registers nowhere (``regint=0``): it sends its INVITEs straight to the box, which
challenges them (security.digest_algorithms = MD5 only: baresip 1.0 answers only the first
challenge and knows only MD5, docs/sip.md).  Everything runs on 127.0.0.1, where the
provider (kamailio) lives too, so the trunk's host-based admission is moved off loopback
(``allowed_hosts`` a TEST-NET address, RFC 5737): otherwise the phone's INVITEs would be
taken for the provider's.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.store.schema import Config
from tests.service.sipsite import Site, softphone_heard
from tests.service.test_run import Appliance
from tests.sip.baresip import Baresip
from tests.sip.media import record_config

BARESIP_TONE_HZ = 440  # tests/sip/baresip.py: audio_source ausine,440
IP_PHONE_PASSWORD = "ip101pw"
NOT_LOOPBACK = "192.0.2.1/32"  # RFC 5737 TEST-NET-1: no packet of this test comes from it


def ip_phone_office(config: Config) -> Config:
    extensions = tuple(
        dataclasses.replace(e, sip_password=IP_PHONE_PASSWORD) if e.number == "101" else e
        for e in config.extensions
    )
    trunks = tuple(dataclasses.replace(t, allowed_hosts=(NOT_LOOPBACK,)) for t in config.sip.trunks)
    return dataclasses.replace(
        config,
        extensions=extensions,
        sip=dataclasses.replace(config.sip, trunks=trunks),
        security=dataclasses.replace(config.security, digest_algorithms=("MD5",)),
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, adjust=ip_phone_office)
    yield s
    s.close()


@pytest.fixture
def ip_phone(site: Site, tmp_path: Path) -> Iterator[tuple[Baresip, Path, str]]:
    assert site.box is not None
    box_uri = f"127.0.0.1:{sip_port(site.box)}"
    heard = tmp_path / "ip-phone-heard"
    phone = Baresip(
        tmp_path / "ip-phone",
        f"<sip:101@{box_uri}>;auth_pass={IP_PHONE_PASSWORD};regint=0;answermode=manual",
        site.pki,
        extra=record_config(heard),
    )
    yield phone, heard, box_uri
    phone.stop()


def sip_port(box: Appliance) -> int:
    m = re.search(r"SIP endpoint up: udp:127\.0\.0\.1:(\d+)", box.log_text())
    assert m is not None, box.log_text()
    return int(m.group(1))


def test_an_ip_phone_calls_out_through_the_trunk_and_the_two_legs_are_bridged(
    site: Site, ip_phone: tuple[Baresip, Path, str]
) -> None:
    box, far = site.box, site.phone
    assert box is not None and far is not None
    phone, phone_heard, box_uri = ip_phone
    phone.command("dial", f"sip:8201@{box_uri}")
    far.wait_event("CALL_INCOMING", timeout=30)  # 201 at the provider rings
    far.command("accept")
    far.wait_event("CALL_ESTABLISHED", timeout=15)
    phone.wait_event("CALL_ESTABLISHED", timeout=15)
    box.wait_log("audio of SIP legs", timeout=15)
    assert "INVITE from 127.0.0.1 refused: 401" in box.log_text()  # challenged, then let in
    time.sleep(2.0)  # two seconds of each side's tone through the box's bridge
    phone.command("hangup")
    far.wait_event("CALL_CLOSED", timeout=15)  # the box ended the provider's leg
    phone.wait_event("CALL_CLOSED", timeout=15)
    # Each decoded the other's 440 Hz, which reached it only through the box.
    assert softphone_heard(phone_heard, BARESIP_TONE_HZ)
    assert softphone_heard(site.heard_dir, BARESIP_TONE_HZ)


def test_a_wrong_password_is_refused_and_never_rings_anything(site: Site, tmp_path: Path) -> None:
    box, far = site.box, site.phone
    assert box is not None and far is not None
    box_uri = f"127.0.0.1:{sip_port(box)}"
    guesser = Baresip(
        tmp_path / "guesser",
        f"<sip:101@{box_uri}>;auth_pass=guess;regint=0;answermode=manual",
        site.pki,
    )
    try:
        guesser.command("dial", f"sip:8201@{box_uri}")
        closed = guesser.wait_event("CALL_CLOSED", timeout=20)
        assert "403" in str(closed.get("param", "")), closed
    finally:
        guesser.stop()
    box.wait_log("refused: 403 Forbidden (wrong password)", timeout=10)
    assert "incoming SIP leg" not in box.log_text()  # no call was made of it
