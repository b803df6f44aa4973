"""The test rig: the card under test, and whoever acts on the far side of its ports.

The contract tests are written once against :class:`CardUnderTest` (a synchronous facade
over the real :class:`~drivers.linecard.link.Link`) and a :class:`Rig` that lifts phones,
rings lines and pulls cables.  :class:`SimRig` does that with the simulator, in-process;
:class:`ManualRig` asks the technician at a bench and waits for the card to report it.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final, TextIO, TypeVar

from drivers.linecard import protocol as p
from drivers.linecard.link import Link, LinkEvent
from drivers.sim.co import CoState
from drivers.sim.simulator import Simulator

T = TypeVar("T")
M = TypeVar("M")

CONNECT_TIMEOUT_S: Final = 5.0
BACKLOG: Final = 1024  # events kept while a test waits for another one


class LoopThread:
    """One asyncio loop in a background thread, for sync tests over async drivers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="hwtest-loop")
        self._thread.daemon = True
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


class CardUnderTest:
    """The host end of the link, with a backlog of events for ``expect``."""

    def __init__(self, url: str, loops: LoopThread) -> None:
        self.url = url
        self.loops = loops
        self.link = Link(url)
        self.backlog: collections.deque[tuple[float, LinkEvent]] = collections.deque(maxlen=BACKLOG)
        self.hello: p.HelloAck | None = None

    def open(self) -> p.HelloAck:
        self.loops.run(self.link.open())
        self.hello = self.loops.run(self.link.wait_connected(timeout=CONNECT_TIMEOUT_S))
        return self.hello

    def close(self) -> None:
        self.loops.run(self.link.close())

    @property
    def ports(self) -> tuple[p.PortKind, ...]:
        assert self.hello is not None
        return self.hello.ports

    def port_of(self, kind: p.PortKind) -> int | None:
        """The first port of ``kind`` (1-based), or None when the card has none."""
        for number, k in enumerate(self.ports, start=1):
            if k is kind:
                return number
        return None

    @property
    def connected(self) -> bool:
        return self.link.connected

    def send(self, message: p.Message) -> None:
        self.loops.run(self.link.send(message))

    def send_noise(self, data: bytes) -> None:
        self.loops.run(self.link.send_noise(data))

    def drain(self) -> None:
        """Forget every event received so far."""
        self._pull(0.0)
        self.backlog.clear()

    def expect(
        self,
        kind: type[M],
        timeout: float = 2.0,
        where: Callable[[M], bool] = lambda _: True,
        since: float = 0.0,
    ) -> tuple[float, M]:
        """The first event of ``kind`` matching ``where`` that arrived at or after the
        monotonic time ``since`` (from the backlog or new), with its arrival time.
        Raises AssertionError naming what was seen."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (when, event) in enumerate(self.backlog):
                if when >= since and isinstance(event, kind) and where(event):
                    del self.backlog[i]
                    return when, event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = ", ".join(type(e).__name__ for _, e in self.backlog) or "nothing"
                raise AssertionError(f"no {kind.__name__} within {timeout} s (saw {seen})")
            self._pull(min(remaining, 0.1))

    def status(self, port: int, timeout: float = 2.0) -> p.PortStatus:
        self.send(p.StatusRequest(port))
        return self.expect(p.PortStatus, timeout, lambda s: s.port == port)[1]

    def _pull(self, timeout: float) -> None:
        async def pull() -> None:
            try:
                event = await self.link.next_event(timeout=timeout)
            except TimeoutError:
                return
            self.backlog.append((time.monotonic(), event))
            while True:  # everything else already queued, without waiting
                try:
                    event = await self.link.next_event(timeout=0)
                except TimeoutError:
                    return
                self.backlog.append((time.monotonic(), event))

        self.loops.run(pull(), timeout=timeout + 5)


class Rig(abc.ABC):
    """Acts on the far side of the ports.  ``automatic`` rigs need no person."""

    automatic: bool
    url: str  # the card's serial URL

    @abc.abstractmethod
    def lift(self, port: int) -> None: ...

    @abc.abstractmethod
    def hang_up(self, port: int) -> None: ...

    @abc.abstractmethod
    def flash(self, port: int, ms: int) -> None: ...

    @abc.abstractmethod
    def ring_line(self, port: int) -> None:
        """The exchange rings the FXO port."""

    @abc.abstractmethod
    def stop_ringing_line(self, port: int) -> None: ...

    @abc.abstractmethod
    def phone_rings(self, port: int) -> bool:
        """Whether the phone on FXS ``port`` is ringing now."""

    @abc.abstractmethod
    def unplug(self) -> None:
        """Cut the link between host and card."""

    @abc.abstractmethod
    def plug(self) -> None: ...

    @abc.abstractmethod
    def noise_from_card(self, data: bytes) -> bool:
        """Put garbage on the wire towards the host; False where the rig cannot."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the rig holds."""


class SimRig(Rig):
    """The simulator, running in the test's loop thread."""

    automatic = True

    def __init__(self, loops: LoopThread, fxs: int = 2, fxo: int = 1) -> None:
        self.loops = loops
        self.sim = Simulator(fxs=fxs, fxo=fxo, country="US")
        loops.run(self.sim.start())
        self.url = self.sim.url
        self._fxs = fxs

    def lift(self, port: int) -> None:
        self.loops.call(self.sim.handset(port).off_hook)

    def hang_up(self, port: int) -> None:
        self.loops.call(self.sim.handset(port).on_hook)

    def flash(self, port: int, ms: int) -> None:
        self.loops.call(lambda: self.sim.handset(port).flash(ms))

    def ring_line(self, port: int) -> None:
        line = self.sim.co.line(port - self._fxs)
        # Like a real exchange, the line takes a moment after a release to be idle again.
        self.loops.run(self.sim.wait_for(lambda: line.state is CoState.IDLE, timeout=5))
        self.loops.call(line.ring)

    def stop_ringing_line(self, port: int) -> None:
        self.loops.call(self.sim.co.line(port - self._fxs).cancel)

    def phone_rings(self, port: int) -> bool:
        return self.loops.call(lambda: bool(self.sim.handset(port).ringing))

    def unplug(self) -> None:
        self.loops.call(self.sim.unplug)

    def plug(self) -> None:
        self.loops.call(self.sim.plug)

    def noise_from_card(self, data: bytes) -> bool:
        self.loops.call(lambda: self.sim.inject_garbage(data))
        return True

    def close(self) -> None:
        self.loops.run(self.sim.stop())


class ManualRig(Rig):
    """A technician at the bench does what the test asks; answers come on ``ask``."""

    automatic = False

    def __init__(
        self, url: str, out: TextIO = sys.stderr, ask: Callable[[str], str] = input
    ) -> None:
        self.url = url
        self.out = out
        self.ask = ask

    def _say(self, text: str) -> None:
        print(f"\n>>> {text}", file=self.out, flush=True)

    def lift(self, port: int) -> None:
        self._say(f"Lift the handset of the phone on port {port}.")

    def hang_up(self, port: int) -> None:
        self._say(f"Hang up the phone on port {port}.")

    def flash(self, port: int, ms: int) -> None:
        self._say(f"Press the recall (flash) button of the phone on port {port} once.")

    def ring_line(self, port: int) -> None:
        self._say(f"Call the exchange line on port {port} from another phone; let it ring.")

    def stop_ringing_line(self, port: int) -> None:
        self._say(f"Hang up the call to the exchange line on port {port}.")

    def phone_rings(self, port: int) -> bool:
        answer = self.ask(f"Is the phone on port {port} ringing now? [y/n] ")
        return answer.strip().lower().startswith("y")

    def unplug(self) -> None:
        self._say("Unplug the line card's serial cable (or power the card off) now.")

    def plug(self) -> None:
        self._say("Plug the serial cable back in (or power the card on).")

    def noise_from_card(self, data: bytes) -> bool:
        return False

    def close(self) -> None:
        self._say("Line-card tests done.")
