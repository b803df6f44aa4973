"""Application ports (firmware.service.appports): what the media loops of SIP callers cost,
and what their idle bridge ports cost the SIP endpoint (pjmedia calls every bridge port's
Python callback each tick, connected or not).

All four ports of the pool run at once, each playing a prompt to its caller through an
AppLink while a stand-in for pjmedia's clock (one thread, 20 ms) feeds every downlink and
drains every uplink, as the conference bridge does.  Figures: process CPU per port and per
frame (the stand-in's share included, so an upper bound), and how many frames each loop
produced against its clock (a loop that falls behind resyncs rather than bursting).
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from drivers.audio.buffer import DriftBuffer
from drivers.audio.format import PcmFormat
from firmware.pbx.apps import APP_PORTS
from firmware.service.appports import LegStream
from firmware.service.apps import AppLink
from firmware.service.media import PortMedia
from firmware.sip.endpoint import SipEndpoint
from firmware.sip.settings import EndpointSettings

SECONDS = 10.0
LINES = (1, 2, 3, 4, 5, 6)  # a 4 FXS + 2 FXO card
FMT = PcmFormat(8000, 20)


def main() -> None:
    media_loops()
    idle_bridge_ports()


def media_loops() -> None:
    rng = np.random.default_rng(1)
    prompt = rng.integers(-4000, 4000, int(SECONDS * 8000) + 8000, dtype="<i2").tobytes()
    caller = rng.integers(-4000, 4000, 160, dtype="<i2").tobytes()
    pairs = [(DriftBuffer(FMT), DriftBuffer(FMT)) for _ in APP_PORTS]
    medias: list[PortMedia] = []
    for port, (up, down) in zip(APP_PORTS, pairs, strict=True):
        media = PortMedia(
            port,
            LegStream(FMT, up, down),
            detect_dtmf=False,
            on_digit=lambda p, d: None,
            on_failure=lambda p, e: None,
        )
        link = AppLink(FMT.bytes_per_frame, lambda seq: None)
        link.play(prompt, 1)
        heard: list[bytes] = []
        link.record_to(heard.append)  # what the caller says reaches the application (10 s)
        media.app = link
        medias.append(media)
    stop = threading.Event()
    out = bytearray(FMT.bytes_per_frame)

    def bridge() -> None:  # pjmedia's clock, as the LinePorts would be driven by it
        tick = time.monotonic()
        while not stop.is_set():
            for up, down in pairs:
                down.push(caller)
                up.pop_into(out)
            tick += 0.020
            time.sleep(max(0.0, tick - time.monotonic()))

    clock = threading.Thread(target=bridge, daemon=True)
    cpu0, wall0 = time.process_time(), time.monotonic()
    clock.start()
    for media in medias:
        media.start()
    time.sleep(SECONDS)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    stop.set()
    for media in medias:
        media.stop()
    clock.join()
    expected = wall / 0.020
    frames = [m.frames for m in medias]
    per_port = 100 * cpu / wall / len(medias)
    per_frame = cpu / sum(frames) * 1e6
    print(f"   {len(medias)} application ports for {wall:.1f} s, each playing a prompt")
    print(f"   process CPU {100 * cpu / wall:.1f} % ({per_port:.2f} % per port)")
    print(f"   {per_frame:.0f} us per frame (loop + AppLink + the bridge stand-in)")
    print(
        "   frames per port against the 20 ms clock: "
        + ", ".join(f"{f / expected:.3f}" for f in frames)
    )
    under = [down.stats().underruns for _up, down in pairs]
    print(f"   downlink underruns per port: {under}")


async def _idle_cpu(ports: tuple[int, ...]) -> float:
    ep = SipEndpoint(EndpointSettings(line_ports=ports, codecs=("PCMU",)))
    await ep.start()
    try:
        await asyncio.sleep(1.0)
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(SECONDS)
        return 100 * (time.process_time() - cpu0) / (time.monotonic() - wall0)
    finally:
        await ep.stop()


def idle_bridge_ports() -> None:
    lines = asyncio.run(_idle_cpu(LINES))
    more = asyncio.run(_idle_cpu((*LINES, *APP_PORTS)))
    print(
        f"   idle SIP endpoint CPU: {len(LINES)} line ports {lines:.2f} %, "
        f"with the {len(APP_PORTS)} application ports {more:.2f} %"
    )
