"""``ponte run`` end to end: a real appliance process, its simulator, systemd's socket."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.sim.control import request
from firmware.dsp.levels import power_dbm0

START_TIMEOUT_S = 60  # two Python processes importing numpy on a loaded 2-core machine


class Appliance:
    def __init__(self, tmp_path: Path, *extra: str) -> None:
        self.data = tmp_path / "data"
        self.notify_path = tmp_path / "notify"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.log_path = tmp_path / "ponte.log"
        self.log = self.log_path.open("w")
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify_path), WATCHDOG_USEC="400000")
        command = [sys.executable, "-m", "firmware", "run", "--data-dir", str(self.data)]
        if "--sip-port" not in extra:
            command += ["--sip-port", "0"]  # parallel test runs must not fight over 5060
        self.proc = subprocess.Popen(
            [*command, *extra],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        # Read sd_notify messages all the time, as systemd does: the kernel queues only
        # net.unix.max_dgram_qlen (10) datagrams, after which the appliance's sd_notify (a
        # blocking send inside python-systemd, GIL held) would stall the whole process.
        self.messages: list[str] = []
        self._received: queue.Queue[str] = queue.Queue()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read_notify, daemon=True)
        self._reader.start()

    def _read_notify(self) -> None:
        self.notify.settimeout(0.2)
        while not self._closed.is_set():
            try:
                msg = self.notify.recv(4096).decode()
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append(msg)
            self._received.put(msg)

    @property
    def control(self) -> Path:
        return self.data / "sim.sock"

    def wait_notify(self, prefix: str, timeout: float = START_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self._received.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, f"ponte run exited:\n{self.log_text()}"
                continue
            if msg.startswith(prefix):
                return msg
        raise AssertionError(f"no {prefix!r} from ponte run; log:\n{self.log_text()}")

    def sim(self, **req: object) -> object:
        response = request(self.control, req, timeout=10)
        assert response["ok"], response
        return response.get("result")

    def wait_log(self, text: str, count: int = 1, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_text().count(text) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} x{count} not in the log:\n{self.log_text()}")

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._closed.set()
        self._reader.join(2)
        self.notify.close()
        self.log.close()


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[Appliance]:
    app = Appliance(tmp_path, "--fxs", "2", "--fxo", "1", "--stderr")
    yield app
    app.close()


def dominant_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * 8000 / len(pcm))


def test_off_hook_gets_dial_tone_digits_and_hang_up_are_seen(
    appliance: Appliance, tmp_path: Path
) -> None:
    ready = appliance.wait_notify("READY=1")
    assert "STATUS=line card up, 2 FXS + 1 FXO, 0 in use" in ready
    appliance.wait_notify("WATCHDOG=1", timeout=5)

    appliance.sim(target="handset", number=1, action="off-hook")
    appliance.wait_log("port 1: OffHook")
    wav = tmp_path / "heard.wav"
    appliance.sim(target="handset", number=1, action="record", file=str(wav), seconds=0.6)
    deadline = time.monotonic() + 10
    while not wav.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with wave.open(str(wav)) as w:
        heard = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
    # Factory defaults use the ITU-T profile: 425 Hz continuous at -10 dBm0 (E.180 Suppl. 2).
    assert dominant_hz(heard) == pytest.approx(425, abs=5)
    assert power_dbm0(heard) == pytest.approx(-10, abs=1.0)

    appliance.sim(target="handset", number=1, action="dial", digits="42")
    appliance.wait_log("port 1: DigitDialled", count=2)
    appliance.sim(target="handset", number=1, action="on-hook")
    appliance.wait_log("port 1: HungUp")

    appliance.proc.send_signal(signal.SIGTERM)
    assert appliance.proc.wait(timeout=20) == 0, appliance.log_text()
    appliance.wait_notify("STOPPING=1", timeout=1)
    assert not appliance.control.exists(), "the simulator outlived the appliance"


def test_a_line_card_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nobody listens once closed
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "firmware",
            "run",
            "--data-dir",
            str(tmp_path),
            "--linecard",
            f"socket://127.0.0.1:{port}",
            "--stderr",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "cannot start" in proc.stderr and f"127.0.0.1:{port}" in proc.stderr


def test_conflicting_options_are_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "firmware", "run", "--simulate", "--linecard", "loop://"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "--simulate and --linecard exclude each other" in proc.stderr
