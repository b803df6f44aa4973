"""``ponte dsp``: a technician's tool for line signals.

    ponte dsp profiles [CODE]                      list countries / show one profile
    ponte dsp tone GB busy --seconds 5 -o busy.wav any tone of a country profile
    ponte dsp dtmf 0123456789*# -o digits.wav      a DTMF string
    ponte dsp callerid --format mdmf --number 5551234 --name "J SMITH" -o cid.wav
    ponte dsp analyse recording.wav --country DE   DTMF, caller ID, call progress

Text output for people, ``--json`` for programs.  Modules of the signal package that this
build lacks are reported as missing, never silently skipped.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

HELP = "generate and analyse line signals (tones, DTMF, caller ID) in WAV files"

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_DATA = 1


class CliError(Exception):
    """A problem to report in one line, with exit status 1."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = sub.add_parser("profiles", help="list country profiles, or show one")
    p.add_argument("country", nargs="?", help="ISO 3166 code (GB, DE, ...) or ITU")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("tone", help="render a tone of a country profile into a WAV file")
    p.add_argument("country", help="ISO 3166 code (GB, DE, ...) or ITU")
    p.add_argument("tone", help="dial, stutter_dial, ringback, busy, congestion, ...")
    p.add_argument("--seconds", type=float, default=5.0, help="length (default 5)")
    p.add_argument("--level-offset", type=float, default=0.0, help="dB added to the level")
    p.add_argument("--rate", type=int, default=8000, help="sample rate (default 8000)")
    p.add_argument("-o", "--output", required=True, type=Path, help="WAV file to write")

    p = sub.add_parser("dtmf", help="render a DTMF digit string into a WAV file")
    p.add_argument("digits", help="0-9 * # A-D")
    p.add_argument("--level", type=float, default=-6.0, help="dBm0 of the low tone")
    p.add_argument("--twist", type=float, default=0.0, help="high minus low group, dB")
    p.add_argument("--on-ms", type=float, default=70.0)
    p.add_argument("--off-ms", type=float, default=70.0)
    p.add_argument("--rate", type=int, default=8000)
    p.add_argument("-o", "--output", required=True, type=Path)

    p = sub.add_parser("callerid", help="render a caller ID burst into a WAV file")
    p.add_argument(
        "--format",
        default="mdmf",
        choices=["sdmf", "mdmf", "etsi", "vmwi-on", "vmwi-off", "sdmf-vmwi-on", "dtmf"],
        help="message format (dtmf: the national variant of --country, else A...C)",
    )
    p.add_argument("--number", default=None)
    p.add_argument("--name", default=None)
    p.add_argument("--date", default=None, help="MMDDhhmm (default: none)")
    p.add_argument("--absence", choices=["private", "unavailable"], default=None)
    p.add_argument("--redirecting", default=None, help="redirecting number (MDMF/ETSI)")
    p.add_argument("--standard", choices=["bell202", "v23"], default=None)
    p.add_argument("--country", default=None, help="use the country's caller ID settings")
    p.add_argument(
        "--dtmf-format",
        choices=["A...C", "A...#", "D...C", "D...#", "...#"],
        default=None,
        help="DTMF caller ID variant (default: the country's, else A...C)",
    )
    p.add_argument(
        "--call-waiting", action="store_true",
        help="type II burst (no seizure), after the CPE alerting signal when available",
    )  # fmt: skip
    p.add_argument("--level", type=float, default=-13.0, help="dBm0")
    p.add_argument("--rate", type=int, default=8000)
    p.add_argument("-o", "--output", required=True, type=Path)

    p = sub.add_parser("analyse", aliases=["analyze"], help="analyse a WAV recording")
    p.add_argument("wav", type=Path)
    p.add_argument("--country", default="ITU", help="tone plan to expect (default ITU)")
    p.add_argument(
        "--callerid", choices=["bell202", "v23", "auto"], default="auto",
        help="FSK standard to decode (default: the country's, or both)",
    )  # fmt: skip
    p.add_argument(
        "--dtmf-format",
        choices=["A...C", "A...#", "D...C", "D...#", "...#"],
        default=None,
        help="also decode DTMF caller ID of this variant (default: the country's, if DTMF)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def main(args: argparse.Namespace) -> int:
    actions: dict[str, Callable[[argparse.Namespace], int]] = {
        "profiles": _profiles,
        "tone": _tone,
        "dtmf": _dtmf,
        "callerid": _callerid,
        "analyse": _analyse,
        "analyze": _analyse,
    }
    try:
        return actions[args.action](args)
    except CliError as exc:
        print(f"ponte dsp {args.action}: {exc}", file=sys.stderr)
        return EXIT_DATA
    except ValueError as exc:  # every dsp module raises a ValueError subclass with a reason
        print(f"ponte dsp {args.action}: {exc}", file=sys.stderr)
        return EXIT_DATA


# --- helpers ----------------------------------------------------------------------------


def _optional(module: str) -> Any | None:
    """A signal module of this package, or None if this build does not have it yet."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return None
        raise


def _write(path: Path, pcm: Any, rate: int, what: str) -> int:
    from firmware.dsp import levels, wavio

    data = wavio.write_wav(pcm, rate)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None
    level = levels.measure(pcm)
    print(
        f"{path}: {what}, {len(pcm) / rate:.3f} s at {rate} Hz, "
        f"peak {level.peak}, {level.power_dbm0:.1f} dBm0 average"
    )
    return EXIT_OK


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        out = {"type": type(value).__name__}
        out.update({f.name: _jsonable(getattr(value, f.name)) for f in fields(value)})
        return out
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, float):
        return round(value, 3)
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _check_rate(rate: int) -> None:
    if rate not in (8000, 16000):
        raise CliError(f"rate {rate} Hz: use 8000 (narrowband) or 16000 (wideband)")


# --- profiles and tones -----------------------------------------------------------------


def _profiles(args: argparse.Namespace) -> int:
    from firmware.dsp.profiles import all_profiles, get_profile

    if args.country is None:
        table = all_profiles()
        if args.json:
            print(json.dumps({c: p.name for c, p in sorted(table.items())}, indent=2))
        else:
            for code, p in sorted(table.items()):
                cid = p.callerid
                print(f"{code:<4} {p.name:<34} {cid.standard:<8} {cid.alerting:<8} {p.impedance}")
        return EXIT_OK
    p = get_profile(args.country)
    if args.json:
        doc = {
            "code": p.code,
            "name": p.name,
            "language": p.language,
            "impedance": p.impedance,
            "tones": {
                k: {"plan": t.plan, "frequencies": t.frequencies} for k, t in p.tones.items()
            },
            "rings": {k: c.on_off_ms for k, c in p.rings.items()},
            "callerid": asdict(p.callerid),
            "flash": asdict(p.flash),
            "pulse": asdict(p.pulse),
            "sources": p.source,
            "notes": p.notes,
        }
        print(json.dumps(_jsonable(doc), indent=2))
        return EXIT_OK
    print(f"{p.code}  {p.name}  (language {p.language}, impedance {p.impedance})")
    print("tones:")
    for name, spec in p.tones.items():
        levels = sorted({c.level_dbm0 for s in spec.segments for c in s.components})
        lv = "/".join(f"{v:g}" for v in levels)
        print(f"  {name:<14} {spec.plan}  [{lv} dBm0]")
    print("rings:")
    for name, cad in p.rings.items():
        print(f"  {name:<14} {'/'.join(f'{d:g}' for d in cad.on_off_ms)} ms")
    c = p.callerid
    fmt = f" {c.dtmf_format}" if c.dtmf_format else ""
    print(f"caller ID: {c.standard}{fmt} ({c.protocol}), alerting {c.alerting}, "
          f"data {c.data_delay_ms[0]}..{c.data_delay_ms[1]} ms after it")  # fmt: skip
    print(f"hook flash: {p.flash.min_ms}..{p.flash.max_ms} ms (sends {p.flash.send_ms} ms)")
    q = p.pulse
    print(f"dial pulses: break {q.break_min_ms}..{q.break_max_ms} ms, make "
          f"{q.make_min_ms}..{q.make_max_ms} ms, mapping {q.mapping}")  # fmt: skip
    print("sources:")
    for s in p.source:
        print(f"  - {s}")
    if p.notes:
        print(f"notes: {p.notes}")
    return EXIT_OK


def _tone(args: argparse.Namespace) -> int:
    from firmware.dsp.profiles import get_profile
    from firmware.dsp.tones import TonePlayer

    _check_rate(args.rate)
    if not 0 < args.seconds <= 600:
        raise CliError(f"--seconds {args.seconds} is not in (0, 600]")
    profile = get_profile(args.country)
    spec = profile.tone(args.tone)
    pcm = TonePlayer(spec, args.rate, level_offset_db=args.level_offset).render_ms(
        args.seconds * 1000
    )
    return _write(args.output, pcm, args.rate, f"{profile.code} {args.tone} ({spec.plan})")


# --- DTMF and caller ID generation -------------------------------------------------------


def _dtmf(args: argparse.Namespace) -> int:
    dtmf = _optional("firmware.dsp.dtmf")
    if dtmf is None:
        raise CliError("DTMF generation is not in this build (firmware.dsp.dtmf missing)")
    _check_rate(args.rate)
    pcm = dtmf.generate_dtmf(
        args.digits,
        level_dbm0=args.level,
        twist_db=args.twist,
        on_ms=args.on_ms,
        off_ms=args.off_ms,
        rate=args.rate,
    )
    return _write(args.output, pcm, args.rate, f"DTMF {args.digits!r}")


def _callerid(args: argparse.Namespace) -> int:
    analysis = _optional("firmware.dsp.callerid.analysis")
    if analysis is None:
        raise CliError("caller ID generation is not in this build (firmware.dsp.callerid missing)")
    from firmware.dsp.callerid import CallerIdError

    _check_rate(args.rate)
    spec = None
    if args.country is not None:
        from firmware.dsp.profiles import get_profile

        spec = get_profile(args.country).callerid
    dtmf_format = None
    if args.format == "dtmf":
        dtmf_format = args.dtmf_format or (
            spec.dtmf_format if spec is not None and spec.dtmf_format else "A...C"
        )
    try:
        msg = analysis.build_message(
            args.format,
            number=args.number,
            name=args.name,
            date=args.date,
            absence=args.absence,
            redirecting=args.redirecting,
            dtmf_format=dtmf_format,
        )
    except CallerIdError as exc:  # the date field is parsed as a line would send it
        raise CliError(exc.reason) from None
    standard = args.standard or ("v23" if args.format == "etsi" else "bell202")
    if spec is not None and spec.fsk and args.standard is None:
        standard = spec.standard
    pcm = analysis.render(
        msg,
        standard=standard,
        spec=spec if args.standard is None else None,
        level_dbm0=args.level,
        call_waiting=args.call_waiting,
        rate=args.rate,
    )
    if dtmf_format is not None:
        what = f"caller ID dtmf {dtmf_format}"
    else:
        what = f"caller ID {args.format} ({standard}{', type II' if args.call_waiting else ''})"
    if args.call_waiting and dtmf_format is None:
        import numpy as np

        from firmware.dsp.callerid import type2

        gap = np.zeros(round(args.rate * CAS_TO_FSK_MS / 1000), dtype=np.int16)
        pcm = np.concatenate([type2.cas_tone(rate=args.rate), gap, pcm])
        what += " after the CPE alerting signal"
    return _write(args.output, pcm, args.rate, what)


CAS_TO_FSK_MS = 160  # stands for the CPE acknowledgement window (GR-30-CORE: ACK within
#                       160 ms of the CAS end, FSK 50..500 ms after the ACK)


# --- analysis ---------------------------------------------------------------------------


def _analyse(args: argparse.Namespace) -> int:
    import numpy as np

    from firmware.dsp import progress, wavio
    from firmware.dsp.pcm import SAMPLE_RATE
    from firmware.dsp.profiles import get_profile

    profile = get_profile(args.country)
    try:
        data = args.wav.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.wav}: {exc.strerror}") from None
    audio = wavio.read_wav(data)
    pcm = audio.pcm
    rate = audio.rate
    note = ""
    if rate != SAMPLE_RATE:
        pcm = wavio.resample(pcm, rate, SAMPLE_RATE)
        note = f" (resampled from {rate} Hz)"
        rate = SAMPLE_RATE
    report: dict[str, Any] = {
        "file": str(args.wav),
        "rate": audio.rate,
        "channels": audio.channels,
        "encoding": audio.encoding,
        "seconds": round(audio.seconds, 3),
        "country": profile.code,
        "missing": [],
    }

    dtmf = _optional("firmware.dsp.dtmf")
    if dtmf is None:
        report["missing"].append("dtmf")
        report["dtmf"] = None
    else:
        report["dtmf"] = [
            {"digit": t.digit, "start_ms": t.start_ms, "duration_ms": t.duration_ms}
            for t in dtmf.detect_dtmf(pcm, rate)
        ]

    if _optional("firmware.dsp.callerid.analysis") is None:
        report["missing"].append("callerid")
        report["callerid"] = None
    else:
        report["callerid"] = _decode_callerid(pcm, args.callerid, profile, args.dtmf_format)

    events = progress.analyse(np.asarray(pcm), profile, rate)
    report["progress"] = [_jsonable(e) for e in events]

    if args.json:
        print(json.dumps(_jsonable(report), indent=2))
        return EXIT_OK
    print(
        f"{args.wav}: {audio.encoding}, {audio.channels} ch, {audio.rate} Hz{note}, "
        f"{audio.seconds:.2f} s; tone plan {profile.code} ({profile.name})"
    )
    print("DTMF:")
    if report["dtmf"] is None:
        print("  (not in this build)")
    elif not report["dtmf"]:
        print("  none")
    for t in report["dtmf"] or []:
        print(f"  {t['start_ms'] / 1000:8.3f} s  {t['digit']}  {t['duration_ms']:.0f} ms")
    print("Caller ID:")
    if report["callerid"] is None:
        print("  (not in this build)")
    elif not report["callerid"]:
        print("  none")
    for m in report["callerid"] or []:
        print(f"  {_describe_cid(m)}")
    print("Call progress:")
    if not events:
        print("  none")
    for e in events:
        print(f"  {e.at_ms / 1000:8.3f} s  {_describe(e)}")
    return EXIT_OK


def _decode_callerid(
    pcm: Any, choice: str, profile: Any, dtmf_format: str | None = None
) -> list[dict[str, Any]]:
    """Every caller ID message with its time, fields and checksum verdict, and every
    2130+2750 Hz alerting signal (type II CAS or the ETSI/BT DT-AS before a burst)."""
    from firmware.dsp.callerid import analysis, type2
    from firmware.dsp.pcm import FRAME_SAMPLES

    spec = profile.callerid
    if dtmf_format is None and spec.standard == "dtmf":
        dtmf_format = spec.dtmf_format
    standard: Literal["bell202", "v23", "auto"] = (
        "bell202" if choice == "bell202" else "v23" if choice == "v23" else "auto"
    )
    findings = analysis.analyse(pcm, standard=standard, dtmf_format=dtmf_format)
    if standard == "auto" and not any(f.signalling in ("bell202", "v23") for f in findings):
        # The tone census can be fooled (an alerting signal next to a short burst):
        # then let each demodulator try, the country's standard first.
        # Either demodulator reads the other standard's bursts (1200/2200 vs 1300/2100 Hz),
        # so name the standard by the tones present just before each message.
        order: tuple[Literal["bell202", "v23"], ...] = ("bell202", "v23")
        if spec.standard == "v23":
            order = ("v23", "bell202")
        for std in order:
            fsk_only = analysis.analyse(pcm, standard=std)
            if fsk_only:
                relabelled = [
                    analysis.Finding(f.at_ms, _fsk_standard(pcm, f.at_ms) or std, f.result)
                    for f in fsk_only
                ]
                findings = sorted([*findings, *relabelled], key=lambda f: f.at_ms)
                break
    records = [
        {"at_ms": f.at_ms, "signalling": f.signalling, **analysis.to_dict(f.result)}
        for f in findings
    ]
    cas = type2.CasDetector()
    for start in range(0, len(pcm), FRAME_SAMPLES):
        for event in cas.feed(pcm[start : start + FRAME_SAMPLES]):
            records.append(
                {
                    "at_ms": event.at_ms,
                    "signalling": "2130+2750",
                    "kind": "alerting signal (CAS / DT-AS)",
                    "fields": {"duration_ms": round(event.duration_ms, 1)},
                }
            )
    return sorted(records, key=lambda r: r["at_ms"])


def _fsk_standard(pcm: Any, at_ms: float) -> str | None:
    """bell202 or v23, by the mark/space tones in the 250 ms before ``at_ms``."""
    import numpy as np

    from firmware.dsp.pcm import SAMPLE_RATE

    end = min(round(at_ms * SAMPLE_RATE / 1000), len(pcm))
    x = np.asarray(pcm[max(end - SAMPLE_RATE // 4, 0) : end], dtype=np.float64)
    if x.size < SAMPLE_RATE // 50:
        return None
    t = np.arange(x.size) / SAMPLE_RATE

    def power(f: float) -> float:
        return float(abs(np.dot(x, np.exp(-2j * np.pi * f * t))) ** 2)

    bell = power(1200.0) + power(2200.0)
    v23 = power(1300.0) + power(2100.0)
    return "bell202" if bell > v23 else "v23"


def _describe_cid(record: dict[str, Any]) -> str:
    head = f"{record['at_ms'] / 1000:8.3f} s  {record['signalling']:<7}"
    if record["kind"] == "error":
        return f"{head} {record['error']}: {record['reason']} (checksum {record['checksum']})"
    parts = [f"{k}={_short(v)}" for k, v in record["fields"].items() if k != "extra"]
    verdict = f" (checksum {record['checksum']})" if "checksum" in record else ""
    return f"{head} {record['kind']} {' '.join(parts)}{verdict}"


def _short(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _describe(e: Any) -> str:
    from firmware.dsp import progress

    if isinstance(e, progress.ToneDetected):
        cad = "/".join(f"{d:.0f}" for d in e.on_off_ms)
        freqs = "+".join(f"{f:g}" for f in e.frequencies)
        return f"{e.tone} ({freqs} Hz, {e.level_dbm0:.1f} dBm0, cadence {cad} ms)"
    if isinstance(e, progress.ToneStopped):
        return f"{e.tone} stopped after {e.duration_ms / 1000:.2f} s"
    if isinstance(e, progress.VoiceDetected):
        return f"voice ({e.level_dbm0:.1f} dBm0)"
    if isinstance(e, progress.SilenceDetected):
        return f"silence since {e.at_ms / 1000:.3f} s ({e.duration_ms / 1000:.1f} s so far)"
    return repr(e)
