"""Call-progress detection for FXO lines: dial tone, ringback, busy, congestion, voice.

Used for disconnect supervision (the far end hung up and the exchange plays busy or
congestion) and answer detection (ringback stopped, voice started).  Sans-IO and cheap:
feed 20 ms frames, get events.

How it works, per frame:

1. One matrix product projects the frame on the few frequencies the country's tones use
   (a bank of single-bin DFTs, i.e. Goertzel filters, evaluated at once) and compares
   their power with the frame's total power.  A frame is "on" for a frequency family
   (425 Hz; 350+440 Hz; ...) when the family holds most of the energy, every component is
   present and the level is above :data:`TONE_MIN_DBM0`.  Speech spreads its energy over
   many harmonics and formants, so it rarely passes this test for long.
2. Tone edges are refined to 1 ms inside the two frames around a change, so that cadence
   timing does not inherit the 20 ms frame grid.
3. Each family keeps its recent on/off durations; a tone is recognised when the last
   ``cycles`` periods match the country's cadence within ``tolerance`` (+/-10 % by default)
   plus :data:`EDGE_SLACK_MS` for the edge measurement.  Busy needs several cycles, which
   is what keeps speech from ever looking like busy.
4. Frames that are loud but not tonal are voice; a running noise floor keeps stationary
   line noise from counting as voice.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from firmware.dsp.levels import RMS_0DBM0, SILENCE_DBM0
from firmware.dsp.pcm import SAMPLE_RATE
from firmware.dsp.profiles import CountryProfile
from firmware.dsp.tones import Cadence, ToneSpec

DETECTED_TONES: Final = ("busy", "congestion", "ringback", "dial")  # priority order
TONE_MIN_DBM0: Final = -42.0  # weakest tone frame accepted (E.180 tones go down to -25..-30)
TONE_RATIO_MIN: Final = 0.6  # share of the frame's power in the family's frequency bins
COMPONENT_SHARE_MIN: Final = 0.08  # each frequency of a dual tone must be really there
CADENCE_TOLERANCE: Final = 0.10  # issue 3 section 4: +/-10 % on every on and off time
EDGE_SLACK_MS: Final = 3.0  # two edges measured to 1 ms, plus ramp asymmetry
BUSY_CYCLES: Final = 3  # on/off periods that must match before busy/congestion is declared
RINGBACK_CYCLES: Final = 1
DIAL_MIN_MS: Final = 1000.0  # steady tone this long (and longer than any cadenced burst)
VOICE_MIN_DBM0: Final = -45.0  # quieter than this is silence whatever the noise floor
VOICE_OVER_FLOOR_DB: Final = 9.0  # voice must stand this far above the line noise
VOICE_FRAMES: Final = 5  # voice frames within the last VOICE_WINDOW to declare voice
VOICE_WINDOW: Final = 8
SILENCE_MS: Final = 1000.0  # default quiet time before "silence" is reported
FLOOR_BLOCK: Final = 10  # frames per block of the noise-floor minimum
FLOOR_BLOCKS: Final = 8  # noise floor = quietest frame of the last 1.4..1.6 s
DEBOUNCE_MS: Final = 50.0  # a tone must appear (or vanish) this long to count: bridges
#                            G.711/noise dropouts, far below the 167 ms shortest off time
MAX_FRAME: Final = 8000  # samples per feed (one second at 8 kHz): a cap, not a typical size
HISTORY: Final = 32  # on/off durations kept per family (covers 3 cycles of 4-part cadences)
EDGE_PROBE_BLOCKS: Final = 4  # 1 ms blocks used to estimate on/off power around an edge
SIT_TONES: Final = 3  # ITU-T Q.35 / E.180: three tones, rising
SIT_MIN_HZ: Final = 850.0  # the first SIT tone is 900..1000 Hz (Q.35), 913.8 in North America
SIT_TOLERANCE: Final = 0.25  # each tone's length (274..380 ms variants) within 25 %
SIT_SLACK_MS: Final = 40.0  # plus two 20 ms frames of edge uncertainty
SIT_GAP_FRAMES: Final = 2  # frames of nothing tolerated between two SIT tones
SAME_FAMILY_HZ: Final = 45.0  # within the ~50 Hz resolution of a 20 ms frame
EDGE_FLOOR_DB: Final = 20.0  # an edge is where the power crosses the on level minus this


@dataclass(frozen=True, slots=True)
class ToneDetected:
    tone: str  # "dial", "ringback", "busy", "congestion"
    at_ms: float
    on_off_ms: tuple[float, ...]  # the measured cadence ((duration,) for a steady tone)
    level_dbm0: float
    frequencies: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ToneStopped:
    tone: str
    at_ms: float
    duration_ms: float  # since the tone was first heard


@dataclass(frozen=True, slots=True)
class VoiceDetected:
    at_ms: float
    level_dbm0: float


@dataclass(frozen=True, slots=True)
class SilenceDetected:
    at_ms: float  # when the quiet started
    duration_ms: float


ProgressEvent = ToneDetected | ToneStopped | VoiceDetected | SilenceDetected


class ProgressError(ValueError):
    """Bad input to the detector (wrong frame type or size, bad parameters)."""


def cadence_matches(
    durations: list[float],
    pattern: Cadence,
    cycles: int,
    tolerance: float = CADENCE_TOLERANCE,
    slack_ms: float = EDGE_SLACK_MS,
    *,
    open_last: float | None = None,
) -> bool:
    """Whether the last ``cycles`` periods of ``durations`` follow ``pattern``.

    ``durations`` alternate on, off, on, off ... and end with a completed off time.  With
    ``open_last`` the final off is still running (its length so far) and needs only to
    have reached the pattern's lower bound.
    """
    pat = pattern.on_off_ms
    count = cycles * len(pat)
    seq = list(durations)
    if open_last is not None:
        seq.append(open_last)
    if len(seq) < count or len(seq) % 2:
        return False
    recent = seq[-count:]
    for rot in range(0, len(pat), 2):
        ok = True
        for i, d in enumerate(recent):
            want = pat[(rot + i) % len(pat)]
            low = want * (1 - tolerance) - slack_ms
            high = want * (1 + tolerance) + slack_ms
            last_open = open_last is not None and i == count - 1
            if d < low or (not last_open and d > high):
                ok = False
                break
        if ok:
            return True
    return False


def sit_elements(spec: ToneSpec | None, rate: int) -> list[tuple[float, float]]:
    """(frequency, ms) of a three-tone rising SIT, or [] if the country's SIT is not one."""
    if spec is None:
        return []
    parts = [s for s in spec.segments if not s.silent]
    if len(parts) < SIT_TONES:
        return []
    out = []
    for seg in parts[:SIT_TONES]:
        if len(seg.components) != 1 or seg.components[0].modulation_hz or seg.duration_ms is None:
            return []
        out.append((seg.components[0].freq_hz, seg.duration_ms))
    freqs = [f for f, _ in out]
    if freqs != sorted(freqs) or freqs[0] < SIT_MIN_HZ or freqs[-1] >= rate / 2:
        return []
    if min(b - a for a, b in itertools.pairwise(freqs)) < 2 * SAME_FAMILY_HZ:
        return []
    return out


def _lines(spec: ToneSpec) -> tuple[float, ...]:
    """Every spectral line of a tone, AM sidebands included."""
    return tuple(sorted({f for s in spec.segments for c in s.components for f in c.frequencies}))


def _alike(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Frequency sets a 20 ms frame cannot tell apart (every line near one of the other)."""
    near = SAME_FAMILY_HZ
    return all(any(abs(x - y) <= near for y in b) for x in a) and all(
        any(abs(x - y) <= near for x in a) for y in b
    )


@dataclass(slots=True)
class _Family:
    """One set of frequencies that some of the country's tones use."""

    freqs: tuple[float, ...]
    bins: tuple[tuple[int, ...], ...]  # bank rows of each alternative frequency set
    on: bool = False
    start_ms: float = 0.0  # of the current on or off part
    durations: deque[float] | None = None  # closed parts, starting with an on
    heard_ms: float | None = None  # when the current recognised tone started
    pending_since: float | None = None  # a change not yet confirmed (debounce)
    pending_edge: float = 0.0
    power_sum: float = 0.0  # mean power of the current on part
    power_frames: int = 0

    @property
    def level_dbm0(self) -> float:
        if self.power_frames == 0 or self.power_sum <= 0:
            return SILENCE_DBM0
        return 10 * math.log10(self.power_sum / self.power_frames / RMS_0DBM0**2)


@dataclass(frozen=True, slots=True)
class _Target:
    name: str
    spec: ToneSpec
    family: int
    cadence: Cadence | None  # None: steady
    cycles: int


class CallProgressDetector:
    """Per-line call-progress detector (sans-IO: frames in, events out)."""

    def __init__(
        self,
        profile: CountryProfile,
        rate: int = SAMPLE_RATE,
        *,
        busy_cycles: int = BUSY_CYCLES,
        ringback_cycles: int = RINGBACK_CYCLES,
        tolerance: float = CADENCE_TOLERANCE,
        silence_ms: float = SILENCE_MS,
        tone_min_dbm0: float = TONE_MIN_DBM0,
    ) -> None:
        if rate % 1000 or not 8000 <= rate <= 48000:
            raise ProgressError(f"sample rate {rate} must be a multiple of 1000 in 8000..48000")
        if not 1 <= busy_cycles <= 8 or not 1 <= ringback_cycles <= 4:
            raise ProgressError(
                f"cycles out of range: busy {busy_cycles}, ringback {ringback_cycles}"
            )
        if not 0 < tolerance < 0.5:
            raise ProgressError(f"tolerance {tolerance} must be in (0, 0.5)")
        if silence_ms <= 0:
            raise ProgressError(f"silence_ms must be positive, got {silence_ms}")
        self.profile = profile
        self.rate = rate
        self.tolerance = tolerance
        self.silence_ms = silence_ms
        self._tone_min_ms = RMS_0DBM0**2 * 10 ** (tone_min_dbm0 / 10)
        self._block = rate // 1000  # samples per 1 ms block

        freqs: list[float] = []
        # A family is a set of alternative frequency sets that 20 ms cannot tell apart
        # (Australia's 413+438 Hz and 425 Hz): the cadence separates their tones.
        families: list[list[tuple[float, ...]]] = []
        targets: list[_Target] = []
        for name in DETECTED_TONES:
            spec = profile.tones.get(name)
            if spec is None:
                continue
            fset = _lines(spec)
            if not fset or max(fset) >= rate / 2:
                continue
            for f in fset:
                if f not in freqs:
                    freqs.append(f)
            index = next(
                (i for i, fam in enumerate(families) if any(_alike(fset, a) for a in fam)), None
            )
            if index is None:
                index = len(families)
                families.append([fset])
            elif fset not in families[index]:
                families[index].append(fset)
            cadence = spec.cadence
            if cadence is None and not spec.continuous:
                continue  # once-only or oddly shaped: not detectable by cadence
            cycles = ringback_cycles if name == "ringback" else 1 if name == "dial" else busy_cycles
            targets.append(_Target(name, spec, index, cadence, cycles))
        # Special information tone: three single tones rising (950/1400/1800 Hz, or the
        # North American 913.8/1370.6/1776.7), told by their order and lengths.
        self._sit = sit_elements(profile.tones.get("sit"), rate)
        self._sit_bins = []
        for f, _ in self._sit:
            if f not in freqs:
                freqs.append(f)
            self._sit_bins.append(freqs.index(f))
        self._freqs = np.array(freqs, dtype=np.float64)
        self._families = [
            _Family(
                tuple(sorted({f for alt in fam for f in alt})),
                tuple(tuple(freqs.index(f) for f in alt) for alt in fam),
                durations=deque(maxlen=HISTORY),
            )
            for fam in families
        ]
        self._targets = targets
        self._family_targets = [[t for t in targets if t.family == i] for i in range(len(families))]
        # Steady-tone threshold per family: longer than any cadenced burst in that family.
        self._steady_ms = []
        for i in range(len(families)):
            bursts = [
                max(t.cadence.on_ms) for t in targets if t.family == i and t.cadence is not None
            ]
            longest = max(bursts, default=0.0) * (1 + tolerance) + EDGE_SLACK_MS
            self._steady_ms.append(max(DIAL_MIN_MS, longest + 100.0))
        # Quiet inside a cadence is not silence: hold silence off for the longest off part.
        self._hold_ms = []
        for i in range(len(families)):
            offs = [max(t.cadence.off_ms) for t in targets if t.family == i and t.cadence]
            self._hold_ms.append(max(offs, default=0.0) * (1 + tolerance) + EDGE_SLACK_MS)
        self._bank_n = 0
        self._bank = np.zeros((0, 0))
        self._reset_state()

    @property
    def now_ms(self) -> float:
        return self._samples * 1000.0 / self.rate

    @property
    def tone(self) -> str | None:
        """The tone currently recognised, if any."""
        return next((t.name for t in self._active.values()), None)

    def reset(self) -> None:
        """Forget everything heard so far (a new call on the line)."""
        for fam in self._families:
            fam.on, fam.start_ms, fam.heard_ms, fam.pending_since = False, 0.0, None, None
            fam.power_sum, fam.power_frames = 0.0, 0
            assert fam.durations is not None
            fam.durations.clear()
        self._reset_state()

    def _reset_state(self) -> None:
        self._active: dict[int, _Target] = {}  # family -> recognised tone
        self._prev_frame: npt.NDArray[np.float64] | None = None
        self._samples = 0
        self._floor_blocks: deque[float] = deque(maxlen=FLOOR_BLOCKS)  # minima of past blocks
        self._block_min = math.inf
        self._blocks_floor = math.inf
        self._block_frames = 0
        self._quiet_hold_ms = 0.0
        self._sit_index = -1  # element of the SIT being heard (-1: none)
        self._sit_start = 0.0
        self._sit_gap = 0  # non-SIT frames inside the sequence
        self._sit_parts: list[float] = []
        self._voice_hist: deque[bool] = deque(maxlen=VOICE_WINDOW)
        self._voice = False
        self._quiet_since: float | None = 0.0
        self._silence_reported = False
        self.frames = 0

    def _bank_for(self, n: int) -> npt.NDArray[np.float64]:
        if n != self._bank_n:
            k = np.arange(n, dtype=np.float64)
            w = 2 * np.pi * self._freqs[:, None] * k[None, :] / self.rate
            self._bank = np.concatenate([np.cos(w), np.sin(w)])
            self._bank_n = n
        return self._bank

    def feed(self, frame: npt.ArrayLike) -> list[ProgressEvent]:
        """Analyse the next frame (any length up to :data:`MAX_FRAME`; 20 ms is typical)."""
        arr = np.asarray(frame)
        if arr.ndim != 1:
            raise ProgressError(f"expected a 1-D frame of samples, got shape {arr.shape}")
        if arr.size == 0:
            return []
        if arr.size > MAX_FRAME:
            raise ProgressError(f"frame of {arr.size} samples exceeds the {MAX_FRAME} cap")
        if arr.dtype.kind not in "iuf":
            raise ProgressError(f"frame dtype {arr.dtype} is not numeric PCM")
        x = arr.astype(np.float64)
        total = float(np.dot(x, x)) / x.size
        if not math.isfinite(total):
            raise ProgressError("frame holds NaN or infinite samples")
        return self.feed_samples(x, total)

    def feed_samples(self, x: npt.NDArray[np.float64], total: float) -> list[ProgressEvent]:
        """:meth:`feed` for a caller that already has the frame as float64 (1-D, at most
        :data:`MAX_FRAME`, not empty) and its mean power ``total``: a line receiver
        running several detectors computes those once."""
        n = x.size
        start_ms = self.now_ms
        events: list[ProgressEvent] = []
        level_db = 10 * math.log10(total / RMS_0DBM0**2) if total > 0 else SILENCE_DBM0
        on_family = -1
        sit_bin = -1
        if total >= self._tone_min_ms and self._freqs.size:
            proj = self._bank_for(n) @ x
            # |X|^2 per bin, unscaled; the thresholds are scaled instead.  Python floats
            # from here: for a handful of bins this beats further numpy calls.
            power = np.square(proj).reshape(2, -1).sum(axis=0).tolist()
            scaled = total * n * n / 2.0  # a bin holding all of the power reaches this
            best = 0.0
            floor = COMPONENT_SHARE_MIN * scaled
            for i, fam in enumerate(self._families):
                for bins in fam.bins:
                    p = [power[j] for j in bins]
                    ratio = sum(p) / scaled
                    if ratio >= TONE_RATIO_MIN and min(p) >= floor and ratio > best:
                        best, on_family = ratio, i
            for k, j in enumerate(self._sit_bins):
                if power[j] >= TONE_RATIO_MIN * scaled:
                    sit_bin = k
        changed: set[int] = set()
        end_ms = start_ms + n * 1000.0 / self.rate
        for i, fam in enumerate(self._families):
            raw_on = i == on_family
            if raw_on == fam.on:
                fam.pending_since = None
            else:
                if fam.pending_since is None:
                    fam.pending_since = start_ms
                    fam.pending_edge = self._edge_ms(x, start_ms, rising=raw_on)
                if end_ms - fam.pending_since >= DEBOUNCE_MS:
                    self._transition(fam, raw_on, fam.pending_edge)
                    fam.pending_since = None
                    changed.add(i)
                    if raw_on:
                        fam.power_sum, fam.power_frames = 0.0, 0
            if raw_on:
                fam.power_sum += total
                fam.power_frames += 1
                self._quiet_hold_ms = self._hold_ms[i]
        self._check_targets(end_ms, changed, events)
        if self._sit:
            self._track_sit(sit_bin, start_ms, end_ms, level_db, events)
        self._activity(on_family >= 0, level_db, start_ms, n, events)
        self._prev_frame = x
        self._samples += n
        self.frames += 1
        return events

    def _edge_ms(self, x: npt.NDArray[np.float64], start_ms: float, *, rising: bool) -> float:
        """Where, to 1 ms, the tone started (or stopped) within the previous and this frame."""
        prev = self._prev_frame if self._prev_frame is not None else np.zeros(0)
        both = np.concatenate([prev, x])
        b = self._block
        nblocks = both.size // b
        if nblocks < 2 * EDGE_PROBE_BLOCKS:
            return start_ms
        offset = both.size - nblocks * b  # drop a partial block at the front
        blocks = both[offset:].reshape(nblocks, b)
        power = (blocks**2).mean(axis=1)
        if rising:
            p_on = float(power[-EDGE_PROBE_BLOCKS:].mean())
            p_off = float(power[:EDGE_PROBE_BLOCKS].mean())
        else:
            p_on = float(power[:EDGE_PROBE_BLOCKS].mean())
            p_off = float(power[-EDGE_PROBE_BLOCKS:].mean())
        threshold = max(
            math.sqrt(max(p_on, 1e-9) * max(p_off, 1e-9)), p_on * 10 ** (-EDGE_FLOOR_DB / 10)
        )
        above = np.nonzero(power >= threshold)[0]
        if above.size == 0:
            return start_ms
        idx = int(above[0]) if rising else int(above[-1]) + 1
        base_ms = start_ms - (prev.size - offset) * 1000.0 / self.rate
        return base_ms + idx

    def _transition(self, fam: _Family, now_on: bool, edge_ms: float) -> None:
        assert fam.durations is not None
        duration = max(edge_ms - fam.start_ms, 0.0)
        if fam.on or fam.durations:  # the first off part (before any tone) is not recorded
            fam.durations.append(duration)
        fam.on = now_on
        fam.start_ms = edge_ms

    def _check_targets(self, end_ms: float, changed: set[int], events: list[ProgressEvent]) -> None:
        for i, fam in enumerate(self._families):
            assert fam.durations is not None
            current = end_ms - fam.start_ms
            active = self._active.get(i)
            if active is not None:
                # Stopped: off (or, for a cadenced tone, on) for longer than it allows.
                too_long_off = not fam.on and current > self._stop_after_ms(active)
                too_long_on = active.cadence is not None and fam.on and current > self._steady_ms[i]
                if too_long_off or too_long_on:
                    assert fam.heard_ms is not None
                    events.append(ToneStopped(active.name, end_ms, end_ms - fam.heard_ms))
                    del self._active[i]
                    fam.heard_ms = None
                    fam.durations.clear()  # a new on part starts a fresh history
                continue
            if not (i in changed or fam.on or fam.durations):
                continue  # silent and no cadence under way: nothing can match
            for target in self._family_targets[i]:
                measured = self._match(target, fam, current, i in changed)
                if measured is not None:
                    self._active[i] = target
                    fam.heard_ms = end_ms - sum(measured)
                    period = measured
                    if target.cadence is not None:
                        period = measured[-len(target.cadence.on_off_ms) :]
                    events.append(
                        ToneDetected(
                            target.name,
                            end_ms,
                            tuple(round(d, 1) for d in period),
                            round(fam.level_dbm0, 1),
                            fam.freqs,
                        )
                    )
                    break

    def _match(
        self, target: _Target, fam: _Family, current: float, changed: bool
    ) -> tuple[float, ...] | None:
        """The durations that make ``target`` recognised now, or None."""
        assert fam.durations is not None
        if target.cadence is None:
            if fam.on and current >= self._steady_ms[target.family]:
                return (current,)
            return None
        count = target.cycles * len(target.cadence.on_off_ms)
        if fam.on and changed:
            # Just turned on: the history ends with a completed off part.
            durs = list(fam.durations)
            if cadence_matches(durs, target.cadence, target.cycles, self.tolerance):
                return tuple(durs[-count:])
        elif not fam.on and target.name == "ringback" and fam.durations:
            # Ringback's off part is long: accept it once it has lasted its minimum.
            durs = list(fam.durations)
            if cadence_matches(
                durs, target.cadence, target.cycles, self.tolerance, open_last=current
            ):
                return (*durs[-count + 1 :], current)
        return None

    def _track_sit(
        self, k: int, start_ms: float, end_ms: float, level_db: float, events: list[ProgressEvent]
    ) -> None:
        """Follow the three rising SIT tones: element 0, then 1, then 2, each of its length."""
        i = self._sit_index
        if k == i:  # nothing heard and nothing pending (most frames), or the same tone
            self._sit_gap = 0
            return
        fits = self._sit_fits
        if i >= 0 and k == i + 1 and fits(i, start_ms - self._sit_start):
            self._sit_parts.append(start_ms - self._sit_start)
            self._sit_index, self._sit_start, self._sit_gap = k, start_ms, 0
            return
        if i >= 0 and k == -1 and self._sit_gap < SIT_GAP_FRAMES:
            self._sit_gap += 1  # a short gap (BT puts 15 ms between the tones)
            return
        if i == len(self._sit) - 1:
            last = start_ms - self._sit_start - self._sit_gap * (end_ms - start_ms)
            if fits(i, last):
                parts = (*self._sit_parts, last)
                events.append(
                    ToneDetected(
                        "sit",
                        end_ms,
                        tuple(round(d, 1) for d in parts),
                        round(level_db, 1),
                        tuple(f for f, _ in self._sit),
                    )
                )
        self._sit_parts = []
        self._sit_index, self._sit_start, self._sit_gap = (
            (0, start_ms, 0) if k == 0 else (-1, 0.0, 0)
        )

    def _sit_fits(self, index: int, duration: float) -> bool:
        want = self._sit[index][1]
        low = want * (1 - SIT_TOLERANCE) - SIT_SLACK_MS
        return low <= duration <= want * (1 + SIT_TOLERANCE) + SIT_SLACK_MS

    def _stop_after_ms(self, target: _Target) -> float:
        if target.cadence is None:
            return 2 * EDGE_SLACK_MS + 60.0  # a steady tone that drops for 60 ms has ended
        return max(target.cadence.off_ms) * (1 + self.tolerance) + EDGE_SLACK_MS + 40.0

    def _activity(
        self, tonal: bool, level_db: float, start_ms: float, n: int, events: list[ProgressEvent]
    ) -> None:
        # Noise floor by minimum statistics: speech pauses within a second and a half.
        # (block minima keep this O(1) per frame instead of a min over 75 values)
        self._block_min = min(self._block_min, level_db)
        self._block_frames += 1
        floor = min(self._block_min, self._blocks_floor)
        if self._block_frames == FLOOR_BLOCK:
            self._floor_blocks.append(self._block_min)
            self._blocks_floor = min(self._floor_blocks)
            self._block_min, self._block_frames = math.inf, 0
        loud = level_db >= max(VOICE_MIN_DBM0, floor + VOICE_OVER_FLOOR_DB)
        voice_frame = loud and not tonal
        self._voice_hist.append(voice_frame)
        end_ms = start_ms + n * 1000.0 / self.rate
        if voice_frame or tonal:
            self._quiet_since = None
            self._silence_reported = False
        elif self._quiet_since is None:
            self._quiet_since = start_ms
        if not self._voice and sum(self._voice_hist) >= VOICE_FRAMES:
            self._voice = True
            # Voice in a tone's off part: the far end answered (or the tone gave way).
            for i, target in list(self._active.items()):
                fam = self._families[i]
                if not fam.on and fam.heard_ms is not None:
                    events.append(ToneStopped(target.name, end_ms, end_ms - fam.heard_ms))
                    del self._active[i]
                    fam.heard_ms = None
                    assert fam.durations is not None
                    fam.durations.clear()
            events.append(VoiceDetected(end_ms, round(level_db, 1)))
        if self._quiet_since is not None:
            quiet = end_ms - self._quiet_since
            if quiet >= max(self.silence_ms, self._quiet_hold_ms) and not self._silence_reported:
                self._silence_reported = True
                self._voice = False
                self._voice_hist.clear()
                events.append(SilenceDetected(self._quiet_since, quiet))


def analyse(
    pcm: npt.ArrayLike,
    profile: CountryProfile,
    rate: int = SAMPLE_RATE,
    *,
    busy_cycles: int = BUSY_CYCLES,
    ringback_cycles: int = RINGBACK_CYCLES,
    tolerance: float = CADENCE_TOLERANCE,
    silence_ms: float = SILENCE_MS,
) -> list[ProgressEvent]:
    """Run a whole recording through a detector in 20 ms frames (for tools and tests)."""
    detector = CallProgressDetector(
        profile,
        rate,
        busy_cycles=busy_cycles,
        ringback_cycles=ringback_cycles,
        tolerance=tolerance,
        silence_ms=silence_ms,
    )
    samples = np.asarray(pcm)
    step = rate // 50
    events: list[ProgressEvent] = []
    for start in range(0, samples.size, step):
        events.extend(detector.feed(samples[start : start + step]))
    return events
