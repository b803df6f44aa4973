"""Interoperability with caller ID decoders and encoders nobody here wrote (Debian packages).

- ``minimodem --rx callerid`` (Bell 202, prints the fields) and ``minimodem --rx 1200`` with
  V.23 tones (prints the raw bytes);
- ``multimon-ng -a CLIPFSK`` (checks the checksum itself, prints ETSI fields; wants raw
  16-bit samples at 22050 Hz, so sox resamples);
- and back: bursts that ``minimodem --tx`` modulates from our message bytes, with a mark
  leader and trailer and noise made by sox, decode with ours;
- DTMF caller ID: ``multimon-ng -a DTMF`` reads our digit strings, and ours reads digit
  strings that sox synthesises.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from firmware.dsp import dtmf
from firmware.dsp.callerid import fsk
from firmware.dsp.callerid.dtmf_clip import (
    FORMAT_A_C,
    FORMAT_A_HASH,
    FORMAT_D_C,
    FORMAT_HASH,
    DtmfClip,
    DtmfClipDecoder,
    dtmf_clip_signal,
)
from firmware.dsp.callerid.fsk import decode_callerid
from firmware.dsp.callerid.messages import (
    Absence,
    CallerIdMessage,
    CallSetup,
    DateTime,
    MessageWaiting,
    SdmfCallerId,
    SdmfVmwi,
    encode_message,
)
from firmware.dsp.pcm import SAMPLE_RATE

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("minimodem", "multimon-ng", "sox")),
    reason="minimodem, multimon-ng and sox come from .ci/apt-packages (make deps)",
)
TIMEOUT_S = 60
SOX_48K = ["-r", "48000", "-b", "16", "-c", "1"]

CALL = CallSetup(date_time=DateTime(3, 14, 15, 9), number="5551234567", name="JOHN DOE")
MESSAGES: list[tuple[str, CallerIdMessage]] = [
    ("mdmf", CALL),
    ("mdmf-short", CallSetup(date_time=DateTime(12, 1, 0, 5), number="4711", name="A")),
    (
        "private",
        CallSetup(
            date_time=DateTime(7, 4, 9, 59),
            number_absence=Absence.PRIVATE,
            name_absence=Absence.PRIVATE,
        ),
    ),
    (
        "unavailable",
        CallSetup(date_time=DateTime(2, 28, 23, 0), number_absence=Absence.UNAVAILABLE),
    ),
    ("sdmf", SdmfCallerId(DateTime(9, 30, 12, 24), number="6095551212")),
    ("sdmf-private", SdmfCallerId(DateTime(9, 30, 12, 24), absence=Absence.PRIVATE)),
    ("vmwi-on", MessageWaiting(active=True)),
    ("vmwi-off", MessageWaiting(active=False)),
]


def write_wav(path: Path, pcm: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    return path


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == SAMPLE_RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def burst_file(tmp_path: Path, msg: CallerIdMessage, standard: fsk.FskStandard) -> Path:
    silence = np.zeros(SAMPLE_RATE // 4, dtype=np.int16)
    burst = fsk.modulate_message(msg, standard=standard)
    return write_wav(tmp_path / f"{standard}.wav", np.concatenate([silence, burst, silence]))


def run(args: list[str], stdin: bytes | None = None) -> str:
    done = subprocess.run(args, input=stdin, capture_output=True, timeout=TIMEOUT_S, check=True)
    return done.stdout.decode("latin-1")


def minimodem_fields(text: str) -> list[str]:
    return [line.split(None, 1)[1] if " " in line else "" for line in text.splitlines()[1:]]


# minimodem 0.24 (Debian) spells the reasons for absence out.
MINIMODEM_ABSENCE = {Absence.PRIVATE: "[blocked]", Absence.UNAVAILABLE: "[N/A]"}


def expected_minimodem_fields(msg: CallerIdMessage) -> list[str]:
    """What minimodem's databits_callerid.c prints for each field we send."""
    if isinstance(msg, SdmfCallerId):
        dt = msg.date_time
        number = msg.number or ""
        phone = f"{number[:3]}-{number[3:6]}-{number[6:]}" if len(number) == 10 else number
        if msg.absence is not None:  # its SDMF path prints the code as it came
            phone = msg.absence.value
        return [f"{dt.month:02d}/{dt.day:02d} {dt.hour:02d}:{dt.minute:02d}", phone]
    assert isinstance(msg, CallSetup)
    fields = []
    if msg.date_time is not None:
        dt = msg.date_time
        fields.append(f"{dt.month:02d}/{dt.day:02d} {dt.hour:02d}:{dt.minute:02d}")
    if msg.number is not None:
        n = msg.number
        fields.append(f"{n[:3]}-{n[3:6]}-{n[6:]}" if len(n) == 10 else n)
    if msg.number_absence is not None:
        fields.append(MINIMODEM_ABSENCE[msg.number_absence])
    if msg.name is not None:
        fields.append(msg.name)
    if msg.name_absence is not None:
        fields.append(MINIMODEM_ABSENCE[msg.name_absence])
    return fields


@pytest.mark.parametrize(
    ("name", "msg"), [(n, m) for n, m in MESSAGES if not isinstance(m, MessageWaiting)]
)
def test_minimodem_callerid_reads_our_bell202_bursts(tmp_path, name, msg):
    out = run(
        ["minimodem", "--rx", "callerid", "-q", "-f", str(burst_file(tmp_path, msg, "bell202"))]
    )
    assert out.splitlines()[0] == "CALLER-ID", out
    assert minimodem_fields(out) == expected_minimodem_fields(msg)


@pytest.mark.parametrize("standard", ["bell202", "v23"])
@pytest.mark.parametrize(("name", "msg"), MESSAGES)
def test_minimodem_1200_reads_our_bytes(tmp_path, standard, name, msg):
    """Every message, VMWI included, byte for byte (minimodem parses only 0x80/0x04)."""
    p = fsk.params_for(standard)
    path = burst_file(tmp_path, msg, standard)
    tones = ["-M", str(int(p.mark_hz)), "-S", str(int(p.space_hz))]
    out = run(["minimodem", "--rx", "1200", *tones, "-q", "-f", str(path)])
    assert encode_message(msg).decode("latin-1") in out


def multimon(path: Path) -> str:
    # multimon-ng reads a file, not a pipe: from stdin it gave up early now and then on a
    # loaded machine and printed nothing.
    raw = path.with_suffix(".22050.raw")
    run(
        ["sox", str(path), "-t", "raw", "-e", "signed-integer", "-b", "16", "-r", "22050", str(raw)]
    )
    return run(["multimon-ng", "-q", "-c", "-a", "CLIPFSK", "-t", "raw", str(raw)])


def expected_multimon(msg: CallerIdMessage) -> str:
    """multimon-ng clip.c output for the ETSI EN 300 659-3 parameters we send."""
    if isinstance(msg, MessageWaiting):
        on = "Activation (indicator on)" if msg.active else "Deactivation (indicator off)"
        return f"CLIPFSK: MWI VI=. {on}"
    if isinstance(msg, SdmfCallerId):  # type 0x04 is "reserved" to ETSI: framed, not parsed
        return f"CLIPFSK: RVD len={len(encode_message(msg))}"
    assert isinstance(msg, CallSetup)
    text = "CLIPFSK: CS"
    reasons = {Absence.PRIVATE: "Private (CLIR involved)", Absence.UNAVAILABLE: "Unavailable"}
    if msg.date_time is not None:
        text += f" DATE={msg.date_time.to_bytes().decode()}"
    if msg.number is not None:
        text += f" CID={msg.number}"
    if msg.number_absence is not None:
        text += f" RACLI={msg.number_absence.value} {reasons[msg.number_absence]}"
    if msg.name is not None:
        text += f" CNT={msg.name}"
    if msg.name_absence is not None:
        text += f" RACNT={msg.name_absence.value} {reasons[msg.name_absence]}"
    return text


@pytest.mark.parametrize("standard", ["bell202", "v23"])
@pytest.mark.parametrize(("name", "msg"), MESSAGES)
def test_multimon_clipfsk_reads_our_bursts(tmp_path, standard, name, msg):
    out = multimon(burst_file(tmp_path, msg, standard))
    assert out.splitlines()[0].startswith(expected_multimon(msg)), out


def test_multimon_rejects_our_burst_with_a_broken_checksum(tmp_path):
    data = bytearray(encode_message(CALL))
    data[-1] ^= 0xFF
    silence = np.zeros(2000, dtype=np.int16)
    pcm = np.concatenate([silence, fsk.fsk_modulate(bytes(data)), silence])
    assert "CLIPFSK" not in multimon(write_wav(tmp_path / "bad.wav", pcm))


def minimodem_burst(tmp_path: Path, msg: CallerIdMessage, standard: fsk.FskStandard) -> Path:
    """minimodem modulates the bytes; sox adds the mark leader and trailer, noise, 8 kHz.

    minimodem rounds bits to whole samples (7 at 8 kHz: 4.8 % slow), so it transmits at
    48 kHz where a bit is exactly 40 samples, and sox resamples.
    """
    p = fsk.params_for(standard)
    mark, space = str(int(p.mark_hz)), str(int(p.space_hz))
    data = tmp_path / "data.wav"
    subprocess.run(
        [
            "minimodem",
            "--tx",
            "1200",
            "-M",
            mark,
            "-S",
            space,
            "-R",
            "48000",
            "-v",
            "0.3",
            "-f",
            str(data),
        ],
        input=encode_message(msg),
        timeout=TIMEOUT_S,
        check=True,
    )
    lead = tmp_path / "lead.wav"
    trail = tmp_path / "trail.wav"
    for path, secs in ((lead, "0.15"), (trail, "0.01")):
        run(
            [
                "sox",
                "-n",
                "-r",
                "48000",
                "-b",
                "16",
                "-c",
                "1",
                str(path),
                "synth",
                secs,
                "sine",
                mark,
                "vol",
                "0.3",
            ]
        )
    joined = tmp_path / "joined.wav"
    run(["sox", str(lead), str(data), str(trail), str(joined), "pad", "0.2", "0.2"])
    noisy = tmp_path / "noisy8k.wav"
    noise = tmp_path / "noise.wav"
    seconds = f"{float(run(['soxi', '-D', str(joined)])):.3f}"
    run(
        [
            "sox",
            "-n",
            "-r",
            "48000",
            "-b",
            "16",
            "-c",
            "1",
            str(noise),
            "synth",
            seconds,
            "whitenoise",
            "vol",
            "0.01",
        ]
    )
    run(["sox", "-m", str(joined), str(noise), "-r", "8000", "-b", "16", str(noisy)])
    return noisy


@pytest.mark.parametrize("standard", ["bell202", "v23"])
@pytest.mark.parametrize(("name", "msg"), MESSAGES)
def test_our_decoder_reads_minimodem_bursts(tmp_path, standard, name, msg):
    pcm = read_wav(minimodem_burst(tmp_path, msg, standard))
    assert decode_callerid(pcm, standard) == [msg]


@pytest.mark.parametrize("standard", ["bell202", "v23"])
def test_our_decoder_reads_a_minimodem_vmwi_sdmf(tmp_path, standard):
    pcm = read_wav(minimodem_burst(tmp_path, SdmfVmwi(True), standard))
    assert decode_callerid(pcm, standard) == [SdmfVmwi(True)]


# --- DTMF caller ID ---------------------------------------------------------------------------

DTMF_CLIPS = [
    DtmfClip(FORMAT_A_C, number="0812345678", redirecting_number="046123"),
    DtmfClip.withheld(FORMAT_A_HASH, Absence.PRIVATE),
    DtmfClip(FORMAT_D_C, number="0223456789"),
    DtmfClip(FORMAT_HASH, number="4533123456"),
]


@pytest.mark.parametrize("clip", DTMF_CLIPS, ids=lambda c: c.to_digits())
def test_multimon_dtmf_reads_our_dtmf_caller_id(tmp_path, clip):
    silence = np.zeros(SAMPLE_RATE // 10, dtype=np.int16)
    path = write_wav(
        tmp_path / "clip.wav", np.concatenate([silence, dtmf_clip_signal(clip), silence])
    )
    raw = run(
        ["sox", str(path), "-t", "raw", "-e", "signed-integer", "-b", "16", "-r", "22050", "-"]
    )
    out = run(["multimon-ng", "-q", "-c", "-a", "DTMF", "-"], stdin=raw.encode("latin-1"))
    digits = "".join(line.split(": ")[1] for line in out.splitlines() if line.startswith("DTMF: "))
    assert digits == clip.to_digits()


@pytest.mark.parametrize("clip", DTMF_CLIPS, ids=lambda c: c.to_digits())
def test_our_decoder_reads_sox_synthesised_dtmf_caller_id(tmp_path, clip):
    parts = []
    for i, digit in enumerate(clip.to_digits()):
        low, high = dtmf.tones_of(digit)
        part = tmp_path / f"{i:02d}.wav"
        tones = ["sine", f"{low:g}", "sine", f"{high:g}", "remix", "-", "vol", "0.25"]
        run(["sox", "-n", "-r", "8000", "-b", "16", "-c", "1", str(part), "synth", "0.07", *tones])
        run(["sox", str(part), str(part.with_suffix(".p.wav")), "pad", "0", "0.07"])
        part = part.with_suffix(".p.wav")
        parts.append(str(part))
    joined = tmp_path / "clip.wav"
    run(["sox", *parts, str(joined), "pad", "0.2", "0.2"])
    decoder = DtmfClipDecoder(clip.format)
    pcm = read_wav(joined)
    assert decoder.feed(pcm) + decoder.flush() == [clip]


@pytest.mark.parametrize("standard", ["bell202", "v23"])
def test_type_ii_bursts_without_seizure_decode_in_both_tools(tmp_path, standard):
    silence = np.zeros(SAMPLE_RATE // 4, dtype=np.int16)
    burst = fsk.modulate_message(CALL, standard=standard, call_waiting=True)
    path = write_wav(tmp_path / "cidcw.wav", np.concatenate([silence, burst, silence]))
    p = fsk.params_for(standard)
    tones = ["-M", str(int(p.mark_hz)), "-S", str(int(p.space_hz))]
    out = run(["minimodem", "--rx", "callerid", *tones, "-q", "-f", str(path)])
    assert minimodem_fields(out) == expected_minimodem_fields(CALL)
    if standard == "bell202":
        # multimon-ng correlates at 1200/2200 Hz and locks its bit clock on the seizure: V.23
        # without a seizure is beyond it (it prints nothing), which is its limit, not ours.
        assert multimon(path).splitlines()[0] == expected_multimon(CALL)
