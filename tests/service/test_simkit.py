"""The simulator with firmware.dsp injected: every profile, real caller ID on the FXO line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.linecard import protocol as p
from drivers.linecard.link import Link
from drivers.sim.audio_client import AudioClient
from drivers.sim.co import CoState
from drivers.sim.control import request
from drivers.sim.endpoint import SimError
from drivers.sim.signals import BUILTIN, Alerting
from drivers.sim.simulator import Simulator
from drivers.sim.tones import FRAME_SAMPLES, dtmf
from firmware import cli
from firmware.dsp.callerid import CallSetup, DtmfClip, DtmfClipDecoder, FskDemodulator
from firmware.dsp.dtmf import DtmfDetector
from firmware.dsp.profiles import COUNTRY_CODES, get_profile
from firmware.service.callerid_rx import CallerIdReceiver, Heard
from firmware.service.simkit import DspKit
from tests.sim.harness import Bench, tone_power

KIT = DspKit()


def decode_frames(country: str, frames: list[np.ndarray]) -> list[tuple[float, Heard]]:
    """Caller ID decoded from the port's frames, with the time (s) each result came out."""
    rx = CallerIdReceiver(get_profile(country))
    out: list[tuple[float, Heard]] = []
    for i, frame in enumerate(frames):
        out += [((i + 1) * 0.02, h) for h in rx.feed(frame)]
    return out


def ring_edges(bench: Bench) -> list[tuple[bool, float]]:
    return [(m.active, m.timestamp_ms / 1000) for m in bench.received(p.RingDetect)]


@pytest.mark.parametrize("code", COUNTRY_CODES)
def test_every_profile_builds_an_exchange_with_caller_id(code: str) -> None:
    exchange = KIT.exchange(code)
    profile = get_profile(code)
    assert exchange.code == code and exchange.flash_ms == profile.flash.send_ms
    assert sum(on + off for on, off in exchange.ring_cadence) == round(profile.ring.period_ms)
    dial = exchange.dial().read(1600)
    main = min(profile.tones["dial"].frequencies)
    assert tone_power(dial, main) > 0.2
    assert exchange.caller_id is not None
    burst = exchange.caller_id("5551234", None, "11251919")
    assert burst.alerting.value in (profile.callerid.alerting, "rpas")
    assert KIT.caller_id_receiver(code) is not None


def test_unknown_country_and_bad_caller_id_are_named() -> None:
    with pytest.raises(SimError, match="XX"):
        KIT.exchange("XX")
    with pytest.raises(SimError, match="unknown country"):
        BUILTIN.exchange("JP")  # the built-in tables stay small
    bench = Bench(fxs=1, fxo=1, country="SE", signals=KIT)
    line = bench.card.co.line(1)
    with pytest.raises(SimError, match="DTMF: a number is needed"):
        line.ring(name="ALICE")
    with pytest.raises(SimError, match="caller name"):
        line.ring("5551234", name="\x07bell")
    assert line.state is CoState.IDLE  # nothing happened


def test_us_bell202_goes_between_first_and_second_ring() -> None:
    bench = Bench(fxs=1, fxo=1, country="US", signals=KIT)
    line = bench.card.co.line(1)
    bench.run(0.1)
    line.ring(caller_id="5551234", name="ALICE")
    bench.run(6.5)
    edges = ring_edges(bench)
    assert [on for on, _ in edges[:3]] == [True, False, True]
    decoded = decode_frames("US", bench.to_host[2])
    assert len(decoded) == 1
    at, heard = decoded[0]
    assert (heard.number, heard.name) == ("5551234", "ALICE")
    first_off, second_on = edges[1][1], edges[2][1]
    # GR-30-CORE: data no sooner than 500 ms after the first ring, done before the second.
    assert first_off + 0.5 < at < second_on
    # The data itself: FSK at Bell 202 mark/space, nothing while ringing.
    frames = bench.to_host[2]
    ringing = np.concatenate(frames[int(edges[0][1] / 0.02) + 2 : int(first_off / 0.02) - 2])
    assert not ringing.any()


def test_gb_v23_goes_after_reversal_and_dtas_before_the_first_ring() -> None:
    bench = Bench(fxs=1, fxo=1, country="GB", signals=KIT)
    line = bench.card.co.line(1)
    bench.run(0.1)
    line.ring(caller_id="01632960123", name="BOB")
    bench.run(2.0)
    reversals = [(m.polarity, m.timestamp_ms / 1000) for m in bench.received(p.PolarityChange)]
    assert [pol for pol, _ in reversals] == [p.Polarity.REVERSE, p.Polarity.FORWARD]
    decoded = decode_frames("GB", bench.to_host[2])
    assert [(h.number, h.name) for _, h in decoded] == [("01632960123", "BOB")]
    first_ring = ring_edges(bench)[0]
    assert first_ring[0] and reversals[0][1] < decoded[0][0] <= first_ring[1]
    # The DT-AS (2130 + 2750 Hz) precedes the FSK.
    audio = np.concatenate(bench.to_host[2])
    start = int(np.flatnonzero(audio)[0])
    alert = audio[start : start + 640]
    assert tone_power(alert, 2130) + tone_power(alert, 2750) > 0.8


def test_dtmf_caller_id_goes_before_ringing_in_the_netherlands() -> None:
    bench = Bench(fxs=1, fxo=1, country="NL", signals=KIT)
    line = bench.card.co.line(1)
    bench.run(0.1)
    line.ring(caller_id="0201234567")
    bench.run(2.5)
    decoder = DtmfClipDecoder("A...#")
    results = [r for f in bench.to_host[2] for r in decoder.feed(f)]
    assert results == [DtmfClip("A...#", number="0201234567")]
    first_ring = ring_edges(bench)[0]
    data_end = len(np.trim_zeros(np.concatenate(bench.to_host[2]), "b")) / 8000
    assert first_ring[0] and data_end + 0.02 < first_ring[1]


def test_answering_during_the_burst_stops_it_and_cancel_restores_polarity() -> None:
    bench = Bench(fxs=1, fxo=1, country="GB", signals=KIT)
    line = bench.card.co.line(1)
    bench.run(0.1)
    line.ring(caller_id="5551234")
    bench.run(0.3)  # inside the data
    line.cancel()
    bench.run(1.5)
    assert line.polarity is p.Polarity.FORWARD and line.state is CoState.IDLE
    assert decode_frames("GB", bench.to_host[2]) == []
    assert not np.concatenate(bench.to_host[2][-50:]).any()
    assert not ring_edges(bench)


def test_the_card_and_exchange_use_the_injected_dtmf_detector() -> None:
    bench = Bench(fxs=1, fxo=1, country="JP", signals=KIT)
    bench.run(0.1)
    bench.send(p.Seize(2))
    bench.run(0.3)
    heard = np.concatenate(bench.to_host[2][-10:])
    assert tone_power(heard, 400) > 0.8  # JP dial tone, from the profile
    bench.host_audio[2] = dtmf("0312")
    bench.run(1.0)
    assert bench.card.co.line(1).digits == "0312"
    assert bench.card.co.line(1).country.code == "JP"


async def record(sim: Simulator, port: int, seconds: float) -> np.ndarray:
    audio = await AudioClient.connect(sim.audio_url, ports=[port])
    try:
        await audio.wait_samples(port, round(seconds * 8000), timeout=seconds + 3)
        return audio.take(port)
    finally:
        await audio.close()


@pytest.mark.parametrize(
    ("country", "seconds"), [("US", 3.8), ("GB", 1.2), ("SE", 1.6)], ids=["US", "GB", "SE"]
)
async def test_appliance_side_recording_decodes(country: str, seconds: float) -> None:
    async with Simulator(fxs=1, fxo=1, country=country, signals=KIT) as sim:
        async with Link(sim.url) as link:
            await link.wait_connected(timeout=3)
            recording = asyncio.create_task(record(sim, 2, seconds))
            await asyncio.sleep(0.1)
            sim.co.line(1).ring(caller_id="5551234", name="ALICE")
            pcm = await recording
    profile = get_profile(country)
    frames = [pcm[i : i + FRAME_SAMPLES] for i in range(0, len(pcm), FRAME_SAMPLES)]
    if profile.callerid.standard == "dtmf":
        assert profile.callerid.dtmf_format is not None
        decoder = DtmfClipDecoder(profile.callerid.dtmf_format)
        got = [r for f in frames for r in decoder.feed(f)]
        assert got == [DtmfClip(profile.callerid.dtmf_format, number="5551234")]
        assert [e.digit for e in DtmfDetector().feed(pcm)][:1] == ["A"]
    else:
        demod = FskDemodulator("bell202" if country == "US" else "v23")
        msgs = [r for f in frames for r in demod.feed(f)]
        assert len(msgs) == 1 and isinstance(msgs[0], CallSetup)
        assert (msgs[0].number, msgs[0].name) == ("5551234", "ALICE")
    assert sim.co.line(1).caller_id_sent == 1


def test_alerting_map_covers_every_profile() -> None:
    seen = set()
    for code in COUNTRY_CODES:
        render = KIT.exchange(code).caller_id
        assert render is not None
        seen.add(render("1", None, None).alerting)
    assert Alerting.AFTER_FIRST_RING in seen and Alerting.POLARITY_REVERSAL in seen


async def test_ponte_sim_cli_rings_with_caller_id_and_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    control = tmp_path / "sim.sock"
    base = ["sim", "--control", str(control), "co"]
    async with Simulator(fxs=1, fxo=1, country="ZA", control=control, signals=KIT) as sim:
        ok = await asyncio.to_thread(
            cli.main, [*base, "ring", "1", "--caller-id", "5551234", "--name", "ALICE"]
        )
        assert ok == 0 and "caller_id_sent=True" in capsys.readouterr().out
        assert (sim.co.line(1).caller_id, sim.co.line(1).caller_name) == ("5551234", "ALICE")
        await asyncio.to_thread(cli.main, [*base, "cancel", "1"])
        capsys.readouterr()
        for bad in (["--name", "X" * 51], ["--caller-id", "555-1234"], ["--name", "Zoë"]):
            assert await asyncio.to_thread(cli.main, [*base, "ring", "1", *bad]) == 1
            err = capsys.readouterr().err
            assert "caller" in err, err
        assert sim.co.line(1).state is CoState.IDLE
        response = await asyncio.to_thread(
            request, control, {"target": "co", "number": 1, "action": "ring", "name": 5}
        )
        assert response == {"ok": False, "error": "'name' must be a string"}


@settings(max_examples=60, deadline=None)
@given(
    code=st.sampled_from(COUNTRY_CODES),
    number=st.text("0123456789", min_size=1, max_size=15),
    name=st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=15),
)
def test_any_country_any_identity_survives_the_simulated_line(
    code: str, number: str, name: str
) -> None:
    bench = Bench(fxs=1, fxo=1, country=code, signals=KIT)
    bench.run(0.05)
    bench.card.co.line(1).ring(caller_id=number, name=name)
    bench.run(7.5)
    decoded = decode_frames(code, bench.to_host[2])
    if get_profile(code).callerid.standard == "dtmf":
        assert [(h.number, h.name) for _, h in decoded] == [(number, None)]
    else:
        assert [(h.number, h.name) for _, h in decoded] == [(number, name)]
    assert ring_edges(bench), "ringing follows the caller ID"


@settings(max_examples=40, deadline=None)
@given(
    code=st.sampled_from(["US", "GB", "SE"]),
    seed=st.integers(0, 2**32 - 1),
    cut=st.integers(0, 4000),
)
def test_receivers_take_garbage_and_cut_bursts_without_inventing_callers(
    code: str, seed: int, cut: int
) -> None:
    rng = np.random.default_rng(seed)
    render = KIT.exchange(code).caller_id
    assert render is not None
    good = render("5551234", None, "11251830").data
    noise = rng.integers(-32768, 32767, 8000, dtype=np.int16)
    pcm = np.concatenate([noise, good[: len(good) - cut - 1], np.zeros(8000, np.int16)])
    rx = CallerIdReceiver(get_profile(code))
    heard = [h for i in range(0, len(pcm) - 159, 160) for h in rx.feed(pcm[i : i + 160])]
    # A truncated burst may fail to decode (reported as an error), but never as another caller.
    assert all(h.error is not None or h.number == "5551234" for h in heard)
