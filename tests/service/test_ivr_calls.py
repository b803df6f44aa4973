"""The IVR in the call flow: a real ``ponte run``; handset 1 dials the attendant, hears its
menu (espeak-ng prompts), presses 1 and is put through to extension 102."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware.store import ConfigStore, default_config
from firmware.store.schema import IvrMenu, IvrOption
from tests.service.test_local_calls import record, wait_status
from tests.service.test_run import Appliance, dominant_hz


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Appliance]:
    store = ConfigStore.open(tmp_path / "data", defaults=default_config(2, 1))
    try:
        config = store.current().config
        menu = IvrMenu(name="main", options=(IvrOption(digit="1", to="extension:102"),))
        ivr = dataclasses.replace(
            config.ivr, enabled=True, number="500", open_menu="main", menus=(menu,)
        )
        store.apply(dataclasses.replace(config, ivr=ivr), author="test", summary="ivr")
    finally:
        store.close()
    app = Appliance(tmp_path, "--fxs", "2", "--fxo", "1", "--stderr")
    app.wait_notify("READY=1")
    app.wait_log("control API listening")
    yield app
    app.close()


def test_the_attendant_answers_and_puts_the_caller_through(box: Appliance, tmp_path: Path) -> None:
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="500")
    box.wait_log("port 1: IVR started", timeout=20)
    menu = record(box, 1, tmp_path / "menu.wav", 2.0)
    assert np.sqrt(np.mean(menu**2)) > 100, "the menu prompt is not heard"
    box.sim(target="handset", number=1, action="dial", digits="1")
    box.wait_log("IVR menu 'main' transfers to", timeout=20)
    wait_status(box, 2, "ringing", True, timeout=20)
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("audio of ports 1 and 2 connected", timeout=20)
    box.sim(target="handset", number=2, action="tone", freqs=[900])
    time.sleep(1.0)
    heard = record(box, 1, tmp_path / "heard.wav", 1.0)
    assert dominant_hz(heard) == pytest.approx(900, abs=10)
    box.sim(target="handset", number=2, action="stop-audio")
    box.sim(target="handset", number=2, action="on-hook")
    box.sim(target="handset", number=1, action="on-hook")
