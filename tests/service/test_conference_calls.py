"""Dial-in conference rooms end to end: a real ``ponte run``, three simulated handsets dial
the room's number, each hears the others mixed, and *6 mutes one of them."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware.store import ConfigStore, default_config
from firmware.store.schema import ConferenceRoom
from tests.service.test_local_calls import record
from tests.service.test_run import Appliance

ROOM = "800"
TONES = {1: 600.0, 2: 1100.0}  # what handsets 1 and 2 say; handset 3 listens


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Appliance]:
    store = ConfigStore.open(tmp_path / "data", defaults=default_config(3, 1))
    try:
        config = store.current().config
        conference = dataclasses.replace(
            config.conference, rooms=(ConferenceRoom(number=ROOM, name="Team"),)
        )
        store.apply(
            dataclasses.replace(config, conference=conference), author="test", summary="room"
        )
    finally:
        store.close()
    app = Appliance(tmp_path, "--fxs", "3", "--fxo", "1", "--stderr")
    app.wait_notify("READY=1")
    app.wait_log("control API listening")  # voicemail and rooms are up before the API
    yield app
    app.close()


def level_at(pcm: np.ndarray, hz: float) -> float:
    """Spectral magnitude near ``hz`` relative to the strongest component."""
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    freqs = np.fft.rfftfreq(len(pcm), 1 / 8000)
    near = spectrum[np.abs(freqs - hz) < 15]
    return float(near.max() / spectrum.max())


def test_three_handsets_meet_in_a_room_and_one_mutes(box: Appliance, tmp_path: Path) -> None:
    for handset in (1, 2, 3):
        box.sim(target="handset", number=handset, action="off-hook")
        box.wait_log(f"port {handset}: OffHook")
        box.sim(target="handset", number=handset, action="dial", digits=ROOM)
        box.wait_log(f"port {handset}: joined conference room {ROOM}", timeout=30)
    for handset, hz in TONES.items():
        box.sim(target="handset", number=handset, action="tone", freqs=[hz])
    time.sleep(1.0)
    heard = record(box, 3, tmp_path / "both.wav", 2.0)
    assert level_at(heard, TONES[1]) > 0.3 and level_at(heard, TONES[2]) > 0.3

    # Handset 1 mutes itself (*6) and talks on: handset 3 hears only handset 2.
    box.sim(target="handset", number=1, action="stop-audio")
    box.sim(target="handset", number=1, action="dial", digits="*6")
    box.wait_log("port 1: muted in room", timeout=20)
    box.sim(target="handset", number=1, action="tone", freqs=[TONES[1]])
    time.sleep(2.0)  # the "you are muted" prompt goes to handset 1 only
    heard = record(box, 3, tmp_path / "muted.wav", 2.0)
    assert level_at(heard, TONES[2]) > 0.9
    assert level_at(heard, TONES[1]) < 0.05

    for handset in (1, 2, 3):
        box.sim(target="handset", number=handset, action="stop-audio")
        box.sim(target="handset", number=handset, action="on-hook")
        box.wait_log(f"port {handset}: left conference room", timeout=20)
