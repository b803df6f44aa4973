"""Simulated telephones decode the caller ID the appliance sends them on hook."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from drivers.linecard import protocol as p
from drivers.linecard.link import Link
from drivers.sim.audio_client import AudioClient
from drivers.sim.control import request
from drivers.sim.signals import DecodedCallerId
from drivers.sim.simulator import Simulator
from firmware.dsp.callerid import DtmfClip, analysis
from firmware.dsp.profiles import get_profile
from firmware.service.simkit import DspKit
from tests.sim.harness import Bench

SILENCE = np.zeros(1600, dtype=np.int16)


def burst(country: str, number: str, name: str | None = None) -> np.ndarray:
    spec = get_profile(country).callerid
    if spec.standard == "dtmf":
        assert spec.dtmf_format is not None
        return analysis.render(DtmfClip(spec.dtmf_format, number=number))
    msg = analysis.build_message("mdmf", number=number, name=name, date="11251830")
    return analysis.render(msg, spec=spec)


def test_handset_decodes_fsk_only_with_on_hook_transmission() -> None:
    bench = Bench(fxs=1, fxo=0, country="US", signals=DspKit())
    handset = bench.card.handsets[0]
    bench.run(0.1)
    bench.host_audio[1] = np.concatenate([SILENCE, burst("US", "5551234", "ALICE")])
    bench.run(1.5)
    assert handset.caller_id_view() is None  # the SLIC passes no audio on hook without OHT
    bench.send(p.OnHookTransmission(1, True))
    bench.host_audio[1] = np.concatenate([SILENCE, burst("US", "5551234", "ALICE")])
    bench.run(1.5)
    assert handset.caller_id == DecodedCallerId("5551234", "ALICE", "11251830")
    assert handset.caller_ids == 1


def test_handset_reports_a_damaged_burst_and_decodes_dtmf_caller_id() -> None:
    bench = Bench(fxs=1, fxo=0, country="GB", signals=DspKit())
    handset = bench.card.handsets[0]
    bench.send(p.OnHookTransmission(1, True))
    damaged = burst("GB", "01632960123").copy()
    damaged[-1200:-700] = 0  # the checksum and the end of the number are lost
    bench.host_audio[1] = np.concatenate([SILENCE, damaged, SILENCE])
    bench.run(1.5)
    assert handset.caller_id is not None and handset.caller_id.error is not None

    swedish = Bench(fxs=1, fxo=0, country="SE", signals=DspKit())
    swedish.send(p.OnHookTransmission(1, True))
    swedish.host_audio[1] = np.concatenate([SILENCE, burst("SE", "0812345678"), SILENCE])
    swedish.run(2.5)
    assert swedish.card.handsets[0].caller_id == DecodedCallerId("0812345678")


async def test_handset_status_shows_the_last_caller_id(tmp_path: Path) -> None:
    control = tmp_path / "sim.sock"
    async with Simulator(fxs=1, fxo=0, country="DE", control=control, signals=DspKit()) as sim:
        async with Link(sim.url) as link:
            await link.wait_connected(timeout=3)
            await link.send(p.OnHookTransmission(1, True))
            audio = await AudioClient.connect(sim.audio_url, ports=[1])
            try:
                await audio.stream(1, np.concatenate([burst("DE", "0301234", "CAROL"), SILENCE]))
                await sim.wait_for(lambda: sim.handset(1).caller_id is not None, timeout=3)
            finally:
                await audio.close()
            response = await asyncio.to_thread(
                request, control, {"target": "handset", "number": 1, "action": "status"}
            )
    cid = response["result"]["caller_id"]
    assert (cid["number"], cid["name"], cid["date"], cid["error"]) == (
        "0301234",
        "CAROL",
        "11251830",
        None,
    )
