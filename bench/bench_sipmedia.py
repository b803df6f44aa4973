"""The media path of the SIP core (issue 4, figures): per-frame callback cost and CPU per call.

- the cost of one ``onFrameRequested`` / ``onFrameReceived`` of a line's bridge port, on the
  fast path (std::vector storage through ctypes) and the slow one (SWIG sequence copies);
- process CPU with 4 calls up, each bridged to a line port fed by a 20 ms line clock, against
  sipp answering and echoing RTP; minus the same process idle with the 4 ports, per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import tempfile
import threading
import time
from typing import Any

from firmware.sip.audio import LineAudio, LinePort
from firmware.sip.endpoint import SipEndpoint
from firmware.sip.events import CallMediaChanged
from firmware.sip.settings import EndpointSettings

FRAMES = 20000
CPU_WINDOW_S = 10.0
CALLS = 4
TARGET_CPU_PER_CALL_PCT = 1.0  # issue 4 figures: 1 % of one core per bridged call


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _callback_costs(core: Any) -> dict[str, float]:
    """On the endpoint thread: time the callbacks on a port outside the bridge."""
    import pjsua2 as pj

    out: dict[str, float] = {}
    tone = bytes(range(256)) + bytes(range(64))
    for fast in (True, False):
        audio = LineAudio(99)
        port = LinePort(audio, fast)  # not created: callbacks are called directly
        frame = pj.MediaFrame()
        started = time.perf_counter()
        for _ in range(FRAMES):
            audio.uplink.push(tone)
            port.onFrameRequested(frame)
        out[f"requested {'fast' if fast else 'slow'}"] = (time.perf_counter() - started) / FRAMES
        rx = pj.MediaFrame()
        rx.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        rx.buf = pj.ByteVector(tone)
        rx.size = len(tone)
        started = time.perf_counter()
        for _ in range(FRAMES):
            port.onFrameReceived(rx)
            audio.downlink.pop_into(bytearray(320))
        out[f"received {'fast' if fast else 'slow'}"] = (time.perf_counter() - started) / FRAMES
        assert audio.callback_errors == 0
        del port
    empty = pj.MediaFrame()
    port = LinePort(LineAudio(98), True)
    started = time.perf_counter()
    for _ in range(FRAMES):
        port.onFrameReceived(empty)
    out["received, no audio"] = (time.perf_counter() - started) / FRAMES
    del port
    return out


class _LineClock(threading.Thread):
    """A line's media thread: push a frame, pop a frame, every 20 ms."""

    def __init__(self, audio: LineAudio) -> None:
        super().__init__(daemon=True)
        self.audio = audio
        self.halt = threading.Event()

    def run(self) -> None:
        frame = bytes(320)
        out = bytearray(320)
        due = time.monotonic()
        while not self.halt.is_set():
            self.audio.uplink.push(frame)
            self.audio.downlink.pop_into(out)
            due += 0.02
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                due = time.monotonic()


def _cpu_over(seconds: float) -> float:
    """Process CPU (all threads) in % of one core over ``seconds`` of wall time."""
    c0, w0 = time.process_time(), time.monotonic()
    time.sleep(seconds)
    return 100 * (time.process_time() - c0) / (time.monotonic() - w0)


async def _cpu_per_call() -> tuple[float, float, dict[str, int]]:
    ports = tuple(range(1, CALLS + 1))
    ep = SipEndpoint(EndpointSettings(line_ports=ports, codecs=("PCMU",), log_level=2))
    sip_port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        uas = subprocess.Popen(
            ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(sip_port),
             "-mp", str(_free_port()), "-rtp_echo"],
            cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        await ep.start()
        clocks = [_LineClock(ep.line_audio(p)) for p in ports]
        try:
            for c in clocks:
                c.start()
            idle = await asyncio.to_thread(_cpu_over, CPU_WINDOW_S)
            for p in ports:
                cid = await ep.make_call("local", f"sip:uas@127.0.0.1:{sip_port}")
                await ep.connect_audio(cid, p)
            up = 0
            async with asyncio.timeout(30):
                while up < CALLS:
                    ev = await ep.next_event()
                    up += isinstance(ev, CallMediaChanged) and ev.active
            await asyncio.sleep(1.0)
            busy = await asyncio.to_thread(_cpu_over, CPU_WINDOW_S)
            s = ep.line_audio(1).stats()
            counters = {
                "frames to SIP": s.frames_to_sip,
                "frames from SIP": s.frames_from_sip,
                "uplink underruns": s.uplink.underruns,
                "downlink underruns": s.downlink.underruns,
                "callback errors": s.callback_errors,
            }
        finally:
            for c in clocks:
                c.halt.set()
            await ep.stop()
            uas.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                uas.wait(10)
    return idle, busy, counters


async def _run() -> None:
    ep = SipEndpoint(EndpointSettings(log_level=2))
    await ep.start()
    try:
        costs = await ep.call(_callback_costs)
    finally:
        await ep.stop()
    print(f"per-frame callback cost ({FRAMES} frames, 320 bytes each):")
    for name, seconds in costs.items():
        print(f"   {name:<20} {seconds * 1e6:8.1f} us")
    idle, busy, counters = await _cpu_per_call()
    per_call = (busy - idle) / CALLS
    print(f"CPU with {CALLS} bridged calls up (sipp echoing RTP, {CPU_WINDOW_S:.0f} s windows):")
    print(f"   idle, {CALLS} line ports fed    {idle:6.2f} % of one core")
    print(f"   {CALLS} calls up                {busy:6.2f} % of one core")
    print(
        f"   per bridged call          {per_call:6.2f} % of one core "
        f"(target <= {TARGET_CPU_PER_CALL_PCT} %)"
    )
    for name, value in counters.items():
        print(f"   line 1 {name:<20} {value}")


def main() -> None:
    asyncio.run(_run())
