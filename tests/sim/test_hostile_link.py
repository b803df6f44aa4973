"""The real shells end to end through a hostile TCP relay: Link <-> relay <-> Simulator.

The relay drops, duplicates and splits chunks and sprinkles garbage, both ways, like a
noisy UART; commands and events must still arrive exactly once and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

from drivers.linecard import protocol as p
from drivers.linecard.link import Link
from drivers.sim.simulator import Simulator


@contextlib.asynccontextmanager
async def hostile_relay(target: str, seed: int) -> AsyncIterator[str]:
    host, _, port = target.removeprefix("socket://").rpartition(":")
    rng = random.Random(seed)
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(4096):
                roll = rng.random()
                if roll < 0.08:
                    continue  # lost
                if roll < 0.14:
                    writer.write(rng.randbytes(rng.randint(1, 12)))  # noise
                if roll < 0.20:
                    writer.write(data)  # duplicated
                for i in range(len(data)):  # trickled one byte at a time
                    writer.write(data[i : i + 1])
                await writer.drain()
        writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        both = [
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ]
        tasks.update(both)
        await asyncio.gather(*both, return_exceptions=True)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"socket://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def test_commands_and_events_survive_a_hostile_relay() -> None:
    async with (
        Simulator(fxs=2, fxo=1, seed=5) as sim,
        hostile_relay(sim.url, seed=6) as url,
        Link(url) as link,
    ):
        await link.wait_connected(timeout=10)
        statuses: list[p.PortStatus] = []
        hooks: list[p.HookChange] = []

        async def collect() -> None:
            async for event in link:
                if isinstance(event, p.PortStatus):
                    statuses.append(event)
                elif isinstance(event, p.HookChange):
                    hooks.append(event)

        collector = asyncio.create_task(collect())
        handset = sim.handset(1)
        for i in range(40):
            await link.send(p.StatusRequest(i % 3 + 1))
            if i % 2 == 0:
                handset.off_hook()
            else:
                handset.on_hook()
            await asyncio.sleep(0.02)
        async with asyncio.timeout(20):
            while len(statuses) < 40 or len(hooks) < 40:
                await asyncio.sleep(0.05)
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        assert [s.port for s in statuses] == [i % 3 + 1 for i in range(40)]
        assert [h.off_hook for h in hooks] == [i % 2 == 0 for i in range(40)]
        stamps = [h.timestamp_ms for h in hooks]
        assert stamps == sorted(stamps)
        assert link.stats.frames_bad > 0  # the relay really was hostile
        assert link.stats.retransmissions + sim.card.session.stats.retransmissions > 0
