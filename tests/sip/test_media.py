"""Line audio, DTMF and call operations against real peers (baresip, sipp, kamailio)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from firmware.dsp.dtmf import detect_dtmf, generate_dtmf
from firmware.sip.endpoint import SipEndpoint
from firmware.sip.events import CallMediaChanged, CallStateChanged, DtmfReceived, SipEvent
from firmware.sip.settings import EndpointSettings
from tests.sip.baresip import Baresip
from tests.sip.helpers import wait_event
from tests.sip.media import (
    LineClock,
    decoded_wav,
    dominant_hz,
    read_wav,
    record_config,
    rms,
    tone,
)
from tests.sip.peers import make_pki

LINE = 1
UPLINK_HZ = 1000.0  # what the line says
FAR_END_HZ = 440.0  # baresip's ausine source (tests/sip/baresip.py CONFIG)


async def poll(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def bs_event(phone: Baresip, kind: str, timeout: float = 20.0) -> dict[str, object]:
    return await asyncio.to_thread(phone.wait_event, kind, timeout)


async def test_audio_both_ways_and_dtmf_with_baresip_over_udp(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    rec = tmp_path / "rec"
    phone = Baresip(
        tmp_path / "bs", "<sip:bob@127.0.0.1>;regint=0;answermode=auto", pki, record_config(rec)
    )
    ep = SipEndpoint(EndpointSettings(line_ports=(LINE, 2), codecs=("PCMU",)))
    clock = None
    seen: list[SipEvent] = []
    try:
        await ep.start()
        line = ep.line_audio(LINE)
        clock = LineClock(line)
        clock.play(tone(UPLINK_HZ, 1.0))
        clock.start()
        cid = await ep.make_call("local", f"sip:bob@127.0.0.1:{phone.sip_port}")
        # bound before the call has media: connected as soon as it has
        await ep.connect_audio(cid, LINE)
        await wait_event(ep, CallMediaChanged, lambda e: e.active, timeout=20, seen=seen)
        await bs_event(phone, "CALL_ESTABLISHED")
        assert line.stats().call_id == cid

        # the far end's sine arrives in the line's downlink
        clock.clear_received()
        await poll(lambda: rms(clock.received()[-8000:]) > 1000 and clock.received().size >= 16000)
        heard = clock.received()[-8000:]
        assert abs(dominant_hz(heard) - FAR_END_HZ) < 15

        # RFC 4733 out: baresip reports each digit
        await ep.send_dtmf(cid, "159#", "rfc4733")
        digits = [str((await bs_event(phone, "CALL_DTMF_START"))["param"]) for _ in range(4)]
        assert "".join(digits) == "159#"

        # RFC 4733 in: baresip sends digits, the box reports them
        phone.command("sndcode", "42*")
        got = []
        for _ in range(3):
            ev = await wait_event(ep, DtmfReceived, timeout=20, seen=seen)
            got.append(ev)
        assert "".join(e.digit for e in got) == "42*"
        assert {e.method for e in got} == {"rfc4733"} and {e.call_id for e in got} == {cid}

        # in-band DTMF from the line, after a while of the tone
        await asyncio.sleep(1.0)
        # a pause first: a receiver needs the tone gone before the first digit (Q.24)
        pause = np.zeros(1600, dtype=np.int16)
        clock.play(np.concatenate([pause, generate_dtmf("0369", on_ms=100, off_ms=100)]), False)
        await asyncio.sleep(2.0)

        quality = await ep.call_quality(cid)
        assert quality.codec == "PCMU"
        assert quality.rx_packets > 50 and quality.tx_packets > 50
        assert quality.rx_loss_pct < 5
        assert 3.5 < quality.mos <= 4.5

        await ep.hangup(cid)
        await wait_event(ep, CallStateChanged, lambda e: e.state == "disconnected", seen=seen)
        await bs_event(phone, "CALL_CLOSED")
        await poll(lambda: line.stats().call_id is None, what="port released")

        stats = line.stats()
        assert stats.callback_errors == 0
        assert stats.frames_to_sip > 100 and stats.frames_from_sip > 100
        traces = ep.messages()
        invites = [t for t in traces if t.first_line.startswith("INVITE ")]
        assert invites and invites[0].direction == "tx" and "m=audio" in invites[0].text
        assert any(t.direction == "rx" and t.first_line.startswith("SIP/2.0 200") for t in traces)
    finally:
        if clock is not None:
            clock.stop()
        await ep.stop()
        phone.stop()

    # what baresip played: the line's tone, then the in-band digits
    played, rate = read_wav(decoded_wav(rec))
    assert rate == 8000
    loud = played[np.abs(played) > 500]
    assert loud.size > 8000, "baresip heard nothing"
    first = played[np.argmax(np.abs(played) > 500) :][:8000]
    assert abs(dominant_hz(first) - UPLINK_HZ) < 15
    assert "".join(t.digit for t in detect_dtmf(played, rate)).endswith("0369")


@pytest.mark.parametrize("method", ["info"])
async def test_sip_info_dtmf_out(tmp_path: Path, method: str) -> None:
    pki = make_pki(tmp_path / "pki")
    phone = Baresip(tmp_path / "bs", "<sip:bob@127.0.0.1>;regint=0;answermode=auto", pki)
    ep = SipEndpoint(EndpointSettings(codecs=("PCMU",)))
    try:
        await ep.start()
        cid = await ep.make_call("local", f"sip:bob@127.0.0.1:{phone.sip_port}")
        await wait_event(ep, CallStateChanged, lambda e: e.state == "confirmed", timeout=20)
        await ep.send_dtmf(cid, "7", method)
        # baresip 1.0 answers INFO dtmf-relay and reports the digit
        ev = await bs_event(phone, "CALL_DTMF_START")
        assert ev["param"] == "7"
    finally:
        await ep.stop()
        phone.stop()
