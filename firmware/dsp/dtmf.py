"""DTMF generation and detection (ITU-T Q.23 signals, Q.24 / Telcordia GR-506 reception).

Detection
---------
The receiver looks at the signal through Hann windows of ``N`` samples (106 at 8 kHz,
13.25 ms) advancing by ``N/2``.  For every window it computes, with one matrix product
over whole half-blocks of samples (no per-sample Python):

* the complex DFT at the eight DTMF frequencies (Goertzel terms),
* the DFT at the integer bins below ``LOW_BAND_EDGE_HZ`` and the windowed energy, which by
  Parseval give the energy between 600 Hz and 4 kHz.

A window holds a digit candidate when the strongest row and column tones are each above
``MIN_LEVEL_DBM0``, their ratio is within the twist limits, and together they hold at least
``MIN_PURITY`` of the energy from 600 Hz up.  That last test does the work of the
second-harmonic and relative-peak tests of older receivers: voiced speech, music chords,
harmonics and noise all put energy outside the two tones.  Dial tone (350-480 Hz) sits
below the band, so the detector hears digits dialled over it.

Two consecutive candidate windows with the same digit are a *hit* when the phase advance
of each tone from one window to the next puts its frequency within ``FREQ_TOLERANCE`` of
nominal.  Measuring the frequency this way is what lets a 13 ms window accept ±1.5% and
reject ±3.5% (a plain Goertzel magnitude loses under 2 dB at 3.5% off 697 Hz).

Hits drive a small state machine (a transition table in ``DtmfDetector``): ``START_HITS``
hits make a digit (about 30 ms of tone: 40 ms tones pass, 25 ms tones do not),
``END_MISSES`` consecutive misses end it (interruptions of 10 ms are bridged, pauses of
25 ms or more separate digits).  A digit must also rise out of a pause: if either tone was
already sounding just before, it is a held note joined by another, not a key press.
Start times are dated back to the tone's estimated onset, so ``DtmfStart.at_ms`` and
durations are those of the tone, not of the decision.

Sources: ITU-T Q.23 (the signal), ITU-T Q.24 (receiver requirements of the
administrations; the North American values are those of Telcordia GR-506-CORE, LSSGR
signalling, and EIA-464 for PBXs), and issue 3 of this project, which adopts them.

Input may arrive in chunks of any size; the digits and their times do not depend on it.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from firmware.dsp.levels import peak_for_dbm0
from firmware.dsp.pcm import INT16_MAX, SAMPLE_RATE, Pcm, to_pcm

# --- signal definition ------------------------------------------------------------------
LOW_GROUP_HZ: Final = (697.0, 770.0, 852.0, 941.0)  # ITU-T Q.23: row frequencies
HIGH_GROUP_HZ: Final = (1209.0, 1336.0, 1477.0, 1633.0)  # ITU-T Q.23: column frequencies
KEYPAD: Final = ("123A", "456B", "789C", "*0#D")  # ITU-T Q.23: the 4x4 allocation
DIGITS: Final = "0123456789*#ABCD"
_DIGIT_TONES: Final = {
    KEYPAD[r][c]: (LOW_GROUP_HZ[r], HIGH_GROUP_HZ[c]) for r in range(4) for c in range(4)
}

# --- generation ---------------------------------------------------------------------------
DEFAULT_LEVEL_DBM0: Final = -6.0  # low-group tone, about what a telephone set sends
MAX_GENERATE_S: Final = 3600.0  # cap on one generated signal (an hour of 8 kHz int16: 58 MB)
MIN_RATE: Final = 8000  # the high group's second harmonics need nothing above 4 kHz
MAX_RATE: Final = 48000

# --- reception: ITU-T Q.24 (North American values), Telcordia GR-506-CORE, EIA-464 ---------
ACCEPT_DEVIATION: Final = 0.015  # Q.24 / GR-506: operate within ±1.5% of nominal
REJECT_DEVIATION: Final = 0.035  # Q.24 / GR-506: do not operate beyond ±3.5%
# Our decision point sits between the two so that both have a margin for noise.
FREQ_TOLERANCE: Final = 0.025
ACCEPT_REVERSE_TWIST_DB: Final = 8.0  # Q.24 / GR-506: high group up to 8 dB weaker
ACCEPT_NORMAL_TWIST_DB: Final = 4.0  # Q.24 / GR-506: high group up to 4 dB stronger
# Limits applied, with 1.5 dB of margin for the window's response at ±1.5% deviation.
MAX_REVERSE_TWIST_DB: Final = 9.5
MAX_NORMAL_TWIST_DB: Final = 5.5
ACCEPT_MIN_LEVEL_DBM0: Final = -36.0  # issue 3: operate from -36 dBm0 per tone
ACCEPT_MAX_LEVEL_DBM0: Final = 0.0  # issue 3 / Q.24: up to 0 dBm0 per tone
MIN_LEVEL_DBM0: Final = -42.0  # per tone; 6 dB below the requirement, far above idle noise
MIN_TONE_MS: Final = 40.0  # Q.24 / GR-506: tones of 40 ms or more are digits
REJECT_TONE_MS: Final = 20.0  # Q.24 / GR-506: tones under 20 ms are not
MIN_PAUSE_MS: Final = 40.0  # Q.24 / GR-506: a pause of 40 ms separates two digits
BRIDGED_INTERRUPTION_MS: Final = 10.0  # Q.24 / GR-506: breaks this short do not split one
MAX_DIGIT_RATE: Final = 10.0  # digits per second a receiver must follow (GR-506)
# Share of the energy from LOW_BAND_EDGE_HZ up that the two tones must hold (1 = pure).
MIN_PURITY: Final = 0.80
LOW_BAND_EDGE_HZ: Final = 600.0  # below the lowest DTMF tone less 3.5%, above dial tones

# Q.23 asks DTMF transmitters to keep unwanted components 20 dB or more below the tones;
# voices and instruments put their second harmonic much closer.  Checked on the high
# group only: the low group's harmonics (1394-1882 Hz) fall next to high-group tones.
MAX_HARMONIC_DB: Final = -15.0  # 5 dB of margin for noise in the harmonic's bin
# Both tones of a digit start together out of a pause.  A tone already sounding
# ONSET_LOOKBACK windows before the first hit (a held note joined by another) is not a
# digit: the window before must be ONSET_RISE_DB quieter at both frequencies.
ONSET_LOOKBACK: Final = 3
ONSET_RISE_DB: Final = 10.0
WINDOW_MS: Final = 13.25  # 106 samples at 8 kHz, as in the classic Goertzel receivers
START_HITS: Final = 3  # hits (hop 6.6 ms) that make a digit
END_MISSES: Final = 5  # consecutive misses that end one
RISE_MISSES: Final = 1  # misses tolerated (one at a time) while a digit builds up
# Where a tone begins (ends) relative to the first (last) window of its first (last) hit, as
# a fraction of the window: Hann windows still pass with part of their edges outside the
# tone.  Calibrated on tones at random alignments (tests/dsp/test_dtmf.py checks the times).
ONSET_LEAD: Final = 0.05
END_LAG: Final = 0.03
MAX_CHUNK_SAMPLES: Final = 1 << 24  # feed() refuses more than ~35 min at once


_DC: Final = 12  # DFT column of the DC bin; the columns before are tones and harmonics
_LOWSUM: Final = 12  # folded column: energy below LOW_BAND_EDGE_HZ
_GATE: Final = 13  # folded column: the gate
# A clean Hann-windowed tone puts 2/3 of its one-sided energy in its own DFT value.
_PURITY_SCALE: Final = 1.5
_HISTORY: Final = ONSET_LOOKBACK + 4  # feeds (of one window or more) remembered


class DtmfError(ValueError):
    """Bad input given to a DTMF generator or detector (names what was wrong)."""


class DtmfStateError(RuntimeError):
    """The receiver's state machine met a case its table lacks: a bug here, not bad input."""


@dataclass(frozen=True, slots=True)
class DtmfStart:
    """A digit began at ``at_ms`` (reported once it has lasted long enough to count)."""

    digit: str
    at_ms: float

    def __post_init__(self) -> None:
        _check_event(self.digit, self.at_ms)


@dataclass(frozen=True, slots=True)
class DtmfEnd:
    """The digit ended at ``at_ms`` after ``duration_ms`` of tone."""

    digit: str
    at_ms: float
    duration_ms: float

    def __post_init__(self) -> None:
        _check_event(self.digit, self.at_ms)
        if not (math.isfinite(self.duration_ms) and self.duration_ms > 0):
            raise DtmfError(f"duration_ms must be positive, got {self.duration_ms}")


DtmfEvent = DtmfStart | DtmfEnd


@dataclass(frozen=True, slots=True)
class DtmfTone:
    """One detected digit of a whole recording."""

    digit: str
    start_ms: float
    duration_ms: float

    def __post_init__(self) -> None:
        _check_event(self.digit, self.start_ms)
        if not (math.isfinite(self.duration_ms) and self.duration_ms > 0):
            raise DtmfError(f"duration_ms must be positive, got {self.duration_ms}")


def _check_event(digit: str, at_ms: float) -> None:
    if len(digit) != 1 or digit not in DIGITS:
        raise DtmfError(f"not a DTMF digit: {digit!r}")
    if not math.isfinite(at_ms):
        raise DtmfError(f"time must be finite, got {at_ms}")


def _check_rate(rate: int) -> None:
    if not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        raise DtmfError(f"rate must be an integer from {MIN_RATE} to {MAX_RATE} Hz, got {rate}")


def tones_of(digit: str) -> tuple[float, float]:
    """(low, high) frequencies of ``digit`` in Hz."""
    try:
        return _DIGIT_TONES[digit.upper()]
    except (KeyError, AttributeError):
        raise DtmfError(f"not a DTMF digit: {digit!r} (expected one of {DIGITS})") from None


# --- generation ---------------------------------------------------------------------------


def dual_tone(
    low_hz: float,
    high_hz: float,
    ms: float,
    *,
    low_dbm0: float,
    high_dbm0: float,
    rate: int = SAMPLE_RATE,
) -> npt.NDArray[np.float64]:
    """Two sines starting at phase 0, as float samples on the int16 scale.

    The building block of :func:`generate_dtmf`, public so that tests and measurements can
    make off-nominal tones.
    """
    _check_rate(rate)
    for name, value in (("low_hz", low_hz), ("high_hz", high_hz)):
        if not (math.isfinite(value) and 0 < value < rate / 2):
            raise DtmfError(f"{name} must be between 0 and {rate / 2} Hz, got {value}")
    n = _duration_samples(ms, rate, "ms")
    t = np.arange(n) / rate
    return peak_for_dbm0(low_dbm0) * np.sin(2 * np.pi * low_hz * t) + peak_for_dbm0(
        high_dbm0
    ) * np.sin(2 * np.pi * high_hz * t)


def _duration_samples(ms: float, rate: int, name: str) -> int:
    if not (math.isfinite(ms) and 0 <= ms <= MAX_GENERATE_S * 1000):
        raise DtmfError(f"{name} must be from 0 to {MAX_GENERATE_S * 1000:.0f} ms, got {ms}")
    return round(ms * rate / 1000)


def generate_dtmf(
    digits: str,
    *,
    level_dbm0: float = DEFAULT_LEVEL_DBM0,
    twist_db: float = 0.0,
    on_ms: float = 70,
    off_ms: float = 70,
    rate: int = SAMPLE_RATE,
) -> Pcm:
    """``digits`` as DTMF: each one ``on_ms`` of tone followed by ``off_ms`` of silence.

    ``level_dbm0`` is the low-group tone's level; the high-group tone is ``twist_db``
    louder (negative: quieter).  Refuses anything that would clip rather than distort.
    """
    _check_rate(rate)
    if not isinstance(digits, str):
        raise DtmfError(f"digits must be a string, got {type(digits).__name__}")
    pairs = [tones_of(d) for d in digits]
    for name, value in (("level_dbm0", level_dbm0), ("twist_db", twist_db)):
        if not math.isfinite(value):
            raise DtmfError(f"{name} must be finite, got {value}")
    peak = peak_for_dbm0(level_dbm0) + peak_for_dbm0(level_dbm0 + twist_db)
    if peak > INT16_MAX:
        raise DtmfError(
            f"level {level_dbm0} dBm0 with twist {twist_db} dB would clip (peak {peak:.0f})"
        )
    if on_ms <= 0:
        raise DtmfError(f"on_ms must be positive, got {on_ms}")
    on_n = _duration_samples(on_ms, rate, "on_ms")
    off_n = _duration_samples(off_ms, rate, "off_ms")
    if len(digits) * (on_n + off_n) > MAX_GENERATE_S * rate:
        raise DtmfError(f"{len(digits)} digits would last more than {MAX_GENERATE_S:.0f} s")
    out = np.zeros(len(digits) * (on_n + off_n), dtype=np.float64)
    cache: dict[tuple[float, float], npt.NDArray[np.float64]] = {}
    for i, pair in enumerate(pairs):
        if pair not in cache:
            cache[pair] = dual_tone(
                *pair, on_ms, low_dbm0=level_dbm0, high_dbm0=level_dbm0 + twist_db, rate=rate
            )[:on_n]
        start = i * (on_n + off_n)
        out[start : start + on_n] = cache[pair]
    return to_pcm(out)


# --- detection ----------------------------------------------------------------------------


class _State(enum.Enum):
    IDLE = "idle"
    RISING = "rising"  # a digit seen, not yet long enough
    ON = "on"  # a digit reported
    FALLING = "falling"  # a reported digit missing, maybe an interruption

    # Members are singletons: identity hashing spares the transition lookup Enum's
    # Python-level __hash__, a third of the per-window cost.
    __hash__ = object.__hash__


class _Obs(enum.Enum):
    NONE = "none"  # no digit in this window
    SAME = "same"  # the digit being tracked
    OTHER = "other"  # a different digit

    __hash__ = object.__hash__  # as _State


class DtmfDetector:
    """Streaming DTMF receiver: ``feed`` PCM of any length, get start/end events.

    Times are in ms from the first sample fed (or the last ``reset``).
    """

    def __init__(self, rate: int = SAMPLE_RATE) -> None:
        _check_rate(rate)
        self.rate = rate
        half = round(WINDOW_MS * rate / 2000)
        self._half = half
        n = 2 * half
        self._n = n
        idx = np.arange(n)
        window = 0.5 - 0.5 * np.cos(2 * np.pi * idx / n)  # periodic Hann
        low_bins = int(LOW_BAND_EDGE_HZ * n / rate)
        freqs = np.array(
            [
                *LOW_GROUP_HZ,
                *HIGH_GROUP_HZ,
                *(2 * f for f in HIGH_GROUP_HZ),
                *(k * rate / n for k in range(low_bins + 1)),
            ]
        )
        self._k = k = freqs.size
        arg = 2 * np.pi * np.outer(idx, freqs) / rate
        basis = np.hstack([window[:, None] * np.cos(arg), -window[:, None] * np.sin(arg)])
        # One product gives, per half-block, its contribution to the DFT values of the
        # window it starts (first half) and of the one it ends (second half): columns are
        # [first half: re(k) im(k) | second half: re(k) im(k)].  A second one does the same
        # for the windowed energy.
        self._basis = np.ascontiguousarray(np.hstack([basis[:half], basis[half:]]))
        self._w2 = np.ascontiguousarray(np.stack([window[:half] ** 2, window[half:] ** 2], axis=1))
        # Squared re and im parts folded into energies: the eight tones, the four
        # harmonics, the energy below LOW_BAND_EDGE_HZ (DC counts half in a one-sided sum),
        # and the gate (see _analyse).
        fold = np.zeros((2 * k, _GATE + 1))
        for col in range(_LOWSUM):
            fold[col, col] = fold[k + col, col] = 1.0
        for col in range(_DC, k):
            weight = 0.5 if col == _DC else 1.0
            fold[col, _LOWSUM] = fold[k + col, _LOWSUM] = weight
            fold[col, _GATE] = fold[k + col, _GATE] = MIN_PURITY * weight
        for col in range(8):
            fold[col, _GATE] = fold[k + col, _GATE] = _PURITY_SCALE
        self._fold = fold
        self._gate_scale = MIN_PURITY * n / 2
        self._n_half = n / 2
        # Energy of a window's DFT at a tone of amplitude A: (A * sum(window) / 2)^2.
        gain = float(window.sum()) / 2
        self._min_energy = (peak_for_dbm0(MIN_LEVEL_DBM0) * gain) ** 2
        self._max_twist = 10 ** (MAX_NORMAL_TWIST_DB / 10)
        self._min_twist = 10 ** (-MAX_REVERSE_TWIST_DB / 10)
        self._max_harmonic = 10 ** (MAX_HARMONIC_DB / 10)
        self._max_before = 10 ** (-ONSET_RISE_DB / 10)
        # The window advances by `half`: a tone at f0 turns by 2*pi*f0*half/rate per step.
        self._unrotate = [
            complex(math.cos(a), -math.sin(a)) for a in 2 * np.pi * freqs[:8] * half / rate
        ]
        self._max_phase = 2 * np.pi * FREQ_TOLERANCE * half / rate  # per Hz of f0
        self._dev_limit = [float(self._max_phase * f) for f in freqs[:8]]
        self._ms_per_sample = 1000.0 / rate
        self._transitions: dict[tuple[_State, _Obs], Callable[[str | None, int], None]] = {
            (_State.IDLE, _Obs.NONE): self._stay,
            (_State.IDLE, _Obs.OTHER): self._rise,
            (_State.RISING, _Obs.SAME): self._rising_hit,
            (_State.RISING, _Obs.NONE): self._rising_miss,
            (_State.RISING, _Obs.OTHER): self._rise,
            (_State.ON, _Obs.SAME): self._on_hit,
            (_State.ON, _Obs.NONE): self._on_miss,
            (_State.ON, _Obs.OTHER): self._switch,
            (_State.FALLING, _Obs.SAME): self._on_hit,
            (_State.FALLING, _Obs.NONE): self._on_miss,
            (_State.FALLING, _Obs.OTHER): self._switch,
        }
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample fed is time 0."""
        # Samples not yet analysed as the second half of a window (under 2 half-blocks).
        self._carry: npt.NDArray[np.float64] = np.zeros(0, dtype=np.float64)
        # (first window, folded energies) of the last feeds, for the onset test.
        self._history: deque[tuple[int, npt.NDArray[np.float64]]] = deque(maxlen=_HISTORY)
        self._blocks = 0  # half-blocks consumed; window j starts at sample j*half
        self._prev: tuple[str, complex, complex, int, int] | None = None
        self._state = _State.IDLE
        self._digit: str | None = None
        self._count = 0  # hits while rising, misses while on
        self._misses = 0  # misses while rising
        self._first_hit = 0  # window index of the first hit of the tracked digit
        self._last_hit = 0
        self._events: list[DtmfEvent] = []

    # -- per-window analysis ----------------------------------------------------------------

    def feed(self, frame: Pcm) -> list[DtmfEvent]:
        """Analyse ``frame`` (int16 samples, any length) and return the events it completes."""
        arr = np.asarray(frame)
        if arr.ndim != 1 or arr.dtype != np.int16:
            raise DtmfError(f"frame must be 1-D int16 PCM, got {arr.dtype} with shape {arr.shape}")
        if arr.size > MAX_CHUNK_SAMPLES:
            raise DtmfError(f"frame of {arr.size} samples exceeds {MAX_CHUNK_SAMPLES}; split it")
        half = self._half
        buf = np.concatenate((self._carry, arr), dtype=np.float64)
        nblocks = buf.size // half
        if nblocks < 2:
            self._carry = buf
            return []
        blocks = buf[: nblocks * half].reshape(nblocks, half)
        # Keep the last whole half-block: it is the first half of the next window.
        self._carry = buf[(nblocks - 1) * half :]
        first_window = self._blocks
        self._blocks += nblocks - 1
        self._events = []
        self._analyse(blocks, first_window)
        return self._events

    def _analyse(self, blocks: npt.NDArray[np.float64], first_window: int) -> None:
        k2 = 2 * self._k
        p = blocks @ self._basis
        x = p[:-1, :k2] + p[1:, k2:]  # per window: re(k), im(k)
        q = (blocks * blocks) @ self._w2
        energy = q[:-1, 0] + q[1:, 1]  # per window: sum of (window * samples)**2
        y = (x * x) @ self._fold
        self._history.append((first_window, y))
        # The gate is a necessary condition for the purity test that one comparison can
        # check on all windows: the sum of all eight tone energies stands in for the two
        # strongest.  Windows that fail it (silence, speech, noise) cost nothing more.
        flags = (y[:, _GATE] > energy * self._gate_scale).tolist()
        if True not in flags:
            self._prev = None
            if self._state is _State.IDLE:
                return
        rows: list[list[float]] = y.tolist()
        dfts: list[list[float]] = x.tolist()
        energies: list[float] = energy.tolist()
        for j, flag in enumerate(flags):
            if flag:
                digit = self._judge(rows[j], dfts[j], energies[j])
            else:
                digit = self._prev = None
            self._step(digit, first_window + j)

    def _judge(self, row: list[float], dft: list[float], energy: float) -> str | None:
        """The digit this window confirms together with the previous one, if any."""
        low, high = row[0:4], row[4:8]
        el, eh = max(low), max(high)
        r, c = low.index(el), high.index(eh)
        band = self._n_half * energy - row[_LOWSUM]
        prev = self._prev
        if not (
            el >= self._min_energy
            and eh >= self._min_energy
            and self._min_twist * el <= eh <= self._max_twist * el
            and _PURITY_SCALE * (el + eh) >= MIN_PURITY * band
            and row[8 + c] <= self._max_harmonic * eh
        ):
            self._prev = None
            return None
        k = self._k
        digit = KEYPAD[r][c]
        xl = complex(dft[r], dft[k + r])
        xh = complex(dft[4 + c], dft[k + 4 + c])
        self._prev = (digit, xl, xh, r, c)
        if (
            prev is not None
            and prev[0] == digit
            and self._on_frequency(prev[1], xl, r)
            and self._on_frequency(prev[2], xh, 4 + c)
        ):
            return digit
        return None

    def _tones_at(self, window: int) -> npt.NDArray[np.float64] | None:
        for first, y in reversed(self._history):
            if first <= window < first + y.shape[0]:
                row: npt.NDArray[np.float64] = y[window - first]
                return row
        return None

    def _rose_together(self, window: int) -> bool:
        """Were both tones of the hit at ``window`` absent just before it?"""
        assert self._prev is not None
        _, _, _, r, c = self._prev
        now = self._tones_at(window)
        before = self._tones_at(window - 1 - ONSET_LOOKBACK)
        if before is None or now is None:
            return True  # the stream began with the tone
        low_quiet = float(before[r]) <= self._max_before * float(now[r])
        high_quiet = float(before[4 + c]) <= self._max_before * float(now[4 + c])
        return low_quiet and high_quiet

    def _on_frequency(self, before: complex, after: complex, tone: int) -> bool:
        turn = after * before.conjugate() * self._unrotate[tone]
        return abs(math.atan2(turn.imag, turn.real)) <= self._dev_limit[tone]

    # -- state machine ----------------------------------------------------------------------

    def _step(self, digit: str | None, window: int) -> None:
        if digit is None:
            obs = _Obs.NONE
        elif digit == self._digit and self._state is not _State.IDLE:
            obs = _Obs.SAME
        else:
            obs = _Obs.OTHER
        try:
            action = self._transitions[(self._state, obs)]
        except KeyError:
            raise DtmfStateError(f"no transition from {self._state} on {obs}") from None
        action(digit, window)

    def _stay(self, digit: str | None, window: int) -> None:
        pass

    def _rise(self, digit: str | None, window: int) -> None:
        assert digit is not None and self._prev is not None
        if not self._rose_together(window):
            self._state = _State.IDLE
            self._digit = None
            return
        self._state = _State.RISING
        self._digit = digit
        self._count = 1
        self._misses = 0
        self._first_hit = self._last_hit = window

    def _rising_miss(self, digit: str | None, window: int) -> None:
        self._misses += 1
        if self._misses > RISE_MISSES:
            self._state = _State.IDLE
            self._digit = None

    def _rising_hit(self, digit: str | None, window: int) -> None:
        self._count += 1
        self._misses = 0
        self._last_hit = window
        if self._count >= START_HITS:
            assert self._digit is not None
            self._state = _State.ON
            self._count = 0
            self._events.append(DtmfStart(self._digit, self._start_ms()))

    def _on_hit(self, digit: str | None, window: int) -> None:
        self._state = _State.ON
        self._count = 0
        self._last_hit = window

    def _on_miss(self, digit: str | None, window: int) -> None:
        self._count += 1
        self._state = _State.FALLING
        if self._count >= END_MISSES:
            self._end()
            self._state = _State.IDLE
            self._digit = None

    def _switch(self, digit: str | None, window: int) -> None:
        self._end()
        self._rise(digit, window)

    def _end(self) -> None:
        assert self._digit is not None
        start = self._start_ms()
        end = self._end_ms()
        self._events.append(DtmfEnd(self._digit, end, max(end - start, self._ms_per_sample)))

    def _start_ms(self) -> float:
        # The first hit is a pair of windows (first_hit-1, first_hit) that were both mostly
        # tone; ONSET_LEAD is where the tone typically began relative to the earlier one.
        onset = (self._first_hit - 1) * self._half + ONSET_LEAD * self._n
        return max(onset, 0) * self._ms_per_sample

    def _end_ms(self) -> float:
        return (self._last_hit * self._half + (1 - END_LAG) * self._n) * self._ms_per_sample


def detect_dtmf(pcm: Pcm, rate: int = SAMPLE_RATE) -> list[DtmfTone]:
    """Every digit in a whole recording, with start times and durations in ms."""
    detector = DtmfDetector(rate)
    arr = np.asarray(pcm)
    events: list[DtmfEvent] = []
    for start in range(0, arr.size, MAX_CHUNK_SAMPLES):  # any length, in capped chunks
        events += detector.feed(arr[start : start + MAX_CHUNK_SAMPLES])
    # Trailing silence closes a digit that runs to the end of the recording.
    events += detector.feed(np.zeros(round(rate * 3 * MIN_PAUSE_MS / 1000), dtype=np.int16))
    tones: list[DtmfTone] = []
    for event in events:
        if isinstance(event, DtmfEnd):
            tones.append(DtmfTone(event.digit, event.at_ms - event.duration_ms, event.duration_ms))
    return tones
