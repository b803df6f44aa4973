"""Country profiles: tone plans, ring cadences, caller ID, hook-flash and pulse windows.

The data lives in ``firmware/dsp/data/profiles.toml`` (one table per country, each citing
its sources) and is validated when first loaded: a bad entry raises :class:`ProfileError`
naming the country, the field and what is wrong with it.  Profiles are immutable.

    >>> from firmware.dsp.profiles import get_profile
    >>> get_profile("GB").tones["busy"].cadence
    Cadence(on_off_ms=(375.0, 375.0))
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar

from firmware.dsp.tones import Cadence, ToneError, ToneSpec

DATA_PACKAGE: Final = "firmware.dsp.data"
DATA_FILE: Final = "profiles.toml"
SCHEMA: Final = 1
DEFAULT_CODE: Final = "ITU"
# Every profile in the data file (a test checks the two agree).
COUNTRY_CODES: Final = (
    "AT", "AU", "BE", "BR", "CA", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "IE",
    "IN", "IT", "ITU", "JP", "NL", "NO", "NZ", "PL", "PT", "SE", "US", "ZA",
)  # fmt: skip

REQUIRED_TONES: Final = (
    "dial",
    "stutter_dial",
    "ringback",
    "busy",
    "congestion",
    "call_waiting",
    "confirmation",
    "sit",
)
MAX_RING_MS: Final = 10_000  # no national ring element is anywhere near this
MAX_INHERIT_DEPTH: Final = 4

CidStandard = Literal["bell202", "v23", "dtmf"]
CidProtocol = Literal["telcordia", "etsi", "bt", "ntt", "dtmf"]
CidAlerting = Literal["ring", "pr_dtas", "dtas", "rpas", "pr", "ntt_car"]
PulseMapping = Literal["standard", "sweden", "new_zealand"]
# Caller ID on call waiting (type II): "bell" CAS (SR-TSV-002476), "etsi" DT-AS
# (EN 300 659-2), "none", or "auto": Bell on Telcordia lines, ETSI on ETSI and BT lines,
# none where caller ID is DTMF or NTT (those networks define no off-hook form).
CidCallWaiting = Literal["auto", "bell", "etsi", "none"]
CID_CALL_WAITING: Final = frozenset({"auto", "bell", "etsi", "none"})
CID_STANDARDS: Final = frozenset({"bell202", "v23", "dtmf"})
CID_PROTOCOLS: Final = frozenset({"telcordia", "etsi", "bt", "ntt", "dtmf"})
CID_ALERTINGS: Final = frozenset({"ring", "pr_dtas", "dtas", "rpas", "pr", "ntt_car"})
DTMF_CID_FORMATS: Final = frozenset({"A...C", "D...C", "A...#", "D...#", "...#"})
PULSE_MAPPINGS: Final = frozenset({"standard", "sweden", "new_zealand"})


class ProfileError(ValueError):
    """The profile data is wrong (names the country and field), or no such country."""


@dataclass(frozen=True, slots=True)
class CallerIdSpec:
    """How a country sends on-hook caller ID (the FXS side generates it this way)."""

    standard: CidStandard
    protocol: CidProtocol
    alerting: CidAlerting
    data_delay_ms: tuple[int, int]  # first bit/digit after the alerting event: min, max
    data_to_ring_ms: int  # least silence between the end of data and the (next) ring
    seizure_bits: int
    mark_bits: int
    dtmf_format: str | None = None  # start...end digits of DTMF caller ID
    pr_to_alert_ms: int | None = None  # polarity reversal to DT-AS
    alert_ms: int | None = None  # DT-AS tone or RP-AS ring pulse length
    call_waiting: CidCallWaiting = "auto"  # type II caller ID (see CID_CALL_WAITING)

    def __post_init__(self) -> None:
        if self.call_waiting not in CID_CALL_WAITING:
            raise ProfileError(
                f"call_waiting {self.call_waiting!r} not one of {sorted(CID_CALL_WAITING)}"
            )
        if self.standard not in CID_STANDARDS:
            raise ProfileError(f"standard {self.standard!r} not one of {sorted(CID_STANDARDS)}")
        if self.protocol not in CID_PROTOCOLS:
            raise ProfileError(f"protocol {self.protocol!r} not one of {sorted(CID_PROTOCOLS)}")
        if self.alerting not in CID_ALERTINGS:
            raise ProfileError(f"alerting {self.alerting!r} not one of {sorted(CID_ALERTINGS)}")
        lo, hi = self.data_delay_ms
        if not 0 <= lo <= hi <= 10_000:
            raise ProfileError(f"data_delay_ms {self.data_delay_ms} is not 0 <= min <= max")
        if (self.standard == "dtmf") != (self.dtmf_format is not None):
            raise ProfileError("dtmf_format is required for, and only for, DTMF caller ID")
        if self.dtmf_format is not None and self.dtmf_format not in DTMF_CID_FORMATS:
            raise ProfileError(
                f"dtmf_format {self.dtmf_format!r} not one of {sorted(DTMF_CID_FORMATS)}"
            )
        if self.alerting in ("pr_dtas", "dtas", "rpas") and self.alert_ms is None:
            raise ProfileError(f"alerting {self.alerting!r} needs alert_ms")
        for name in ("data_to_ring_ms", "seizure_bits", "mark_bits"):
            if getattr(self, name) < 0:
                raise ProfileError(f"{name} must not be negative")

    @property
    def fsk(self) -> bool:
        return self.standard != "dtmf"

    @property
    def before_ring(self) -> bool:
        """Data goes out before ringing starts (otherwise between first and second ring)."""
        return self.alerting != "ring"

    @property
    def call_waiting_alert(self) -> Literal["bell", "etsi"] | None:
        """The alerting signal of type II caller ID on such a line; None: no type II."""
        if self.call_waiting == "bell" or self.call_waiting == "etsi":
            return self.call_waiting
        if self.call_waiting == "none" or self.protocol in ("dtmf", "ntt"):
            return None
        return "bell" if self.protocol == "telcordia" else "etsi"


@dataclass(frozen=True, slots=True)
class FlashSpec:
    """Hook flash (register recall): what the FXS accepts, what the FXO sends."""

    min_ms: int
    max_ms: int
    send_ms: int

    def __post_init__(self) -> None:
        if not 0 < self.min_ms <= self.send_ms <= self.max_ms <= 3000:
            raise ProfileError(
                f"flash needs 0 < min_ms <= send_ms <= max_ms <= 3000, got "
                f"{self.min_ms}/{self.send_ms}/{self.max_ms}"
            )

    def accepts(self, on_hook_ms: float) -> bool:
        return self.min_ms <= on_hook_ms <= self.max_ms


@dataclass(frozen=True, slots=True)
class PulseSpec:
    """Dial-pulse receive windows and the digit <-> pulse-count mapping."""

    mapping: PulseMapping
    break_min_ms: int
    break_max_ms: int
    make_min_ms: int
    make_max_ms: int
    interdigit_min_ms: int

    def __post_init__(self) -> None:
        if self.mapping not in PULSE_MAPPINGS:
            raise ProfileError(
                f"pulse mapping {self.mapping!r} not one of {sorted(PULSE_MAPPINGS)}"
            )
        if not 0 < self.break_min_ms < self.break_max_ms:
            raise ProfileError(f"break window {self.break_min_ms}..{self.break_max_ms} ms")
        if not 0 < self.make_min_ms < self.make_max_ms:
            raise ProfileError(f"make window {self.make_min_ms}..{self.make_max_ms} ms")
        if self.interdigit_min_ms <= self.make_max_ms:
            raise ProfileError("interdigit_min_ms must exceed make_max_ms")

    def pulses_for_digit(self, digit: str) -> int:
        if len(digit) != 1 or not digit.isdigit():
            raise ValueError(f"dial pulses carry digits 0-9 only, got {digit!r}")
        d = int(digit)
        if self.mapping == "sweden":  # Sweden: 0 = 1 pulse ... 9 = 10 pulses
            return d + 1
        if self.mapping == "new_zealand":  # New Zealand: 0 = 10, 1 = 9 ... 9 = 1
            return 10 - d
        return d if d else 10

    def digit_for_pulses(self, pulses: int) -> str:
        if not 1 <= pulses <= 10:
            raise ValueError(f"{pulses} pulses is not a digit (1..10)")
        if self.mapping == "sweden":
            return str(pulses - 1)
        if self.mapping == "new_zealand":
            return str(10 - pulses)
        return str(pulses % 10)


@dataclass(frozen=True, slots=True)
class CountryProfile:
    code: str
    name: str
    language: str  # BCP 47 tag, for spoken prompts
    impedance: str  # "600R", "270R+750R||150nF" (TBR 21), ...
    tones: Mapping[str, ToneSpec]
    rings: Mapping[str, Cadence]
    callerid: CallerIdSpec
    flash: FlashSpec
    pulse: PulseSpec
    source: tuple[str, ...]
    notes: str = ""

    @property
    def flash_min_ms(self) -> int:
        return self.flash.min_ms

    @property
    def flash_max_ms(self) -> int:
        return self.flash.max_ms

    @property
    def ring(self) -> Cadence:
        return self.rings["normal"]

    def tone(self, name: str) -> ToneSpec:
        try:
            return self.tones[name]
        except KeyError:
            raise ProfileError(
                f"{self.code} has no tone {name!r}; it has {', '.join(sorted(self.tones))}"
            ) from None


# --- loading --------------------------------------------------------------------------


MERGED_TABLES: Final = ("tones", "rings")  # a child adds to these; other tables replace


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: tones and rings by entry, everything else whole (a
    country's caller ID table must not inherit timings of another signalling method)."""
    out = dict(base)
    for key, value in over.items():
        if key in MERGED_TABLES and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


class _Fields:
    """Typed access to one TOML table that names the path in every error."""

    def __init__(self, table: object, path: str) -> None:
        if not isinstance(table, dict):
            raise ProfileError(f"{path}: expected a table, got {type(table).__name__}")
        self.table: dict[str, Any] = table
        self.path = path
        self.used: set[str] = set()

    def _get(self, key: str, default: object = ...) -> object:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise ProfileError(f"{self.path}.{key}: missing")
            return default
        return self.table[key]

    def text(self, key: str, default: str | None = None) -> str:
        value = self._get(key, ... if default is None else default)
        if not isinstance(value, str) or not value:
            raise ProfileError(f"{self.path}.{key}: expected a non-empty string, got {value!r}")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self._get(key, None)
        if value is not None and not isinstance(value, str):
            raise ProfileError(f"{self.path}.{key}: expected a string, got {value!r}")
        return value

    def integer(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProfileError(f"{self.path}.{key}: expected an integer, got {value!r}")
        return value

    def opt_integer(self, key: str) -> int | None:
        value = self._get(key, None)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProfileError(f"{self.path}.{key}: expected an integer, got {value!r}")
        return value

    def number(self, key: str) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProfileError(f"{self.path}.{key}: expected a number, got {value!r}")
        return float(value)

    def int_list(self, key: str, length: int | None = None) -> list[int]:
        value = self._get(key)
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ProfileError(f"{self.path}.{key}: expected a list of integers, got {value!r}")
        if length is not None and len(value) != length:
            raise ProfileError(f"{self.path}.{key}: expected {length} values, got {len(value)}")
        return value

    def sub(self, key: str) -> _Fields:
        return _Fields(self._get(key), f"{self.path}.{key}")

    def done(self) -> None:
        unknown = set(self.table) - self.used
        if unknown:
            raise ProfileError(f"{self.path}: unknown field(s) {', '.join(sorted(unknown))}")


_T = TypeVar("_T")


def _build(path: str, cls: Callable[..., _T], **kwargs: Any) -> _T:
    """Construct a validated spec, prefixing its complaint with the data path."""
    try:
        return cls(**kwargs)
    except ProfileError as exc:
        raise ProfileError(f"{path}: {exc}") from None


def _tone(code: str, name: str, table: object) -> ToneSpec:
    f = _Fields(table, f"{code}.tones.{name}")
    plan = f.text("plan")
    level = f.number("level")
    f.done()
    try:
        return ToneSpec.parse(plan, level, name)
    except ToneError as exc:
        raise ProfileError(f"{f.path}: {exc}") from None


def _profile(code: str, raw: dict[str, Any], own_sources: object) -> CountryProfile:
    f = _Fields(raw, code)
    f.used.add("inherit")
    if not isinstance(own_sources, list) or not own_sources:
        raise ProfileError(f"{code}.sources: every country must cite its own sources")
    if not all(isinstance(s, str) and s for s in own_sources):
        raise ProfileError(f"{code}.sources: expected a list of non-empty strings")
    f.used.add("sources")

    tones_f = f.sub("tones")
    tones = {name: _tone(code, name, tones_f._get(name)) for name in list(tones_f.table)}
    missing = [t for t in REQUIRED_TONES if t not in tones]
    if missing:
        raise ProfileError(f"{code}.tones: missing {', '.join(missing)}")

    rings_f = f.sub("rings")
    rings: dict[str, Cadence] = {}
    for name in list(rings_f.table):
        values = rings_f.int_list(name)
        if any(not 0 < v <= MAX_RING_MS for v in values):
            raise ProfileError(f"{code}.rings.{name}: durations must be in 1..{MAX_RING_MS} ms")
        try:
            rings[name] = Cadence(tuple(float(v) for v in values))
        except ToneError as exc:
            raise ProfileError(f"{code}.rings.{name}: {exc}") from None
    if "normal" not in rings:
        raise ProfileError(f"{code}.rings.normal: missing")

    c = f.sub("callerid")
    lo, hi = c.int_list("data_delay_ms", 2)
    callerid = _build(
        c.path,
        CallerIdSpec,
        standard=c.text("standard"),
        protocol=c.text("protocol"),
        alerting=c.text("alerting"),
        data_delay_ms=(lo, hi),
        data_to_ring_ms=c.integer("data_to_ring_ms"),
        seizure_bits=c.integer("seizure_bits"),
        mark_bits=c.integer("mark_bits"),
        dtmf_format=c.opt_text("dtmf_format"),
        pr_to_alert_ms=c.opt_integer("pr_to_alert_ms"),
        alert_ms=c.opt_integer("alert_ms"),
        call_waiting=c.opt_text("call_waiting") or "auto",
    )
    c.done()

    fl = f.sub("flash")
    flash = _build(
        fl.path,
        FlashSpec,
        min_ms=fl.integer("min_ms"),
        max_ms=fl.integer("max_ms"),
        send_ms=fl.integer("send_ms"),
    )
    fl.done()

    p = f.sub("pulse")
    pulse = _build(
        p.path,
        PulseSpec,
        mapping=p.text("mapping"),
        break_min_ms=p.integer("break_min_ms"),
        break_max_ms=p.integer("break_max_ms"),
        make_min_ms=p.integer("make_min_ms"),
        make_max_ms=p.integer("make_max_ms"),
        interdigit_min_ms=p.integer("interdigit_min_ms"),
    )
    p.done()

    profile = CountryProfile(
        code=code,
        name=f.text("name"),
        language=f.text("language"),
        impedance=f.text("impedance"),
        tones=MappingProxyType(tones),
        rings=MappingProxyType(rings),
        callerid=callerid,
        flash=flash,
        pulse=pulse,
        source=tuple(own_sources),
        notes=f.opt_text("notes") or "",
    )
    f.done()
    return profile


def parse_profiles(text: str, origin: str = DATA_FILE) -> dict[str, CountryProfile]:
    """Validate a whole profile document; errors name ``origin``, the country and field."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{origin}: not valid TOML: {exc}") from None
    try:
        if doc.get("schema") != SCHEMA:
            raise ProfileError(f"schema {doc.get('schema')!r}, this code reads {SCHEMA}")
        raw = {k: v for k, v in doc.items() if k != "schema"}
        if DEFAULT_CODE not in raw:
            raise ProfileError(f"no {DEFAULT_CODE} default profile")
        profiles = {}
        for code, table in raw.items():
            if not (code.isalpha() and code.isupper() and len(code) in (2, 3)):
                raise ProfileError(f"{code!r} is not an ISO 3166 alpha-2 code (or ITU)")
            if not isinstance(table, dict):
                raise ProfileError(f"{code}: expected a table")
            resolved = table
            parent = table.get("inherit")
            depth = 0
            while parent is not None:
                depth += 1
                if depth > MAX_INHERIT_DEPTH or parent not in raw:
                    raise ProfileError(f"{code}.inherit: {parent!r} is unknown or a loop")
                base = raw[parent]
                resolved = _merge({k: v for k, v in base.items() if k != "inherit"}, resolved)
                parent = base.get("inherit")
            profiles[code] = _profile(code, resolved, table.get("sources"))
        return profiles
    except ProfileError as exc:
        raise ProfileError(f"{origin}: {exc}") from None


@functools.cache
def _all() -> Mapping[str, CountryProfile]:
    text = resources.files(DATA_PACKAGE).joinpath(DATA_FILE).read_text(encoding="utf-8")
    return MappingProxyType(parse_profiles(text, f"{DATA_PACKAGE}/{DATA_FILE}"))


def get_profile(code: str) -> CountryProfile:
    """The profile for an ISO 3166 country code (case-insensitive) or ``ITU``."""
    profiles = _all()
    key = code.strip().upper()
    if key == "UK":  # the usual mistake; ISO says GB
        key = "GB"
    try:
        return profiles[key]
    except KeyError:
        raise ProfileError(
            f"no profile for country {code!r}; known: {', '.join(sorted(profiles))}"
        ) from None


def all_profiles() -> Mapping[str, CountryProfile]:
    return _all()
