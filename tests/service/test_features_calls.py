"""Hook-flash features, forwarding and DND end to end: a real ``ponte run`` with three
simulated handsets, driven through the simulator's control socket."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware.store import ConfigStore, default_config
from tests.service.test_local_calls import first_hz, record, wait_status
from tests.service.test_run import Appliance, dominant_hz

ARGS = ("--fxs", "3", "--fxo", "1", "--stderr")


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Appliance]:
    app = Appliance(tmp_path, *ARGS)
    app.wait_notify("READY=1")
    yield app
    app.close()


def level_at(pcm: np.ndarray, hz: float) -> float:
    """Share of the recording's energy within 20 Hz of ``hz``."""
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm)))) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / 8000)
    band = spectrum[np.abs(freqs - hz) <= 20].sum()
    return float(band / max(spectrum.sum(), 1e-9))


def handset(box: Appliance, number: int, action: str, **kw: object) -> None:
    box.sim(target="handset", number=number, action=action, **kw)


def connect(box: Appliance, caller: int, number: str, callee: int) -> None:
    handset(box, caller, "off-hook")
    box.wait_log(f"port {caller}: OffHook")
    handset(box, caller, "dial", digits=number)
    wait_status(box, callee, "ringing", True, timeout=15)
    handset(box, callee, "off-hook")


def hears(box: Appliance, listener: int, hz: float, path: Path) -> bool:
    pcm = record(box, listener, path, 0.6)
    return level_at(pcm[800:], hz) > 0.3


def test_call_waiting_answer_and_swap(box: Appliance, tmp_path: Path) -> None:
    connect(box, 1, "102", 2)
    box.wait_log("audio of ports 1 and 2 connected")
    handset(box, 3, "off-hook")
    box.wait_log("port 3: OffHook")
    handset(box, 3, "dial", digits="102")
    box.wait_log("port 2 is talking: call from 103")
    # 102 hears the country's call-waiting tone (ITU: 425 Hz bursts) over the call.
    tone = record(box, 2, tmp_path / "cw.wav", 0.6)
    assert dominant_hz(tone) == pytest.approx(first_hz("call_waiting"), abs=5)
    handset(box, 2, "flash")
    box.wait_log("flash answers the waiting call")
    box.wait_log("audio of ports 3 and 2 connected")
    handset(box, 3, "tone", freqs=[1000])
    handset(box, 1, "tone", freqs=[700])
    assert hears(box, 2, 1000, tmp_path / "with3.wav")
    assert not hears(box, 2, 700, tmp_path / "not1.wav")  # 101 is on hold
    handset(box, 2, "flash")
    box.wait_log("flash swaps the two calls")
    box.wait_log("audio of ports 2 and 1 connected")
    assert hears(box, 2, 700, tmp_path / "with1.wav")
    assert not hears(box, 2, 1000, tmp_path / "not3.wav")


def test_three_way_call_mixes_both_parties(box: Appliance, tmp_path: Path) -> None:
    connect(box, 1, "102", 2)
    box.wait_log("audio of ports 1 and 2 connected")
    handset(box, 1, "flash")
    box.wait_log("flash holds the call and gives recall dial tone")
    handset(box, 1, "dial", digits="103")
    wait_status(box, 3, "ringing", True, timeout=15)
    handset(box, 3, "off-hook")
    box.wait_log("audio of ports 1 and 3 connected")
    handset(box, 1, "flash")
    box.wait_log("ports 1, 2, 3 mixed in a three-way call")
    handset(box, 2, "tone", freqs=[700])
    handset(box, 3, "tone", freqs=[1300])
    heard = record(box, 1, tmp_path / "at1.wav", 0.8)[800:]
    assert level_at(heard, 700) > 0.1 and level_at(heard, 1300) > 0.1
    assert hears(box, 3, 700, tmp_path / "at3.wav")  # 103 hears 102 through the mixer
    # The controller hangs up: the other two stay connected (transfer).
    handset(box, 1, "on-hook")
    box.wait_log("audio of ports 2 and 3 connected")
    handset(box, 3, "stop-audio")
    assert hears(box, 3, 700, tmp_path / "after.wav")


def test_blind_transfer_while_ringing(box: Appliance, tmp_path: Path) -> None:
    connect(box, 1, "102", 2)
    box.wait_log("audio of ports 1 and 2 connected")
    handset(box, 1, "flash")
    box.wait_log("flash holds the call")
    handset(box, 1, "dial", digits="103")
    wait_status(box, 3, "ringing", True, timeout=15)
    handset(box, 1, "on-hook")
    box.wait_log("port 1 transfers")
    handset(box, 3, "off-hook")
    box.wait_log("audio of ports 2 and 3 connected")
    handset(box, 2, "tone", freqs=[900])
    assert hears(box, 3, 900, tmp_path / "transferred.wav")


def test_forward_all_survives_a_restart_and_dnd_gives_busy(tmp_path: Path) -> None:
    # No voicemail: do not disturb gives busy tone (with a box, the call goes to voicemail).
    store = ConfigStore.open(tmp_path / "data", defaults=default_config(3, 1))
    try:
        config = store.current().config
        extensions = tuple(dataclasses.replace(e, voicemail=False) for e in config.extensions)
        store.apply(
            dataclasses.replace(config, extensions=extensions), author="test", summary="no vm"
        )
    finally:
        store.close()
    box = Appliance(tmp_path, *ARGS)
    try:
        box.wait_notify("READY=1")
        handset(box, 2, "off-hook")
        box.wait_log("port 2: OffHook")
        handset(box, 2, "dial", digits="*72")
        box.wait_log("port 2 dialled feature code forward_all_on")
        handset(box, 2, "dial", digits="103")
        box.wait_log("extension 102: forward_all_on 103")
        handset(box, 2, "on-hook")
    finally:
        box.close()
    (tmp_path / "notify").unlink()
    box = Appliance(tmp_path, *ARGS)
    try:
        box.wait_notify("READY=1")
        connect(box, 1, "102", 3)  # forwarded: 103 rings, not 102
        box.wait_log("audio of ports 1 and 3 connected")
        wait_status(box, 2, "rings", 0)
        handset(box, 1, "on-hook")
        box.wait_log("port 1 left (talking)")
        handset(box, 3, "on-hook")
        box.wait_log("port 3: HungUp")
        # 103 sets do not disturb: a call to it (or forwarded to it) is busy.
        handset(box, 3, "off-hook")
        box.wait_log("port 3: OffHook")
        handset(box, 3, "dial", digits="*78")
        box.wait_log("extension 103: dnd_on")
        handset(box, 3, "on-hook")
        handset(box, 1, "off-hook")
        box.wait_log("port 1: OffHook", count=2)
        handset(box, 1, "dial", digits="103")
        box.wait_log("port 3: do not disturb")
        busy = record(box, 1, tmp_path / "busy.wav", 1.0)
        assert dominant_hz(busy) == pytest.approx(first_hz("busy"), abs=5)
    finally:
        box.close()
