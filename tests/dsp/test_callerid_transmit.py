"""The exchange-side renderer: on-hook caller ID, VMWI and type II, read back by decoders.

Our own receivers (FSK, DTMF, CAS, the type II handshake) and, where installed, minimodem
and multimon-ng read what :mod:`firmware.dsp.callerid.transmit` renders for each country.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from firmware.dsp.callerid import (
    CallSetup,
    CasDetector,
    DtmfClip,
    DtmfClipDecoder,
    FskDemodulator,
    MessageWaiting,
    SdmfVmwi,
)
from firmware.dsp.callerid import transmit as tx
from firmware.dsp.callerid.messages import Absence, DateTime, InvalidMessage
from firmware.dsp.callerid.type2 import (
    CallWaitingReceiver,
    CallWaitingState,
    HandshakeFinished,
    PlayAudio,
    SendAck,
)
from firmware.dsp.dtmf import generate_dtmf
from firmware.dsp.pcm import FRAME_SAMPLES, SAMPLE_RATE
from firmware.dsp.profiles import COUNTRY_CODES, get_profile

WHEN = DateTime(11, 25, 18, 30)
TOOLS = all(shutil.which(t) for t in ("minimodem", "multimon-ng", "sox"))


def frames(pcm: np.ndarray) -> list[np.ndarray]:
    return [pcm[i : i + FRAME_SAMPLES] for i in range(0, len(pcm), FRAME_SAMPLES)]


def decode(spec_standard: str, pcm: np.ndarray, dtmf_format: str | None = None) -> list[object]:
    rx: FskDemodulator | DtmfClipDecoder
    if spec_standard == "dtmf":
        assert dtmf_format is not None
        rx = DtmfClipDecoder(dtmf_format)
    else:
        rx = FskDemodulator("bell202" if spec_standard == "bell202" else "v23")
    padded = np.concatenate([pcm, np.zeros(SAMPLE_RATE, dtype=np.int16)])
    return [r for f in frames(padded) for r in rx.feed(f)]


@pytest.mark.parametrize("code", COUNTRY_CODES)
def test_every_country_renders_caller_id_that_its_receiver_reads(code: str) -> None:
    spec = get_profile(code).callerid
    burst = tx.render_on_hook(spec, number="5551234", name="ALICE", when=WHEN)
    assert burst.alerting.value == spec.alerting
    got = decode(spec.standard, burst.line_audio(), spec.dtmf_format)
    if spec.standard == "dtmf":
        assert got == [DtmfClip(spec.dtmf_format or "", number="5551234")]
    else:
        assert got == [CallSetup(date_time=WHEN, number="5551234", name="ALICE")]


def test_gb_layout_reversal_dtas_delay_data_then_room_before_ringing() -> None:
    spec = get_profile("GB").callerid
    burst = tx.render_on_hook(spec, number="01632960123", name="BOB", when=WHEN)
    assert burst.reverses_polarity and burst.before_ring and not burst.ring_pulse
    audio = burst.line_audio()
    # SIN 227: >= 100 ms of silence after the reversal, then the 100 ms DT-AS.
    assert spec.pr_to_alert_ms is not None
    first = spec.pr_to_alert_ms * 8
    assert not audio[:first].any() and audio[first : first + 800].any()
    assert CasDetector().feed(audio[: first + 1200])
    assert burst.alert is not None and len(burst.alert) == 800
    data_at = first + len(burst.alert) + round(burst.delay_ms * 8)
    lo, hi = spec.data_delay_ms
    assert lo <= burst.delay_ms <= hi and not audio[first + 800 : data_at].any()
    assert np.array_equal(audio[data_at : data_at + len(burst.data)], burst.data)
    # Ringing may start when the audio ends: data_to_ring_ms of silence closes it.
    tail = audio[data_at + len(burst.data) :]
    assert (
        len(tail) * 1000 / SAMPLE_RATE == pytest.approx(spec.data_to_ring_ms, abs=1)
        and not tail.any()
    )


def test_us_after_first_ring_takes_off_the_wait_already_spent() -> None:
    spec = get_profile("US").callerid
    burst = tx.render_on_hook(spec, number="5551234", name="ALICE", when=WHEN)
    assert not burst.before_ring and not burst.reverses_polarity
    full = burst.line_audio()
    after_timer = burst.line_audio(already_ms=spec.data_delay_ms[0])
    assert len(full) - len(after_timer) == spec.data_delay_ms[0] * 8
    lead = tx.DATA_DELAY_MARGIN_MS * 8  # GR-30-CORE: 500 ms, plus our margin
    assert not after_timer[:lead].any() and np.array_equal(after_timer[lead:], burst.data)
    assert len(after_timer) == lead + len(burst.data)  # no silence after: rings run on cadence


def test_france_announces_with_a_ring_pulse() -> None:
    burst = tx.render_on_hook(get_profile("FR").callerid, number="0140000000", when=WHEN)
    assert burst.ring_pulse and burst.ring_pulse_ms == 250 and not burst.reverses_polarity
    assert not burst.line_audio()[: 250 * 8].any()  # nothing to hear while the bell rings


def test_what_the_signalling_cannot_carry_is_dropped_not_refused() -> None:
    us = get_profile("US").callerid
    msg = tx.identity_message(us, number="+1 (555) 123-4567", name="Bartholomew Jones", when=None)
    assert msg == CallSetup(number="+15551234567", name="Bartholomew Jon")  # GR-30: 15 chars
    gb = get_profile("GB").callerid
    msg = tx.identity_message(gb, number=None, name="Zoë Ελένη", when=WHEN)
    assert msg == CallSetup(date_time=WHEN, number_absence=Absence.UNAVAILABLE, name="Zoë ?????")
    se = get_profile("SE").callerid
    assert tx.identity_message(se, number="+46 8 123", name="X", when=WHEN) == DtmfClip(
        "A...C", number="468123"
    )
    assert tx.identity_message(se, number=None, name="X", when=WHEN) == DtmfClip.withheld(
        "A...C", Absence.UNAVAILABLE
    )
    india = get_profile("IN").callerid  # D...C has no code for "unavailable"
    with pytest.raises(InvalidMessage, match=r"D\.\.\.C"):
        tx.render_on_hook(india, number=None, name="X")


def test_line_setting_changes_the_modulation_and_keeps_the_timing() -> None:
    gb = get_profile("GB").callerid
    assert tx.line_spec(gb, "country") is gb and tx.line_spec(gb, "none") is None
    bell = tx.line_spec(gb, "bell202")
    assert bell is not None and bell.standard == "bell202" and bell.alerting == "pr_dtas"
    burst = tx.render_on_hook(bell, number="123", when=WHEN)
    assert decode("bell202", burst.line_audio()) == [CallSetup(date_time=WHEN, number="123")]
    dtmf = tx.line_spec(gb, "dtmf")
    assert dtmf is not None and dtmf.dtmf_format == tx.DEFAULT_DTMF_FORMAT
    burst = tx.render_on_hook(dtmf, number="123", when=WHEN)
    assert decode("dtmf", burst.line_audio(), "A...C") == [DtmfClip("A...C", number="123")]
    # FSK on a DTMF country's line gets ETSI's seizure and marks (its profile has none).
    v23 = tx.line_spec(get_profile("NL").callerid, "v23")
    assert v23 is not None and (v23.seizure_bits, v23.mark_bits) == (300, 180)
    assert v23.alerting == "pr"
    burst = tx.render_on_hook(v23, number="0201234567", name="ANNA", when=WHEN)
    assert decode("v23", burst.line_audio()) == [
        CallSetup(date_time=WHEN, number="0201234567", name="ANNA")
    ]
    with pytest.raises(InvalidMessage, match="'fsk'"):
        tx.line_spec(gb, "fsk")


@pytest.mark.parametrize("code", ["US", "GB", "DE", "FR"])
@pytest.mark.parametrize("active", [True, False])
def test_vmwi_on_and_off_decode(code: str, active: bool) -> None:
    spec = get_profile(code).callerid
    burst = tx.render_vmwi(spec, active=active, count=3, when=WHEN)
    expected = MessageWaiting(active=active, date_time=WHEN, message_count=3 if active else None)
    assert decode(spec.standard, burst.line_audio()) == [expected]
    if spec.alerting == "ring":  # Bell lines: the data alone, no ringing behind it
        assert burst.alerting is tx.Alerting.NONE and np.flatnonzero(burst.line_audio())[0] < 8
    else:
        assert burst.alerting.value == spec.alerting
        tail = burst.line_audio()[-spec.data_to_ring_ms * 8 :]
        assert not tail.any()


def test_sdmf_vmwi_is_bell_only_and_dtmf_has_none() -> None:
    us = get_profile("US").callerid
    burst = tx.render_vmwi(us, active=True, sdmf=True)
    assert decode("bell202", burst.line_audio()) == [SdmfVmwi(True)]
    with pytest.raises(InvalidMessage, match="Bell 202 only"):
        tx.render_vmwi(get_profile("DE").callerid, active=True, sdmf=True)
    with pytest.raises(InvalidMessage, match="DTMF caller ID has no message waiting"):
        tx.render_vmwi(get_profile("SE").callerid, active=True)
    with pytest.raises(InvalidMessage, match=r"0\.\.255"):
        tx.render_vmwi(us, active=True, count=256)


def run_handshake(
    burst: tx.CallWaitingBurst, *, phone_acks: bool
) -> tuple[list[object], CallWaitingState]:
    """The FXS side's handshake against a type II telephone (CallWaitingReceiver), in
    20 ms steps on a common clock: CAS out, 'A' back as DTMF, burst out."""
    sender = burst.sender()
    phone = CallWaitingReceiver("bell202" if burst.cas == "bell" else "v23")
    line: list[np.ndarray] = []  # samples queued towards the phone
    ack_audio = np.zeros(0, dtype=np.int16)
    decoded: list[object] = []
    for action in sender.start(0.0):
        assert isinstance(action, PlayAudio)
        line.append(action.pcm)
    queued = np.concatenate(line)
    for step in range(200):
        now = step * 20.0
        frame = queued[:FRAME_SAMPLES]
        queued = queued[FRAME_SAMPLES:]
        frame = np.concatenate([frame, np.zeros(FRAME_SAMPLES - len(frame), dtype=np.int16)])
        for out in phone.feed(frame):
            if isinstance(out, SendAck):
                if phone_acks:
                    ack_audio = generate_dtmf(out.digit, on_ms=60, off_ms=0)
            else:
                decoded.append(out)
        if len(ack_audio):  # the FXS's DTMF receiver hears the ACK (a detector's start)
            sender_out = sender.on_digit("A", now)
            ack_audio = np.zeros(0, dtype=np.int16)
            assert sender_out == []
        for action in sender.poll(now):
            if isinstance(action, PlayAudio):
                queued = np.concatenate([queued, action.pcm])
            elif isinstance(action, HandshakeFinished):
                decoded.append(action)
        if sender.state in (CallWaitingState.DONE, CallWaitingState.NO_ACK) and not len(queued):
            break
    return decoded, sender.state


@pytest.mark.parametrize("code", ["US", "GB", "SE"])
def test_type_ii_handshake_delivers_the_caller_to_a_type_ii_phone(code: str) -> None:
    spec = get_profile(code).callerid
    burst = tx.render_call_waiting(spec, number="5551234", name="ALICE", when=WHEN)
    assert burst.cas == ("bell" if code == "US" else "etsi")
    # No seizure and 80 marks instead of the on-hook preamble (the same message follows).
    fsk_spec = tx.line_spec(spec, "v23") if spec.standard == "dtmf" else spec
    assert fsk_spec is not None
    on_hook = tx.render_on_hook(fsk_spec, number="5551234", name="ALICE", when=WHEN)
    saved_bits = fsk_spec.seizure_bits + fsk_spec.mark_bits - 80
    assert len(on_hook.data) - len(burst.burst) == pytest.approx(saved_bits * 8000 / 1200, abs=2)
    decoded, state = run_handshake(burst, phone_acks=True)
    assert state is CallWaitingState.DONE
    assert CallSetup(date_time=WHEN, number="5551234", name="ALICE") in decoded
    assert HandshakeFinished(sent=True, ack_digit="A") in decoded


def test_type_ii_without_ack_sends_no_burst() -> None:
    burst = tx.render_call_waiting(get_profile("US").callerid, number="5551234", when=WHEN)
    decoded, state = run_handshake(burst, phone_acks=False)
    assert state is CallWaitingState.NO_ACK
    assert decoded == [HandshakeFinished(sent=False, ack_digit=None)]


def test_bad_layouts_are_refused() -> None:
    with pytest.raises(InvalidMessage, match="needs data"):
        tx.OnHookBurst(np.zeros(0, np.int16), tx.Alerting.DTAS, 0, 0)
    with pytest.raises(InvalidMessage, match="negative"):
        tx.OnHookBurst(np.ones(8, np.int16), tx.Alerting.DTAS, -1, 0)
    with pytest.raises(InvalidMessage, match="ring_pulse_ms"):
        tx.OnHookBurst(np.ones(8, np.int16), tx.Alerting.RING_PULSE, 0, 0)
    with pytest.raises(InvalidMessage, match="over 10000"):
        tx.OnHookBurst(np.ones(11 * SAMPLE_RATE, np.int16), tx.Alerting.DTAS, 0, 0)


# --- other people's decoders ------------------------------------------------------------


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


def run(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, timeout=60, check=True)
    return done.stdout.decode("latin-1")


def multimon(path: Path, mode: str) -> str:
    raw = path.with_suffix(".raw")
    run(
        ["sox", str(path), "-t", "raw", "-e", "signed-integer", "-b", "16", "-r", "22050", str(raw)]
    )
    return run(["multimon-ng", "-q", "-c", "-a", mode, "-t", "raw", str(raw)])


@pytest.mark.skipif(not TOOLS, reason="minimodem, multimon-ng and sox: .ci/apt-packages")
def test_minimodem_reads_the_us_line_audio(tmp_path: Path) -> None:
    burst = tx.render_on_hook(get_profile("US").callerid, number="5551234", name="ALICE", when=WHEN)
    path = write_wav(tmp_path / "us.wav", burst.line_audio())
    out = run(["minimodem", "--rx", "callerid", "-q", "-f", str(path)])
    assert out.splitlines()[0] == "CALLER-ID", out
    assert "555-1234" in out or "5551234" in out
    assert "ALICE" in out and "11/25 18:30" in out


@pytest.mark.skipif(not TOOLS, reason="minimodem, multimon-ng and sox: .ci/apt-packages")
def test_multimon_reads_the_gb_line_audio_and_vmwi(tmp_path: Path) -> None:
    gb = get_profile("GB").callerid
    burst = tx.render_on_hook(gb, number="01632960123", name="BOB", when=WHEN)
    out = multimon(write_wav(tmp_path / "gb.wav", burst.line_audio()), "CLIPFSK")
    assert "CLIPFSK: CS DATE=11251830 CID=01632960123 CNT=BOB" in out, out
    de = get_profile("DE").callerid
    vmwi = tx.render_vmwi(de, active=True, when=WHEN)
    out = multimon(write_wav(tmp_path / "vmwi.wav", vmwi.line_audio()), "CLIPFSK")
    assert "MWI" in out and "Activation (indicator on)" in out, out


@pytest.mark.skipif(not TOOLS, reason="minimodem, multimon-ng and sox: .ci/apt-packages")
def test_multimon_reads_the_dutch_dtmf_digits(tmp_path: Path) -> None:
    nl = get_profile("NL").callerid
    burst = tx.render_on_hook(nl, number="0201234567", when=WHEN)
    out = multimon(write_wav(tmp_path / "nl.wav", burst.line_audio()), "DTMF")
    digits = "".join(line.split(": ")[1] for line in out.splitlines() if line.startswith("DTMF: "))
    assert digits == "A0201234567#"
