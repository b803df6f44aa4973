"""Caller ID on call waiting (type II) end to end: a real ``ponte run``, simulated handsets.

Handset 1 (extension 101) talks to handset 2; handset 3 calls 101.  A type II telephone on
port 1 acknowledges the alerting signal and shows 103 'Port 3'; one without type II hears
the tone and the alerting signal only.  Handset 2, the far end, never hears the
handshake (no CAS, no ACK, no FSK), and the calls go on as before: flash answers the
waiting call, flash again swaps back.
"""

from __future__ import annotations

import dataclasses
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware.dsp.callerid.fsk import FskStandard, decode_callerid
from firmware.dsp.callerid.messages import CallSetup
from firmware.dsp.callerid.type2 import CasDetector
from firmware.store import ConfigStore, default_config
from tests.service.test_features_calls import connect, handset, hears, level_at
from tests.service.test_run import Appliance

ARGS = ("--fxs", "3", "--fxo", "1", "--stderr")
# What the far end must never hear: the ACK (941 + 1633 Hz), the CAS (2130 + 2750 Hz) and
# both FSK modems' tones (Bell 202 1200/2200 Hz, V.23 1300/2100 Hz).
HANDSHAKE_HZ = (941, 1633, 2130, 2750, 1200, 2200, 1300, 2100)


def start_box(tmp_path: Path, country: str) -> Appliance:
    store = ConfigStore.open(tmp_path / "data", defaults=default_config(3, 1))
    try:
        config = store.current().config
        system = dataclasses.replace(config.system, country=country)
        store.apply(dataclasses.replace(config, system=system), author="test", summary=country)
    finally:
        store.close()
    app = Appliance(tmp_path, *ARGS)
    app.wait_notify("READY=1")
    return app


@pytest.fixture(params=["ITU", "US"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Appliance]:
    app = start_box(tmp_path, request.param)
    yield app
    app.close()


def read_wav(path: Path, timeout: float = 15) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                with wave.open(str(path)) as w:
                    return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
            except (EOFError, wave.Error):
                pass  # still being written
        time.sleep(0.05)
    raise AssertionError(f"no recording in {path}")


def handset_status(box: Appliance, number: int) -> dict[str, object]:
    status = box.sim(target="handset", number=number, action="status")
    assert isinstance(status, dict)
    return status


def wait_caller_id(box: Appliance, number: int, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cid = handset_status(box, number)["caller_id"]
        if isinstance(cid, dict):
            return cid
        time.sleep(0.05)
    raise AssertionError(f"handset {number} shows no caller ID:\n{box.log_text()}")


def waiting_call(box: Appliance, tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """101 (handset 1, 500 Hz) talks to 102 (handset 2, 700 Hz), 103 calls 101; returns what
    handsets 2 (the far end) and 1 heard from before the call waited until well after."""
    connect(box, 2, "101", 1)
    box.wait_log("audio of ports 2 and 1 connected")
    handset(box, 1, "tone", freqs=[500])  # both talk all along
    handset(box, 2, "tone", freqs=[700])
    handset(box, 3, "off-hook")
    box.wait_log("port 3: OffHook")
    far, near = tmp_path / "far.wav", tmp_path / "near.wav"
    handset(box, 2, "record", file=str(far), seconds=8)
    handset(box, 1, "record", file=str(near), seconds=8)
    handset(box, 3, "dial", digits="101")
    box.wait_log("port 1 is talking: call from", timeout=20)
    box.wait_log("port 1: caller ID on call waiting 103 'Port 3'", timeout=20)
    return read_wav(far), read_wav(near)


def test_a_type_ii_phone_shows_the_waiting_caller(box: Appliance, tmp_path: Path) -> None:
    handset(box, 1, "call-waiting-id", ack="D")
    far, near = waiting_call(box, tmp_path)
    box.wait_log("port 1: caller ID on call waiting sent (phone acknowledged with D)", timeout=20)
    cid = wait_caller_id(box, 1)
    assert (cid["number"], cid["name"], cid["error"]) == ("103", "Port 3", None)
    assert cid["call_waiting"] is True
    assert handset_status(box, 1)["cas_heard"] == 1
    # The far end heard 101 talking, and nothing of the handshake.
    assert level_at(far, 500) > 0.5
    for hz in HANDSHAKE_HZ:
        assert level_at(far, hz) < 0.01, f"the far end heard {hz} Hz"
    assert "DTMF D taken as the type II acknowledgement" in box.log_text()
    assert "SendSipDtmf" not in box.log_text()
    # ... and 101 kept hearing 102 around the call-waiting tone and the handshake.
    assert level_at(near, 700) > 0.3
    # The calls go on: flash answers 103, flash again swaps back to 102.
    handset(box, 1, "stop-audio")
    handset(box, 1, "flash")
    box.wait_log("flash answers the waiting call")
    box.wait_log("audio of ports 3 and 1 connected")
    handset(box, 3, "tone", freqs=[1000])
    assert hears(box, 1, 1000, tmp_path / "with3.wav")
    handset(box, 1, "flash")
    box.wait_log("flash swaps the two calls")
    box.wait_log("audio of ports 1 and 2 connected")
    assert hears(box, 1, 700, tmp_path / "with2.wav")


def test_a_phone_without_type_ii_gets_no_burst(box: Appliance, tmp_path: Path) -> None:
    far, near = waiting_call(box, tmp_path)
    box.wait_log(
        "port 1: caller ID on call waiting not sent: the phone did not acknowledge", timeout=20
    )
    status = handset_status(box, 1)
    cid = status["caller_id"]  # the on-hook caller ID of 102's call, if the country sends one
    assert cid is None or (isinstance(cid, dict) and cid["number"] == "102")
    assert status["cas_heard"] == 0
    # 101 heard the alerting signal and no burst; 102 heard neither.
    assert len(CasDetector().feed(near)) == 1
    standards: tuple[FskStandard, ...] = ("v23", "bell202")
    for standard in standards:
        decoded = decode_callerid(near.astype(np.int16), standard)
        assert not [r for r in decoded if isinstance(r, CallSetup)]
    assert len(CasDetector().feed(far)) == 0
    assert level_at(far, 500) > 0.5
    assert level_at(near, 700) > 0.3  # the conversation goes on under the tone
    # The call waiting goes on as usual.
    handset(box, 1, "stop-audio")
    handset(box, 1, "flash")
    box.wait_log("flash answers the waiting call")
    box.wait_log("audio of ports 3 and 1 connected")
