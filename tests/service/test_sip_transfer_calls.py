"""Hold, transfer and bridged SIP legs end to end: a real ``ponte run`` (simulated line card,
real pjsua2) with a trunk to kamailio, and baresip softphones at the provider.

The re-INVITEs and REFERs are checked in the box's own SIP trace (``sip.messages``), the
audio where it ends up: the handset's recording, and what each softphone decoded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware.api.client import ApiClient
from tests.service.live import login
from tests.service.sipsite import Site, softphone_heard
from tests.service.test_local_calls import record
from tests.service.test_run import dominant_hz

BARESIP_TONE_HZ = 440  # tests/sip/baresip.py: audio_source ausine,440
OTHER_USER, OTHER_PASSWORD = "202", "pw202"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, users={OTHER_USER: OTHER_PASSWORD})
    yield s
    s.close()


def handset(site: Site, action: str, **kw: object) -> None:
    assert site.box is not None
    site.box.sim(target="handset", number=1, action=action, **kw)


def flash(site: Site) -> None:
    handset(site, "flash")


async def wait_message(
    api: ApiClient,
    contains: str,
    direction: str,
    first: str,
    *,
    after: float = 0.0,
    body: str = "",
) -> dict[str, Any]:
    """The first SIP message the box sent or got (after ``after``) holding ``contains``,
    and ``body`` in its body."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = (await api.call("sip.messages", {"contains": contains}))["messages"]
        for m in found:
            if m["direction"] == direction and m["first_line"].startswith(first):
                if m["time"] > after and body in m["text"].partition("\r\n\r\n")[2]:
                    return dict(m)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {direction} {first} with {contains!r} in the box's SIP trace")


async def local_calls(api: ApiClient) -> list[dict[str, Any]]:
    """Call control's calls that have a SIP leg (not a phone dialling a consultation)."""
    return [c for c in (await api.call("calls.list"))["local"] if c["leg"] is not None]


def talk_to_softphone(site: Site) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    handset(site, "off-hook")
    box.wait_log("port 1: OffHook")
    handset(site, "dial", digits="8201")
    phone.wait_event("CALL_INCOMING", timeout=20)
    phone.command("accept")
    phone.wait_event("CALL_ESTABLISHED", timeout=15)
    box.wait_log("audio of port 1 and SIP leg", timeout=15)


async def test_flash_holds_the_softphone_by_reinvite_and_resumes_it(
    site: Site, tmp_path: Path
) -> None:
    box = site.box
    assert box is not None
    api = ApiClient(box.data / "api.sock", client_name="test", timeout=30)
    async with api:
        await login(api)
        talk_to_softphone(site)
        start = time.time() - 1
        flash(site)
        box.wait_log("flash holds the call", timeout=10)
        held = await wait_message(api, "a=sendonly", "tx", "INVITE", after=start)
        assert "a=sendrecv" not in held["text"]
        (row,) = await local_calls(api)
        assert row["hold"] == "local"
        # The held softphone's 440 Hz no longer reaches the handset: the country's recall
        # dial tone (ITU: 425 Hz) does.
        tone = record(box, 1, tmp_path / "held.wav", 0.8)
        assert dominant_hz(tone[1600:]) == pytest.approx(425, abs=5)
        flash(site)  # nothing dialled: back to the softphone
        box.wait_log("flash drops the consultation", timeout=10)
        resumed = await wait_message(api, "a=sendrecv", "tx", "INVITE", after=held["time"])
        assert "a=sendonly" not in resumed["text"]
        heard = record(box, 1, tmp_path / "resumed.wav", 1.0)
        assert dominant_hz(heard[2400:]) == pytest.approx(BARESIP_TONE_HZ, abs=10)
        assert (await local_calls(api))[0]["hold"] == ""
        handset(site, "on-hook")
        assert site.phone is not None
        site.phone.wait_event("CALL_CLOSED", timeout=15)


async def test_the_softphone_holding_us_is_shown_and_the_call_goes_on(
    site: Site, tmp_path: Path
) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    api = ApiClient(box.data / "api.sock", client_name="test", timeout=30)
    async with api:
        await login(api)
        talk_to_softphone(site)
        phone.command("hold")
        box.wait_log("held by the far end", timeout=15)
        await wait_message(api, "a=sendonly", "rx", "INVITE")
        (row,) = await local_calls(api)
        assert row["hold"] == "remote" and row["state"] == "talking"
        phone.command("resume")
        box.wait_log("resumed by the far end", timeout=15)
        heard = record(box, 1, tmp_path / "back.wav", 1.0)
        assert dominant_hz(heard[2400:]) == pytest.approx(BARESIP_TONE_HZ, abs=10)
        assert (await local_calls(api))[0]["hold"] == ""
        handset(site, "on-hook")
        phone.wait_event("CALL_CLOSED", timeout=15)


def test_blind_transfer_to_the_same_provider_is_a_refer(site: Site) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    other, _ = site.add_phone(OTHER_USER, OTHER_PASSWORD)
    talk_to_softphone(site)
    flash(site)
    box.wait_log("flash holds the call", timeout=10)
    handset(site, "dial", digits="8202")
    other.wait_event("CALL_INCOMING", timeout=20)  # the consultation rings 202 ...
    handset(site, "on-hook")  # ... and the phone hangs up: blind transfer
    box.wait_log("blind transfer: REFER on leg", timeout=10)
    # 201 got the REFER and calls 202 itself; the box's consultation call was cancelled.
    incoming = other.wait_event("CALL_INCOMING", timeout=20)
    assert "201" in str(incoming.get("peeruri", "")), incoming
    other.command("accept")
    box.wait_log("transfer done (200", timeout=20)
    phone.wait_event("CALL_CLOSED", timeout=15)  # our leg with 201 ended by us
    text = box.log_text()
    assert "REFER to sip:202@" in text


def test_a_trunk_call_forwarded_outside_is_bridged_to_a_second_leg(site: Site) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    other, other_heard = site.add_phone(OTHER_USER, OTHER_PASSWORD)
    # Extension 101 forwards everything to 202 at the provider (*72 + 8202).
    handset(site, "off-hook")
    box.wait_log("port 1: OffHook")
    handset(site, "dial", digits="*72")
    box.wait_log("dialled feature code", timeout=10)
    handset(site, "dial", digits="8202")
    box.wait_log("extension 101: ", timeout=10)
    handset(site, "on-hook")
    # 201 calls the box's number: the trunk's destination is 101, which forwards to 202.
    phone.command("dial", f"sip:ponte@{site.provider_uri}")
    incoming = other.wait_event("CALL_INCOMING", timeout=30)
    assert "201" in str(incoming.get("peeruri", "")), incoming  # the caller's number goes on
    other.command("accept")
    other.wait_event("CALL_ESTABLISHED", timeout=15)
    phone.wait_event("CALL_ESTABLISHED", timeout=15)
    box.wait_log("audio of SIP legs", timeout=15)
    time.sleep(2.0)  # two seconds of each side's tone through the bridge
    phone.command("hangup")
    other.wait_event("CALL_CLOSED", timeout=15)  # the box ended the second leg
    phone.wait_event("CALL_CLOSED", timeout=15)
    # Each softphone decoded the other's 440 Hz, which reached it only through the box's
    # conference bridge (no line takes part, and the box sends no tone of its own here).
    assert softphone_heard(site.heard_dir, BARESIP_TONE_HZ)
    assert softphone_heard(other_heard, BARESIP_TONE_HZ)


async def test_attended_transfer_sends_refer_with_replaces_and_bridges_when_it_fails(
    site: Site,
) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    other, other_heard = site.add_phone(OTHER_USER, OTHER_PASSWORD)
    api = ApiClient(box.data / "api.sock", client_name="test", timeout=30)
    async with api:
        await login(api)
        talk_to_softphone(site)
        flash(site)
        box.wait_log("flash holds the call", timeout=10)
        handset(site, "dial", digits="8202")
        other.wait_event("CALL_INCOMING", timeout=20)
        other.command("accept")
        other.wait_event("CALL_ESTABLISHED", timeout=15)
        box.wait_log("audio of port 1 and SIP leg", count=2, timeout=15)
        handset(site, "on-hook")  # talking to 202: attended transfer
        box.wait_log("attended transfer: REFER on leg", timeout=10)
        refer = await wait_message(api, "Refer-To", "tx", "REFER")
        assert "Replaces=" in refer["text"] and "202@" in refer["text"]
        # baresip 1.0 accepts the REFER (202) but cannot honour Replaces: its INVITE to 202
        # times out (RFC 3261 timer B, 32 s) and its NOTIFY says so.  The box then bridges
        # the two legs itself, and 201 and 202 talk through it.
        box.wait_log("REFER refused or failed", timeout=60)
        box.wait_log("audio of SIP legs 1 and 2 bridged", timeout=15)
        await asyncio.sleep(2.0)
        phone.command("hangup")
        other.wait_event("CALL_CLOSED", timeout=15)
    # 202 decoded 201's 440 Hz, which reached it only through the bridge.  (201's own
    # decoder dump is cut short by the hold and resume re-INVITEs in baresip 1.0's sndfile.)
    assert softphone_heard(other_heard, BARESIP_TONE_HZ)


async def test_a_refer_from_the_softphone_is_honoured_and_the_handset_talks_to_the_target(
    site: Site, tmp_path: Path
) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    other, other_heard = site.add_phone(OTHER_USER, OTHER_PASSWORD)
    api = ApiClient(box.data / "api.sock", client_name="test", timeout=30)
    async with api:
        await login(api)
        talk_to_softphone(site)
        # 201 transfers the handset to 202 at the same provider: a REFER to the box.
        phone.command("transfer", f"sip:{OTHER_USER}@{site.provider_uri}")
        await wait_message(api, "SIP/2.0 202", "tx", "SIP/2.0 202")
        incoming = other.wait_event("CALL_INCOMING", timeout=20)  # the box calls 202
        assert "ponte" in str(incoming.get("peeruri", "")), incoming
        other.command("accept")
        box.wait_log("it replaces leg", timeout=15)
        # pjsua told 201 how it went (a NOTIFY with a sipfrag), and 201 hung up its leg.
        await wait_message(api, "message/sipfrag", "tx", "NOTIFY", body="SIP/2.0 200")
        phone.wait_event("CALL_CLOSED", timeout=15)
        box.wait_log("audio of port 1 and SIP leg", count=2, timeout=15)
        heard = record(box, 1, tmp_path / "target.wav", 1.0)
        assert dominant_hz(heard[2400:]) == pytest.approx(BARESIP_TONE_HZ, abs=10)
        handset(site, "tone", freqs=[1000])
        await asyncio.sleep(1.5)
        handset(site, "on-hook")
        other.wait_event("CALL_CLOSED", timeout=15)
    assert softphone_heard(other_heard, 1000)


async def test_a_refer_to_another_host_is_refused_with_403(site: Site) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    api = ApiClient(box.data / "api.sock", client_name="test", timeout=30)
    async with api:
        await login(api)
        talk_to_softphone(site)
        # pjsua would call whatever host the Refer-To names, through the trunk's account.
        phone.command("transfer", "sip:5551234@127.0.0.2:5060")
        await wait_message(api, "SIP/2.0 403", "tx", "SIP/2.0 403")
        box.wait_log("REFER to", timeout=10)
        assert "is not 'provider'" in box.log_text()
        # Nothing was called (baresip 1.0 ends its call on a refused transfer, by itself).
        sent = (await api.call("sip.messages", {"contains": "5551234"}))["messages"]
        assert not [m for m in sent if m["first_line"].startswith("INVITE")]
        handset(site, "on-hook")
