"""``ponte dsp``: generate files, analyse them, read what other tools write, fail clearly."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from firmware import cli
from firmware.dsp import wavio
from firmware.dsp.profiles import COUNTRY_CODES
from firmware.dsp.tones import ToneSpec, render

SOX = shutil.which("sox")
needs_sox = pytest.mark.skipif(SOX is None, reason="sox (Debian package) not installed")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(["dsp", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_registered_and_helpful():
    assert cli.COMMANDS["dsp"] == "firmware.dsp.cli"
    proc = subprocess.run(
        [sys.executable, "-m", "firmware", "dsp", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0
    for action in ("profiles", "tone", "dtmf", "callerid", "analyse"):
        assert action in proc.stdout


def test_tone_then_analyse_text_and_json(capsys, tmp_path):
    wav = tmp_path / "busy.wav"
    status, out, _ = run(capsys, "tone", "GB", "busy", "--seconds", "6", "-o", str(wav))
    assert status == 0 and "GB busy" in out and "6.000 s at 8000 Hz" in out
    audio = wavio.read_wav(wav.read_bytes())
    assert audio.rate == 8000 and audio.seconds == pytest.approx(6.0)

    status, out, _ = run(capsys, "analyse", str(wav), "--country", "GB")
    assert status == 0
    assert "busy (400 Hz, -18.0 dBm0, cadence 375/375 ms)" in out

    status, out, _ = run(capsys, "analyse", str(wav), "--country", "GB", "--json")
    doc = json.loads(out)
    assert doc["country"] == "GB" and doc["rate"] == 8000 and doc["encoding"] == "pcm16"
    busy = [e for e in doc["progress"] if e["type"] == "ToneDetected"]
    assert busy[0]["tone"] == "busy" and busy[0]["on_off_ms"] == [375.0, 375.0]


def test_wideband_tone_file(capsys, tmp_path):
    wav = tmp_path / "dial16.wav"
    assert run(capsys, "tone", "US", "dial", "--rate", "16000", "-o", str(wav))[0] == 0
    assert wavio.read_wav(wav.read_bytes()).rate == 16000
    status, out, _ = run(capsys, "analyse", str(wav), "--country", "US", "--json")
    assert status == 0
    assert any(e.get("tone") == "dial" for e in json.loads(out)["progress"])


def test_profiles_listing_and_detail(capsys):
    status, out, _ = run(capsys, "profiles")
    assert status == 0
    assert [line.split()[0] for line in out.splitlines()] == sorted(COUNTRY_CODES)
    status, out, _ = run(capsys, "profiles", "se")
    assert "mapping sweden" in out and "sources:" in out and "dtmf A...C" in out
    status, out, _ = run(capsys, "profiles", "US", "--json")
    doc = json.loads(out)
    assert doc["tones"]["busy"]["plan"] == "480+620/500,0/500"
    assert doc["callerid"]["standard"] == "bell202"


def test_errors_are_one_clear_line(capsys, tmp_path):
    status, _, err = run(capsys, "tone", "XX", "busy", "-o", str(tmp_path / "x.wav"))
    assert status == 1 and "no profile for country 'XX'" in err
    status, _, err = run(capsys, "tone", "GB", "howler", "-o", str(tmp_path / "x.wav"))
    assert status == 1 and "GB has no tone 'howler'; it has busy" in err
    status, _, err = run(capsys, "tone", "GB", "busy", "--rate", "11025", "-o", str(tmp_path / "x"))
    assert status == 1 and "rate 11025 Hz" in err
    status, _, err = run(capsys, "analyse", str(tmp_path / "missing.wav"))
    assert status == 1 and "cannot read" in err
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"\x00garbage" * 10)
    status, _, err = run(capsys, "analyse", str(junk))
    assert status == 1 and "not a RIFF/WAVE file" in err
    status, _, err = run(capsys, "tone", "GB", "busy", "-o", str(tmp_path / "no" / "dir.wav"))
    assert status == 1 and "cannot write" in err
    assert not list(tmp_path.glob("*.tmp"))


@needs_sox
@pytest.mark.parametrize(
    "sox_args",
    [
        ["-e", "a-law"],
        ["-e", "u-law"],
        ["-b", "24"],
        ["-b", "32"],
        ["-e", "floating-point", "-b", "32"],
        ["-b", "8"],
        ["-c", "2"],
        ["-r", "16000"],
        ["-r", "44100"],
    ],
)
def test_reads_what_sox_writes(capsys, tmp_path, sox_args):
    """Recordings come from other tools: every common WAV encoding analyses the same."""
    src = tmp_path / "src.wav"
    assert run(capsys, "tone", "DE", "congestion", "--seconds", "5", "-o", str(src))[0] == 0
    dst = tmp_path / "dst.wav"
    assert SOX is not None
    subprocess.run([SOX, str(src), *sox_args, str(dst)], check=True, timeout=60)
    status, out, _ = run(capsys, "analyse", str(dst), "--country", "DE", "--json")
    assert status == 0
    doc = json.loads(out)
    tones = [e["tone"] for e in doc["progress"] if e["type"] == "ToneDetected"]
    assert tones[:1] == ["congestion"], (sox_args, doc)


def test_wav_reader_hostile_input():
    good = wavio.write_wav(render(ToneSpec.parse("425", -10.0), 100), 8000)
    assert wavio.read_wav(good).pcm.size == 800
    for bad, why in [
        (b"", "not a RIFF/WAVE"),
        (good[:20], "no 'data' chunk"),
        (good[:36], "no 'data' chunk"),
        (good.replace(b"fmt ", b"fmx "), "no 'fmt ' chunk"),
    ]:
        with pytest.raises(wavio.WavError, match=why):
            wavio.read_wav(bad)
    # A data chunk that claims more bytes than the file has: read what is there.
    lying = bytearray(good)
    idx = lying.index(b"data")
    struct.pack_into("<I", lying, idx + 4, 10**9)
    assert wavio.read_wav(bytes(lying)).pcm.size == 800
    # Wrong block alignment, an exotic encoding, an absurd rate.
    fmt_at = good.index(b"fmt ") + 8
    for offset, fmt, value, why in [
        (12, "<H", 3, "block align"),
        (0, "<H", 0x55, "unsupported WAV encoding"),
        (4, "<I", 5, "channels at 5 Hz"),
    ]:
        broken = bytearray(good)
        struct.pack_into(fmt, broken, fmt_at + offset, value)
        with pytest.raises(wavio.WavError, match=why):
            wavio.read_wav(bytes(broken))


def test_resample_keeps_tone_frequency_and_level():
    from firmware.dsp import levels

    x = render(ToneSpec.parse("1004", -10.0), 1000, rate=44100)
    y = wavio.resample(x, 44100, 8000)
    assert y.size == 8000
    spectrum = np.abs(np.fft.rfft(y[1000:7000] * np.hanning(6000)))
    assert np.argmax(spectrum) * 8000 / 6000 == pytest.approx(1004, abs=2)
    assert levels.power_dbm0(y[800:-800]) == pytest.approx(-10.0, abs=0.1)


def test_dtmf_file_round_trip(capsys, tmp_path):
    wav = tmp_path / "d.wav"
    status, out, _ = run(capsys, "dtmf", "0123456789*#ABCD", "--on-ms", "50", "-o", str(wav))
    assert status == 0 and "DTMF '0123456789*#ABCD'" in out
    status, out, _ = run(capsys, "analyse", str(wav), "--json")
    tones = json.loads(out)["dtmf"]
    assert "".join(t["digit"] for t in tones) == "0123456789*#ABCD"
    for i, t in enumerate(tones):
        assert t["start_ms"] == pytest.approx(i * 120, abs=10)
        assert t["duration_ms"] == pytest.approx(50, abs=10)
    status, out, _ = run(capsys, "analyse", str(wav))
    assert "DTMF:\n" in out and " 0  " in out


def test_missing_modules_are_reported_not_skipped(capsys, tmp_path):
    wav = tmp_path / "t.wav"
    run(capsys, "tone", "US", "ringback", "--seconds", "1", "-o", str(wav))
    status, out, _ = run(capsys, "analyse", str(wav), "--country", "US", "--json")
    assert status == 0
    doc = json.loads(out)
    for area in ("dtmf", "callerid"):
        try:
            __import__(f"firmware.dsp.{area}")
        except ModuleNotFoundError:
            assert area in doc["missing"] and doc[area] is None
        else:
            assert area not in doc["missing"]


@pytest.mark.parametrize(
    ("argv", "signalling", "kind", "fields"),
    [
        (["--format", "mdmf", "--number", "5551234", "--name", "J SMITH", "--date", "12251030"],
         "bell202", "CallSetup",
         {"number": "5551234", "name": "J SMITH", "date_time": "12-25 10:30"}),
        (["--format", "sdmf", "--date", "01020304", "--number", "5550000"],
         "bell202", "SdmfCallerId", {"number": "5550000"}),
        (["--format", "sdmf", "--date", "01020304", "--absence", "private"],
         "bell202", "SdmfCallerId", {"absence": "private"}),
        (["--format", "etsi", "--number", "0123456789", "--redirecting", "0700"],
         "v23", "CallSetup", {"number": "0123456789", "redirecting_number": "0700"}),
        (["--format", "mdmf", "--country", "GB", "--absence", "unavailable"],
         "v23", "CallSetup", {"number_absence": "unavailable", "name_absence": "unavailable"}),
        (["--format", "sdmf-vmwi-on"], "bell202", "SdmfVmwi", {"active": True}),
        (["--format", "vmwi-on"], "bell202", "MessageWaiting", {"active": True}),
        (["--format", "vmwi-off", "--country", "DE"], "v23", "MessageWaiting", {"active": False}),
        (["--format", "mdmf", "--call-waiting", "--number", "42"],
         "bell202", "CallSetup", {"number": "42"}),
        (["--format", "dtmf", "--country", "DK", "--number", "4512345678"],
         "dtmf A...#", "dtmf", {"number": "4512345678", "digits": "A4512345678#"}),
        (["--format", "dtmf", "--country", "SE", "--number", "0812345"],
         "dtmf A...C", "dtmf", {"number": "0812345", "digits": "A0812345C"}),
        (["--format", "dtmf", "--country", "FI", "--absence", "private"],
         "dtmf A...C", "dtmf", {"absence": "private"}),
        (["--format", "dtmf", "--dtmf-format", "D...#", "--number", "123", "--country", "ITU"],
         "dtmf D...#", "dtmf", {"number": "123", "digits": "D123#"}),
        (["--format", "dtmf", "--dtmf-format", "...#", "--number", "456", "--country", "ITU"],
         "dtmf ...#", "dtmf", {"number": "456", "digits": "456#"}),
    ],
)  # fmt: skip
def test_callerid_bursts_round_trip(capsys, tmp_path, argv, signalling, kind, fields):
    wav = tmp_path / "cid.wav"
    status, out, err = run(capsys, "callerid", *argv, "-o", str(wav))
    assert status == 0, err
    # Half a second of line silence around the burst, as a recording would have.
    audio = wavio.read_wav(wav.read_bytes()).pcm
    padded = np.concatenate([np.zeros(4000, np.int16), audio, np.zeros(4000, np.int16)])
    wav.write_bytes(wavio.write_wav(padded, 8000))
    country = argv[argv.index("--country") + 1] if "--country" in argv else "US"
    extra = (
        ["--dtmf-format", argv[argv.index("--dtmf-format") + 1]] if "--dtmf-format" in argv else []
    )
    status, out, _ = run(capsys, "analyse", str(wav), "--country", country, *extra, "--json")
    doc = json.loads(out)
    records = [r for r in doc["callerid"] if r["signalling"] != "2130+2750"]
    assert len(records) == 1, doc["callerid"]
    rec = records[0]
    assert rec["signalling"] == signalling and rec["kind"] == kind
    if kind != "dtmf":
        assert rec["checksum"] == "ok"
    for key, value in fields.items():
        assert rec["fields"][key] == value
    if "--call-waiting" in argv:  # the CPE alerting signal precedes the burst
        cas = [r for r in doc["callerid"] if r["signalling"] == "2130+2750"]
        assert len(cas) == 1 and cas[0]["at_ms"] < rec["at_ms"]
    if kind == "dtmf":  # the digits also show as DTMF
        digits = "".join(t["digit"] for t in doc["dtmf"])
        assert digits == rec["fields"]["digits"]
    status, out, _ = run(capsys, "analyse", str(wav), "--country", country, *extra)
    assert f"{signalling:<7} {kind}" in out


def test_bad_checksum_is_reported_with_the_bytes(capsys, tmp_path):
    from firmware.dsp import callerid as cid

    data = bytearray(cid.encode_message(cid.CallSetup(number="5551234")))
    data[-1] ^= 0x01
    burst = cid.fsk_modulate(bytes(data), standard="bell202")
    wav = tmp_path / "bad.wav"
    wav.write_bytes(wavio.write_wav(np.concatenate([np.zeros(800, np.int16), burst]), 8000))
    status, out, _ = run(capsys, "analyse", str(wav), "--country", "US", "--json")
    assert status == 0
    (rec,) = json.loads(out)["callerid"]
    assert rec["checksum"] == "bad" and rec["error"] == "ChecksumError"
    assert rec["data"] == bytes(data).hex()
    status, out, _ = run(capsys, "analyse", str(wav), "--country", "US")
    assert "ChecksumError" in out and "(checksum bad)" in out


def test_callerid_usage_errors(capsys, tmp_path):
    out_wav = str(tmp_path / "x.wav")
    status, _, err = run(capsys, "callerid", "--format", "sdmf", "--number", "1", "-o", out_wav)
    assert status == 1 and "--date MMDDhhmm" in err
    status, _, err = run(capsys, "callerid", "--format", "mdmf", "--date", "1399", "-o", out_wav)
    assert status == 1 and "MMDDHHMM" in err
    status, _, err = run(
        capsys, "callerid", "--format", "mdmf", "--date", "13010000", "-o", out_wav
    )
    assert status == 1 and "month" in err
    status, _, err = run(capsys, "callerid", "--format", "mdmf", "-o", out_wav)
    assert status == 1 and "at least one parameter" in err
    with pytest.raises(SystemExit):  # argparse refuses an unknown format by itself
        cli.main(["dsp", "callerid", "--format", "fax", "-o", out_wav])


def test_conformance_aggregator_finds_sections_and_prints_one_table(capsys):
    from bench import conformance

    names = conformance.modules([])
    assert "conformance_progress" in names
    assert all(n.startswith("conformance_") for n in names)
    assert conformance.modules(["progress"]) == ["conformance_progress"]
    assert conformance.main(["no-such-area"]) == 2
    text = conformance.table(
        [
            (
                "conformance_progress",
                [("false busy", "0", "<= 1"), ("cadence", "100/100", "")],
                1.0,
                None,
            ),
            ("conformance_dtmf", [], 0.1, "RuntimeError: espeak-ng missing"),
        ]
    )
    lines = text.splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["area", "measure", "result", "target"]
    assert "progress | false busy" in text and "ERROR RuntimeError: espeak-ng missing" in text
    assert sum(line.startswith("progress") for line in lines) == 1  # area named once


@pytest.mark.parametrize(("samples", "rate"), [(0, 8000), (1, 8000), (333, 11025), (7, 48000)])
def test_tiny_and_odd_recordings_analyse_cleanly(capsys, tmp_path, samples, rate):
    wav = tmp_path / "tiny.wav"
    wav.write_bytes(wavio.write_wav(np.full(samples, 1000, np.int16), rate))
    status, out, err = run(capsys, "analyse", str(wav), "--json")
    assert status == 0, err
    doc = json.loads(out)
    assert doc["rate"] == rate and doc["dtmf"] == [] and doc["callerid"] == []
    assert doc["seconds"] == pytest.approx(samples / rate, abs=1e-3)
