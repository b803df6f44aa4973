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
from typing import Any

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
        help="sdmf, mdmf, etsi, vmwi-on, vmwi-off, dtmf (with --country for the variant)",
    )
    p.add_argument("--number", default="")
    p.add_argument("--name", default="")
    p.add_argument("--date", default=None, help="MMDDhhmm (default: none)")
    p.add_argument("--absence", choices=["private", "unavailable"], default=None)
    p.add_argument("--redirecting", default=None, help="redirecting number (MDMF/ETSI)")
    p.add_argument("--standard", choices=["bell202", "v23"], default=None)
    p.add_argument("--country", default=None, help="use the country's caller ID settings")
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


CID_FORMATS = ("sdmf", "mdmf", "etsi", "vmwi-on", "vmwi-off", "dtmf")


def _callerid_message(cid: Any, args: argparse.Namespace, standard: str) -> Any:
    """The message object for ``--format`` from the agreed firmware.dsp.callerid model."""
    date = None
    if args.date is not None:
        text = args.date
        if len(text) != 8 or not text.isdigit():
            raise CliError(f"--date {text!r} must be MMDDhhmm (8 digits)")
        date = cid.DateTime(int(text[:2]), int(text[2:4]), int(text[4:6]), int(text[6:]))
    absence = None if args.absence is None else cid.Absence[args.absence.upper()]
    fmt = args.format
    if fmt == "sdmf":
        if date is None:
            raise CliError("SDMF needs --date MMDDhhmm")
        if absence is None and not args.number:
            raise CliError("SDMF needs --number or --absence")
        return cid.SdmfCallerId(date, args.number or None, absence)
    if fmt in ("mdmf", "etsi"):
        return cid.CallSetup(
            date_time=date,
            number=args.number or None,
            number_absence=absence if not args.number else None,
            name=args.name or None,
            name_absence=absence if not args.name and absence is not None else None,
            redirecting_number=args.redirecting,
        )
    active = fmt == "vmwi-on"
    if standard == "bell202" and args.date is None and not args.number:
        return cid.SdmfVmwi(active)
    return cid.MessageWaiting(active, date_time=date, number=args.number or None)


def _callerid(args: argparse.Namespace) -> int:
    cid = _optional("firmware.dsp.callerid")
    if cid is None:
        raise CliError("caller ID generation is not in this build (firmware.dsp.callerid missing)")
    _check_rate(args.rate)
    if args.format not in CID_FORMATS:
        raise CliError(f"--format {args.format!r}: use one of {', '.join(CID_FORMATS)}")
    country = None
    if args.country is not None:
        from firmware.dsp.profiles import get_profile

        country = get_profile(args.country).callerid
    if args.format == "dtmf":
        return _dtmf_callerid(args, country)
    standard = (
        args.standard
        or (country.standard if country is not None and country.fsk else None)
        or ("v23" if args.format == "etsi" else "bell202")
    )
    msg = _callerid_message(cid, args, standard)
    pcm = cid.modulate_message(
        msg,
        standard=standard,
        level_dbm0=args.level,
        call_waiting=args.call_waiting,
        rate=args.rate,
    )
    what = f"caller ID {args.format} ({standard}{', type II' if args.call_waiting else ''})"
    if args.call_waiting:
        type2 = _optional("firmware.dsp.callerid.type2")
        if type2 is not None and hasattr(type2, "cas_tone"):
            import numpy as np

            gap = np.zeros(round(args.rate * CAS_TO_FSK_MS / 1000), dtype=np.int16)
            pcm = np.concatenate([type2.cas_tone(rate=args.rate), gap, pcm])
            what += " after the CPE alerting signal"
    return _write(args.output, pcm, args.rate, what)


CAS_TO_FSK_MS = 160  # GR-30-CORE: ACK 55..160 ms after CAS, FSK 50..500 ms after the ACK


def _dtmf_callerid(args: argparse.Namespace, country: Any) -> int:
    clip = _optional("firmware.dsp.callerid.dtmf_clip")
    if clip is None:
        raise CliError(
            "DTMF caller ID is not in this build (firmware.dsp.callerid.dtmf_clip missing)"
        )
    variant = country.dtmf_format if country is not None and country.dtmf_format else "A...C"
    pcm = clip.generate_dtmf_clip(args.number, variant=variant, rate=args.rate)
    return _write(args.output, pcm, args.rate, f"DTMF caller ID {variant} {args.number!r}")


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

    cid = _optional("firmware.dsp.callerid")
    if cid is None:
        report["missing"].append("callerid")
        report["callerid"] = None
    else:
        report["callerid"] = _decode_callerid(cid, pcm, args.callerid, profile)

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


def _decode_callerid(cid: Any, pcm: Any, choice: str, profile: Any) -> list[dict[str, Any]]:
    """Every FSK caller ID message with its time, fields and checksum verdict."""
    from firmware.dsp.pcm import FRAME_SAMPLES, SAMPLE_RATE

    if choice != "auto":
        standards = [choice]
    elif profile.callerid.fsk:
        other = "v23" if profile.callerid.standard == "bell202" else "bell202"
        standards = [profile.callerid.standard, other]
    else:
        standards = ["bell202", "v23"]
    found: list[dict[str, Any]] = []
    for standard in standards:
        demod = cid.FskDemodulator(standard, SAMPLE_RATE)
        for start in range(0, len(pcm), FRAME_SAMPLES):
            out = demod.feed(pcm[start : start + FRAME_SAMPLES])
            at_ms = (start + FRAME_SAMPLES) * 1000 / SAMPLE_RATE
            found += [_cid_record(cid, standard, at_ms, m) for m in out]
        found += [
            _cid_record(cid, standard, len(pcm) * 1000 / SAMPLE_RATE, m) for m in demod.flush()
        ]
    # Either demodulator reads the other standard's bursts (1200/2200 vs 1300/2100 Hz):
    # keep one record per burst and name the standard by the tones actually present.
    unique: list[dict[str, Any]] = []
    for record in sorted(found, key=lambda r: r["at_ms"]):
        if any(
            r["data"] == record["data"] and abs(r["at_ms"] - record["at_ms"]) < 200 for r in unique
        ):
            continue
        record["standard"] = _fsk_standard(pcm, record["at_ms"]) or record["standard"]
        unique.append(record)
    return unique


def _fsk_standard(pcm: Any, at_ms: float) -> str | None:
    """bell202 or v23, by the mark/space tones in the 300 ms before ``at_ms``."""
    import numpy as np

    from firmware.dsp.pcm import SAMPLE_RATE

    end = min(round(at_ms * SAMPLE_RATE / 1000), len(pcm))
    x = np.asarray(pcm[max(end - 3 * SAMPLE_RATE // 10, 0) : end], dtype=np.float64)
    if x.size < SAMPLE_RATE // 50:
        return None
    t = np.arange(x.size) / SAMPLE_RATE

    def power(f: float) -> float:
        return float(abs(np.dot(x, np.exp(-2j * np.pi * f * t))) ** 2)

    bell = power(1200.0) + power(2200.0)
    v23 = power(1300.0) + power(2100.0)
    return "bell202" if bell > v23 else "v23"


def _cid_record(cid: Any, standard: str, at_ms: float, item: Any) -> dict[str, Any]:
    if isinstance(item, cid.CallerIdError):
        return {
            "at_ms": at_ms,
            "standard": standard,
            "checksum": "bad" if isinstance(item, cid.ChecksumError) else "n/a",
            "error": type(item).__name__,
            "reason": item.reason,
            "data": item.data.hex(),
        }
    return {
        "at_ms": at_ms,
        "standard": standard,
        "checksum": "ok",
        "message": _jsonable(item),
        "data": cid.encode_message(item).hex(),
    }


def _describe_cid(record: dict[str, Any]) -> str:
    head = f"{record['at_ms'] / 1000:8.3f} s  {record['standard']:<7}"
    if "error" in record:
        return f"{head} {record['error']}: {record['reason']} (checksum {record['checksum']})"
    msg = dict(record["message"])
    kind = msg.pop("type")
    parts = [f"{k}={_short(v)}" for k, v in msg.items() if v not in (None, [], ()) and k != "extra"]
    return f"{head} {kind} {' '.join(parts)} (checksum ok)"


def _short(value: Any) -> str:
    if isinstance(value, dict) and value.get("type") == "DateTime":
        return f"{value['month']:02d}-{value['day']:02d}T{value['hour']:02d}:{value['minute']:02d}"
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
