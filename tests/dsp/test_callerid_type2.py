from __future__ import annotations

import numpy as np
import pytest

from firmware.dsp.callerid import fsk, type2
from firmware.dsp.callerid.fsk import FskDemodulator
from firmware.dsp.callerid.messages import CallSetup, DateTime
from firmware.dsp.callerid.type2 import (
    CallWaitingSender,
    CallWaitingState,
    CasDetected,
    CasDetector,
    HandshakeError,
    HandshakeFinished,
    PlayAudio,
    cas_tone,
)
from firmware.dsp.levels import power_dbm0, rms_for_dbm0
from firmware.dsp.pcm import FRAME_SAMPLES, SAMPLE_RATE, to_pcm

CALL = CallSetup(date_time=DateTime(6, 1, 8, 15), number="0123456789", name="WAITING")


def detect(x: np.ndarray, frame: int = FRAME_SAMPLES) -> list[CasDetected]:
    det = CasDetector()
    out = []
    for i in range(0, len(x), frame):
        out += det.feed(x[i : i + frame])
    return out + det.feed(np.zeros(2 * FRAME_SAMPLES))


def around(x: np.ndarray, before: int = 1234, after: int = 1600) -> np.ndarray:
    return np.concatenate([np.zeros(before), x.astype(float), np.zeros(after)])


@pytest.mark.parametrize(("standard", "ms"), [("bell", 80.0), ("etsi", 100.0)])
def test_cas_tone_duration_and_level(standard, ms):
    tone = cas_tone(standard=standard, level_dbm0=-15.0)
    assert len(tone) == ms * 8
    # Two tones at -15 dBm0 each carry -12 dBm0 together (ramps take a little off).
    assert power_dbm0(tone) == pytest.approx(-12.0, abs=0.2)
    spectrum = np.abs(np.fft.rfft(tone.astype(float), 8000))
    peaks = sorted(np.argsort(spectrum)[-2:])
    assert peaks == [2130, 2750]


@pytest.mark.parametrize("standard", ["bell", "etsi"])
@pytest.mark.parametrize("level", [-32.0, -20.0, -10.0])
@pytest.mark.parametrize("offset", [0, 37, 80, 133])
def test_cas_is_detected_once_at_any_alignment(standard, level, offset):
    x = around(cas_tone(standard=standard, level_dbm0=level), before=800 + offset)
    events = detect(x)
    assert len(events) == 1
    expected_end = (800 + offset + len(cas_tone(standard=standard))) / 8
    assert events[0].at_ms == pytest.approx(expected_end, abs=type2.CAS_BLOCK_MS + 0.1)


def test_cas_in_noise_with_twist_and_g711():
    from firmware.dsp import g711

    rng = np.random.default_rng(5)
    t = np.arange(640) / SAMPLE_RATE
    low = to_pcm(rms_for_dbm0(-20) * np.sqrt(2) * np.sin(2 * np.pi * 2130 * t))
    high = to_pcm(rms_for_dbm0(-25) * np.sqrt(2) * np.sin(2 * np.pi * 2750 * t))
    x = around(low.astype(float) + high) + rng.normal(0, rms_for_dbm0(-45), 640 + 2834)
    assert len(detect(g711.alaw_round_trip(to_pcm(x)))) == 1


@pytest.mark.parametrize(
    "x",
    [
        cas_tone(duration_ms=40),  # too short
        cas_tone(duration_ms=200),  # too long
        cas_tone(level_dbm0=-40),  # too weak
    ],
    ids=["short", "long", "weak"],
)
def test_cas_out_of_limits_is_refused(x):
    assert detect(around(x)) == []


def test_single_tones_twist_and_noise_are_refused():
    t = np.arange(640) / SAMPLE_RATE
    one = to_pcm(8000 * np.sin(2 * np.pi * 2130 * t))
    assert detect(around(one)) == []
    twisted = to_pcm(8000 * np.sin(2 * np.pi * 2130 * t) + 1500 * np.sin(2 * np.pi * 2750 * t))
    assert detect(around(twisted)) == []
    rng = np.random.default_rng(1)
    assert detect(to_pcm(rng.normal(0, 4000, 10 * SAMPLE_RATE))) == []
    # Loud noise around the tones swamps them: purity fails rather than a false detect.
    cas = cas_tone(level_dbm0=-30).astype(float)
    assert detect(to_pcm(cas + rng.normal(0, 3000, len(cas)))) == []


def test_frame_size_does_not_matter():
    x = around(cas_tone())
    for frame in (1, 7, 80, 160, 333):
        assert len(detect(x, frame)) == 1


def _drive(sender: CallWaitingSender, ack: str | None, ack_at_ms: float):
    """Run the handshake on a 1 ms clock; returns the actions and when they came."""
    log: list[tuple[float, object]] = [(0.0, a) for a in sender.start(0.0)]
    now = 0.0
    while sender.state not in (CallWaitingState.DONE, CallWaitingState.NO_ACK):
        now += 1.0
        if ack is not None and now == ack_at_ms:
            log += [(now, a) for a in sender.on_digit(ack, now)]
        log += [(now, a) for a in sender.poll(now)]
        assert now < 5000
    return log


@pytest.mark.parametrize("digit", ["A", "D"])
def test_acknowledged_handshake_sends_the_burst_without_seizure(digit):
    burst = fsk.modulate_message(CALL, call_waiting=True)
    sender = CallWaitingSender(burst)
    log = _drive(sender, digit, ack_at_ms=80 + 100)
    plays = [(t, a) for t, a in log if isinstance(a, PlayAudio)]
    assert len(plays) == 2
    assert len(plays[0][1].pcm) == 640  # the CAS
    assert plays[1][0] == 180 + type2.FSK_AFTER_ACK_MS
    assert plays[1][1].pcm is burst
    assert isinstance(log[-1][1], HandshakeFinished)
    assert log[-1][1] == HandshakeFinished(sent=True, ack_digit=digit)
    assert fsk.decode_callerid(around(burst)) == [CALL]


@pytest.mark.parametrize(("digit", "at"), [("A", 80 + 161), ("B", 100), (None, 0)])
def test_late_wrong_or_missing_ack_sends_nothing(digit, at):
    sender = CallWaitingSender(fsk.modulate_message(CALL, call_waiting=True))
    log = _drive(sender, digit, ack_at_ms=at)
    plays = [a for _, a in log if isinstance(a, PlayAudio)]
    assert len(plays) == 1  # the CAS only
    assert log[-1][1] == HandshakeFinished(sent=False, ack_digit=None)
    assert sender.state is CallWaitingState.NO_ACK


def test_handshake_refuses_illegal_order():
    sender = CallWaitingSender(fsk.modulate_message(CALL, call_waiting=True))
    assert sender.deadline() is None
    sender.start(0.0)
    assert sender.deadline() == 80.0
    with pytest.raises(HandshakeError, match="start"):
        sender.start(1.0)


def test_cas_then_burst_on_one_line_is_seen_by_both_receivers():
    burst = fsk.modulate_message(CALL, standard="v23", call_waiting=True)
    gap = np.zeros(round(0.2 * SAMPLE_RATE))
    line = around(np.concatenate([cas_tone(standard="etsi"), gap, burst]))
    assert len(detect(line)) == 1
    demod = FskDemodulator("v23")
    out = []
    for i in range(0, len(line), FRAME_SAMPLES):
        out += demod.feed(line[i : i + FRAME_SAMPLES])
    assert out + demod.flush() == [CALL]


@pytest.fixture(scope="module")
def talk() -> np.ndarray:
    from bench.corpus import talk_corpus

    return talk_corpus(2.0)


def test_speech_and_music_trigger_neither_cas_nor_fsk(talk):
    assert detect(talk) == []
    for standard in ("bell202", "v23"):
        demod = FskDemodulator(standard)
        found = []
        for i in range(0, len(talk), FRAME_SAMPLES):
            found += demod.feed(talk[i : i + FRAME_SAMPLES])
        assert found == []


def test_cas_is_found_over_quiet_far_end_speech(talk):
    # The exchange mutes the far end during CAS, but the near end may still talk softly.
    speech = talk[: 2 * SAMPLE_RATE].astype(float) * 0.1
    cas = cas_tone(level_dbm0=-15)
    speech[8000 : 8000 + len(cas)] += cas
    assert len(detect(to_pcm(speech))) == 1


def _receive(rx: type2.CallWaitingReceiver, line: np.ndarray) -> list[object]:
    out: list[object] = []
    for i in range(0, len(line), FRAME_SAMPLES):
        out += rx.feed(line[i : i + FRAME_SAMPLES])
    return out


@pytest.mark.parametrize(("standard", "cas"), [("bell202", "bell"), ("v23", "etsi")])
def test_receiver_acks_the_cas_then_reads_the_burst(standard, cas):
    rx = type2.CallWaitingReceiver(standard, ack_digit="D")
    burst = fsk.modulate_message(CALL, standard=standard, call_waiting=True)
    pause = np.zeros(round(0.15 * SAMPLE_RATE))
    line = around(np.concatenate([cas_tone(standard=cas), pause, burst]))
    events = _receive(rx, line)
    assert len(events) == 2
    ack, msg = events
    assert isinstance(ack, type2.SendAck) and ack.digit == "D"
    cas_end_ms = (1234 + len(cas_tone(standard=cas))) / 8
    # Reported at the end of the frame that completes the detection: within the CPE's 100 ms.
    assert 0 <= ack.at_ms - cas_end_ms <= type2.CPE_ACK_WITHIN_MS
    assert msg == CALL
    assert rx.state is type2.ReceiverState.LISTENING


def test_receiver_reports_a_missing_burst_and_listens_again():
    rx = type2.CallWaitingReceiver()
    line = around(cas_tone(), after=SAMPLE_RATE)
    events = _receive(rx, line)
    assert [type(e) for e in events] == [type2.SendAck, type2.NoBurst]
    ack, none = events
    assert isinstance(ack, type2.SendAck) and isinstance(none, type2.NoBurst)
    assert none.at_ms - ack.at_ms == pytest.approx(type2.FSK_WAIT_MS, abs=20)
    # A second call waiting later is handled the same way.
    events = _receive(rx, line)
    assert [type(e) for e in events] == [type2.SendAck, type2.NoBurst]


def test_receiver_ignores_fsk_without_cas_and_refuses_bad_ack():
    rx = type2.CallWaitingReceiver()
    assert _receive(rx, around(fsk.modulate_message(CALL, call_waiting=True))) == []
    with pytest.raises(ValueError, match="ACK digit"):
        type2.CallWaitingReceiver(ack_digit="B")


ACK_MS = 60.0  # SR-TSV-002476: the ACK digit lasts 55..65 ms


@pytest.mark.parametrize(
    ("standard", "cas", "digit"), [("bell202", "bell", "A"), ("v23", "etsi", "D")]
)
def test_exchange_and_telephone_complete_the_handshake_over_real_dtmf(standard, cas, digit):
    """Both ends in lock step, 20 ms at a time: the FXS sender, the line, the FXO receiver.

    The telephone's ACK goes back as real DTMF and the exchange hears it with the DTMF
    detector; the burst only follows if that worked within the window.
    """
    from firmware.dsp import dtmf

    burst = fsk.modulate_message(CALL, standard=standard, call_waiting=True)
    sender = CallWaitingSender(burst, cas_standard=cas)
    phone = type2.CallWaitingReceiver(standard, ack_digit=digit)
    ear = dtmf.DtmfDetector()
    down = np.zeros(3 * SAMPLE_RATE, dtype=np.int16)  # exchange -> telephone
    up = np.zeros(3 * SAMPLE_RATE, dtype=np.int16)  # telephone -> exchange

    def play(line: np.ndarray, at: int, pcm: np.ndarray) -> None:
        line[at : at + len(pcm)] = pcm[: len(line) - at]

    for action in sender.start(0.0):
        assert isinstance(action, PlayAudio)
        play(down, 0, action.pcm)
    heard: list[object] = []
    finished: list[HandshakeFinished] = []
    for k in range(len(down) // FRAME_SAMPLES):
        lo, hi = k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES
        now_ms = hi / 8
        for event in phone.feed(down[lo:hi]):
            heard.append(event)
            if isinstance(event, type2.SendAck):
                play(up, hi, dtmf.generate_dtmf(event.digit, on_ms=ACK_MS, off_ms=0))
        for tone in ear.feed(up[lo:hi]):
            if isinstance(tone, dtmf.DtmfStart):
                sender.on_digit(tone.digit, now_ms)
        for action in sender.poll(now_ms):
            if isinstance(action, PlayAudio):
                play(down, hi, action.pcm)
            else:
                finished.append(action)
    assert finished == [HandshakeFinished(sent=True, ack_digit=digit)]
    assert [type(e) for e in heard] == [type2.SendAck, CallSetup]
    assert heard[1] == CALL


def test_cas_at_16khz_and_with_half_a_percent_offset():
    wide = cas_tone(rate=16000)
    det = CasDetector(16000)
    x = np.concatenate([np.zeros(3000), wide, np.zeros(3200)])
    events = []
    for i in range(0, len(x), 320):
        events += det.feed(x[i : i + 320])
    assert len(events) == 1
    t = np.arange(640) / SAMPLE_RATE
    for factor in (0.995, 1.005):  # SR-TSV-002476: each tone within ±0.5 %
        tone = to_pcm(
            4000 * np.sin(2 * np.pi * 2130 * factor * t)
            + 4000 * np.sin(2 * np.pi * 2750 * factor * t)
        )
        assert len(detect(around(tone))) == 1
