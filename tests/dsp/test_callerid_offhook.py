"""Type II on a line, frame by frame: ``CallWaitingLine`` against a telephone behind a FIFO."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from firmware.dsp import dtmf
from firmware.dsp.callerid import fsk, type2
from firmware.dsp.callerid.fsk import FskStandard
from firmware.dsp.callerid.messages import CallSetup, DateTime
from firmware.dsp.callerid.offhook import (
    CAS_GAP_MS,
    CallWaitingLine,
    Phase,
    handshake_offset_ms,
)
from firmware.dsp.callerid.type2 import CasDetector, CasStandard, HandshakeFinished
from firmware.dsp.profiles import get_profile
from firmware.dsp.tones import ToneSpec

FRAME = 160
CALL = CallSetup(date_time=DateTime(11, 25, 23, 40), number="5551234", name="ALICE")


def run_line(
    line: CallWaitingLine,
    *,
    phone: type2.CallWaitingReceiver | None,
    fifo_frames: int,
    frames: int = 150,
    far_end: np.ndarray | None = None,
) -> tuple[list[object], np.ndarray, list[bool]]:
    """Drive ``line`` for ``frames`` periods; the line card's FIFO delays what it plays by
    ``fifo_frames`` frames on the way to the telephone.  Returns what the telephone decoded,
    everything the telephone heard and, per frame, whether the far end was muted."""
    to_phone: deque[np.ndarray] = deque(np.zeros(FRAME, np.int16) for _ in range(fifo_frames))
    ack: np.ndarray = np.zeros(0, np.int16)
    heard_by_phone: list[np.ndarray] = []
    decoded: list[object] = []
    muted: list[bool] = []
    talk = np.zeros(FRAME, np.int16)
    for _ in range(frames):
        out = line.frame(talk)
        muted.append(out is not None)
        if out is None:  # normal audio: the far end's voice (or silence)
            out = np.zeros(FRAME, np.int16) if far_end is None else far_end[:FRAME]
        to_phone.append(out)
        at_phone = to_phone.popleft()
        heard_by_phone.append(at_phone)
        talk = np.zeros(FRAME, np.int16)
        if phone is not None:
            for event in phone.feed(at_phone):
                decoded.append(event)
                if isinstance(event, type2.SendAck):
                    ack = dtmf.generate_dtmf(event.digit, on_ms=60, off_ms=0)
        if len(ack):
            chunk, ack = ack[:FRAME], ack[FRAME:]
            talk[: len(chunk)] = chunk
    return decoded, np.concatenate(heard_by_phone), muted


@pytest.mark.parametrize("fifo_frames", [0, 3, 10])
@pytest.mark.parametrize(("standard", "cas"), [("bell202", "bell"), ("v23", "etsi")])
def test_phone_behind_a_card_fifo_gets_the_burst(
    fifo_frames: int, standard: FskStandard, cas: CasStandard
) -> None:
    burst = fsk.modulate_message(CALL, standard=standard, call_waiting=True)
    line = CallWaitingLine(burst, cas_standard=cas, lead_ms=300, latency_ms=200)
    phone = type2.CallWaitingReceiver(standard)
    decoded, _, muted = run_line(line, phone=phone, fifo_frames=fifo_frames)
    assert line.done
    assert line.result == HandshakeFinished(sent=True, ack_digit="D")
    assert CALL in decoded
    # Normal audio for the lead (300 ms = 15 frames), then muted, then normal again.
    assert muted[:15] == [False] * 15
    first = muted.index(True)
    last = len(muted) - 1 - muted[::-1].index(True)
    assert first == 15 and all(muted[first : last + 1]) and not any(muted[last + 1 :])


def test_without_an_ack_nothing_follows_the_cas_and_audio_comes_back():
    burst = fsk.modulate_message(CALL, call_waiting=True)
    line = CallWaitingLine(burst, cas_standard="bell", lead_ms=0, latency_ms=200)
    far = np.full(FRAME, 1000, np.int16)
    _, heard, muted = run_line(line, phone=None, fifo_frames=2, far_end=far)
    assert line.result == HandshakeFinished(sent=False, ack_digit=None)
    # Only the CAS went out: one detection, and no FSK (the ACK window is 160 + 200 ms).
    assert len(CasDetector().feed(heard)) == 1
    handshake_ms = muted.count(True) * 20
    assert CAS_GAP_MS + type2.BELL_CAS_MS + 360 <= handshake_ms <= 700
    assert not muted[-1]  # the far end is heard again


def test_an_ack_too_late_is_ignored():
    burst = fsk.modulate_message(CALL, call_waiting=True)
    # No latency allowed, and a FIFO of 200 ms: the ACK comes back after the window.
    line = CallWaitingLine(burst, cas_standard="bell", lead_ms=0, latency_ms=0)
    decoded, _, _ = run_line(line, phone=type2.CallWaitingReceiver(), fifo_frames=10)
    assert line.result == HandshakeFinished(sent=False, ack_digit=None)
    assert CALL not in decoded


def test_speech_like_digits_other_than_the_ack_do_not_count():
    burst = fsk.modulate_message(CALL, call_waiting=True)
    line = CallWaitingLine(burst, cas_standard="bell", lead_ms=0, latency_ms=200)
    five = dtmf.generate_dtmf("5", on_ms=60, off_ms=0)
    for k in range(60):
        heard = np.zeros(FRAME, np.int16)
        if 7 <= k < 7 + len(five) // FRAME:
            heard = five[(k - 7) * FRAME : (k - 6) * FRAME]
        line.frame(heard)
    assert line.result == HandshakeFinished(sent=False, ack_digit=None)
    assert line.phase is Phase.DONE


@pytest.mark.parametrize(
    ("country", "expected"),
    [("US", 300.0), ("ITU", 600.0), ("GB", 100.0), ("IT", 1000.0), ("DK", 200.0)],
)
def test_handshake_starts_in_the_first_long_pause_of_the_tone(country: str, expected: float):
    tone = get_profile(country).tone("call_waiting")
    assert handshake_offset_ms(tone) == expected


def test_a_tone_without_long_pause_gets_the_handshake_after_one_pass():
    assert handshake_offset_ms(ToneSpec.parse("400/250,0/250", -13.0)) == 500.0


def test_bad_lead_is_refused():
    with pytest.raises(ValueError, match="lead"):
        CallWaitingLine(np.zeros(8, np.int16), cas_standard="bell", lead_ms=-1)


def test_type_ii_per_country():
    assert get_profile("US").callerid.call_waiting_alert == "bell"
    assert get_profile("GB").callerid.call_waiting_alert == "etsi"
    assert get_profile("ITU").callerid.call_waiting_alert == "etsi"
    assert get_profile("SE").callerid.call_waiting_alert is None  # DTMF caller ID
    assert get_profile("JP").callerid.call_waiting_alert is None  # NTT
