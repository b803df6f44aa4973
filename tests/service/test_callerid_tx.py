"""The caller ID transmitter against the real simulator: link, PCM stream, telephone.

In-process (one event loop): ``CallerIdTransmitter`` sends its commands over a real
``Link`` and its PCM through a real ``PortMedia`` on the simulator's audio socket; the
simulated telephone decodes what reaches it, and the simulated card shows what the line
did (reversal, ring pulse, on-hook transmission).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

import pytest

from drivers.audio.format import PcmFormat
from drivers.audio.socket_stream import SocketStream
from drivers.linecard import protocol as p
from drivers.linecard.link import Link
from drivers.sim.card import FxsPort as SimFxsPort
from drivers.sim.handset import Handset
from drivers.sim.signals import DecodedCallerId
from drivers.sim.simulator import Simulator
from firmware.dsp.profiles import get_profile
from firmware.lines import messages as m
from firmware.service.callerid_tx import CallerIdTransmitter, LineCallerId, zone
from firmware.service.media import PortMedia
from firmware.service.simkit import DspKit

WHEN = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)
TIMEOUT_S = 15  # a loaded 2-core machine; the transmissions last about a second


@dataclass
class Rig:
    sim: Simulator
    tx: CallerIdTransmitter
    media: PortMedia
    finished: list[int]

    @property
    def handset(self) -> Handset:
        return self.sim.handset(1)

    @property
    def port(self) -> SimFxsPort:
        port = self.sim.card.ports[0]
        assert isinstance(port, SimFxsPort)
        return port


def fixed_clock(tz: tzinfo) -> datetime:
    return WHEN.astimezone(tz)


@asynccontextmanager
async def rig(country: str, setting: str = "country") -> AsyncIterator[Rig]:
    async with Simulator(fxs=1, fxo=0, country=country, signals=DspKit()) as sim:
        async with Link(sim.url) as link:
            await link.wait_connected(timeout=TIMEOUT_S)
            stream = SocketStream(PcmFormat(8000, 20), url=sim.audio_url, line=1, paced=False)
            failures: list[BaseException] = []
            media = PortMedia(
                1,
                stream,
                detect_dtmf=False,
                on_digit=lambda _port, _digit: None,
                on_failure=lambda _port, error: failures.append(error),
            )
            media.start()
            finished: list[int] = []
            tx = CallerIdTransmitter(
                link.send, {1: media}, finished.append, tz=zone("UTC"), clock=fixed_clock
            )
            tx.add_line(LineCallerId(1, get_profile(country), setting))
            try:
                yield Rig(sim, tx, media, finished)
            finally:
                await tx.close()
                media.stop()
            assert not failures


async def test_gb_caller_id_reaches_the_phone_and_the_line_is_restored() -> None:
    async with rig("GB") as r:
        r.tx.start(1, m.CallerId("01632960123", "BOB"))
        await r.sim.wait_for(lambda: r.finished == [1], timeout=TIMEOUT_S)
        await r.sim.wait_for(lambda: r.handset.caller_id is not None, timeout=TIMEOUT_S)
        assert r.handset.caller_id == DecodedCallerId("01632960123", "BOB", "11251830")
        await r.sim.wait_for(
            lambda: not r.port.on_hook_tx and r.port.polarity is p.Polarity.FORWARD,
            timeout=TIMEOUT_S,
        )
        assert [pol for _, pol in r.handset.polarity_log] == [
            p.Polarity.REVERSE,
            p.Polarity.FORWARD,
        ]
        assert (r.tx.sent, r.tx.stopped, r.tx.failed) == (1, 0, 0)
        assert not r.tx.busy(1) and not r.media.sending_on_hook


async def test_stopping_mid_burst_silences_the_line_at_once() -> None:
    async with rig("GB") as r:
        r.tx.start(1, m.CallerId("01632960123", "BOB"))
        # The DT-AS is on the line: the phone is answered now.
        await r.sim.wait_for(lambda: bool(r.handset.on_hook_signal_log), timeout=TIMEOUT_S)
        r.tx.stop(1)
        assert not r.media.sending_on_hook
        await r.sim.wait_for(
            lambda: not r.port.on_hook_tx and r.port.polarity is p.Polarity.FORWARD,
            timeout=TIMEOUT_S,
        )
        heard = len(r.handset.on_hook_signal_log)
        await r.sim.wait_for(lambda: r.media.frames > 0, timeout=TIMEOUT_S)
        frames = r.media.frames
        await r.sim.wait_for(lambda: r.media.frames >= frames + 75, timeout=TIMEOUT_S)  # 1.5 s
        assert r.handset.caller_id is None  # the data never went out whole
        assert len(r.handset.on_hook_signal_log) == heard
        assert r.finished == [] and (r.tx.sent, r.tx.stopped) == (0, 1)


async def test_france_rings_one_pulse_then_sends_the_data() -> None:
    async with rig("FR") as r:
        r.tx.start(1, m.CallerId("0140000000", "CLAIRE"))
        await r.sim.wait_for(lambda: r.finished == [1], timeout=TIMEOUT_S)
        await r.sim.wait_for(lambda: r.handset.caller_id is not None, timeout=TIMEOUT_S)
        assert r.handset.caller_id == DecodedCallerId("0140000000", "CLAIRE", "11251830")
        # The pulse's cadence is stopped before ringing proper may start.
        await r.sim.wait_for(lambda: r.port.ring_command is None, timeout=TIMEOUT_S)
        (pulse,) = r.handset.ring_log
        assert pulse.end is not None and pulse.end - pulse.start == pytest.approx(0.25, abs=0.03)
        (signal,) = r.handset.on_hook_signal_log
        assert signal.start >= pulse.end  # EN 300 659-1 §6.1.3: data after the RP-AS


async def test_an_identity_the_format_cannot_carry_is_reported_done_without_a_sound() -> None:
    async with rig("IN") as r:  # D...C has no "unavailable" code
        r.tx.start(1, m.CallerId(name="NO NUMBER"))
        await r.sim.wait_for(lambda: r.finished == [1], timeout=TIMEOUT_S)
        assert (r.tx.sent, r.tx.failed) == (0, 1)
        assert not r.handset.polarity_log and not r.port.on_hook_tx


async def test_message_waiting_lights_the_lamp_without_ringing() -> None:
    async with rig("US") as r:
        r.tx.message_waiting(1, True, count=2)
        await r.sim.wait_for(lambda: r.tx.sent == 1, timeout=TIMEOUT_S)
        await r.sim.wait_for(lambda: not r.port.on_hook_tx, timeout=TIMEOUT_S)
        assert r.finished == [] and not r.handset.ring_log
        assert len(r.handset.on_hook_signal_log) == 1
        # The simulated phone's display reads caller ID only: VMWI is no caller to it.
        assert r.handset.caller_id is None


async def test_a_newer_transmission_replaces_one_in_progress() -> None:
    async with rig("US") as r:
        r.tx.start(1, m.CallerId("5550001", "FIRST"))
        r.tx.start(1, m.CallerId("5550002", "SECOND"))
        await r.sim.wait_for(lambda: r.finished == [1], timeout=TIMEOUT_S)
        await r.sim.wait_for(lambda: r.handset.caller_id is not None, timeout=TIMEOUT_S)
        assert r.handset.caller_id == DecodedCallerId("5550002", "SECOND", "11251830")
        assert (r.tx.sent, r.tx.stopped) == (1, 1)


def test_an_unknown_time_zone_falls_back_to_utc(caplog: pytest.LogCaptureFixture) -> None:
    assert zone("Mars/Olympus_Mons") == zone("UTC")
    assert "Mars/Olympus_Mons" in caplog.text
