"""The running simulator: real sockets, a real pty, the real Link, the PCM socket."""

from __future__ import annotations

import asyncio
import socket
import wave
from pathlib import Path

import numpy as np
import pytest

from drivers.audio.format import PcmFormat
from drivers.audio.socket_stream import SocketStream
from drivers.audio.wire import Hello, encode_hello
from drivers.linecard import protocol as p
from drivers.linecard.link import Link, LinkEvent
from drivers.linecard.session import DownReason, LinkDown, LinkUp
from drivers.sim.audio_client import AudioClient
from drivers.sim.endpoint import SimError
from drivers.sim.simulator import Simulator
from drivers.sim.tones import dtmf, sines, write_wav
from tests.sim.harness import tone_power


async def next_of(link: Link, kind: type, timeout: float = 3.0) -> LinkEvent:
    async with asyncio.timeout(timeout):
        async for event in link:
            if isinstance(event, kind):
                return event
    raise AssertionError("link closed")


async def test_handshake_and_hook_events_over_tcp() -> None:
    async with Simulator(fxs=4, fxo=2, seed=3) as sim, Link(sim.url) as link:
        assert sim.url.startswith("socket://127.0.0.1:")
        card = await link.wait_connected(timeout=3)
        assert card.ports == (p.PortKind.FXS,) * 4 + (p.PortKind.FXO,) * 2
        assert card.boot_id == sim.card.boot_id
        sim.handset(2).off_hook()
        event = await next_of(link, p.HookChange)
        assert isinstance(event, p.HookChange) and (event.port, event.off_hook) == (2, True)
        sim.handset(2).on_hook()
        later = await next_of(link, p.HookChange)
        assert isinstance(later, p.HookChange) and later.timestamp_ms >= event.timestamp_ms
        with pytest.raises(SimError, match="no handset 5"):
            sim.handset(5)


async def test_pty_transport_and_ringing_command(tmp_path: Path) -> None:
    link_path = tmp_path / "ttyLINECARD"
    async with Simulator(fxs=1, fxo=1, listen=f"pty:{link_path}") as sim:
        assert sim.url.startswith("/dev/pts/") and link_path.resolve() == Path(sim.url)
        async with Link(str(link_path)) as link:
            await link.wait_connected(timeout=3)
            await link.send(p.Ring(1, ((100, 100),), 20))
            await sim.wait_for(lambda: len(sim.handset(1).ring_log) >= 3, timeout=3)
            await link.send(p.StopRing(1))
            await sim.wait_for(lambda: not sim.handset(1).ringing)
    assert not link_path.exists()


async def test_unplugged_card_is_noticed_then_found_again() -> None:
    async with Simulator(fxs=1, fxo=0) as sim, Link(sim.url) as link:
        await link.wait_connected(timeout=3)
        sim.unplug()
        # The one-second bound itself is asserted on a simulated clock in
        # tests/linecard/test_session.py; here: the real shells get there.
        down = await next_of(link, LinkDown)
        assert isinstance(down, LinkDown) and down.reason is DownReason.PEER_SILENT
        sim.plug()
        assert isinstance(await next_of(link, LinkUp), LinkUp)


async def test_card_reset_and_garbage_on_the_line() -> None:
    async with Simulator(fxs=1, fxo=1) as sim, Link(sim.url) as link:
        await link.wait_connected(timeout=3)
        sim.inject_garbage(b"\x00\xff\x13\x37garbage\x00\x01\x02")
        sim.handset(1).off_hook()
        assert isinstance(await next_of(link, p.HookChange), p.HookChange)
        assert link.stats.frames_bad >= 1
        sim.reset_card()
        down = await next_of(link, LinkDown)
        assert isinstance(down, LinkDown) and down.reason is DownReason.PEER_RESET
        up = await next_of(link, LinkUp)
        assert isinstance(up, LinkUp) and up.card.boot_id == sim.card.boot_id


async def test_audio_socket_carries_dial_tone_and_dtmf_to_the_exchange() -> None:
    async with Simulator(fxs=1, fxo=1) as sim, Link(sim.url) as link:
        await link.wait_connected(timeout=3)
        audio = await AudioClient.connect(sim.audio_url, ports=[2])
        try:
            await link.send(p.Seize(2))
            lc = await next_of(link, p.LoopCurrent)
            assert isinstance(lc, p.LoopCurrent) and lc.present
            audio.discard()
            await audio.wait_samples(2, 2400)
            heard = audio.take(2)
            assert tone_power(heard[-1600:], 350) + tone_power(heard[-1600:], 440) > 0.9
            await audio.stream(2, dtmf("42"))
            await sim.wait_for(lambda: sim.co.line(1).digits == "42")
        finally:
            await audio.close()


async def test_handset_plays_and_records_wav_files(tmp_path: Path) -> None:
    source = tmp_path / "voice.wav"
    write_wav(source, sines((700,), 4000, level_dbm0=-10))
    recording = tmp_path / "heard.wav"
    async with Simulator(fxs=1, fxo=0) as sim, Link(sim.url) as link:
        await link.wait_connected(timeout=3)
        audio = await AudioClient.connect(sim.audio_url, ports=[1])
        try:
            handset = sim.handset(1)
            handset.off_hook()
            handset.record(recording, seconds=0.6)
            assert handset.play_wav(source) == 0.5
            await audio.stream(1, sines((1100,), 4000, level_dbm0=-10))
            await sim.wait_for(lambda: not handset.recording, timeout=3)
            await audio.wait_samples(1, 4000)
            assert tone_power(audio.take(1), 700) > 0.5  # the WAV went up the line
        finally:
            await audio.close()
    with wave.open(str(recording)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert len(pcm) == 4800
    assert tone_power(pcm, 1100) > 0.5  # what the appliance sent reached the earpiece


async def test_wait_for_times_out() -> None:
    async with Simulator(fxs=1, fxo=0) as sim:
        with pytest.raises(TimeoutError):
            await sim.wait_for(lambda: sim.handset(1).ringing, timeout=0.1)


async def test_drivers_audio_socket_backend_attaches_to_the_simulator() -> None:
    """The appliance's real PCM backend (drivers.audio) hears the exchange's dial tone."""
    async with Simulator(fxs=1, fxo=1) as sim, Link(sim.url) as link:
        await link.wait_connected(timeout=3)
        await link.send(p.Seize(2))
        await sim.wait_for(lambda: sim.co.line(1).seized)

        def listen() -> bytes:
            with SocketStream(PcmFormat(8000, 20), url=sim.audio_url, line=2) as stream:
                frames = [stream.read_frame() for _ in range(25)]
                for _ in range(10):
                    stream.write_frame(sines((1300,), 160, level_dbm0=-10).tobytes())
            return b"".join(frames[5:])

        heard = np.frombuffer(await asyncio.to_thread(listen), dtype="<i2")
        assert tone_power(heard, 350) + tone_power(heard, 440) > 0.9
        await sim.wait_for(lambda: tone_power(sim.co.line(1).heard(200), 1300) > 0.5)


async def test_audio_client_must_name_a_real_port() -> None:
    async with Simulator(fxs=1, fxo=0) as sim:
        reader, writer = await asyncio.open_connection(*sim.audio_address)
        writer.write(encode_hello(Hello(PcmFormat(8000, 20), 7), 0))
        assert await asyncio.wait_for(reader.read(), 3) == b""  # dropped, nothing attached
        writer.close()
        assert sim.status()["audio_ports"] == []


async def test_control_socket_is_not_stolen_from_a_running_simulator(tmp_path: Path) -> None:
    control = tmp_path / "ctl.sock"
    async with Simulator(fxs=1, fxo=0, control=control):
        with pytest.raises(SimError, match="already running"):
            await Simulator(fxs=1, fxo=0, control=control).start()
    assert not control.exists()
    # A socket file left by a killed simulator is cleared.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(control))
    stale.close()
    async with Simulator(fxs=1, fxo=0, control=control) as sim:
        assert sim.status()["control"] == str(control)


async def test_handset_answers_by_itself_and_hangs_up_again() -> None:
    async with Simulator(fxs=1, fxo=0) as sim, Link(sim.url) as link:
        await link.wait_connected(timeout=3)
        handset = sim.handset(1)
        handset.auto_answer_s, handset.auto_hangup_s = 0.2, 0.3
        await link.send(p.Ring(1, ((1000, 4000),), 25))
        lifted = await next_of(link, p.HookChange)
        assert isinstance(lifted, p.HookChange) and lifted.off_hook
        dropped = await next_of(link, p.HookChange)
        assert isinstance(dropped, p.HookChange) and not dropped.off_hook
        # The card's timestamps carry the simulated delays: 0.3 s off hook.
        assert 250 <= dropped.timestamp_ms - lifted.timestamp_ms <= 350
        assert handset.auto_answered == 1
        assert sim.status()["handsets"][0]["auto_answered"] == 1
