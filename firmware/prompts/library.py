"""Finding a prompt's audio: a lookup that never misses.

For ``(name, language)`` the library tries, in order:

1. ``<custom>/<language>/<name>.wav`` then ``<custom>/<name>.wav``: the installer's own
   recordings (any WAV that :func:`firmware.dsp.wavio.read_wav` reads, at any rate; it is
   resampled to 8 kHz);
2. ``<generated>/<language>/<name>.wav``: the build's espeak-ng rendering;
3. ``<generated>/en/<name>.wav``: English;
4. an error tone (ITU-T E.180 special information tone) made here, with a logged warning.

A custom file that cannot be read is skipped with a warning, never played as noise.
Decoded prompts are kept in a bounded LRU cache; :meth:`PromptLibrary.invalidate` drops
it after an upload.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from firmware.dsp.levels import peak_for_dbm0
from firmware.dsp.pcm import SAMPLE_RATE, Pcm, to_pcm
from firmware.dsp.wavio import WavError, read_wav, resample
from firmware.prompts.catalogue import DEFAULT_LANGUAGE, NAME_RE, language_for

log = logging.getLogger(__name__)

CUSTOM_SUBDIR: Final = "prompts"  # <data dir>/prompts holds the installer's recordings
CACHE_ENTRIES: Final = 256  # decoded prompts kept; ~4 MB at 1 s average
MAX_CUSTOM_BYTES: Final = 20 * 1024 * 1024  # a 20 MB upload is already 10 min at 16 kHz
ENV_DIR: Final = "PONTE_PROMPTS_DIR"
INSTALLED_DIR: Final = Path(sys.prefix) / "share" / "ponte" / "prompts"
CHECKOUT_DIR: Final = Path(__file__).resolve().parents[2] / "build" / "prompts"
# ITU-T E.180 section 2.3 (special information tone): 950, 1400, 1800 Hz, 330 ms each
# with 30 ms gaps; a call that hears it knows something went wrong, and it is not the
# short "beep" that voicemail uses to say "speak now".
SIT_FREQS_HZ: Final = (950.0, 1400.0, 1800.0)
SIT_SEGMENT_MS: Final = 330
SIT_GAP_MS: Final = 30
SIT_LEVEL_DBM0: Final = -24.0  # E.180: -24 dBm0 each segment, nominal


class Source(enum.Enum):
    CUSTOM = "custom"
    GENERATED = "generated"
    ENGLISH = "generated (English fallback)"
    ERROR_TONE = "error tone"


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    language: str
    pcm: Pcm  # 8 kHz, 16-bit mono
    source: Source
    path: Path | None  # None for the error tone

    @property
    def seconds(self) -> float:
        return self.pcm.size / SAMPLE_RATE


def error_tone() -> Pcm:
    """The E.180 special information tone, once, with smooth edges."""
    n = SAMPLE_RATE * SIT_SEGMENT_MS // 1000
    gap = np.zeros(SAMPLE_RATE * SIT_GAP_MS // 1000)
    t = np.arange(n) / SAMPLE_RATE
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.005 * SAMPLE_RATE))
    parts: list[np.ndarray] = []
    for f in SIT_FREQS_HZ:
        parts += [peak_for_dbm0(SIT_LEVEL_DBM0) * ramp * np.sin(2 * np.pi * f * t), gap]
    return to_pcm(np.concatenate(parts))


def default_generated_dir() -> Path:
    """``$PONTE_PROMPTS_DIR``, else the installed image's, else this checkout's build."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    if INSTALLED_DIR.is_dir():
        return INSTALLED_DIR
    return CHECKOUT_DIR


class PromptLibrary:
    """Look prompts up by name and language (a catalogue language or a BCP 47 tag)."""

    def __init__(self, generated: Path | None = None, custom: Path | None = None) -> None:
        self.generated = generated if generated is not None else default_generated_dir()
        self.custom = custom
        self._cache: OrderedDict[tuple[str, str], Prompt] = OrderedDict()
        self._error_tone = error_tone()
        self.misses = 0  # lookups answered with the error tone (for diagnostics)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> PromptLibrary:
        """The box's library: generated prompts where the build put them, the installer's
        recordings in ``<data_dir>/prompts``."""
        return cls(default_generated_dir(), Path(data_dir) / CUSTOM_SUBDIR)

    def _candidates(self, name: str, lang: str) -> Iterable[tuple[Path, Source]]:
        if self.custom is not None:
            yield self.custom / lang / f"{name}.wav", Source.CUSTOM
            yield self.custom / f"{name}.wav", Source.CUSTOM
        yield self.generated / lang / f"{name}.wav", Source.GENERATED
        if lang != DEFAULT_LANGUAGE:
            yield self.generated / DEFAULT_LANGUAGE / f"{name}.wav", Source.ENGLISH

    def get(self, name: str, language: str = DEFAULT_LANGUAGE) -> Prompt:
        """The prompt's audio; the error tone (and a warning) when nothing is found."""
        lang = language_for(language)
        key = (name, lang)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        prompt = self._find(name, lang)
        self._cache[key] = prompt
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return prompt

    def sequence(self, names: Iterable[str], language: str = DEFAULT_LANGUAGE) -> Pcm:
        """Several prompts joined into one stream (a menu, a number, an envelope)."""
        parts = [self.get(n, language).pcm for n in names]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def _find(self, name: str, lang: str) -> Prompt:
        if not NAME_RE.match(name):
            # Also what keeps a hostile name ("../../etc/x") out of the file system.
            log.warning("prompt name %r is not a valid name; playing the error tone", name)
            return self._miss(name, lang)
        for path, source in self._candidates(name, lang):
            pcm = self._load(path, source)
            if pcm is not None:
                return Prompt(name, lang, pcm, source, path)
        log.warning(
            "prompt %r (%s) exists nowhere (custom %s, generated %s); playing the error tone",
            name,
            lang,
            self.custom,
            self.generated,
        )
        return self._miss(name, lang)

    def _miss(self, name: str, lang: str) -> Prompt:
        self.misses += 1
        return Prompt(name, lang, self._error_tone, Source.ERROR_TONE, None)

    @staticmethod
    def _load(path: Path, source: Source) -> Pcm | None:
        try:
            size = path.stat().st_size
            if size > MAX_CUSTOM_BYTES:
                raise WavError(f"{size} bytes is more than a prompt may be ({MAX_CUSTOM_BYTES})")
            audio = read_wav(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, WavError) as exc:
            log.warning("prompt file %s (%s) is unusable, skipped: %s", path, source.value, exc)
            return None
        if audio.pcm.size == 0:
            log.warning("prompt file %s (%s) holds no audio, skipped", path, source.value)
            return None
        if audio.rate != SAMPLE_RATE:
            return resample(audio.pcm, audio.rate, SAMPLE_RATE)
        return audio.pcm

    def invalidate(self) -> None:
        """Forget decoded prompts (after a custom prompt was uploaded or removed)."""
        self._cache.clear()

    def missing(self, names: Iterable[str], language: str = DEFAULT_LANGUAGE) -> list[str]:
        """Those of ``names`` that would play the error tone (for diagnostics)."""
        return [n for n in names if self.get(n, language).source is Source.ERROR_TONE]
