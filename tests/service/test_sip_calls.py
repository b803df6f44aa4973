"""Calls between simulated analogue phones and a real softphone, through a real provider.

A real ``ponte run`` (simulated line card, real pjsua2) registers a trunk to kamailio; baresip
is user 201 at the same provider.  Audio is checked where it ends up: what the handset
hears (the simulator records it) and what baresip plays (its aufile player writes a WAV).
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware.api.client import ApiClient, ApiError
from firmware.dsp.dtmf import DtmfDetector, DtmfStart
from tests.service.live import login
from tests.service.sipsite import Site, phone_heard, read_wav
from tests.service.test_local_calls import record, wait_status
from tests.service.test_run import dominant_hz

BARESIP_TONE_HZ = 440  # tests/sip/baresip.py: audio_source ausine,440


@pytest.fixture(params=["udp", "tls-srtp"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, tls=request.param == "tls-srtp")
    yield s
    s.close()


def digits_in(pcm: np.ndarray) -> str:
    detector = DtmfDetector(8000)
    found = ""
    for i in range(0, len(pcm) - 160, 160):
        for event in detector.feed(pcm[i : i + 160].astype(np.int16)):
            if isinstance(event, DtmfStart):
                found += event.digit
    return found


def test_a_handset_calls_the_softphone_and_they_hear_each_other(site: Site, tmp_path: Path) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="8201")
    incoming = phone.wait_event("CALL_INCOMING", timeout=20)
    # The From carries the extension's caller ID: number 101, name "Port 1".
    assert "101" in str(incoming.get("peeruri", "")), incoming
    # The caller hears the country's ringback (ITU: 425 Hz) while the softphone rings (180).
    ringback = record(box, 1, tmp_path / "ringback.wav", 0.6)
    assert dominant_hz(ringback) == pytest.approx(425, abs=5)
    phone.command("accept")
    phone.wait_event("CALL_ESTABLISHED", timeout=15)
    box.wait_log("audio of port 1 and SIP leg", timeout=15)

    # The softphone's 440 Hz reaches the handset.
    heard = record(box, 1, tmp_path / "heard.wav", 1.0)
    assert dominant_hz(heard[2400:]) == pytest.approx(BARESIP_TONE_HZ, abs=10)

    # The handset's tone and in-band DTMF reach the softphone; the digits also go as RFC 4733.
    box.sim(target="handset", number=1, action="tone", freqs=[1000])
    time.sleep(1.5)
    box.sim(target="handset", number=1, action="stop-audio")
    box.sim(target="handset", number=1, action="dial", digits="5")
    dtmf = phone.wait_event("CALL_DTMF_START", timeout=10)
    assert dtmf.get("param") == "5"
    time.sleep(0.5)

    box.sim(target="handset", number=1, action="on-hook")
    phone.wait_event("CALL_CLOSED", timeout=15)
    box.wait_log("port 1: HungUp")
    played = phone_heard(site)
    assert len(played) > 8000
    # 1 s of 1000 Hz somewhere in what baresip played
    best = max(
        (dominant_hz(played[i : i + 4000]) for i in range(0, len(played) - 4000, 2000)),
        key=lambda hz: -abs(hz - 1000),
    )
    assert best == pytest.approx(1000, abs=10)


def test_the_softphone_calls_in_and_the_handset_shows_its_number(
    site: Site, tmp_path: Path
) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    phone.command("dial", f"sip:ponte@{site.provider_uri}")
    status = wait_status(box, 1, "ringing", True, timeout=20)
    assert not status["off_hook"]
    # Caller ID from the SIP From (201) reaches the phone's display as FSK that decodes.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = box.sim(target="handset", number=1, action="status")
        assert isinstance(now, dict)
        status = now
        if status.get("caller_id") and "201" in str(status["caller_id"]):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no caller ID on handset 1: {status}\n{box.log_text()[-3000:]}")
    box.sim(target="handset", number=1, action="off-hook")
    phone.wait_event("CALL_ESTABLISHED", timeout=15)
    heard = record(box, 1, tmp_path / "heard.wav", 1.0)
    assert dominant_hz(heard[2400:]) == pytest.approx(BARESIP_TONE_HZ, abs=10)
    phone.command("hangup")
    box.wait_log("SIP leg", timeout=10)
    busy = record(box, 1, tmp_path / "busy.wav", 1.0)
    assert dominant_hz(busy) == pytest.approx(425, abs=5)  # ITU busy: the far end left
    box.sim(target="handset", number=1, action="on-hook")


@pytest.fixture
def udp_site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.close()


async def test_the_api_shows_registrations_messages_and_calls(udp_site: Site) -> None:
    box = udp_site.box
    assert box is not None
    api = ApiClient(box.data / "api.sock", client_name="test", timeout=30)
    async with api:
        await login(api)
        status = await api.call("sip.status")
        assert status["running"] and status["legs_max"] == 4
        (reg,) = status["registrations"]
        assert reg["account"] == "provider" and reg["registered"]
        # "test registration": a REGISTER now, answered by the provider
        fresh = await api.call("sip.register_now", {"account": "provider"})
        assert fresh["registered"] and fresh["code"] == 200
        with pytest.raises(ApiError, match="no SIP account"):
            await api.call("sip.register_now", {"account": "nope"})
        messages = (await api.call("sip.messages", {"contains": "REGISTER"}))["messages"]
        assert any(
            m["direction"] == "tx" and m["first_line"].startswith("REGISTER") for m in messages
        )
        # a call up: one SIP leg with its quality, and the call control's view of it
        box.sim(target="handset", number=1, action="off-hook")
        box.wait_log("port 1: OffHook")
        box.sim(target="handset", number=1, action="dial", digits="8201")
        assert udp_site.phone is not None
        udp_site.phone.wait_event("CALL_INCOMING", timeout=20)
        udp_site.phone.command("accept")
        box.wait_log("audio of port 1 and SIP leg", timeout=15)
        await asyncio.sleep(2.5)  # RTCP and a few seconds of RTP for the figures
        calls = await api.call("calls.list")
        (leg,) = calls["calls"]
        assert leg["state"] == "confirmed" and leg["port"] == 1 and leg["direction"] == "out"
        assert leg["quality"]["codec"] in ("PCMA", "PCMU", "G722")
        assert 1.0 <= leg["quality"]["mos"] <= 4.5
        (local,) = calls["local"]
        assert local["ports"] == [1] and local["via"] == "provider"
        assert (await api.call("sip.status"))["legs_in_use"] == 1
        box.sim(target="handset", number=1, action="on-hook")
        udp_site.phone.wait_event("CALL_CLOSED", timeout=15)


def test_the_softphones_rfc4733_digits_are_played_to_the_handset(
    udp_site: Site, tmp_path: Path
) -> None:
    box, phone = udp_site.box, udp_site.phone
    assert box is not None and phone is not None
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="8201")
    phone.wait_event("CALL_INCOMING", timeout=20)
    phone.command("accept")
    box.wait_log("audio of port 1 and SIP leg", timeout=15)
    path = tmp_path / "digits.wav"
    box.sim(target="handset", number=1, action="record", file=str(path), seconds=3.0)
    time.sleep(0.3)
    phone.command("sndcode", "42*")
    heard = record_file(path, 3.0)
    assert digits_in(heard) == "42*"
    box.sim(target="handset", number=1, action="on-hook")
    phone.wait_event("CALL_CLOSED", timeout=15)


def record_file(path: Path, seconds: float) -> np.ndarray:
    deadline = time.monotonic() + seconds + 15
    while time.monotonic() < deadline:
        if path.exists():
            try:
                pcm = read_wav(path)
            except (EOFError, wave.Error):
                pcm = np.zeros(0)
            if len(pcm) >= int(seconds * 8000) - 160:
                return pcm
        time.sleep(0.05)
    raise AssertionError(f"no recording in {path}")


def test_an_exchange_call_goes_out_to_the_softphone_with_its_caller_id(
    tmp_path: Path,
) -> None:
    # The exchange line's calls go to the softphone (8 + 201 through the provider trunk).
    site = Site(tmp_path, fxo_destination="8201")
    try:
        box, phone = site.box, site.phone
        assert box is not None and phone is not None
        box.sim(target="co", number=1, action="ring", caller_id="5551234", name="ALICE")
        incoming = phone.wait_event("CALL_INCOMING", timeout=30)
        # The caller ID the FXO line decoded goes out in the SIP From.
        assert "5551234" in str(incoming.get("peeruri", "")), incoming
        phone.command("accept")
        phone.wait_event("CALL_ESTABLISHED", timeout=15)
        box.wait_log("audio of port 3 and SIP leg", timeout=15)
        # The exchange line is answered (seized) only now, and carries audio both ways.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            co = box.sim(target="co", number=1, action="status")
            assert isinstance(co, dict)
            if co["state"] != "ringing":
                break
            time.sleep(0.1)
        path = tmp_path / "line.wav"
        box.sim(target="co", number=1, action="record", file=str(path), seconds=1.0)
        line = record_file(path, 1.0)
        assert dominant_hz(line[2400:]) == pytest.approx(BARESIP_TONE_HZ, abs=10)
        phone.command("hangup")
        phone.wait_event("CALL_CLOSED", timeout=15)
    finally:
        site.close()
