"""Rendering the catalogue with espeak-ng into telephone-ready WAV files, cached.

Each prompt becomes ``<out>/<lang>/<name>.wav``: 8 kHz, 16-bit, mono, leading and trailing
silence trimmed to :data:`PAD_MS`, active speech level set to :data:`SPEECH_LEVEL_DBM0`.
``<out>/<lang>/manifest.json`` records, per prompt, the hash of everything that went into
it (text, voice, espeak-ng version, this pipeline's settings); a rebuild renders only the
prompts whose hash changed, and removes files whose prompt left the catalogue.  Files are
written atomically (temporary file, rename), so an interrupted build leaves nothing torn.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from firmware.dsp.levels import power_dbm0, rms_for_dbm0
from firmware.dsp.pcm import INT16_MAX, SAMPLE_RATE, Pcm, to_pcm
from firmware.dsp.wavio import WavError, read_wav, resample, write_wav
from firmware.prompts.catalogue import LANGUAGES, VOICES, Catalogue, catalogue

log = logging.getLogger(__name__)

PIPELINE_VERSION: Final = 1  # bump when the processing below changes what a file holds
RATE: Final = SAMPLE_RATE  # 8 kHz: narrowband telephony (ITU-T G.711)
# ITU-T P.56 measures speech at about -26 dBov for network tests; prompts on the PSTN are
# usually played a little hotter; -20 dBm0 active level leaves > 15 dB for speech peaks.
SPEECH_LEVEL_DBM0: Final = -20.0
PEAK_LIMIT: Final = int(INT16_MAX * 0.89)  # -1 dBFS: the resampler's ripple must not clip
FRAME_MS: Final = 10
# Active-speech frames (a simplification of ITU-T P.56 method B): louder than the floor
# and within ACTIVE_RANGE_DB of the loudest frame.  Measured on espeak-ng 1.51 output:
# its pauses sit below -60 dBm0, its quietest voiced frames above -45 dBm0.
SILENCE_FLOOR_DBM0: Final = -55.0
ACTIVE_RANGE_DB: Final = 35.0
PAD_MS: Final = 40  # silence kept before and after the speech, so that joins sound natural
ESPEAK: Final = "espeak-ng"
ESPEAK_SPEED_WPM: Final = 160  # espeak-ng's 175 is brisk for a telephone line
ESPEAK_TIMEOUT_S: Final = 60.0
MANIFEST: Final = "manifest.json"
MAX_PROMPT_S: Final = 60.0  # refuse a synthesiser result longer than this


class PromptBuildError(RuntimeError):
    """A prompt could not be rendered (names the prompt, language and the reason)."""


class Synthesizer(Protocol):
    """Text to WAV bytes; the version goes into the cache key."""

    def version(self) -> str: ...

    def synthesize(self, text: str, voice: str) -> bytes: ...


class EspeakNg:
    """The ``espeak-ng`` command line (Debian package espeak-ng)."""

    def __init__(self, command: str = ESPEAK, speed_wpm: int = ESPEAK_SPEED_WPM) -> None:
        path = shutil.which(command)
        if path is None:
            raise PromptBuildError(
                f"{command} is not installed (Debian package espeak-ng; `make deps` installs it)"
            )
        self.command = path
        self.speed_wpm = speed_wpm

    def version(self) -> str:
        out = subprocess.run(
            [self.command, "--version"], capture_output=True, timeout=ESPEAK_TIMEOUT_S
        )
        return f"{out.stdout.decode(errors='replace').strip()} speed={self.speed_wpm}"

    def synthesize(self, text: str, voice: str) -> bytes:
        # -b 1: the text is UTF-8; --stdout: a WAV file on stdout, no sound device.
        args = [self.command, "-v", voice, "-s", str(self.speed_wpm), "-b", "1", "--stdout"]
        try:
            out = subprocess.run(
                [*args, text], capture_output=True, timeout=ESPEAK_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise PromptBuildError(f"{ESPEAK} took over {ESPEAK_TIMEOUT_S} s") from None
        if out.returncode != 0:
            err = out.stderr.decode(errors="replace").strip()
            raise PromptBuildError(f"{ESPEAK} -v {voice} failed ({out.returncode}): {err}")
        return out.stdout


def _frame_dbm0(pcm: Pcm) -> np.ndarray:
    n = RATE * FRAME_MS // 1000
    frames = pcm[: pcm.size // n * n].astype(np.float64).reshape(-1, n)
    if frames.size == 0:
        return np.zeros(0)
    return np.array([power_dbm0(f) for f in frames])


def condition(wav: bytes) -> Pcm:
    """Synthesiser output -> 8 kHz speech, trimmed and at :data:`SPEECH_LEVEL_DBM0`."""
    audio = read_wav(wav)
    if audio.seconds > MAX_PROMPT_S:
        raise WavError(f"{audio.seconds:.0f} s is longer than a prompt may be ({MAX_PROMPT_S} s)")
    x = resample(audio.pcm, audio.rate, RATE).astype(np.float64)
    levels = _frame_dbm0(to_pcm(x))
    loud = levels.max() if levels.size else -120.0
    active = levels > max(SILENCE_FLOOR_DBM0, loud - ACTIVE_RANGE_DB)
    if not active.any():
        raise WavError("no speech in the synthesiser's output")
    n = RATE * FRAME_MS // 1000
    first, last = int(np.argmax(active)), int(active.size - 1 - np.argmax(active[::-1]))
    pad = RATE * PAD_MS // 1000
    x = x[max(first * n - pad, 0) : min((last + 1) * n + pad, x.size)]
    power = float(np.mean(10 ** (levels[active] / 10)))  # mean power of the active frames
    gain = rms_for_dbm0(SPEECH_LEVEL_DBM0) / rms_for_dbm0(10 * np.log10(power))
    peak = float(np.max(np.abs(x))) * gain
    if peak > PEAK_LIMIT:
        gain *= PEAK_LIMIT / peak
    return to_pcm(x * gain)


@dataclass(frozen=True, slots=True)
class BuildReport:
    languages: tuple[str, ...]
    rendered: int  # prompts synthesised this time
    cached: int  # prompts whose file was already current
    removed: int  # files of prompts no longer in the catalogue
    seconds: float


def cache_key(text: str, voice: str, engine_version: str) -> str:
    blob = json.dumps(
        {
            "text": text,
            "voice": voice,
            "engine": engine_version,
            "pipeline": PIPELINE_VERSION,
            "rate": RATE,
            "level": SPEECH_LEVEL_DBM0,
            "pad": PAD_MS,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}


def build(
    out_dir: Path,
    languages: Sequence[str] = LANGUAGES,
    *,
    synthesizer: Synthesizer | None = None,
    jobs: int | None = None,
    cat: Catalogue | None = None,
    names: Iterable[str] | None = None,
) -> BuildReport:
    """Render ``names`` (default: the whole catalogue) in each of ``languages``."""
    started = time.monotonic()
    cat = cat or catalogue()
    unknown = [lang for lang in languages if lang not in VOICES]
    if unknown:
        raise PromptBuildError(f"no catalogue language {unknown} (known: {', '.join(VOICES)})")
    wanted = list(cat.names if names is None else names)
    missing = [n for n in wanted if n not in cat]
    if missing:
        raise PromptBuildError(f"not in the catalogue: {', '.join(missing)}")
    synth = synthesizer or EspeakNg()
    engine = synth.version()
    rendered = cached = removed = 0
    for lang in languages:
        lang_dir = out_dir / lang
        lang_dir.mkdir(parents=True, exist_ok=True)
        manifest_path = lang_dir / MANIFEST
        old = _read_manifest(manifest_path)
        new: dict[str, str] = {}
        todo: list[tuple[str, str, str]] = []
        for name in wanted:
            spoken = cat.spoken_language(name, lang)
            text, voice = cat.text(name, lang), VOICES[spoken]
            key = cache_key(text, voice, engine)
            new[name] = key
            if old.get(name) == key and (lang_dir / f"{name}.wav").is_file():
                cached += 1
            else:
                todo.append((name, text, voice))

        def render(item: tuple[str, str, str], lang: str = lang, where: Path = lang_dir) -> None:
            name, text, voice = item
            try:
                pcm = condition(synth.synthesize(text, voice))
            except (PromptBuildError, WavError) as exc:
                raise PromptBuildError(f"prompt {name!r} ({lang}, {text!r}): {exc}") from None
            _atomic_write(where / f"{name}.wav", write_wav(pcm, RATE))

        with ThreadPoolExecutor(max_workers=jobs or (os.cpu_count() or 2) * 2) as pool:
            for _ in pool.map(render, todo):
                rendered += 1
        if names is None:
            for stale in lang_dir.glob("*.wav"):
                if stale.stem not in new:
                    stale.unlink()
                    removed += 1
        else:
            new = {**old, **new}
        _atomic_write(manifest_path, json.dumps(new, indent=0, sort_keys=True).encode())
        log.info("prompts %s: %d rendered, %d cached", lang, len(todo), len(wanted) - len(todo))
    return BuildReport(tuple(languages), rendered, cached, removed, time.monotonic() - started)
