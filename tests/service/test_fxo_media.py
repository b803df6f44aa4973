"""FXO ports hear the exchange: caller ID on hook, busy tone once seized."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from drivers.audio.format import PcmFormat
from drivers.audio.socket_stream import SocketStream
from drivers.linecard import protocol as p
from drivers.linecard.link import Link
from drivers.sim.simulator import Simulator
from firmware.dsp.profiles import get_profile
from firmware.lines import messages as m
from firmware.lines.cardclock import CardClock
from firmware.lines.fxo import FxoPort
from firmware.service.callerid_rx import Heard
from firmware.service.media import PortMedia
from firmware.service.ports import PortController, Report
from firmware.service.simkit import DspKit
from tests.service.test_run import Appliance


class Heard_:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.caller_ids: list[Heard] = []
        self.busy: list[str] = []

    def caller_id(self, port: int, heard: Heard) -> None:
        with self.lock:
            self.caller_ids.append(heard)

    def tone(self, port: int, tone: str) -> None:
        with self.lock:
            self.busy.append(tone)


@pytest.mark.parametrize("country", ["DE", "DK"])
async def test_port_media_decodes_caller_id_and_hears_busy_when_seized(country: str) -> None:
    got = Heard_()
    async with Simulator(fxs=0, fxo=1, country=country, signals=DspKit()) as sim:
        async with Link(sim.url) as link:
            await link.wait_connected(timeout=3)
            stream = SocketStream(PcmFormat(8000, 20), url=sim.audio_url, line=1, paced=False)
            media = PortMedia(
                1,
                stream,
                detect_dtmf=False,
                on_digit=lambda port, digit: None,
                on_failure=lambda port, error: None,
                fxo_profile=get_profile(country),
                on_caller_id=got.caller_id,
                on_busy=got.tone,
            )
            media.start()
            try:
                await asyncio.sleep(0.1)
                sim.co.line(1).ring(caller_id="5551234", name="ALICE")
                await sim.wait_for(lambda: got.caller_ids, timeout=5)
                await link.send(p.Seize(1))
                media.listen_for_progress(True)
                await sim.wait_for(lambda: sim.co.line(1).state.value == "connected")
                sim.co.line(1).disconnect("tone")
                await sim.wait_for(lambda: got.busy, timeout=6)
            finally:
                await asyncio.to_thread(media.stop)
    name = None if country == "DK" else "ALICE"  # DTMF caller ID carries no name
    assert got.caller_ids == [Heard("5551234", name, got.caller_ids[0].date)]
    assert got.busy[0] == "busy"


def test_controller_turns_caller_id_and_busy_into_line_events() -> None:
    controller = PortController(3, p.PortKind.FXO, get_profile("GB"), CardClock())
    assert controller.on_busy(1000) == []  # on hook: no call to clear
    assert controller.on_caller_id("5551234", "ALICE", 1000) == []  # kept for the ring
    assert controller.on_caller_id("55-1", None, 1100) == []  # unusable: logged, dropped
    controller.on_card(p.RingDetect(3, True, 0), 1200)
    actions = controller.on_card(p.RingDetect(3, False, 400), 1600)
    reports = [a.report for a in actions if isinstance(a, Report)]
    assert reports == [m.IncomingCall(m.CallerId("5551234", "ALICE"))]
    # Caller ID while ringing (after the first ring, the US way) is reported on its own.
    late = controller.on_caller_id("5551234", None, 1700)
    assert late == [Report(3, m.CallerIdReceived(m.CallerId("5551234")))]
    machine = controller.machine
    assert isinstance(machine, FxoPort)
    assert m.Seize() in machine.handle(m.AnswerCall(), 1800)  # call control answers
    actions = controller.on_busy(5000)
    assert Report(3, m.Disconnected(m.DisconnectCause.BUSY_TONE)) in actions


def test_ponte_run_reports_the_caller_id_of_an_incoming_call(tmp_path: Path) -> None:
    app = Appliance(tmp_path, "--fxs", "1", "--fxo", "1", "--stderr")
    try:
        app.wait_notify("READY=1")
        result = app.sim(target="co", action="ring", number=1, caller_id="5551234", name="ALICE")
        assert result == {"caller_id_sent": True}
        # Factory defaults use the ITU-T profile: V.23 after a reversal and DT-AS, before
        # the first ring, so the call is reported with its caller ID.
        app.wait_log("port 2: IncomingCall number=5551234 name=ALICE", timeout=15)
        app.sim(target="co", action="cancel", number=1)
    finally:
        app.close()
