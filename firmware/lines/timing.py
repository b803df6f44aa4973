"""Timing windows of analogue lines, per country.

All durations are integer milliseconds so that the edges of every window are exact (a break of
exactly ``flash_max_ms`` is a flash, one millisecond more is a hang-up).

Sources.  The numbers below are the values these documents are commonly quoted with; where a
document gives a range we took it as is, where the value is our engineering choice the comment
says so.  Check them against the national annex before a certification run.

- Telcordia GR-506-CORE (LSSGR: signalling for analogue interfaces): switch-hook flash
  300..1100 ms, dial pulse 8..11 pulses/s at 58..64 % break.
- Telcordia GR-30-CORE (voiceband data transmission, on-hook caller ID): data starts no
  sooner than 500 ms after the end of the first ring.
- ETSI ES 201 187 (loop-disconnect dialling): 10 +/- 1 pulses/s.
- ETSI ES 201 970 and ETSI EG 201 121 (national variations of analogue access): register
  recall ("timed break recall", the European hook flash) and pulse break ratios per country.
- ETSI EN 300 659-1 (caller ID on-hook data transmission): data before the first ring (with a
  line reversal or alerting signal) or between the first and second ring.
- BT SIN 227 (UK caller display) and SIN 351 (UK analogue line interface).
- ITU-T E.180 Supplement 2 (tones and ringing cadences used in national networks).
- ITU-T Q.23 / Q.24 (DTMF): digits are detected by firmware.dsp; this module only receives them.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from firmware.lines.errors import InvalidValue

if TYPE_CHECKING:
    # Only for the annotation: lines must not need the DSP loaded to run.
    from firmware.dsp.profiles import CountryProfile

# --- limits that keep every profile sane ----------------------------------------------------

MAX_CADENCE_STEPS = 4  # on/off pairs: the line-card protocol carries four, no national plan
#                        needs more (ITU-T E.180 Suppl. 2)
CADENCE_STEP_MIN_MS = 50  # shorter bursts are not ringing a bell can follow (engineering choice)
CADENCE_STEP_MAX_MS = 10_000  # E.180 Suppl. 2 lists no ringing step longer than 6 s
TIMEOUT_MAX_MS = 600_000  # any timeout beyond 10 min is a typo in a profile

# --- pulse dialling -------------------------------------------------------------------------

PULSE_RATE_US_PPS = (8.0, 12.0)  # GR-506-CORE gives 8..11 pps; 12 accepted for fast dials
PULSE_BREAK_US = (0.58, 0.64)  # GR-506-CORE: 58..64 % break
PULSE_RATE_ETSI_PPS = (9.0, 11.0)  # ETSI ES 201 187: 10 +/- 1 pps
PULSE_BREAK_DE = (0.58, 0.64)  # ETSI EG 201 121, DE: 60 % nominal break (1.5:1)
PULSE_BREAK_GB = (0.63, 0.70)  # BT SIN 351: 66.7 % nominal break (2:1)
PULSE_BREAK_FR = (0.63, 0.70)  # ETSI EG 201 121, FR: 66.7 % nominal break (2:1)
PULSE_JITTER_MS = 5  # card timestamp resolution and contact bounce (engineering choice)
INTERDIGIT_PAUSE_MIN_MS = 100  # a make this long ends a digit; every plan requires >= 200 ms
#                                between digits (ES 201 187, GR-506), so half is a safe margin

# --- hook flash (register recall) -------------------------------------------------------------

FLASH_US_MS = (300, 1100)  # Telcordia GR-506-CORE switch-hook flash
FLASH_DE_MS = (80, 130)  # ETSI EG 201 121, DE: timed break recall 80..130 ms (nominal 90)
FLASH_GB_MS = (90, 130)  # BT SIN 351: timed break recall, nominal 100 ms; the minimum is
#                          our choice, above the longest GB pulse break (83 ms with jitter)
FLASH_FR_MS = (220, 320)  # ETSI EG 201 121, FR: "flashing" 270 ms nominal

# --- supervision of an off-hook line (engineering choices, typical of class-5 switches) -----

FIRST_DIGIT_TIMEOUT_MS = 10_000  # dial tone without a digit before permanent-signal treatment
PARTIAL_DIAL_TIMEOUT_MS = 20_000  # silence between digits before permanent-signal treatment
BUSY_TONE_TIMEOUT_MS = 30_000  # busy/congestion before the howler
HOWLER_TIMEOUT_MS = 60_000  # howler before the line is parked silent (lockout)

# --- ringing and caller ID (FXS side) --------------------------------------------------------

RING_US = (2000, 4000)  # ITU-T E.180 Suppl. 2, United States
RING_GB = (400, 200, 400, 2000)  # ITU-T E.180 Suppl. 2, United Kingdom (double ring)
RING_DE = (1000, 4000)  # ITU-T E.180 Suppl. 2, Germany
RING_FR = (1500, 3500)  # ITU-T E.180 Suppl. 2, France
CID_AFTER_RING_DELAY_MS = 500  # GR-30-CORE: first data bit >= 500 ms after the first ring
CID_PRE_RING_TIMEOUT_MS = 4_500  # wait at most this for the DSP to finish sending before the
#                                  first ring: EN 300 659-1 FSK lasts < 2 s, but DTMF caller ID
#                                  of a 20-digit number takes 3.1 s (22 digits of 70 + 70 ms)
#                                  plus reversal, delay and data-to-ring (engineering margin)

# --- FXO side -------------------------------------------------------------------------------

RING_BURST_MIN_MS = 150  # shorter ringing voltage is a line-test transient (engineering choice)
RING_BURST_MARGIN_MS = 1_000  # a burst this much longer than the cadence's is a fault, not a ring
RING_SILENCE_MARGIN_MS = 2_000  # silence beyond the longest cadence pause + this = caller gone
LOOP_DROP_US_MS = 350  # calling-party control open interval recognised as disconnect (GR-506)
NORTH_AMERICAN = frozenset({"US", "CA"})  # GR-506-CORE supervision applies
LOOP_DROP_ETSI_MS = 250  # ETSI ES 201 970: loop interruption treated as clear-back
RELEASE_GUARD_MS = 1_000  # stay on-hook this long after release before seizing again (ES 203 021)
SEIZE_LOOP_TIMEOUT_MS = 1_000  # loop current must appear this soon after seizing
PRE_RING_CID_WINDOW_MS = 6_000  # caller ID after a line reversal, before the first ring
#                                (EN 300 659-1: ring follows the data within a few seconds)


PULSE_MAPPINGS = ("standard", "sweden", "new_zealand")  # ETSI EG 201 121 national variants


def digit_for_pulses(pulses: int, mapping: str = "standard") -> str:
    """The digit a train of 1..10 pulses dials.

    Standard: n pulses dial n, ten dial 0.  Sweden: n pulses dial n - 1.  New Zealand:
    n pulses dial 10 - n.  (ETSI EG 201 121 national variations.)
    """
    if not 1 <= pulses <= 10:
        raise InvalidValue(f"{pulses} pulses do not dial a digit (1..10)")
    if mapping == "sweden":
        return str(pulses - 1)
    if mapping == "new_zealand":
        return str(10 - pulses)
    return str(pulses % 10)


class CallerIdMode(enum.Enum):
    """When on-hook caller ID is sent relative to ringing."""

    NONE = "none"
    AFTER_FIRST_RING = "after-first-ring"  # GR-30-CORE; also DE (EN 300 659-1 "during ringing")
    BEFORE_FIRST_RING = "before-first-ring"  # EN 300 659-1 / BT SIN 227 prior-to-ringing


@dataclass(frozen=True, slots=True)
class RingCadence:
    """A ringing cadence: alternating on and off durations in ms, starting with on."""

    pattern: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, tuple):
            raise InvalidValue(f"ring cadence must be a tuple of ms, got {self.pattern!r}")
        n = len(self.pattern)
        if n == 0 or n % 2 or n > 2 * MAX_CADENCE_STEPS:
            raise InvalidValue(
                f"ring cadence needs 1..{MAX_CADENCE_STEPS} on/off pairs, got {n} values"
            )
        for i, ms in enumerate(self.pattern):
            if isinstance(ms, bool) or not isinstance(ms, int):
                raise InvalidValue(f"ring cadence step {i} must be an int of ms, got {ms!r}")
            if not CADENCE_STEP_MIN_MS <= ms <= CADENCE_STEP_MAX_MS:
                raise InvalidValue(
                    f"ring cadence step {i} is {ms} ms, outside "
                    f"{CADENCE_STEP_MIN_MS}..{CADENCE_STEP_MAX_MS} ms"
                )

    @property
    def first_on_ms(self) -> int:
        return self.pattern[0]

    @property
    def first_ring_ms(self) -> int:
        """The ringing part of the first cycle: a double ring (UK, AU) counts as one ring."""
        return self.period_ms - self.pattern[-1]

    @property
    def period_ms(self) -> int:
        return sum(self.pattern)

    @property
    def longest_off_ms(self) -> int:
        return max(self.pattern[1::2])


def pulse_windows(
    rate_pps: tuple[float, float], break_ratio: tuple[float, float], jitter_ms: int
) -> tuple[int, int, int, int]:
    """Break and make windows ``(break_min, break_max, make_min, make_max)`` in ms.

    Derived from the rate and break-ratio ranges a specification gives, widened by
    ``jitter_ms`` on each side for timestamp resolution and contact bounce.
    """
    slow, fast = 1000.0 / rate_pps[0], 1000.0 / rate_pps[1]
    break_min = math.floor(fast * break_ratio[0]) - jitter_ms
    break_max = math.ceil(slow * break_ratio[1]) + jitter_ms
    make_min = math.floor(fast * (1.0 - break_ratio[1])) - jitter_ms
    make_max = math.ceil(slow * (1.0 - break_ratio[0])) + jitter_ms
    return max(1, break_min), break_max, max(1, make_min), make_max


@dataclass(frozen=True, slots=True)
class LineTiming:
    """Every timing window the FXS and FXO machines use, for one country."""

    country: str
    # FXS: hook flash and hang-up.  A break inside [flash_min, flash_max] is a flash; a break
    # longer than flash_max is a hang-up; a shorter one is a hit (or a dial pulse).
    flash_min_ms: int
    flash_max_ms: int
    # FXS: loop-disconnect (pulse) dialling.
    pulse_break_min_ms: int
    pulse_break_max_ms: int
    pulse_make_min_ms: int
    pulse_make_max_ms: int
    interdigit_pause_min_ms: int
    # FXS: supervision of an off-hook line.
    first_digit_timeout_ms: int
    partial_dial_timeout_ms: int
    busy_tone_timeout_ms: int
    howler_timeout_ms: int
    # FXS: ringing and on-hook caller ID.
    ring_cadence: RingCadence
    caller_id_mode: CallerIdMode
    caller_id_delay_ms: int
    caller_id_pre_ring_timeout_ms: int
    # FXO: ring detection and caller ID window.
    ring_burst_min_ms: int
    ring_burst_max_ms: int
    ring_silence_max_ms: int
    pre_ring_cid_window_ms: int
    # FXO: seizure and disconnect supervision.
    seize_loop_timeout_ms: int
    release_guard_ms: int
    loop_drop_min_ms: int
    disconnect_on_polarity_reversal: bool
    disconnect_on_loop_drop: bool
    disconnect_on_busy_tone: bool
    # FXS: which digit a number of pulses dials (ten pulses are 0, except in SE and NZ).
    pulse_mapping: str = "standard"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_ms"):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise InvalidValue(f"LineTiming.{f.name} must be an int of ms, got {value!r}")
                if not 1 <= value <= TIMEOUT_MAX_MS:
                    raise InvalidValue(
                        f"LineTiming.{f.name} is {value} ms, outside 1..{TIMEOUT_MAX_MS} ms"
                    )
            elif f.name.startswith("disconnect_on_") and not isinstance(value, bool):
                raise InvalidValue(f"LineTiming.{f.name} must be a bool, got {value!r}")
        if not isinstance(self.country, str) or not self.country:
            raise InvalidValue(f"LineTiming.country must be a non-empty str: {self.country!r}")
        if not isinstance(self.ring_cadence, RingCadence):
            raise InvalidValue(
                f"LineTiming.ring_cadence must be a RingCadence, got {self.ring_cadence!r}"
            )
        if not isinstance(self.caller_id_mode, CallerIdMode):
            raise InvalidValue(
                f"LineTiming.caller_id_mode must be a CallerIdMode, got {self.caller_id_mode!r}"
            )
        if self.pulse_mapping not in PULSE_MAPPINGS:
            raise InvalidValue(
                f"LineTiming.pulse_mapping must be one of {', '.join(PULSE_MAPPINGS)}, "
                f"got {self.pulse_mapping!r}"
            )
        self._check_order("flash_min_ms", "flash_max_ms")
        self._check_order("pulse_break_min_ms", "pulse_break_max_ms")
        self._check_order("pulse_make_min_ms", "pulse_make_max_ms")
        # A pulse break must not already be a hang-up.  (It may overlap the flash window, as
        # in most European plans: while dialling, a break in the pulse window is a pulse.)
        self._check_order("pulse_break_max_ms", "flash_max_ms", strict=True)
        # A make that ends a digit must be longer than any make inside a digit.
        self._check_order("pulse_make_max_ms", "interdigit_pause_min_ms", strict=True)
        self._check_order("ring_burst_min_ms", "ring_burst_max_ms")
        if self.caller_id_mode is CallerIdMode.AFTER_FIRST_RING:
            # The data must fit between the first and the second ring.
            if self.caller_id_delay_ms >= self.ring_cadence.pattern[-1]:
                raise InvalidValue(
                    f"LineTiming.caller_id_delay_ms ({self.caller_id_delay_ms}) must be shorter "
                    f"than the pause after the first ring ({self.ring_cadence.pattern[-1]} ms)"
                )

    @classmethod
    def from_profile(cls, profile: CountryProfile, **changes: Any) -> LineTiming:
        """The timing of a firmware.dsp country profile.

        Flash and pulse windows, the pulse mapping, the normal ring cadence and where caller
        ID goes come from the profile.  Supervision timeouts and the FXO side (ring
        recognition, loop-drop and polarity disconnect) come from this module: the North
        American values for US and CA, the ETSI ones elsewhere.  ``changes`` override fields.
        An inconsistent result raises :class:`InvalidValue` naming the country.
        """
        code = profile.code
        try:
            cadence = RingCadence(tuple(round(ms) for ms in profile.ring.on_off_ms))
            cid = profile.callerid
            if cid.before_ring:
                mode = CallerIdMode.BEFORE_FIRST_RING
            else:
                mode = CallerIdMode.AFTER_FIRST_RING
            north_american = code in NORTH_AMERICAN
            pulse = profile.pulse
            values: dict[str, Any] = {
                "country": code,
                "flash_min_ms": profile.flash.min_ms,
                "flash_max_ms": profile.flash.max_ms,
                "pulse_break_min_ms": pulse.break_min_ms,
                "pulse_break_max_ms": pulse.break_max_ms,
                "pulse_make_min_ms": pulse.make_min_ms,
                "pulse_make_max_ms": pulse.make_max_ms,
                "interdigit_pause_min_ms": pulse.interdigit_min_ms,
                "pulse_mapping": pulse.mapping,
                "first_digit_timeout_ms": FIRST_DIGIT_TIMEOUT_MS,
                "partial_dial_timeout_ms": PARTIAL_DIAL_TIMEOUT_MS,
                "busy_tone_timeout_ms": BUSY_TONE_TIMEOUT_MS,
                "howler_timeout_ms": HOWLER_TIMEOUT_MS,
                "ring_cadence": cadence,
                "caller_id_mode": mode,
                "caller_id_delay_ms": max(1, cid.data_delay_ms[0]),
                "caller_id_pre_ring_timeout_ms": CID_PRE_RING_TIMEOUT_MS,
                "ring_burst_min_ms": RING_BURST_MIN_MS,
                "ring_burst_max_ms": max(cadence.pattern[0::2]) + RING_BURST_MARGIN_MS,
                "ring_silence_max_ms": cadence.longest_off_ms + RING_SILENCE_MARGIN_MS,
                "pre_ring_cid_window_ms": PRE_RING_CID_WINDOW_MS,
                "seize_loop_timeout_ms": SEIZE_LOOP_TIMEOUT_MS,
                "release_guard_ms": RELEASE_GUARD_MS,
                "loop_drop_min_ms": LOOP_DROP_US_MS if north_american else LOOP_DROP_ETSI_MS,
                "disconnect_on_polarity_reversal": not north_american,
                "disconnect_on_loop_drop": True,
                "disconnect_on_busy_tone": True,
            }
            values.update(changes)
            return cls(**values)
        except (InvalidValue, TypeError) as e:
            raise InvalidValue(f"line timing for {code}: {e}") from None

    def _check_order(self, low: str, high: str, *, strict: bool = False) -> None:
        a, b = getattr(self, low), getattr(self, high)
        if a > b or (strict and a == b):
            op = "<" if strict else "<="
            raise InvalidValue(f"LineTiming needs {low} ({a}) {op} {high} ({b})")

    def replace(self, **changes: Any) -> LineTiming:
        """A copy with some fields changed, validated again."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = sorted(set(changes) - set(values))
        if unknown:
            raise InvalidValue(f"LineTiming has no field(s) {', '.join(unknown)}")
        values.update(changes)
        return LineTiming(**values)


def _profile(
    country: str,
    *,
    flash: tuple[int, int],
    pulse_rate: tuple[float, float],
    pulse_break: tuple[float, float],
    ring: tuple[int, ...],
    cid: CallerIdMode,
    loop_drop_ms: int,
    polarity_disconnect: bool,
) -> LineTiming:
    b_min, b_max, m_min, m_max = pulse_windows(pulse_rate, pulse_break, PULSE_JITTER_MS)
    cadence = RingCadence(ring)
    return LineTiming(
        country=country,
        flash_min_ms=flash[0],
        flash_max_ms=flash[1],
        pulse_break_min_ms=b_min,
        pulse_break_max_ms=b_max,
        pulse_make_min_ms=m_min,
        pulse_make_max_ms=m_max,
        interdigit_pause_min_ms=INTERDIGIT_PAUSE_MIN_MS,
        first_digit_timeout_ms=FIRST_DIGIT_TIMEOUT_MS,
        partial_dial_timeout_ms=PARTIAL_DIAL_TIMEOUT_MS,
        busy_tone_timeout_ms=BUSY_TONE_TIMEOUT_MS,
        howler_timeout_ms=HOWLER_TIMEOUT_MS,
        ring_cadence=cadence,
        caller_id_mode=cid,
        caller_id_delay_ms=CID_AFTER_RING_DELAY_MS,
        caller_id_pre_ring_timeout_ms=CID_PRE_RING_TIMEOUT_MS,
        ring_burst_min_ms=RING_BURST_MIN_MS,
        ring_burst_max_ms=max(cadence.pattern[0::2]) + RING_BURST_MARGIN_MS,
        ring_silence_max_ms=cadence.longest_off_ms + RING_SILENCE_MARGIN_MS,
        pre_ring_cid_window_ms=PRE_RING_CID_WINDOW_MS,
        seize_loop_timeout_ms=SEIZE_LOOP_TIMEOUT_MS,
        release_guard_ms=RELEASE_GUARD_MS,
        loop_drop_min_ms=loop_drop_ms,
        disconnect_on_polarity_reversal=polarity_disconnect,
        disconnect_on_loop_drop=True,
        disconnect_on_busy_tone=True,
    )


COUNTRY_TIMING: Mapping[str, LineTiming] = MappingProxyType(
    {
        "US": _profile(
            "US",
            flash=FLASH_US_MS,
            pulse_rate=PULSE_RATE_US_PPS,
            pulse_break=PULSE_BREAK_US,
            ring=RING_US,
            cid=CallerIdMode.AFTER_FIRST_RING,
            loop_drop_ms=LOOP_DROP_US_MS,
            polarity_disconnect=False,  # US residential lines seldom reverse (GR-506)
        ),
        "DE": _profile(
            "DE",
            flash=FLASH_DE_MS,
            pulse_rate=PULSE_RATE_ETSI_PPS,
            pulse_break=PULSE_BREAK_DE,
            ring=RING_DE,
            cid=CallerIdMode.AFTER_FIRST_RING,
            loop_drop_ms=LOOP_DROP_ETSI_MS,
            polarity_disconnect=True,
        ),
        "GB": _profile(
            "GB",
            flash=FLASH_GB_MS,
            pulse_rate=PULSE_RATE_ETSI_PPS,
            pulse_break=PULSE_BREAK_GB,
            ring=RING_GB,
            cid=CallerIdMode.BEFORE_FIRST_RING,
            loop_drop_ms=LOOP_DROP_ETSI_MS,
            polarity_disconnect=True,
        ),
        "FR": _profile(
            "FR",
            flash=FLASH_FR_MS,
            pulse_rate=PULSE_RATE_ETSI_PPS,
            pulse_break=PULSE_BREAK_FR,
            ring=RING_FR,
            cid=CallerIdMode.BEFORE_FIRST_RING,
            loop_drop_ms=LOOP_DROP_ETSI_MS,
            polarity_disconnect=True,
        ),
    }
)


def timing_for(country: str) -> LineTiming:
    """The timing profile of a country (ISO 3166 alpha-2 code, case-insensitive)."""
    try:
        return COUNTRY_TIMING[country.upper()]
    except (KeyError, AttributeError):
        known = ", ".join(sorted(COUNTRY_TIMING))
        raise InvalidValue(f"no line timing for country {country!r} (known: {known})") from None
