"""Caller ID on call waiting (type II) as the FXS media loop runs it: how long the far party
is muted (with and without an ACK), and the cost per 20 ms frame of the handshake."""

from __future__ import annotations

import statistics
import time
from collections import deque

import numpy as np

from firmware.dsp import dtmf
from firmware.dsp.callerid import transmit, type2
from firmware.dsp.callerid.fsk import FskStandard
from firmware.dsp.callerid.messages import CallSetup, DateTime
from firmware.dsp.callerid.offhook import CallWaitingLine, handshake_offset_ms
from firmware.dsp.pcm import FRAME_SAMPLES
from firmware.dsp.profiles import get_profile

WHEN = DateTime(11, 25, 23, 55)
FIFO_FRAMES = 3  # the simulator's card FIFO on a loaded machine (docs/callerid.md)
CARD_FIFO_MS = 200.0  # the latency allowance the appliance gives (callerid_tx.CARD_FIFO_MS)


def run(country: str, *, acks: bool) -> tuple[float, float, list[int], bool]:
    """(lead ms, muted ms, ns per handshake frame, caller ID decoded) for one call waiting."""
    profile = get_profile(country)
    burst = transmit.render_call_waiting(
        profile.callerid, number="0612345678", name="PONTE BENCH", when=WHEN
    )
    lead = handshake_offset_ms(profile.tone("call_waiting"))
    line = CallWaitingLine(
        burst.burst, cas_standard=burst.cas, lead_ms=lead, latency_ms=CARD_FIFO_MS
    )
    standard: FskStandard = "bell202" if profile.callerid.standard == "bell202" else "v23"
    phone = type2.CallWaitingReceiver(standard)
    fifo: deque[np.ndarray] = deque(np.zeros(FRAME_SAMPLES, np.int16) for _ in range(FIFO_FRAMES))
    ack = np.zeros(0, np.int16)
    talk = np.zeros(FRAME_SAMPLES, np.int16)
    muted = 0
    decoded = False
    costs: list[int] = []
    for _ in range(200):  # 4 s: the handshake and the FIFO's tail
        started = time.perf_counter_ns()
        out = line.frame(talk)
        elapsed = time.perf_counter_ns() - started
        if out is not None:  # the handshake's frames (the others cost next to nothing)
            muted += 1
            costs.append(elapsed)
        fifo.append(out if out is not None else np.zeros(FRAME_SAMPLES, np.int16))
        talk = np.zeros(FRAME_SAMPLES, np.int16)
        for event in phone.feed(fifo.popleft()):
            if isinstance(event, type2.SendAck) and acks:
                ack = dtmf.generate_dtmf(event.digit, on_ms=60, off_ms=0)
            decoded = decoded or isinstance(event, CallSetup)
        if len(ack):
            chunk, ack = ack[:FRAME_SAMPLES], ack[FRAME_SAMPLES:]
            talk[: len(chunk)] = chunk
    return lead, muted * 20.0, costs, decoded


def main() -> None:
    for country in ("US", "ITU", "GB"):
        for acks in (True, False):
            lead, muted_ms, costs, decoded = run(country, acks=acks)
            costs.sort()
            print(
                f"   type2 {country} {'ACK' if acks else 'no ACK'}: handshake {lead:.0f} ms "
                f"into the tone, far end muted {muted_ms:.0f} ms, caller ID "
                f"{'shown' if decoded else 'not sent'}; "
                f"{statistics.median(costs) / 1000:.1f} us/frame median, "
                f"{costs[len(costs) * 99 // 100] / 1000:.1f} 99th percentile"
            )
