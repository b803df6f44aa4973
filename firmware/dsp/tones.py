"""Call-progress tones: tone plans, cadences and a click-free frame-by-frame player.

A tone plan is written in the notation of Asterisk's ``indications.conf`` (so that any
country entry can be checked against that widely deployed file), extended with levels::

    plan      = element ("," element)*
    element   = ["!"] freqs ["/" duration_ms]     "!" = played once, not part of the loop
    freqs     = "0" | component ("+" component)* | carrier "*" modulator [":" depth_percent]
    component = frequency_hz ["@" level_dbm0]

``425/500,0/500`` is a European busy tone, ``350+440`` North American dial tone,
``400*25`` Indian dial tone (400 Hz amplitude-modulated by 25 Hz) and
``!950/330,!1400/330,!1800/330,0`` a special-information tone played once.

Levels are dBm0 *per frequency component*, as national specifications state them; for an
amplitude-modulated tone the level is the power of the whole modulated signal.

:class:`TonePlayer` renders a plan frame by frame.  It keeps every oscillator's phase
across frames, so a frame boundary never shows in the waveform, and it fades components
in and out with short raised-cosine ramps at cadence edges (a hard on/off switch of a
sine is an audible click and splatters energy across the band, which trips DTMF and
caller-ID detectors on the far end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from firmware.dsp.levels import peak_for_dbm0
from firmware.dsp.pcm import FRAME_SAMPLES, SAMPLE_RATE, Pcm, Samples, to_pcm

RAMP_MS: Final = 2.0  # raised-cosine fade at tone edges: short against the 20 ms minimum
#                       tone gaps of E.180, long enough to keep the splatter below -40 dB
DEFAULT_MODULATION_DEPTH: Final = 0.9  # Asterisk indications.conf's fixed depth for f1*f2
MAX_COMPONENTS: Final = 4  # more simultaneous frequencies than any national tone uses
MAX_ELEMENTS: Final = 64  # cap on a plan's length (the longest real plans have ~30)
MAX_DURATION_MS: Final = 60_000.0  # one cadence element of more than a minute is a typo
MIN_FREQ_HZ: Final = 10.0
MAX_LEVEL_DBM0: Final = 3.14  # G.711's largest sine
MIN_LEVEL_DBM0: Final = -60.0


class ToneError(ValueError):
    """A tone plan or cadence that cannot be played, with the reason."""


@dataclass(frozen=True, slots=True)
class Component:
    """One sinusoid of a tone (or, with ``modulation_hz``, one AM tone)."""

    freq_hz: float
    level_dbm0: float
    modulation_hz: float | None = None
    modulation_depth: float = DEFAULT_MODULATION_DEPTH

    def __post_init__(self) -> None:
        if not MIN_FREQ_HZ <= self.freq_hz:
            raise ToneError(f"frequency {self.freq_hz} Hz is below {MIN_FREQ_HZ} Hz")
        if not MIN_LEVEL_DBM0 <= self.level_dbm0 <= MAX_LEVEL_DBM0:
            raise ToneError(
                f"level {self.level_dbm0} dBm0 is outside {MIN_LEVEL_DBM0}..{MAX_LEVEL_DBM0}"
            )
        if self.modulation_hz is not None:
            if not 0 < self.modulation_hz < self.freq_hz:
                raise ToneError(
                    f"modulating frequency {self.modulation_hz} Hz must be between 0 and "
                    f"the carrier {self.freq_hz} Hz"
                )
            if not 0 < self.modulation_depth <= 1:
                raise ToneError(f"modulation depth {self.modulation_depth} is not in (0, 1]")

    @property
    def frequencies(self) -> tuple[float, ...]:
        """The spectral lines this component puts on the line."""
        if self.modulation_hz is None:
            return (self.freq_hz,)
        return (self.freq_hz - self.modulation_hz, self.freq_hz, self.freq_hz + self.modulation_hz)

    @property
    def power_dbm0(self) -> float:
        return self.level_dbm0


@dataclass(frozen=True, slots=True)
class Segment:
    """One element of a plan: what sounds and for how long (None = for ever)."""

    components: tuple[Component, ...]
    duration_ms: float | None
    once: bool = False

    def __post_init__(self) -> None:
        if len(self.components) > MAX_COMPONENTS:
            raise ToneError(f"{len(self.components)} frequencies; at most {MAX_COMPONENTS}")
        if self.duration_ms is not None and not 0 < self.duration_ms <= MAX_DURATION_MS:
            raise ToneError(f"duration {self.duration_ms} ms is not in (0, {MAX_DURATION_MS}]")

    @property
    def silent(self) -> bool:
        return not self.components

    @property
    def power_dbm0(self) -> float:
        """Total power of the segment while it sounds (sum of its components)."""
        if not self.components:
            return -math.inf
        total = sum(10 ** (c.level_dbm0 / 10) for c in self.components)
        return 10 * math.log10(total)


@dataclass(frozen=True, slots=True)
class Cadence:
    """An on/off pattern in milliseconds: ``(on, off, on, off, ...)``, repeated."""

    on_off_ms: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.on_off_ms or len(self.on_off_ms) % 2:
            raise ToneError(f"a cadence needs on/off pairs, got {len(self.on_off_ms)} durations")
        if len(self.on_off_ms) > MAX_ELEMENTS:
            raise ToneError(f"cadence of {len(self.on_off_ms)} durations; at most {MAX_ELEMENTS}")
        for d in self.on_off_ms:
            if not 0 < d <= MAX_DURATION_MS:
                raise ToneError(f"cadence duration {d} ms is not in (0, {MAX_DURATION_MS}]")

    @property
    def period_ms(self) -> float:
        return float(sum(self.on_off_ms))

    @property
    def on_ms(self) -> tuple[float, ...]:
        return self.on_off_ms[0::2]

    @property
    def off_ms(self) -> tuple[float, ...]:
        return self.on_off_ms[1::2]

    def is_on(self, t_ms: float) -> bool:
        """Whether the pattern is in an 'on' part ``t_ms`` after it started."""
        t = t_ms % self.period_ms
        for i, d in enumerate(self.on_off_ms):
            if t < d:
                return i % 2 == 0
            t -= d
        return False


def _number(text: str, what: str, element: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ToneError(f"element {element!r}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ToneError(f"element {element!r}: {what} {text!r} is not finite")
    return value


def _parse_freqs(text: str, level: float, element: str) -> tuple[Component, ...]:
    if text.strip() == "0":
        return ()
    if "*" in text:
        carrier_text, _, mod_text = text.partition("*")
        depth = DEFAULT_MODULATION_DEPTH
        if ":" in mod_text:
            mod_text, _, depth_text = mod_text.partition(":")
            depth = _number(depth_text, "modulation depth", element) / 100
        carrier_text, _, level_text = carrier_text.partition("@")
        comp_level = _number(level_text, "level", element) if level_text else level
        return (
            Component(
                _number(carrier_text, "carrier frequency", element),
                comp_level,
                _number(mod_text, "modulating frequency", element),
                depth,
            ),
        )
    comps = []
    for part in text.split("+"):
        freq_text, _, level_text = part.partition("@")
        comp_level = _number(level_text, "level", element) if level_text else level
        comps.append(Component(_number(freq_text, "frequency", element), comp_level))
    return tuple(comps)


@dataclass(frozen=True, slots=True)
class ToneSpec:
    """A tone as a sequence of segments: once-only ones first, then the repeating loop."""

    segments: tuple[Segment, ...]
    name: str = ""
    plan: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.segments:
            raise ToneError(f"tone {self.name!r} has no elements")
        if len(self.segments) > MAX_ELEMENTS:
            raise ToneError(
                f"tone {self.name!r}: {len(self.segments)} elements; at most {MAX_ELEMENTS}"
            )
        seen_loop = False
        for i, seg in enumerate(self.segments):
            if seg.duration_ms is None and i != len(self.segments) - 1:
                raise ToneError(
                    f"tone {self.name!r}: element {i + 1} has no duration but is not the last"
                )
            if seg.duration_ms is None and seg.once:
                raise ToneError(f"tone {self.name!r}: a continuous element cannot be once-only")
            if seg.once and seen_loop:
                raise ToneError(
                    f"tone {self.name!r}: once-only ('!') element {i + 1} after repeating ones"
                )
            seen_loop = seen_loop or not seg.once

    @classmethod
    def parse(cls, plan: str, level_dbm0: float, name: str = "") -> ToneSpec:
        """Read a tone plan (see the module docstring); ``level_dbm0`` per component."""
        if not isinstance(plan, str) or not plan.strip():
            raise ToneError(f"tone {name!r}: empty plan")
        elements = [e.strip() for e in plan.split(",")]
        if len(elements) > MAX_ELEMENTS:
            raise ToneError(f"tone {name!r}: {len(elements)} elements; at most {MAX_ELEMENTS}")
        segments = []
        for element in elements:
            if not element:
                raise ToneError(f"tone {name!r}: empty element in {plan!r}")
            once = element.startswith("!")
            body = element[1:] if once else element
            freqs, slash, dur = body.partition("/")
            try:
                duration = _number(dur, "duration", element) if slash else None
                segments.append(Segment(_parse_freqs(freqs, level_dbm0, element), duration, once))
            except ToneError as exc:
                why = str(exc) if str(exc).startswith("element ") else f"element {element!r}: {exc}"
                raise ToneError(f"tone {name!r}: {why}") from None
        return cls(tuple(segments), name, plan)

    @property
    def loop_start(self) -> int | None:
        """Index of the first repeating segment (None: the tone plays once and stops)."""
        for i, seg in enumerate(self.segments):
            if not seg.once:
                return i
        return None

    @property
    def continuous(self) -> bool:
        """A steady tone (one sounding element and no cadence), like most dial tones."""
        loop = self.loop_segments
        return len(loop) == 1 and loop[0].duration_ms is None and not loop[0].silent

    @property
    def loop_segments(self) -> tuple[Segment, ...]:
        start = self.loop_start
        return () if start is None else self.segments[start:]

    @property
    def frequencies(self) -> tuple[float, ...]:
        """Every carrier frequency the tone uses, sorted (detectors tune to these)."""
        return tuple(sorted({c.freq_hz for s in self.segments for c in s.components}))

    @property
    def duration_ms(self) -> float | None:
        """Total length of a once-only tone; None for a tone that repeats."""
        if self.loop_start is not None:
            return None
        return float(sum(s.duration_ms or 0.0 for s in self.segments))

    @property
    def cadence(self) -> Cadence | None:
        """The repeating on/off pattern (None for a steady or once-only tone).

        Consecutive sounding elements (950/1400/1800 of a SIT, 350+440 then 440 of a UK
        special dial tone) count as one 'on' part.
        """
        loop = self.loop_segments
        if not loop or any(s.duration_ms is None for s in loop):
            return None
        parts: list[list[float | bool]] = []
        for seg in loop:
            on = not seg.silent
            assert seg.duration_ms is not None
            if parts and parts[-1][0] == on:
                parts[-1][1] = float(parts[-1][1]) + seg.duration_ms
            else:
                parts.append([on, seg.duration_ms])
        if len(parts) > 1 and parts[0][0] == parts[-1][0]:  # wrap-around merge
            parts[0][1] = float(parts[0][1]) + float(parts[-1][1])
            parts.pop()
        if len(parts) < 2:
            return None  # all sound or all silence: not a cadence
        if not parts[0][0]:
            parts = parts[1:] + parts[:1]
        return Cadence(tuple(float(p[1]) for p in parts))


class TonePlayer:
    """Renders a :class:`ToneSpec` frame by frame, phase-continuous and click-free.

    ``level_offset_db`` shifts every component (a line's transmit gain).  After a once-only
    tone has ended, frames are silent and :attr:`finished` is true.
    """

    def __init__(
        self,
        spec: ToneSpec,
        rate: int = SAMPLE_RATE,
        *,
        ramp_ms: float = RAMP_MS,
        level_offset_db: float = 0.0,
    ) -> None:
        if rate <= 0:
            raise ToneError(f"sample rate must be positive, got {rate}")
        nyquist = rate / 2
        for f in (f for s in spec.segments for c in s.components for f in c.frequencies):
            if f >= nyquist:
                raise ToneError(f"tone {spec.name!r}: {f} Hz is above Nyquist at {rate} Hz")
        if not 0 <= ramp_ms <= 20:
            raise ToneError(f"ramp of {ramp_ms} ms is not in 0..20 ms")
        self.spec = spec
        self.rate = rate
        self._gain = 10 ** (level_offset_db / 20)
        self._ramp = max(round(ramp_ms * rate / 1000), 0)
        self._lengths = [
            None if s.duration_ms is None else max(round(s.duration_ms * rate / 1000), 1)
            for s in spec.segments
        ]
        self._index: int | None = 0
        self._pos = 0  # samples into the current segment
        self._prev: int | None = None  # segment played before the current one
        self._phase: dict[Component, tuple[float, float]] = {}
        self.samples_out = 0

    @property
    def finished(self) -> bool:
        return self._index is None

    def _next_index(self, i: int) -> int | None:
        if i + 1 < len(self.spec.segments):
            return i + 1
        return self.spec.loop_start

    def _components(self, i: int | None) -> frozenset[Component]:
        return frozenset() if i is None else frozenset(self.spec.segments[i].components)

    def next_frame(self, samples: int = FRAME_SAMPLES) -> Pcm:
        """The next ``samples`` samples of the tone as int16 PCM."""
        return to_pcm(self.next_float(samples))

    def next_float(self, samples: int = FRAME_SAMPLES) -> Samples:
        """As :meth:`next_frame` but unrounded (for mixing several sources)."""
        if samples < 0:
            raise ToneError(f"cannot render {samples} samples")
        out = np.zeros(samples, dtype=np.float64)
        done = 0
        while done < samples and self._index is not None:
            i = self._index
            length = self._lengths[i]
            n = samples - done if length is None else min(samples - done, length - self._pos)
            self._render(i, out[done : done + n])
            done += n
            self._pos += n
            if length is not None and self._pos >= length:
                self._prev, self._index, self._pos = i, self._next_index(i), 0
        self.samples_out += samples
        return out

    def _render(self, i: int, out: Samples) -> None:
        seg = self.spec.segments[i]
        if seg.silent:
            return
        n = out.size
        length = self._lengths[i]
        entering = self._components(i) - self._components(self._prev)
        leaving = self._components(i) - self._components(
            None if length is None else self._next_index(i)
        )
        k = np.arange(self._pos, self._pos + n, dtype=np.float64)
        for comp in seg.components:
            if comp in entering and self._pos == 0:
                self._phase[comp] = (0.0, 0.0)
            carrier_phase, mod_phase = self._phase.get(comp, (0.0, 0.0))
            steps = np.arange(n, dtype=np.float64)
            w = 2 * math.pi * comp.freq_hz / self.rate
            wave = np.sin(carrier_phase + w * steps)
            if comp.modulation_hz is None:
                amplitude = peak_for_dbm0(comp.level_dbm0)
                self._phase[comp] = ((carrier_phase + w * n) % (2 * math.pi), 0.0)
            else:
                m = comp.modulation_depth
                wm = 2 * math.pi * comp.modulation_hz / self.rate
                wave *= 1 + m * np.cos(mod_phase + wm * steps)
                # AM power is A^2/2 * (1 + m^2/2): scale so the whole signal has the level.
                amplitude = peak_for_dbm0(comp.level_dbm0) / math.sqrt(1 + m * m / 2)
                self._phase[comp] = (
                    (carrier_phase + w * n) % (2 * math.pi),
                    (mod_phase + wm * n) % (2 * math.pi),
                )
            env = self._envelope(k, length, comp in entering, comp in leaving)
            out += (amplitude * self._gain) * wave * env

    def _envelope(
        self, k: Samples, length: int | None, ramp_in: bool, ramp_out: bool
    ) -> Samples | float:
        ramp = self._ramp if length is None else min(self._ramp, length // 2)
        if ramp <= 0 or not (ramp_in or ramp_out):
            return 1.0
        env = np.ones_like(k)
        if ramp_in:
            head = k < ramp
            env[head] = 0.5 - 0.5 * np.cos(math.pi * (k[head] + 0.5) / ramp)
        if ramp_out and length is not None:
            tail = k >= length - ramp
            env[tail] *= 0.5 - 0.5 * np.cos(math.pi * (length - k[tail] - 0.5) / ramp)
        return env

    def render_ms(self, ms: float) -> Pcm:
        """The next ``ms`` milliseconds in one array (for files and tests)."""
        return self.next_frame(round(ms * self.rate / 1000))


def render(spec: ToneSpec, ms: float, rate: int = SAMPLE_RATE) -> Pcm:
    """``ms`` milliseconds of ``spec`` from its start."""
    return TonePlayer(spec, rate).render_ms(ms)
