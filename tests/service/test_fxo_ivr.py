"""An exchange caller reaches the IVR through an FXO line and chooses by DTMF.

A real ``ponte run``: the exchange line (FXO port 3) has the attendant's number as its
destination; the simulated exchange rings it, the caller hears the menu, presses 1 on the
far end's keypad, and extension 102 rings and talks to the caller.  The digits exist only
in the line's audio: the media loop's DTMF receiver finds them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware.store import ConfigStore, default_config
from firmware.store.schema import IvrMenu, IvrOption
from tests.service.test_call_waiting_id import read_wav
from tests.service.test_local_calls import record, wait_status
from tests.service.test_run import Appliance, dominant_hz

FXO_PORT = 3  # --fxs 2 --fxo 1


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Appliance]:
    store = ConfigStore.open(tmp_path / "data", defaults=default_config(2, 1))
    try:
        config = store.current().config
        menu = IvrMenu(name="main", options=(IvrOption(digit="1", to="extension:102"),))
        ivr = dataclasses.replace(
            config.ivr, enabled=True, number="500", open_menu="main", menus=(menu,)
        )
        fxo = tuple(dataclasses.replace(line, destination="500") for line in config.lines.fxo)
        lines = dataclasses.replace(config.lines, fxo=fxo)
        store.apply(
            dataclasses.replace(config, ivr=ivr, lines=lines), author="test", summary="fxo ivr"
        )
    finally:
        store.close()
    app = Appliance(tmp_path, "--fxs", "2", "--fxo", "1", "--stderr")
    app.wait_notify("READY=1")
    yield app
    app.close()


def co_record(box: Appliance, path: Path, seconds: float) -> np.ndarray:
    box.sim(target="co", number=1, action="record", file=str(path), seconds=seconds)
    deadline = time.monotonic() + seconds + 15
    while time.monotonic() < deadline:
        if path.exists():
            return read_wav(path)
        time.sleep(0.05)
    raise AssertionError(f"no recording in {path}:\n{box.log_text()}")


def test_an_exchange_caller_picks_an_extension_in_the_ivr_by_dtmf(
    box: Appliance, tmp_path: Path
) -> None:
    box.sim(target="co", number=1, action="ring", caller_id="5551234")
    box.wait_log(f"port {FXO_PORT}: IVR started", timeout=20)
    menu = co_record(box, tmp_path / "menu.wav", 2.0)
    assert np.sqrt(np.mean(menu**2)) > 100, "the caller does not hear the menu"
    box.sim(target="co", number=1, action="dtmf", digits="1")
    box.wait_log(f"port {FXO_PORT}: IVR menu 'main' transfers to", timeout=20)
    wait_status(box, 2, "ringing", True, timeout=20)
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log(f"audio of ports {FXO_PORT} and 2 connected", timeout=20)
    box.sim(target="co", number=1, action="tone", freqs=[900])
    time.sleep(1.0)
    heard = record(box, 2, tmp_path / "heard.wav", 1.0)
    assert dominant_hz(heard) == pytest.approx(900, abs=10)


def test_speech_like_audio_from_the_exchange_presses_no_key(box: Appliance, tmp_path: Path) -> None:
    # Talk-off: a chord of two non-DTMF tones and a speech-band tone in the menu do nothing.
    box.sim(target="co", number=1, action="ring", caller_id="5551234")
    box.wait_log(f"port {FXO_PORT}: IVR started", timeout=20)
    box.sim(target="co", number=1, action="tone", freqs=[440, 660, 990])
    time.sleep(3.0)
    box.sim(target="co", number=1, action="stop-audio")
    assert "transfers to" not in box.log_text()
    assert "DigitDialled" not in box.log_text()
    time.sleep(0.3)  # a key pressed right out of the chord is refused too (a held note)
    box.sim(target="co", number=1, action="dtmf", digits="1")
    box.wait_log(f"port {FXO_PORT}: IVR menu 'main' transfers to", timeout=20)
