"""Issue 5 figures on the wired flow: a real ``ponte run`` with simulated handsets.

- CPU of a three-way conference made by hook flash (handset 1 calls 102, flashes, calls 103,
  flashes again), all three talking: process CPU (from /proc) idle, with the two-party call,
  and with the three-way call, and what the three-way call costs per 20 ms frame over idle
  and over the two-party call;
- time from the last digit of a voicemail PIN to the menu prompt reaching the line: the
  handset dials ``*98``, waits for the PIN prompt to end, keys ``PIN#``; measured on the
  card's clock from the end of the ``#`` tone to the first frame the handset hears above
  -40 dBm0 (so a prompt's own leading silence counts: that is what the caller waits for);
- size on disk of a one-minute voicemail deposited through a call (102 busy, handset 1
  calls it, speaks a tone for 60 s after the beep, ends with ``#``), in each message format.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from firmware.dsp.levels import power_dbm0
from firmware.dsp.wavio import read_wav
from firmware.pbx import voicemail as vm
from firmware.prompts.library import PromptLibrary
from firmware.store import ConfigStore, default_config
from firmware.store.schema import Config, VoicemailFormat

CLK_TCK = os.sysconf("SC_CLK_TCK")
CPU_WINDOW_S = 10.0
FRAME_S = 0.020
PIN = "2468"
PIN_ROUNDS = 10
MESSAGE_S = 60.0
START_TIMEOUT_S = 90.0  # a loaded 2-core machine: numpy, pjsua2 and the prompts load first


class PonteRun:
    """``ponte run`` in its own process on a simulated card, driven through ``sim.sock``."""

    def __init__(self, tmp: Path, fxs: int, change: Callable[[Config], Config]) -> None:
        self.data = tmp / "data"
        store = ConfigStore.open(self.data, defaults=default_config(fxs, 0))
        try:
            store.apply(change(store.current().config), author="bench", summary="services")
        finally:
            store.close()
        self.log_path = tmp / "ponte.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "firmware", "run", "--data-dir", str(self.data),
                "--fxs", str(fxs), "--fxo", "0", "--stderr", "--sip-port", "0",
            ],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.wait_log("control API listening", timeout=START_TIMEOUT_S)
        time.sleep(1.0)

    def sim(self, **req: object) -> dict[str, object]:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(self.data / "sim.sock"))
            s.sendall(json.dumps(req).encode() + b"\n")
            reply = json.loads(s.makefile().readline())
        if not reply.get("ok"):
            raise RuntimeError(f"sim {req}: {reply.get('error')}")
        result = reply.get("result")
        return result if isinstance(result, dict) else {}

    def handset(self, number: int, action: str, **more: object) -> dict[str, object]:
        return self.sim(target="handset", number=number, action=action, **more)

    def wait_log(self, text: str, count: int = 1, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.log_path.read_text().count(text) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                tail = self.log_path.read_text()[-3000:]
                raise RuntimeError(f"{text!r} x{count} not in the log:\n{tail}")
            time.sleep(0.05)

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def cpu_pct(self, seconds: float = CPU_WINDOW_S) -> float:
        c0, t0 = self.cpu_s(), time.monotonic()
        time.sleep(seconds)
        return (self.cpu_s() - c0) / (time.monotonic() - t0) * 100

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@contextlib.contextmanager
def ponte_run(fxs: int, change: Callable[[Config], Config]) -> Iterator[PonteRun]:
    with tempfile.TemporaryDirectory() as tmp:
        box = PonteRun(Path(tmp), fxs, change)
        try:
            yield box
        finally:
            box.close()


def _dial(box: PonteRun, handset: int, digits: str) -> float:
    """Dial and wait for it to end; the card-clock time the last tone ended."""
    result = box.handset(handset, "dial", digits=digits)
    time.sleep(float(str(result["ends_in"])) + 0.2)
    return float(str(result["ends_at"])) - 0.080  # drivers.sim.tones.DTMF_OFF_MS after it


def _flash(box: PonteRun, handset: int) -> None:
    result = box.handset(handset, "flash")
    time.sleep(float(str(result["ends_in"])) + 0.3)


# --- three-way conference CPU --------------------------------------------------------------


def three_way_cpu() -> tuple[float, float, float, int]:
    """(idle %, two-party %, three-way %, frames of the three-way call) of one core."""
    with ponte_run(3, lambda c: c) as box:
        for n in (2, 3):
            box.handset(n, "auto-answer", seconds=0.5)
        idle = box.cpu_pct()
        box.handset(1, "off-hook")
        box.wait_log("port 1: OffHook")
        _dial(box, 1, "102")
        box.wait_log("audio of ports 1 and 2 connected")
        for n, hz in ((1, 600), (2, 900)):
            box.handset(n, "tone", freqs=[hz])
        time.sleep(1.0)
        two = box.cpu_pct()
        _flash(box, 1)
        box.wait_log("flash holds the call")
        box.handset(1, "stop-audio")
        _dial(box, 1, "103")
        box.wait_log("audio of ports 1 and 3 connected")
        _flash(box, 1)
        box.wait_log("mixed in a three-way call")
        for n, hz in ((1, 600), (3, 1300)):
            box.handset(n, "tone", freqs=[hz])
        time.sleep(1.0)
        three = box.cpu_pct()
        for n in (1, 2, 3):
            box.handset(n, "on-hook")
        frames = int(CPU_WINDOW_S / FRAME_S)
    return idle, two, three, frames


# --- PIN -> menu prompt ----------------------------------------------------------------------


def _with_pin(config: Config) -> Config:
    extensions = tuple(
        replace(e, voicemail_pin=PIN) if e.number == "102" else e for e in config.extensions
    )
    return replace(config, extensions=extensions)


def leading_silence_ms(box: PonteRun, name: str) -> float:
    """How long prompt ``name`` (as the box has it) starts quiet: below -40 dBm0 per 20 ms."""
    pcm = PromptLibrary.for_data_dir(box.data).get(name).pcm
    block = int(8000 * FRAME_S)
    for i in range(0, len(pcm) - block + 1, block):
        if power_dbm0(pcm[i : i + block]) >= -40.0:
            return i / 8
    return len(pcm) / 8


def pin_to_prompt() -> tuple[list[float], float]:
    """ms from the end of the PIN's closing '#' to the first sound of the menu, per round;
    and the leading silence of the menu's first prompt (no messages: vm-no-messages)."""
    out: list[float] = []
    with ponte_run(2, _with_pin) as box:
        lead = leading_silence_ms(box, vm.P_NO_MESSAGES)
        for i in range(PIN_ROUNDS):
            box.handset(2, "off-hook")
            box.wait_log("port 2: OffHook", count=i + 1)
            _dial(box, 2, "*98")
            box.wait_log("port 2: MailboxMenu started", count=i + 1)
            # Let "Please enter your PIN" end (a key would cut it short, and its sound
            # would count as the menu's).
            time.sleep(4.0)
            last = _dial(box, 2, PIN + "#")
            time.sleep(3.0)
            at = box.handset(2, "first-sound", after=last, level=-40.0).get("at")
            if isinstance(at, int | float):
                out.append(max(0.0, (float(at) - last) * 1000))
            box.handset(2, "on-hook")
            box.wait_log("port 2: MailboxMenu ended", count=i + 1)
            time.sleep(0.5)
    return out, lead


# --- a one-minute voicemail on disk ----------------------------------------------------------


def message_size(fmt: VoicemailFormat) -> tuple[int, float]:
    """(bytes on disk, seconds of audio) of a one-minute message left through a call."""

    def change(config: Config) -> Config:
        return replace(config, voicemail=replace(config.voicemail, format=fmt))

    with ponte_run(2, change) as box:
        box.handset(2, "off-hook")  # busy: the call goes straight to the box
        box.wait_log("port 2: OffHook")
        box.handset(1, "off-hook")
        box.wait_log("port 1: OffHook")
        _dial(box, 1, "102")
        box.wait_log("recording a message for box 102", timeout=30)
        box.handset(1, "tone", freqs=[600])
        time.sleep(MESSAGE_S)
        box.handset(1, "stop-audio")
        _dial(box, 1, "#")
        box.wait_log("stored in box 102", timeout=30)
        box.handset(1, "on-hook")
        box.handset(2, "on-hook")
        files = sorted((box.data / "voicemail" / "102").glob("*.wav"))
        files = [f for f in files if not f.name.startswith("greeting")]
        if not files:
            raise RuntimeError("no message file")
        audio = read_wav(files[0].read_bytes())  # G.711 too, which the wave module refuses
        return files[0].stat().st_size, audio.pcm.size / audio.rate


def main() -> None:
    idle, two, three, frames = three_way_cpu()
    per_frame = (three - idle) / 100 * FRAME_S * 1e6
    over_two = (three - two) / 100 * FRAME_S * 1e6
    print(
        f"three-way conference (hook flash, 3 simulated handsets talking), CPU of ponte run: "
        f"idle {idle:.1f} %, two-party call {two:.1f} %, three-way {three:.1f} % of one core"
    )
    print(
        f"   three-way over idle: {per_frame:.0f} us per 20 ms frame; over the two-party "
        f"call: {over_two:.0f} us per frame ({frames} frames a window)"
    )
    delays, lead = pin_to_prompt()
    if delays:
        print(
            f"voicemail PIN '#' end -> first sound of the menu at the handset: median "
            f"{statistics.median(delays):.0f} ms, min {min(delays):.0f}, max {max(delays):.0f} "
            f"over {len(delays)} logins"
        )
        print(f"   of which the prompt's own leading silence ({vm.P_NO_MESSAGES}): {lead:.0f} ms")
    else:
        print("voicemail PIN -> menu: no measurement")
    for fmt in ("alaw", "pcm16"):
        size, seconds = message_size(fmt)
        print(
            f"one-minute voicemail left through a call ({fmt}): {size} bytes for "
            f"{seconds:.1f} s of audio, {size / 1024 / (seconds / 60):.0f} KiB/min"
        )


if __name__ == "__main__":
    main()
