"""The asyncio link against a card session over real TCP sockets and a real pty."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import tty
from collections.abc import AsyncIterator, Callable

import pytest

from drivers.linecard import protocol as p
from drivers.linecard.link import Link, LinkFailed, LinkOpenError
from drivers.linecard.session import (
    DownReason,
    LinkDown,
    LinkUp,
    NotConnectedError,
    Received,
    Role,
    Session,
)
from tests.linecard.samples import CARD


class CardPeer:
    """A card session driven by the event loop; answers StatusRequest with PortStatus."""

    def __init__(
        self,
        write: Callable[[bytes], object],
        card: p.HelloAck = CARD,
        close: Callable[[], object] = lambda: None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.close_connection = close
        self.session = Session(Role.CARD, card=card)
        self.write = write
        self.received: list[p.Message] = []
        self.timer: asyncio.TimerHandle | None = None
        self.session.start(self.loop.time())
        self.pump()

    def feed(self, data: bytes) -> None:
        self.session.receive_data(data, self.loop.time())
        self.pump()

    def send(self, message: p.Message) -> None:
        self.session.send(message, self.loop.time())
        self.pump()

    def pump(self) -> None:
        for event in self.session.events():
            if isinstance(event, Received):
                self.received.append(event.message)
                if isinstance(event.message, p.StatusRequest):
                    port = event.message.port
                    status = p.PortStatus(port, CARD.kind(port), p.StatusFlag.NONE, 1)
                    self.session.send(status, self.loop.time())
        if data := self.session.data_to_send():
            self.write(data)
        if self.timer:
            self.timer.cancel()
        deadline = self.session.get_timer()
        if deadline is not None:
            self.timer = self.loop.call_at(deadline, self.on_timer)

    def on_timer(self) -> None:
        self.session.handle_timer(self.loop.time())
        self.pump()

    def stop(self) -> None:
        if self.timer:
            self.timer.cancel()


@contextlib.asynccontextmanager
async def tcp_card() -> AsyncIterator[tuple[str, list[CardPeer], asyncio.Server]]:
    peers: list[CardPeer] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = CardPeer(writer.write, close=writer.close)
        peers.append(peer)
        try:
            while data := await reader.read(4096):
                peer.feed(data)
        finally:
            peer.stop()
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"socket://127.0.0.1:{port}", peers, server


async def next_of(link: Link, kind: type, timeout: float = 2.0) -> object:
    async with asyncio.timeout(timeout):
        async for event in link:
            if isinstance(event, kind):
                return event
    raise AssertionError("link closed")


async def test_link_over_tcp_round_trip() -> None:
    async with tcp_card() as (url, peers, _), Link(url) as link:
        card = await link.wait_connected(timeout=2)
        assert card.ports == CARD.ports and link.card == card
        await link.send(p.StatusRequest(5))
        status = await next_of(link, p.PortStatus)
        assert status == p.PortStatus(5, p.PortKind.FXO, p.StatusFlag.NONE, 1)
        peers[0].send(p.HookChange(1, True, 1234))
        assert await next_of(link, p.HookChange) == p.HookChange(1, True, 1234)
        assert peers[0].received == [p.StatusRequest(5)]
    assert not link.connected


async def test_link_over_pty_and_card_reset() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo before pyserial configures the port
    loop = asyncio.get_running_loop()
    peers = [CardPeer(lambda d: os.write(master, d))]
    loop.add_reader(master, lambda: peers[-1].feed(os.read(master, 4096)))
    try:
        async with Link(os.ttyname(slave)) as link:
            await link.wait_connected(timeout=2)
            assert await next_of(link, LinkUp)
            peers[-1].stop()
            peers.append(
                CardPeer(lambda d: os.write(master, d), dataclasses.replace(CARD, boot_id=9))
            )
            down = await next_of(link, LinkDown)
            assert isinstance(down, LinkDown) and down.reason is DownReason.PEER_RESET
            up = await next_of(link, LinkUp)
            assert isinstance(up, LinkUp) and up.card.boot_id == 9
            await link.send(p.Seize(5))
            async with asyncio.timeout(2):
                while p.Seize(5) not in peers[-1].received:
                    await asyncio.sleep(0.01)
    finally:
        loop.remove_reader(master)
        peers[-1].stop()
        os.close(master)
        os.close(slave)


async def test_silent_card_is_reported() -> None:
    async with tcp_card() as (url, peers, _), Link(url) as link:
        await link.wait_connected(timeout=2)
        peers[0].stop()
        peers[0].write = lambda data: None  # the card hangs: nothing more comes out
        peers[0].session.handle_timer = lambda now: None  # type: ignore[method-assign]
        # The bound (< 1 s) is asserted on a simulated clock in test_session.py.
        down = await next_of(link, LinkDown, timeout=3)
        assert isinstance(down, LinkDown) and down.reason is DownReason.PEER_SILENT
        with pytest.raises(NotConnectedError):
            await link.send(p.StopRing(1))


async def test_closed_socket_fails_the_link() -> None:
    async with tcp_card() as (url, peers, server):
        link = Link(url)
        await link.open()
        await link.wait_connected(timeout=2)
        server.close()
        peers[0].stop()
        peers[0].close_connection()
        failed = await next_of(link, LinkFailed, timeout=3)
        assert isinstance(failed, LinkFailed) and failed.description
        async with asyncio.timeout(2):
            async for _ in link:
                pass  # iteration ends once the link closed itself
        await link.close()


async def test_loop_url_lifecycle() -> None:
    # loop:// echoes our own Hello back: the host must ignore it and stay handshaking.
    link = Link("loop://")
    await link.open()
    with pytest.raises(TimeoutError):
        await link.wait_connected(timeout=0.3)
    assert link.stats.frames_in > 0
    await link.close()
    await link.close()
    with pytest.raises(EOFError):
        await link.next_event(timeout=1)


@pytest.mark.parametrize(
    "url", ["socket://127.0.0.1:1", "/dev/ttyNOSUCHPORT", "nonsense://x", "socket://nohost"]
)
async def test_unopenable_urls_raise_a_clear_error(url: str) -> None:
    link = Link(url)
    with pytest.raises(LinkOpenError, match="cannot open line card at") as caught:
        await link.open()
    assert isinstance(caught.value, OSError)
    await link.close()
