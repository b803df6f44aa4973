"""Just enough signal processing for the simulator: tones, DTMF, WAV files.

``drivers`` may not import ``firmware``, so the simulator carries its own small, plain
generators and a Goertzel DTMF detector instead of ``firmware.dsp``'s conformance-grade
ones.  They only need to be good enough for clean simulated lines.
"""

from __future__ import annotations

import math
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000  # ITU-T G.711 narrowband rate, Hz; the card's PCM bus rate
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 160
# Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM (ITU-T G.711: 3.14 dBm0 is full
# scale for mu-law), about 22786; levels below are dBm0 per frequency.
DBM0_PEAK = 32767 * 10 ** (-3.14 / 20)
TONE_LEVEL_DBM0 = -13.0  # typical call-progress tone level per frequency
DTMF_LEVEL_DBM0 = -6.0  # low group; high group the same (no twist)
# ITU-T Q.23 DTMF frequencies.
DTMF_LOW = (697, 770, 852, 941)
DTMF_HIGH = (1209, 1336, 1477, 1633)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")
DTMF_ON_MS = 80  # ITU-T Q.24 asks for at least 40 ms; 80 ms is a comfortable tone
DTMF_OFF_MS = 80
MAX_WAV_SECONDS = 600  # a file longer than this is refused, not loaded into memory

Pcm = npt.NDArray[np.int16]


def dtmf_frequencies(digit: str) -> tuple[int, int]:
    for row, keys in enumerate(DTMF_KEYS):
        col = keys.find(digit.upper())
        if col >= 0:
            return DTMF_LOW[row], DTMF_HIGH[col]
    raise ValueError(f"{digit!r} is not a DTMF digit (0-9 * # A-D)")


def peak(level_dbm0: float) -> float:
    return DBM0_PEAK * 10 ** (level_dbm0 / 20)


def to_pcm(x: npt.ArrayLike) -> Pcm:
    return np.clip(np.rint(np.asarray(x, dtype=np.float64)), -32768, 32767).astype(np.int16)


def sines(freqs: Sequence[float], n: int, *, level_dbm0: float, phase: int = 0) -> Pcm:
    """``n`` samples of a sum of sines, starting at sample index ``phase``."""
    t = (np.arange(n) + phase) / SAMPLE_RATE
    out = np.zeros(n)
    for f in freqs:
        out += peak(level_dbm0) * np.sin(2 * math.pi * f * t)
    return to_pcm(out)


def dtmf(digits: str, *, on_ms: int = DTMF_ON_MS, off_ms: int = DTMF_OFF_MS) -> Pcm:
    """Tone bursts for ``digits`` with silence after each."""
    parts: list[Pcm] = []
    for d in digits:
        parts.append(sines(dtmf_frequencies(d), on_ms * 8, level_dbm0=DTMF_LEVEL_DBM0))
        parts.append(np.zeros(off_ms * 8, dtype=np.int16))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


@dataclass(frozen=True)
class Tone:
    """A cadenced tone: frequencies, level and (on_ms, off_ms) pairs; () is continuous."""

    freqs: tuple[float, ...]
    cadence: tuple[tuple[int, int], ...] = ()
    level_dbm0: float = TONE_LEVEL_DBM0

    def __post_init__(self) -> None:
        if not self.freqs or any(not 0 < f < SAMPLE_RATE / 2 for f in self.freqs):
            raise ValueError(f"tone frequencies {self.freqs} must be within 0..4000 Hz")
        if any(on <= 0 or off < 0 for on, off in self.cadence):
            raise ValueError(f"bad cadence {self.cadence}")


class ToneSource:
    """Endless samples of a :class:`Tone`, phase-continuous across reads."""

    def __init__(self, tone: Tone) -> None:
        self.tone = tone
        self._pos = 0
        self._period = sum(on + off for on, off in tone.cadence) * 8

    def read(self, n: int) -> Pcm:
        out = sines(self.tone.freqs, n, level_dbm0=self.tone.level_dbm0, phase=self._pos)
        if self._period:
            gate = np.zeros(self._period, dtype=bool)
            at = 0
            for on, off in self.tone.cadence:
                gate[at : at + on * 8] = True
                at += (on + off) * 8
            idx = (np.arange(n) + self._pos) % self._period
            out = np.where(gate[idx], out, 0).astype(np.int16)
        self._pos += n
        return out


class BufferSource:
    """Finite samples (a WAV file, DTMF digits); silence once exhausted."""

    def __init__(self, pcm: Pcm) -> None:
        self._pcm = pcm
        self._pos = 0

    @property
    def done(self) -> bool:
        return self._pos >= len(self._pcm)

    def read(self, n: int) -> Pcm:
        chunk = self._pcm[self._pos : self._pos + n]
        self._pos += len(chunk)
        if len(chunk) < n:
            chunk = np.concatenate([chunk, np.zeros(n - len(chunk), dtype=np.int16)])
        return chunk


def read_wav(path: Path) -> Pcm:
    """A WAV file as 8 kHz mono int16: channels are mixed, other rates resampled."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise ValueError(f"{path}: {8 * w.getsampwidth()}-bit samples, need 16-bit PCM")
            rate, channels, frames = w.getframerate(), w.getnchannels(), w.getnframes()
            if frames > MAX_WAV_SECONDS * rate:
                raise ValueError(f"{path}: longer than {MAX_WAV_SECONDS} s")
            raw = np.frombuffer(w.readframes(frames), dtype="<i2")
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a PCM WAV file ({exc})") from None
    mono = raw.reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE and len(mono):
        n_out = round(len(mono) * SAMPLE_RATE / rate)
        mono = np.interp(np.arange(n_out) * rate / SAMPLE_RATE, np.arange(len(mono)), mono)
    return to_pcm(mono)


def write_wav(path: Path, pcm: Pcm) -> None:
    """Write 8 kHz mono 16-bit; via a temporary file so a reader never sees half of it."""
    tmp = path.with_name(path.name + ".part")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.astype("<i2").tobytes())
    tmp.replace(path)


# Detection thresholds for clean simulated lines: the strongest tone of each group must
# stand 6 dB above the rest of its group; the pair must carry most of the frame's energy;
# a digit needs two consecutive 20 ms frames (40 ms, ITU-T Q.24 minimum duration).
_GROUP_MARGIN = 4.0  # power ratio, ~6 dB
_MIN_ENERGY = peak(-30.0) ** 2 * FRAME_SAMPLES / 2
_MIN_FRAMES = 2


def _basis(n: int) -> npt.NDArray[np.complex128]:
    """DFT rows at the eight DTMF frequencies (a Goertzel bank as one matrix product)."""
    freqs = np.array(DTMF_LOW + DTMF_HIGH, dtype=np.float64)
    basis: npt.NDArray[np.complex128] = np.exp(
        -2j * np.pi * np.outer(freqs, np.arange(n)) / SAMPLE_RATE
    )
    return basis


_BASIS = _basis(FRAME_SAMPLES)


class DtmfDetector:
    """Frame-by-frame DTMF detection; :meth:`feed` returns digits as they end.

    ``(digit, duration_ms)`` tuples; the caller stamps them with its own clock.
    """

    def __init__(self) -> None:
        self._current: str | None = None
        self._frames = 0

    def classify(self, frame: Pcm) -> str | None:
        x = frame.astype(np.float64)
        energy = float(np.dot(x, x))
        if energy < _MIN_ENERGY:
            return None
        basis = _BASIS if len(x) == FRAME_SAMPLES else _basis(len(x))
        power = np.abs(basis @ x) ** 2
        low, high = power[:4], power[4:]
        li, hi = int(np.argmax(low)), int(np.argmax(high))
        if (
            np.sort(low)[-2] * _GROUP_MARGIN > low[li]
            or np.sort(high)[-2] * _GROUP_MARGIN > high[hi]
        ):
            return None
        # Each pure tone of amplitude A gives |X|^2 = (A N / 2)^2; their energy is A^2 N / 2.
        tone_energy = 2 * (low[li] + high[hi]) / len(x)
        if tone_energy < 0.5 * energy:
            return None
        return DTMF_KEYS[li][hi]

    def feed(self, frame: Pcm) -> list[tuple[str, int]]:
        digit = self.classify(frame)
        out: list[tuple[str, int]] = []
        if digit == self._current and digit is not None:
            self._frames += 1
            return out
        if self._current is not None and self._frames >= _MIN_FRAMES:
            out.append((self._current, self._frames * FRAME_MS))
        self._current, self._frames = digit, (1 if digit is not None else 0)
        return out
