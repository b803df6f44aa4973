"""The built-in music on hold: a short synthesized loop, so that a queue never lacks music.

Computed once at start from fixed notes (no file to go missing or corrupt); a queue's
``music_on_hold`` WAV replaces it.  A gentle arpeggio over four chords (I-vi-IV-V in C),
each note a sine with two weak harmonics and a soft attack and decay, all within the
telephone band (ITU-T G.712: 300-3400 Hz) and at a modest level, so that neither a codec
nor an echo canceller is troubled by it.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from firmware.dsp.levels import peak_for_dbm0
from firmware.dsp.pcm import SAMPLE_RATE, Pcm, to_pcm

# Music on hold no louder than speech: active speech on a line is about -16 dBm0 (ITU-T
# P.56 measurement practice); a peak of -14 dBm0 leaves the loop's average near -18 dBm0.
MOH_PEAK_DBM0: Final = -14.0
NOTE_MS: Final = 300
RAMP_S: Final = 0.015
DECAY_S: Final = 0.35  # a plucked, fading note rather than an organ's drone
# C4..C6 in equal temperament (A4 = 440 Hz, ISO 16).
_C4: Final = 261.63
_CHORDS: Final = (  # semitones above C4: C major, A minor, F major, G major
    (0, 4, 7, 12),
    (-3, 0, 4, 9),
    (-7, -3, 0, 5),
    (-5, -1, 2, 7),
)
# Notes of a chord played up and down; the loop is 4 chords x 2 passes x 8 notes x 300 ms.
_PATTERN: Final = (0, 1, 2, 3, 2, 1, 2, 1)
_PASSES: Final = 2


def _note(hz: float, samples: int, rate: int) -> np.ndarray:
    t = np.arange(samples) / rate
    tone = np.sin(2 * np.pi * hz * t) + 0.3 * np.sin(4 * np.pi * hz * t)
    tone += 0.1 * np.sin(6 * np.pi * hz * t)
    # 15 ms ramps in and out: a note never starts or stops on a step (no click between
    # notes, nor where the loop starts over).
    ramps = np.minimum(1.0, np.minimum(t, t[-1] - t) / RAMP_S)
    envelope = ramps * np.exp(-t / DECAY_S)
    return np.asarray(tone * envelope)


def music_on_hold(rate: int = SAMPLE_RATE) -> Pcm:
    """The loop (about 19 s), 16-bit at ``rate``; it repeats without a click."""
    samples = rate * NOTE_MS // 1000
    notes: list[np.ndarray] = []
    for chord in _CHORDS:
        for _ in range(_PASSES):
            for index in _PATTERN:
                semitones = chord[index] + 12  # an octave up: C5 region, clear on a phone
                hz = _C4 * 2 ** (semitones / 12)
                notes.append(_note(hz, samples, rate))
    music = np.concatenate(notes)
    music *= peak_for_dbm0(MOH_PEAK_DBM0) / np.max(np.abs(music))
    return to_pcm(music)
