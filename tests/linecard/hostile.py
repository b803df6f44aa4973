"""A simulated clock and a hostile wire between two sans-IO sessions (no sockets, no sleeps).

Like aiortc's ``dummy_connection_pair(loss_pattern=...)``: each direction can drop,
duplicate and corrupt frames, insert garbage between them and deliver one byte at a time.
The wire keeps byte order, as a UART does.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from drivers.linecard.session import Session, SessionEvent


@dataclass
class Wire:
    rng: random.Random
    loss: float = 0.0
    duplicate: float = 0.0
    garbage: float = 0.0
    corrupt: float = 0.0
    byte_at_a_time: bool = False
    latency: float = 0.002
    cut: bool = False  # unplugged: nothing gets through

    def mangle(self, data: bytes) -> list[bytes]:
        if self.cut:
            return []
        out: list[bytes] = []
        for body in (b for b in data.split(b"\x00") if b):
            frame = b"\x00" + body + b"\x00"
            if self.rng.random() < self.garbage:
                out.append(self.rng.randbytes(self.rng.randint(1, 40)))
            if self.rng.random() < self.loss:
                continue
            if self.rng.random() < self.corrupt:
                raw = bytearray(frame)
                raw[self.rng.randrange(len(raw))] ^= 1 << self.rng.randrange(8)
                frame = bytes(raw)
            copies = 2 if self.rng.random() < self.duplicate else 1
            out += [frame] * copies
        if self.byte_at_a_time:
            return [bytes([b]) for chunk in out for b in chunk]
        return out


@dataclass
class Net:
    """Runs two sessions against each other on a simulated clock."""

    a: Session
    b: Session
    a_to_b: Wire
    b_to_a: Wire
    now: float = 0.0
    a_events: list[tuple[float, SessionEvent]] = field(default_factory=list)
    b_events: list[tuple[float, SessionEvent]] = field(default_factory=list)
    _queue: list[tuple[float, int, int, bytes]] = field(default_factory=list)
    _order: int = 0

    def start(self) -> None:
        self.a.start(self.now)
        self.b.start(self.now)

    def _flush(self) -> None:
        for side, (src, wire) in enumerate(((self.a, self.a_to_b), (self.b, self.b_to_a))):
            data = src.data_to_send()
            for chunk in wire.mangle(data) if data else []:
                self._order += 1
                heapq.heappush(self._queue, (self.now + wire.latency, self._order, 1 - side, chunk))
        self.a_events += [(self.now, e) for e in self.a.events()]
        self.b_events += [(self.now, e) for e in self.b.events()]

    def run(self, duration: float) -> None:
        self.run_until(self.now + duration)

    def run_until(self, end: float) -> None:
        while True:
            self._flush()
            times = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
            if self._queue:
                times.append(self._queue[0][0])
            if not times or min(times) > end:
                self.now = end
                return
            self.now = max(self.now, min(times))
            while self._queue and self._queue[0][0] <= self.now:
                _, _, dest, chunk = heapq.heappop(self._queue)
                (self.a if dest == 0 else self.b).receive_data(chunk, self.now)
            for s in (self.a, self.b):
                timer = s.get_timer()
                if timer is not None and timer <= self.now:
                    s.handle_timer(self.now)
