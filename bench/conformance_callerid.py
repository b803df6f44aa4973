"""Caller ID conformance figures: FSK decode rate across level, noise, offset and G.711.

Issue 3 asks for decoding "robust from -40 to -5 dBm0, at 20 dB signal-to-noise ratio and
±1 % frequency offset".  Each cell sends ``BURSTS`` different MDMF messages (random numbers
and names) through white noise 20 dB under the signal, both tone and bit rate detuned by the
offset, then a G.711 round trip, and counts exact decodes.  Also measured: the type II CAS
detector on the same levels, and its false alarms on speech and music-like audio.
"""

from __future__ import annotations

import numpy as np

from bench.corpus import talk_corpus
from firmware.dsp import g711
from firmware.dsp.callerid import dtmf_clip, fsk, type2
from firmware.dsp.callerid.messages import CallSetup, DateTime, encode_message
from firmware.dsp.levels import rms_for_dbm0
from firmware.dsp.pcm import FRAME_SAMPLES, Pcm, to_pcm

BURSTS = 50  # per cell
DTMF_BURSTS = 10  # per cell of DTMF caller ID (its detector is measured by the DTMF section)
LEVELS_DBM0 = (-40.0, -30.0, -20.0, -10.0, -5.0)
OFFSETS = (-0.01, 0.01)
SNR_DB = 20.0
LAWS = ("ulaw", "alaw")
FSK_STANDARDS: tuple[fsk.FskStandard, ...] = ("bell202", "v23")
CORPUS_MINUTES = 30.0  # as the DTMF talk-off and false-busy figures


def _message(rng: np.random.Generator) -> CallSetup:
    digits = "".join(rng.choice(list("0123456789"), int(rng.integers(4, 16))))
    letters = "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ "), int(rng.integers(1, 16))))
    when = DateTime(
        int(rng.integers(1, 13)),
        int(rng.integers(1, 29)),
        int(rng.integers(0, 24)),
        int(rng.integers(0, 60)),
    )
    return CallSetup(date_time=when, number=digits, name=letters.strip() or "X")


def _line(
    burst: Pcm, level: float, law: str, rng: np.random.Generator, snr_db: float = SNR_DB
) -> Pcm:
    lead = int(rng.integers(800, 2400))
    sig = np.concatenate([np.zeros(lead), burst.astype(np.float64), np.zeros(1600)])
    sig += rng.normal(0.0, rms_for_dbm0(level - snr_db), len(sig))
    pcm = to_pcm(sig)
    return g711.ulaw_round_trip(pcm) if law == "ulaw" else g711.alaw_round_trip(pcm)


def fsk_decode_rate(
    standard: fsk.FskStandard,
    level: float,
    offset: float,
    law: str,
    bursts: int,
    seed: int,
    snr_db: float = SNR_DB,
) -> int:
    rng = np.random.default_rng(seed)
    good = 0
    for _ in range(bursts):
        msg = _message(rng)
        burst = fsk.fsk_modulate(
            encode_message(msg),
            standard=standard,
            level_dbm0=level,
            freq_offset=offset,
            baud_offset=offset,
        )
        line = _line(burst, level, law, rng, snr_db)
        good += fsk.decode_callerid(line, standard) == [msg]
    return good


def dtmf_clip_rate(fmt: str, level: float, law: str, bursts: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    good = 0
    for _ in range(bursts):
        number = "".join(rng.choice(list("0123456789"), int(rng.integers(4, 16))))
        clip = dtmf_clip.DtmfClip(fmt, number=number)
        line = _line(dtmf_clip.dtmf_clip_signal(clip, level_dbm0=level), level, law, rng)
        decoder = dtmf_clip.DtmfClipDecoder(fmt)
        found = []
        for i in range(0, len(line), FRAME_SAMPLES):
            found += decoder.feed(line[i : i + FRAME_SAMPLES])
        good += found + decoder.flush() == [clip]
    return good


def cas_detect_rate(level: float, bursts: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    good = 0
    for i in range(bursts):
        tone = type2.cas_tone(standard="bell" if i % 2 else "etsi", level_dbm0=level)
        line = _line(tone, level, "ulaw", rng)
        det = type2.CasDetector()
        events = []
        for j in range(0, len(line), FRAME_SAMPLES):
            events += det.feed(line[j : j + FRAME_SAMPLES])
        good += len(events) == 1
    return good


def cas_false_alarms(audio: Pcm) -> int:
    det = type2.CasDetector()
    return sum(
        len(det.feed(audio[i : i + FRAME_SAMPLES])) for i in range(0, len(audio), FRAME_SAMPLES)
    )


def fsk_false_messages(audio: Pcm, standard: fsk.FskStandard) -> int:
    """Anything the FSK receiver reports on audio with no caller ID in it (errors count too)."""
    demod = fsk.FskDemodulator(standard)
    found = 0
    for i in range(0, len(audio), FRAME_SAMPLES):
        found += len(demod.feed(audio[i : i + FRAME_SAMPLES]))
    return found


def report() -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    seed = 0
    for standard in FSK_STANDARDS:
        for level in LEVELS_DBM0:
            good = total = 0
            for offset in OFFSETS:
                for law in LAWS:
                    seed += 1
                    good += fsk_decode_rate(standard, level, offset, law, BURSTS, seed)
                    total += BURSTS
            rows.append(
                (
                    f"caller ID {standard} decode at {level:+.0f} dBm0, {SNR_DB:.0f} dB SNR, "
                    "±1 % offset, G.711 µ/A",
                    f"{good}/{total}",
                    f"{total}/{total}",
                )
            )
    for fmt in dtmf_clip.FORMATS:
        good = total = 0
        for level in (-30.0, -6.0):
            for law in LAWS:
                seed += 1
                good += dtmf_clip_rate(fmt, level, law, DTMF_BURSTS, seed)
                total += DTMF_BURSTS
        rows.append(
            (
                f"DTMF caller ID {fmt} decode at -30 and -6 dBm0, {SNR_DB:.0f} dB SNR, G.711 µ/A",
                f"{good}/{total}",
                f"{total}/{total}",
            )
        )
    # Headroom (informative): the weakest level with less and less SNR, and larger offsets.
    for snr, offset in ((12.0, 0.01), (8.0, 0.01), (20.0, 0.03)):
        for standard in FSK_STANDARDS:
            seed += 1
            good = fsk_decode_rate(standard, -40.0, offset, "alaw", BURSTS, seed, snr)
            rows.append(
                (
                    f"caller ID {standard} decode at -40 dBm0, {snr:.0f} dB SNR, "
                    f"+{offset * 100:.0f} % offset, A-law (headroom)",
                    f"{good}/{BURSTS}",
                    "informative",
                )
            )
    for level in (-32.0, -20.0, -10.0):
        seed += 1
        good = cas_detect_rate(level, BURSTS, seed)
        rows.append(
            (f"CAS / DT-AS detected at {level:+.0f} dBm0 per tone", f"{good}/{BURSTS}", "all")
        )
    audio = talk_corpus(CORPUS_MINUTES)
    rows.append(
        (
            f"CAS false alarms in {CORPUS_MINUTES:.0f} min of speech and music",
            str(cas_false_alarms(audio)),
            "0",
        )
    )
    for fmt in (dtmf_clip.FORMAT_A_C, dtmf_clip.FORMAT_HASH):
        decoder = dtmf_clip.DtmfClipDecoder(fmt)
        false = 0
        for i in range(0, len(audio), FRAME_SAMPLES):
            false += sum(
                isinstance(r, dtmf_clip.DtmfClip)
                for r in decoder.feed(audio[i : i + FRAME_SAMPLES])
            )
        rows.append(
            (
                f"DTMF caller ID {fmt} false numbers in {CORPUS_MINUTES:.0f} min of speech/music",
                str(false),
                "0",
            )
        )
    for standard in FSK_STANDARDS:
        rows.append(
            (
                f"caller ID {standard} false messages in {CORPUS_MINUTES:.0f} min of speech/music",
                str(fsk_false_messages(audio, standard)),
                "0",
            )
        )
    return rows


def main() -> None:
    for measure, result, target in report():
        print(f"{measure:<78} {result:>10}  (target {target})")


if __name__ == "__main__":
    main()
