"""Control API figures: login hash cost, call latency and throughput, event fan-out."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from firmware.api.auth import DEFAULT_SCRYPT, MemoryCredentialStore, ScryptParams, hash_password
from firmware.api.client import ApiClient
from firmware.api.server import ApiServer

CALLS_SEQUENTIAL = 2000
CLIENTS = 8
CALLS_PER_CLIENT = 500
SUBSCRIBERS = 4
EVENTS = 20000


def _line(name: str, value: float, unit: str) -> None:
    # No targets: none is specified for these yet; the figures are for comparison.
    print(f"   {name:<44} {value:>12.1f} {unit}")


async def _run(path: Path) -> None:
    server = ApiServer(path, credentials=MemoryCredentialStore(), scrypt=ScryptParams(log2_n=4))
    await server.start()
    try:
        async with ApiClient(path) as api:
            samples = []
            for _ in range(CALLS_SEQUENTIAL):
                t0 = time.perf_counter()
                await api.call("api.version")
                samples.append(time.perf_counter() - t0)
            samples.sort()
            _line("call round trip, median", statistics.median(samples) * 1e6, "us")
            _line("call round trip, 99th percentile", samples[int(0.99 * len(samples))] * 1e6, "us")

        clients = [ApiClient(path) for _ in range(CLIENTS)]
        for c in clients:
            await c.connect()
        t0 = time.perf_counter()
        await asyncio.gather(
            *(c.call("api.version") for c in clients for _ in range(CALLS_PER_CLIENT))
        )
        elapsed = time.perf_counter() - t0
        _line(
            f"calls/s, {CLIENTS} clients pipelining",
            CLIENTS * CALLS_PER_CLIENT / elapsed,
            "calls/s",
        )
        for c in clients:
            await c.close()

        subs = [ApiClient(path, max_queued_events=EVENTS + 10) for _ in range(SUBSCRIBERS)]
        for s in subs:
            await s.connect()
            await s.subscribe("calls")

        async def drain(client: ApiClient) -> int:
            got = 0
            while got < EVENTS:
                ev = await client.next_event(30)
                got += ev.data["count"] if ev.topic == "api.events_dropped" else 1
            return got

        readers = [asyncio.create_task(drain(s)) for s in subs]
        t0 = time.perf_counter()
        for i in range(EVENTS):
            server.publish("calls.tick", {"i": i, "from": "+390612345678"})
            if i % 100 == 0:
                await asyncio.sleep(0)
        await asyncio.gather(*readers)
        elapsed = time.perf_counter() - t0
        dropped = sum(p.outbound.dropped_total for p in server.peers().values())
        _line(
            f"events/s delivered to {SUBSCRIBERS} subscribers",
            SUBSCRIBERS * EVENTS / elapsed,
            "events/s",
        )
        _line("events dropped (slow readers) of the above", dropped, "events")
        for s in subs:
            await s.close()
    finally:
        await server.stop()


def main() -> None:
    t0 = time.perf_counter()
    hash_password("a fine password", DEFAULT_SCRYPT)
    _line(
        "scrypt hash, N=2^17 r=8 p=1 (one login)",
        (time.perf_counter() - t0) * 1e3,
        "ms",
    )
    with tempfile.TemporaryDirectory(prefix="ponte-bench-") as d:
        asyncio.run(_run(Path(d) / "api.sock"))


if __name__ == "__main__":
    main()
