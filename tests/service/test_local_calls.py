"""Local calls end to end: a real ``ponte run``, driven through the simulator's control socket."""

from __future__ import annotations

import itertools
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware.dsp.profiles import get_profile
from tests.service.test_run import Appliance, dominant_hz

ITU = get_profile("ITU")  # what a fresh simulated box uses (system.country default)
# How long to poll for what the simulator does in a few seconds at most when idle: the
# 2-core CI machine runs two test workers and their appliances at once.
WAIT_S = 60.0


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Appliance]:
    app = Appliance(tmp_path, "--fxs", "2", "--fxo", "1", "--stderr")
    app.wait_notify("READY=1")
    yield app
    app.close()


def record(box: Appliance, handset: int, path: Path, seconds: float) -> np.ndarray:
    box.sim(target="handset", number=handset, action="record", file=str(path), seconds=seconds)
    deadline = time.monotonic() + seconds + WAIT_S
    while time.monotonic() < deadline:
        if path.exists():
            try:
                with wave.open(str(path)) as w:
                    pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
                if len(pcm) >= int(seconds * 8000) - 160:
                    return pcm
            except (EOFError, wave.Error):
                pass  # still being written
        time.sleep(0.05)
    raise AssertionError(f"no recording in {path}")


def first_hz(tone: str) -> float:
    return ITU.tones[tone].segments[0].components[0].freq_hz


def on_fraction(pcm: np.ndarray, frame: int = 160) -> list[bool]:
    frames = pcm[: len(pcm) // frame * frame].reshape(-1, frame)
    return [bool(np.sqrt(np.mean(f**2)) > 100) for f in frames]


def wait_status(
    box: Appliance, handset: int, key: str, value: object, timeout: float = 10
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = box.sim(target="handset", number=handset, action="status")
        assert isinstance(status, dict)
        if status[key] == value:
            return status
        time.sleep(0.05)
    raise AssertionError(f"handset {handset} {key} never became {value!r}:\n{box.log_text()}")


def test_handset_1_calls_extension_102(box: Appliance, tmp_path: Path) -> None:
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="102")
    box.wait_log("route 'internal'")
    # Ringback at once: ITU 425 Hz, 1 s on then 4 s off (E.180 Suppl. 2).
    ringback = record(box, 1, tmp_path / "ringback.wav", 0.6)
    assert dominant_hz(ringback) == pytest.approx(first_hz("ringback"), abs=5)
    # The ETSI profile sends caller ID before ringing, and then the phone rings.
    wait_status(box, 2, "rings", 1)
    assert "port 2: caller ID 101 'Port 1' sent" in box.log_text()

    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("audio of ports 1 and 2 connected")
    box.sim(target="handset", number=1, action="tone", freqs=[1000])
    heard = record(box, 2, tmp_path / "heard.wav", 0.8)
    assert dominant_hz(heard) == pytest.approx(1000, abs=5)
    # After the path's own delay (simulated card both ways, one frame in the cross-connect),
    # the tone is continuous; one late frame under load is tolerated.
    # (the simulated card plays silence for a frame the appliance sent late: allow a few
    # under a loaded test machine; the split's log line counts the cross-connect's own)
    on = on_fraction(heard[1600:])
    assert sum(on) >= 0.75 * len(on), on
    box.sim(target="handset", number=1, action="stop-audio")
    box.sim(target="handset", number=2, action="tone", freqs=[1600])
    back = record(box, 1, tmp_path / "back.wav", 0.5)
    assert dominant_hz(back) == pytest.approx(1600, abs=5)
    box.sim(target="handset", number=2, action="stop-audio")

    box.sim(target="handset", number=2, action="on-hook")
    box.wait_log("port 2 left (talking)")
    busy = record(box, 1, tmp_path / "busy.wav", 1.0)
    assert dominant_hz(busy) == pytest.approx(first_hz("busy"), abs=5)
    box.sim(target="handset", number=1, action="on-hook")
    box.wait_log("port 1: HungUp")


def test_caller_hangs_up_while_it_rings(box: Appliance) -> None:
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="102")
    wait_status(box, 2, "ringing", True)
    box.sim(target="handset", number=1, action="on-hook")
    wait_status(box, 2, "ringing", False, timeout=5)
    box.wait_log("port 1 left (ringing)")


def test_unknown_number_gets_congestion(box: Appliance, tmp_path: Path) -> None:
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="109")
    box.wait_log("no extension 109")
    tone = record(box, 1, tmp_path / "congestion.wav", 1.0)
    assert dominant_hz(tone) == pytest.approx(first_hz("congestion"), abs=5)
    on = on_fraction(tone)
    changes = sum(a != b for a, b in itertools.pairwise(on))
    assert changes >= 3, "congestion is 200 ms on / 200 ms off: several changes a second"


def test_zero_and_a_number_goes_out_on_the_exchange_line(box: Appliance, tmp_path: Path) -> None:
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="05551234")
    box.wait_log("dialling 5551234 by DTMF", timeout=WAIT_S)
    deadline = time.monotonic() + WAIT_S
    collected = ""
    while time.monotonic() < deadline:
        co = box.sim(target="co", number=1, action="status")
        assert isinstance(co, dict)
        collected = co["digits"]
        if collected == "5551234":
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the exchange collected {collected!r}:\n{box.log_text()}")
    # The caller is cut through to the line: the far end and the handset hear each other.
    box.sim(target="co", number=1, action="answer")
    box.sim(target="co", number=1, action="tone", freqs=[1000])
    heard = record(box, 1, tmp_path / "from_line.wav", 0.5)
    assert dominant_hz(heard) == pytest.approx(1000, abs=5)
    box.sim(target="co", number=1, action="stop-audio")
    box.sim(target="handset", number=1, action="tone", freqs=[700])
    sent = tmp_path / "to_line.wav"
    box.sim(target="co", number=1, action="record", file=str(sent), seconds=0.5)
    deadline = time.monotonic() + WAIT_S
    while not sent.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # written whole (renamed into place) at the end of the recording
    assert sent.exists(), f"the exchange recorded nothing:\n{box.log_text()}"
    with wave.open(str(sent)) as w:
        line_pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
    assert dominant_hz(line_pcm) == pytest.approx(700, abs=5)
    box.sim(target="handset", number=1, action="stop-audio")

    box.sim(target="handset", number=1, action="on-hook")
    box.wait_log("port 1 left (talking)")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        co = box.sim(target="co", number=1, action="status")
        assert isinstance(co, dict)
        if co["state"] == "idle":
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the exchange line was not released:\n{box.log_text()}")


def test_far_end_clearing_the_exchange_line_gives_busy(box: Appliance, tmp_path: Path) -> None:
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="0123")
    box.wait_log("dialling 123 by DTMF", timeout=15)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        co = box.sim(target="co", number=1, action="status")
        assert isinstance(co, dict)
        if co["digits"] == "123":
            break
        time.sleep(0.05)
    box.sim(target="co", number=1, action="answer")
    box.sim(target="co", number=1, action="disconnect")  # busy tone, then the line drops
    box.wait_log("exchange line on port 3: far end cleared", timeout=20)
    busy = record(box, 1, tmp_path / "busy.wav", 1.0)
    assert dominant_hz(busy) == pytest.approx(first_hz("busy"), abs=5)
