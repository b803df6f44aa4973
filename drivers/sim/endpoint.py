"""Pieces shared by the simulated handsets and exchange lines: a scheduler and audio I/O."""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drivers.sim.tones import (
    DBM0_PEAK,
    FRAME_MS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    TONE_LEVEL_DBM0,
    BufferSource,
    Pcm,
    Tone,
    ToneSource,
    dtmf,
    read_wav,
    write_wav,
)

log = logging.getLogger(__name__)

RECENT_SECONDS = 10  # what an endpoint heard lately, kept for tests and `status`
MAX_RECORD_SECONDS = 600  # a recording stops by itself after ten minutes
DBM0_RMS = DBM0_PEAK / math.sqrt(2)  # RMS of a 0 dBm0 sine
MAX_LOG = 1000  # hook and ring history kept per handset, dialled numbers per line


class SimError(ValueError):
    """A simulator request that cannot be carried out (names what was wrong)."""


Action = Callable[[float], None]


@dataclass(order=True)
class _Entry:
    when: float
    order: int
    action: Action = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Timer:
    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    def cancel(self) -> None:
        self._entry.cancelled = True

    @property
    def when(self) -> float:
        return self._entry.when


class Scheduler:
    """Actions at given times; each runs with its own scheduled time, in time order."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._order = itertools.count()

    def at(self, when: float, action: Action) -> Timer:
        entry = _Entry(when, next(self._order), action)
        heapq.heappush(self._heap, entry)
        return Timer(entry)

    def next_deadline(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].when if self._heap else None

    def run_due(self, now: float) -> None:
        while self._heap and self._heap[0].when <= now:
            entry = heapq.heappop(self._heap)
            if not entry.cancelled:
                entry.action(entry.when)


class AudioEndpoint:
    """Something that talks into a line and listens to it: a handset or a far-end party.

    Plays a tone, a WAV file or DTMF digits; keeps the last ``RECENT_SECONDS`` it heard and
    records to a WAV file on request.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._source: ToneSource | BufferSource | None = None
        self._digits: deque[BufferSource] = deque()
        self._recent: deque[Pcm] = deque(maxlen=RECENT_SECONDS * 1000 // FRAME_MS)
        self._levels: deque[tuple[float, float]] = deque(maxlen=RECENT_SECONDS * 1000 // FRAME_MS)
        self._recording: list[Pcm] | None = None
        self._record_path: Path | None = None
        self._record_frames = 0
        self._record_limit = 0
        self.recordings_written: list[Path] = []

    # --- talking --------------------------------------------------------------------

    def play_tone(
        self,
        freqs: tuple[float, ...],
        *,
        level_dbm0: float = TONE_LEVEL_DBM0,
        cadence: tuple[tuple[int, int], ...] = (),
    ) -> None:
        """Play a tone until :meth:`stop_playing` or another play."""
        try:
            self._source = ToneSource(Tone(tuple(freqs), cadence, level_dbm0))
        except ValueError as exc:
            raise SimError(str(exc)) from None

    def play_wav(self, path: Path) -> float:
        """Play a WAV file once; returns its duration in seconds."""
        try:
            pcm = read_wav(path)
        except (OSError, ValueError) as exc:
            raise SimError(f"cannot play {path}: {exc}") from None
        self._source = BufferSource(pcm)
        return len(pcm) / SAMPLE_RATE

    def play_pcm(self, pcm: Pcm) -> None:
        self._source = BufferSource(pcm.astype(np.int16))

    def stop_playing(self) -> None:
        self._source = None
        self._digits.clear()

    def _send_dtmf(self, digits: str) -> None:
        try:
            self._digits.append(BufferSource(dtmf(digits)))
        except ValueError as exc:
            raise SimError(str(exc)) from None

    @property
    def playing(self) -> bool:
        return bool(self._digits) or (
            self._source is not None
            and not (isinstance(self._source, BufferSource) and self._source.done)
        )

    def talk_frame(self) -> Pcm:
        """The next 20 ms this endpoint puts on the line (DTMF digits take precedence)."""
        while self._digits:
            if not self._digits[0].done:
                return self._digits[0].read(FRAME_SAMPLES)
            self._digits.popleft()
        if self._source is None:
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        return self._source.read(FRAME_SAMPLES)

    # --- listening ------------------------------------------------------------------

    def record(self, path: Path | None = None, *, seconds: float | None = None) -> None:
        """Start recording what this endpoint hears; written to ``path`` on stop."""
        if self._recording is not None:
            raise SimError(f"{self.name} is already recording")
        limit = MAX_RECORD_SECONDS if seconds is None else seconds
        if not 0 < limit <= MAX_RECORD_SECONDS:
            raise SimError(f"recording length {seconds} s outside 0..{MAX_RECORD_SECONDS}")
        if path is not None and not path.parent.is_dir():
            raise SimError(f"cannot record to {path}: no directory {path.parent}")
        self._recording = []
        self._record_path = path
        self._record_frames = 0
        self._record_limit = round(limit * 1000 / FRAME_MS)

    @property
    def recording(self) -> bool:
        return self._recording is not None

    def stop_recording(self) -> Pcm:
        """Stop recording; returns the samples (and writes the file if one was given)."""
        if self._recording is None:
            raise SimError(f"{self.name} is not recording")
        pcm = np.concatenate(self._recording) if self._recording else np.zeros(0, dtype=np.int16)
        path = self._record_path
        self._recording = None
        self._record_path = None
        if path is not None:
            write_wav(path, pcm)
            self.recordings_written.append(path)
            log.info("%s: recorded %.2f s to %s", self.name, len(pcm) / SAMPLE_RATE, path)
        return pcm

    def heard(self, ms: int = RECENT_SECONDS * 1000) -> Pcm:
        """The last ``ms`` milliseconds this endpoint heard (at most RECENT_SECONDS)."""
        frames = list(self._recent)[-max(1, ms // FRAME_MS) :]
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)

    def first_sound_after(self, when: float, threshold_dbm0: float = -40.0) -> float | None:
        """Time of the first frame heard after ``when`` louder than ``threshold_dbm0``
        (within the last RECENT_SECONDS): e.g. how long after off-hook dial tone came."""
        for at, level in self._levels:
            if at > when and level >= threshold_dbm0:
                return at
        return None

    def hear_frame(self, pcm: Pcm, when: float | None = None) -> None:
        """20 ms arriving at this endpoint; ``when`` (the card's clock) dates it."""
        self._recent.append(pcm)
        if when is not None:
            rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0
            level = 20 * math.log10(rms / DBM0_RMS) if rms > 0 else -math.inf
            self._levels.append((when, level))
        if self._recording is not None:
            self._recording.append(pcm)
            self._record_frames += 1
            if self._record_frames >= self._record_limit:
                self.stop_recording()
