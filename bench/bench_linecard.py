"""Line-card link figures: decode throughput and the CPU a port costs the host."""

from __future__ import annotations

import random
import time

from drivers.linecard import protocol as p
from drivers.linecard.session import Role, Session

FRAMES = 50_000
# A busy FXS port: pulse dialling at 10 pps gives 20 hook events/s; add acks and
# heartbeats and a port generates well under 50 frames/s at its worst.
FRAMES_PER_BUSY_PORT = 50.0


CARD = p.HelloAck(p.PROTOCOL_VERSION, 0, 1, (1, 0, 0), p.Capability.NONE, (p.PortKind.FXS,) * 4)


def main() -> None:
    rng = random.Random(1)
    events = [p.HookChange(rng.randint(1, 4), rng.random() < 0.5, i) for i in range(FRAMES)]
    wire = b"".join(p.encode(m, seq=i % 256, ack=0) for i, m in enumerate(events))

    decoder = p.FrameDecoder()
    started = time.process_time()
    frames = decoder.feed(wire)
    messages = [f.message() for f in frames if isinstance(f, p.Frame)]
    codec_s = time.process_time() - started
    assert len(messages) == FRAMES
    print(f"   codec decode           {FRAMES / codec_s:12,.0f} frames/s")

    # Through the whole host session (ordering, acks), fed in 64-byte UART-sized reads.
    host = Session(Role.HOST, rng=random.Random(2))
    card = Session(Role.CARD, card=CARD)
    host.start(0.0)
    card.start(0.0)
    card.receive_data(host.data_to_send(), 0.0)
    host.receive_data(card.data_to_send(), 0.0)
    host.data_to_send()
    host.events()
    wire = b"".join(p.encode(m, seq=i % 256, ack=0) for i, m in enumerate(events))
    started = time.process_time()
    for i in range(0, len(wire), 64):
        host.receive_data(wire[i : i + 64], 0.01)
        host.events()
        host.data_to_send()
    session_s = time.process_time() - started
    rate = FRAMES / session_s
    print(f"   session receive        {rate:12,.0f} frames/s")
    per_port = FRAMES_PER_BUSY_PORT / rate * 100
    print(
        f"   CPU per busy port      {per_port:12.4f} % of one core"
        f"  (at {FRAMES_PER_BUSY_PORT:.0f} frames/s)"
    )
