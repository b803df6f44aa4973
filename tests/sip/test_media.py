"""Line audio, DTMF and call operations against real peers (baresip, sipp, kamailio)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import numpy as np
import pytest

from firmware.dsp.dtmf import detect_dtmf, generate_dtmf
from firmware.sip.endpoint import SipEndpoint
from firmware.sip.errors import SipLimitError, SipUsageError
from firmware.sip.events import (
    CallerIdentity,
    CallMediaChanged,
    CallStateChanged,
    DtmfReceived,
    IncomingCall,
    SipEvent,
)
from firmware.sip.policy import InboundPolicy, PolicySettings, TrunkHosts
from firmware.sip.settings import AccountSettings, EndpointSettings, TlsSettings, TransportSettings
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
from tests.sip.peers import DATA, Kamailio, free_port, make_pki

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

        # then hold and resume (two re-INVITEs from the far end): the audio comes back on its own
        phone.command("hold")
        await wait_event(ep, CallMediaChanged, timeout=20, seen=seen)
        phone.command("resume")
        await wait_event(ep, CallMediaChanged, lambda e: e.active, timeout=20, seen=seen)
        clock.clear_received()
        await poll(lambda: rms(clock.received()[-4000:]) > 1000 and clock.received().size >= 8000)
        assert abs(dominant_hz(clock.received()[-4000:]) - FAR_END_HZ) < 15

        # the re-INVITEs made a new stream: its counters started again at the resume
        quality = await ep.call_quality(cid)
        assert quality.codec == "PCMU"
        assert quality.rx_packets > 20 and quality.tx_packets > 20
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


async def test_sip_info_dtmf_out(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    phone = Baresip(tmp_path / "bs", "<sip:bob@127.0.0.1>;regint=0;answermode=auto", pki)
    ep = SipEndpoint(EndpointSettings(codecs=("PCMU",)))
    try:
        await ep.start()
        cid = await ep.make_call("local", f"sip:bob@127.0.0.1:{phone.sip_port}")
        await wait_event(ep, CallStateChanged, lambda e: e.state == "confirmed", timeout=20)
        await ep.send_dtmf(cid, "7", "info")
        # baresip 1.0 answers INFO dtmf-relay and reports the digit
        ev = await bs_event(phone, "CALL_DTMF_START")
        assert ev["param"] == "7"
    finally:
        await ep.stop()
        phone.stop()


def trunk_endpoint(**settings: object) -> SipEndpoint:
    """An endpoint that admits INVITEs from 127.0.0.1 as the trunk "provider"."""
    policy = InboundPolicy(
        PolicySettings(trunks=(TrunkHosts("provider", ("127.0.0.1/32",)),)), b"s" * 32
    )
    return SipEndpoint(
        EndpointSettings(per_source_sessions_per_s=25.0, per_source_burst=25.0, **settings),  # type: ignore[arg-type]
        policy,
    )


async def start_sipp(ep: SipEndpoint, scenario: str, tmp: Path, *args: str):
    target = f"127.0.0.1:{ep.transport('udp').port}"
    return await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(DATA / scenario), "-i", "127.0.0.1", "-p", str(free_port()),
        "-mp", str(free_port()), "-m", "1", "-timeout", "30", "-timeout_error",
        "-trace_err", "-error_file", str(tmp / "sipp-err.log"), *args, target,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=tmp,
    )  # fmt: skip


async def finish(proc) -> tuple[int, str]:
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace")[-2000:]


async def test_incoming_caller_identity_from_pai_and_privacy(tmp_path: Path) -> None:
    ep = trunk_endpoint()
    await ep.start()
    try:
        cases = [
            # P-Asserted-Identity, Privacy -> number, name; the refusal code we hang up with
            ('"Alice Caller" <sip:+15551234@127.0.0.1>', "none", "+15551234", "Alice Caller", 486),
            ("<tel:+15559999>", "none", "+15559999", None, 603),
            ('"Alice Caller" <sip:+15551234@127.0.0.1>', "id", None, None, 503),
        ]
        for pai, privacy, number, name, code in cases:
            proc = await start_sipp(
                ep, "uac_identity_invite.xml", tmp_path, "-s", "5550100",
                "-set", "pai", pai, "-set", "privacy", privacy,
            )  # fmt: skip
            call = await wait_event(ep, IncomingCall, timeout=30)
            assert (call.caller_number, call.caller_name) == (number, name), pai
            assert call.called == "5550100"
            assert "From Name" in call.from_uri  # the From is kept as it came
            await ep.hangup(call.call_id, code)
            rc, out = await finish(proc)
            assert rc == 0, out
            refusal = [
                t
                for t in ep.messages()
                if t.direction == "tx" and t.first_line.startswith(f"SIP/2.0 {code}")
            ]
            assert refusal, [t.first_line for t in ep.messages()]
        with pytest.raises(SipUsageError, match=r"300\.\.699"):
            await ep.hangup(0, 200)
    finally:
        await ep.stop()


async def test_sip_info_dtmf_in(tmp_path: Path) -> None:
    ep = trunk_endpoint()
    await ep.start()
    try:
        proc = await start_sipp(ep, "uac_info_dtmf.xml", tmp_path, "-s", "100")
        call = await wait_event(ep, IncomingCall, timeout=30)
        await ep.answer(call.call_id, 200)
        dtmf = await wait_event(ep, DtmfReceived, timeout=30)
        assert (dtmf.call_id, dtmf.digit, dtmf.method) == (call.call_id, "5", "info")
        rc, out = await finish(proc)
        assert rc == 0, out
        await wait_event(ep, CallStateChanged, lambda e: e.state == "disconnected", timeout=30)
    finally:
        await ep.stop()


async def test_fifth_leg_refused_both_ways(tmp_path: Path) -> None:
    port = free_port()
    uas = await asyncio.create_subprocess_exec(
        "sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port()),
        cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    ep = trunk_endpoint(line_ports=(1, 2, 3, 4))
    await ep.start()
    try:
        ids = [await ep.make_call("local", f"sip:uas@127.0.0.1:{port}") for _ in range(4)]
        for i, cid in enumerate(ids):
            await ep.connect_audio(cid, i + 1)
        for _ in ids:
            await wait_event(ep, CallStateChanged, lambda e: e.state == "confirmed", timeout=30)
        with pytest.raises(SipLimitError, match="at most 4"):
            await ep.make_call("local", f"sip:uas@127.0.0.1:{port}", caller=CallerIdentity("1"))
        # an incoming fifth: refused by pjsua itself, never reaching the upper layer
        proc = await start_sipp(
            ep, "uac_identity_invite.xml", tmp_path, "-s", "200",
            "-set", "pai", "<sip:1@127.0.0.1>", "-set", "privacy", "none",
        )  # fmt: skip
        rc, out = await finish(proc)
        assert rc == 0, out
        sent = [t.first_line for t in ep.messages() if t.direction == "tx"]
        assert any(line.startswith(("SIP/2.0 486", "SIP/2.0 503")) for line in sent), sent
        # every line carries its own call
        assert {ep.line_audio(n).stats().call_id for n in (1, 2, 3, 4)} == set(ids)
        # a restart with four calls up and bound: everything released, the same buffers back
        before = ep.line_audio(1)
        await ep.restart()
        assert ep.line_audio(1) is before and before.stats().call_id is None
        assert await ep.call(lambda core: (len(core.calls), len(core.bindings))) == (0, 0)
    finally:
        await ep.stop()  # four calls up, four ports bound: must not abort
        uas.terminate()
        await uas.wait()
    for n in (1, 2, 3, 4):
        assert ep.line_audio(n).stats().call_id is None


async def test_caller_identity_goes_out_in_the_from(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    phone = Baresip(tmp_path / "bs", "<sip:bob@127.0.0.1>;regint=0", pki)
    ep = SipEndpoint(EndpointSettings())
    try:
        await ep.start()
        caller = CallerIdentity("+4930123456", "Jane Doe")
        cid = await ep.make_call("local", f"sip:bob@127.0.0.1:{phone.sip_port}", caller=caller)
        ev = await bs_event(phone, "CALL_INCOMING")
        assert "sip:+4930123456@127.0.0.1" in str(ev["peeruri"])
        assert ev["peerdisplayname"] == "Jane Doe"
        invite = next(t for t in ep.messages() if t.first_line.startswith("INVITE "))
        assert 'From: "Jane Doe" <sip:+4930123456@127.0.0.1>' in invite.text
        await ep.hangup(cid)
        await bs_event(phone, "CALL_CLOSED")
    finally:
        await ep.stop()
        phone.stop()


async def test_audio_over_tls_with_mandatory_srtp_via_kamailio(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    kam = Kamailio(tmp_path / "kam", {"alice": "alicepw", "bob": "bobpw"}, tls=pki)
    rec = tmp_path / "rec"
    phone = None
    ep = None
    clock = None
    try:
        tls = TlsSettings(str(pki.cert), str(pki.key), str(pki.ca_cert))
        acc = AccountSettings(
            name="provider", registrar=f"127.0.0.1:{kam.tls_port}", username="alice",
            password="alicepw", transport="tls", srtp="mandatory",
        )  # fmt: skip
        ep = SipEndpoint(
            EndpointSettings(
                transports=(TransportSettings("udp"), TransportSettings("tls", tls=tls)),
                accounts=(acc,),
                line_ports=(LINE,),
                codecs=("PCMA",),
            )
        )
        await ep.start()
        phone = Baresip(
            tmp_path / "bs",
            f"<sip:bob@127.0.0.1:{kam.tls_port};transport=tls>;auth_pass=bobpw;"
            "regint=300;mediaenc=srtp-mand;answermode=auto",
            pki,
            record_config(rec),
        )
        for _ in range(200):
            if "AoR: bob" in (kam.kamcmd("ul.dump") or ""):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"baresip did not register: {phone.log_text()[-1500:]}")
        line = ep.line_audio(LINE)
        clock = LineClock(line)
        clock.play(tone(UPLINK_HZ, 1.0))
        clock.start()
        cid = await ep.make_call("provider", f"sip:bob@127.0.0.1:{kam.tls_port};transport=tls")
        await ep.connect_audio(cid, LINE)
        await wait_event(ep, CallMediaChanged, lambda e: e.active, timeout=30)
        await poll(lambda: rms(clock.received()[-8000:]) > 1000 and clock.received().size >= 16000)
        assert abs(dominant_hz(clock.received()[-8000:]) - FAR_END_HZ) < 15
        quality = await ep.call_quality(cid)
        assert quality.codec == "PCMA" and quality.rx_packets > 20
        invite = next(t for t in ep.messages() if t.first_line.startswith("INVITE "))
        assert (
            invite.transport == "TLS" and "RTP/SAVP" in invite.text and "a=crypto:" in invite.text
        )
        await ep.hangup(cid)
        await bs_event(phone, "CALL_CLOSED")
    finally:
        if clock is not None:
            clock.stop()
        if ep is not None:
            await ep.stop()
        if phone is not None:
            phone.stop()
        kam.stop()
    played, rate = read_wav(decoded_wav(rec))
    first = played[np.argmax(np.abs(played) > 500) :][:rate]
    assert first.size == rate and abs(dominant_hz(first, rate) - UPLINK_HZ) < 15


async def test_early_media_is_connected_before_the_answer(tmp_path: Path) -> None:
    port = free_port()
    uas = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(DATA / "uas_early_media.xml"), "-i", "127.0.0.1", "-p", str(port),
        "-mp", str(free_port()), "-rtp_echo", "-m", "1",
        cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    ep = SipEndpoint(EndpointSettings(line_ports=(LINE,), codecs=("PCMU",)))
    clock = None
    seen: list[SipEvent] = []
    try:
        await ep.start()
        clock = LineClock(ep.line_audio(LINE))
        clock.play(tone(UPLINK_HZ, 1.0))
        clock.start()
        cid = await ep.make_call("local", f"sip:uas@127.0.0.1:{port}")
        await ep.connect_audio(cid, LINE)
        await wait_event(ep, CallMediaChanged, lambda e: e.active, timeout=20, seen=seen)
        states = [e.state for e in seen if isinstance(e, CallStateChanged)]
        assert states and states[-1] == "early" and "confirmed" not in states
        # sipp echoes our RTP: the line hears its own tone back while the call is still early
        clock.clear_received()
        # half a second of it, not the first loud frames: their onset is no pitch to judge
        await poll(
            lambda: len(clock.received()) >= 4000 and rms(clock.received()[-4000:]) > 1000,
            timeout=20,
        )
        assert abs(dominant_hz(clock.received()[-4000:]) - UPLINK_HZ) < 15
        state = await ep.call(lambda core: str(core.calls[cid].getInfo().stateText))
        assert state == "EARLY", "answered before the early media was checked"
        await wait_event(ep, CallStateChanged, lambda e: e.state == "confirmed", timeout=20)
        await ep.hangup(cid)
        await wait_event(ep, CallStateChanged, lambda e: e.state == "disconnected", timeout=20)
    finally:
        if clock is not None:
            clock.stop()
        await ep.stop()
        with contextlib.suppress(ProcessLookupError):
            uas.terminate()
        await uas.wait()
