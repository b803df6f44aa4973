"""Two SIP calls bridged in the endpoint (an IP phone or a forwarded trunk call going out
through a trunk, a transfer that fell back to bridging): process CPU per bridged pair.

4 calls to sipp answering and echoing RTP, bridged two by two with ``bridge_calls`` (no line
port takes part); minus the same process idle, per pair.  sipp echoes what each call sends,
so every bridged frame crosses the conference bridge both ways.
"""

from __future__ import annotations

import asyncio
import time

from bench.bench_bridge import free_port, sipp_echo
from bench.bench_sipmedia import CPU_WINDOW_S, _cpu_over
from firmware.sip.endpoint import SipEndpoint
from firmware.sip.events import CallMediaChanged
from firmware.sip.settings import EndpointSettings

CALLS = 4  # the pjsua2 build's limit: two bridged pairs


async def _run() -> None:
    ep = SipEndpoint(EndpointSettings(codecs=("PCMU",), log_level=2))
    sip_port = free_port()
    with sipp_echo(sip_port):
        await ep.start()
        try:
            idle = await asyncio.to_thread(_cpu_over, CPU_WINDOW_S)
            calls = [
                await ep.make_call("local", f"sip:uas@127.0.0.1:{sip_port}") for _ in range(CALLS)
            ]
            up: set[int] = set()
            async with asyncio.timeout(30):
                while len(up) < CALLS:
                    ev = await ep.next_event()
                    if isinstance(ev, CallMediaChanged) and ev.active:
                        up.add(ev.call_id)
            started = time.perf_counter()
            for a, b in zip(calls[::2], calls[1::2], strict=True):
                await ep.bridge_calls(a, b)
            bridging = (time.perf_counter() - started) / (CALLS // 2)
            await asyncio.sleep(1.0)
            busy = await asyncio.to_thread(_cpu_over, CPU_WINDOW_S)
        finally:
            await ep.stop()
    pairs = CALLS // 2
    print(f"{pairs} bridged pairs of SIP calls (sipp echoing RTP, {CPU_WINDOW_S:.0f} s windows):")
    print(f"   idle endpoint              {idle:6.2f} % of one core")
    print(f"   {CALLS} calls up, bridged       {busy:6.2f} % of one core")
    print(f"   per bridged pair           {(busy - idle) / pairs:6.2f} % of one core")
    print(f"   bridge_calls, queued to the SIP thread and back   {bridging * 1e3:.2f} ms")


def main() -> None:
    asyncio.run(_run())
