"""Speech and music-like audio for talk-off and false-busy measurements.

There are no free talk-off tapes (the Bellcore/Mitel CM7291 speech tape is sold), so the
speech is synthesised with espeak-ng in several languages, voices, speeds and pitches over
a fixed list of sentences.  The distinct speech is a few minutes long; longer corpora are
built by concatenating those clips in a seeded order with varied level, pitch shift,
pauses and occasional two-talker overlap, which makes 30 minutes cheap.

Everything is deterministic for a given espeak-ng version: the clip cache key includes the
``espeak-ng --version`` line, the voice parameters and the text.  Clips are cached as raw
8 kHz int16 files under ``$XDG_CACHE_HOME/ponte-corpus`` (or the ``cache_dir`` passed in),
written atomically so that parallel test workers may share a cache.

This module runs an external program, so it lives in ``bench/`` and never in ``firmware``.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from firmware.dsp.levels import rms_for_dbm0
from firmware.dsp.pcm import SAMPLE_RATE, Pcm, Samples, to_pcm

ESPEAK: Final = "espeak-ng"
ESPEAK_TIMEOUT_S: Final = 30.0
MAX_MINUTES: Final = 240.0  # cap on any corpus we build (int16 at 8 kHz: ~230 MB)

# Active speech level of talkers on the network: ITU-T P.56 measurements put the average
# talker near -20 dBm0 with a spread of several dB; we also include loud talkers.
SPEECH_LEVELS_DBM0: Final = (-28.0, -24.0, -20.0, -17.0, -14.0, -11.0)
MUSIC_LEVELS_DBM0: Final = (-26.0, -20.0, -15.0, -11.0)
# Pitch/tempo factors applied on top of espeak's own pitch and speed settings.
PITCH_FACTORS: Final = (0.8, 0.9, 1.0, 1.0, 1.12, 1.25)

SENTENCES: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "Please call me back at nine o'clock tomorrow morning, it is rather urgent.",
        "Would you like some more tea, or shall we go for a walk along the beach?",
        "Our meeting has been moved to Thursday afternoon in the small conference room.",
        "I never said she stole my money, but somebody certainly did.",
        "Hello, hello? Can you hear me? The line is very noisy today.",
    ),
    "en-us": (
        "Thank you for calling, all of our representatives are busy helping other customers.",
        "Yeah, I think we should probably order pizza again tonight, what do you say?",
        "The weather service predicts heavy rain and strong winds over the weekend.",
        "Oh wow, that is amazing! I can't believe you actually finished the whole thing.",
        "Press one for sales, press two for support, or stay on the line for an operator.",
        "My phone number is five five five, one two three, four five six seven.",
    ),
    "de": (
        "Guten Tag, hier spricht der automatische Anrufbeantworter von Familie Müller.",
        "Könnten Sie mir bitte sagen, wie ich am schnellsten zum Hauptbahnhof komme?",
        "Die Sitzung wurde leider auf nächste Woche Mittwoch verschoben.",
        "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich.",
        "Ich rufe später noch einmal an, wenn du wieder zu Hause bist.",
    ),
    "fr": (
        "Bonjour, vous êtes bien sur la messagerie vocale de Jean Dupont.",
        "Pourriez-vous me rappeler dès que possible au sujet de la livraison?",
        "Le vif renard brun saute par-dessus le chien paresseux au bord du lac.",
        "Il fait très beau aujourd'hui, nous allons nous promener dans le parc.",
        "Mais enfin, qu'est-ce que tu racontes? Ce n'est pas du tout ce que j'ai dit!",
    ),
    "es": (
        "Buenos días, le llamo para confirmar la cita del martes por la tarde.",
        "El veloz murciélago hindú comía feliz cardillo y kiwi.",
        "¿Dónde está la estación de autobuses más cercana, por favor?",
        "Mañana vamos a la playa con toda la familia si no llueve.",
        "¡Qué alegría verte otra vez! Hace muchísimo tiempo que no hablábamos.",
    ),
    "it": (
        "Buongiorno, sono Marco, la richiamo più tardi per l'appuntamento.",
        "Quel vituperabile xenofobo zelante assaggia il whisky ed esclama: alleluja!",
        "Potrebbe ripetere il numero di telefono più lentamente, per favore?",
        "Stasera andiamo a mangiare una pizza in quella trattoria vicino al porto.",
        "Mamma mia, che caldo che fa oggi in città!",
    ),
    "pt": (
        "Bom dia, gostaria de falar com o senhor Pereira, por favor.",
        "Luís argüia à Júlia que brações, fé, chá, óxido, pôr, zângão eram palavras.",
        "A reunião foi adiada para a próxima segunda-feira de manhã.",
        "Você sabe onde fica a farmácia mais próxima daqui?",
    ),
    "nl": (
        "Goedemiddag, u spreekt met de klantenservice, waarmee kan ik u helpen?",
        "Pa's wijze lynx bezag vroom het fikse aquaduct.",
        "Ik bel je morgen terug, want nu heb ik helaas geen tijd.",
        "Het regent al de hele week en de fietsen staan buiten.",
    ),
    "pl": (
        "Dzień dobry, dzwonię w sprawie zamówienia z zeszłego tygodnia.",
        "Pchnąć w tę łódź jeża lub ośm skrzyń fig.",
        "Czy mógłby pan powtórzyć numer telefonu jeszcze raz?",
        "Jutro rano jedziemy pociągiem do Krakowa na cały weekend.",
    ),
    "sv": (
        "Hej, det här är Anna, ring mig när du har tid.",
        "Flygande bäckasiner söka hwila på mjuka tuvor.",
        "Mötet är flyttat till torsdag eftermiddag klockan tre.",
        "Vi ska åka till sommarstugan i skärgården nästa vecka.",
    ),
}

# espeak-ng voice variants (``lang+variant``): female and male, plus a few characters.
_HUMAN_VARIANTS: Final = ("", "f1", "f2", "f3", "f4", "f5", "m1", "m2", "m3", "m4", "m7")
VARIANTS: Final = (*_HUMAN_VARIANTS, "klatt", "whisper")  # plus Klatt synthesis, unvoiced
SPEEDS_WPM: Final = (120, 145, 165, 185, 210)
PITCHES: Final = (20, 35, 50, 65, 85)  # espeak-ng -p, 0..99


class CorpusError(RuntimeError):
    """espeak-ng is missing or produced something we cannot read."""


@dataclass(frozen=True, slots=True)
class Clip:
    """One synthesised utterance: what espeak-ng is asked to say and how."""

    lang: str
    text: str
    variant: str
    speed_wpm: int
    pitch: int

    @property
    def voice(self) -> str:
        return f"{self.lang}+{self.variant}" if self.variant else self.lang

    def key(self, version: str) -> str:
        spec = f"{version}\0{self.voice}\0{self.speed_wpm}\0{self.pitch}\0{self.text}"
        return hashlib.sha256(spec.encode()).hexdigest()[:24]


def clips() -> list[Clip]:
    """The fixed list of distinct utterances (about 4 minutes of speech).

    Each sentence is spoken by two different voices; voice, speed and pitch cycle with
    co-prime strides so that every language meets many combinations.
    """
    out: list[Clip] = []
    n = 0
    for lang, sentences in SENTENCES.items():
        for text in sentences:
            for _ in range(2):
                out.append(
                    Clip(
                        lang=lang,
                        text=text,
                        variant=VARIANTS[(n * 5) % len(VARIANTS)],
                        speed_wpm=SPEEDS_WPM[(n * 3) % len(SPEEDS_WPM)],
                        pitch=PITCHES[(n * 2 + n // 5) % len(PITCHES)],
                    )
                )
                n += 1
    return out


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ponte-corpus"


@cache
def espeak_version() -> str:
    try:
        done = subprocess.run(
            [ESPEAK, "--version"], capture_output=True, check=True, timeout=ESPEAK_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CorpusError(f"cannot run {ESPEAK} (Debian package espeak-ng): {exc}") from exc
    return done.stdout.decode(errors="replace").strip()


def resample(x: npt.ArrayLike, n_out: int) -> Samples:
    """Band-limited resampling of a whole signal to ``n_out`` samples (FFT method).

    Keeps only the spectrum both rates can carry, so nothing aliases; the signals here
    start and end in silence, so the implied periodicity does no harm.
    """
    arr = np.asarray(x, dtype=np.float64)
    if n_out <= 0 or arr.size == 0:
        return np.zeros(max(n_out, 0))
    spec = np.fft.rfft(arr)
    keep = min(spec.size, n_out // 2 + 1)
    out_spec = np.zeros(n_out // 2 + 1, dtype=np.complex128)
    out_spec[:keep] = spec[:keep]
    if n_out % 2 == 0 and keep == n_out // 2 + 1:
        out_spec[-1] = out_spec[-1].real  # the new Nyquist bin must be real
    return np.fft.irfft(out_spec, n_out) * (n_out / arr.size)


def _read_wav(data: bytes) -> tuple[Samples, int]:
    """Mono 16-bit samples and rate of a WAV file.

    espeak-ng --stdout writes a streaming header whose sizes are placeholders, which the
    ``wave`` module rejects, so the chunks are walked here and the data chunk runs to the end.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise CorpusError("espeak-ng output is not a RIFF/WAVE file")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == b"fmt ":
            fmt = data[pos + 8 : pos + 24]
            channels = int.from_bytes(fmt[2:4], "little")
            rate = int.from_bytes(fmt[4:8], "little")
            bits = int.from_bytes(fmt[14:16], "little")
            if channels != 1 or bits != 16:
                raise CorpusError(f"espeak-ng wrote {bits}-bit audio with {channels} channels")
        elif cid == b"data":
            if rate <= 0:
                raise CorpusError("espeak-ng output has no fmt chunk before its data")
            body = data[pos + 8 :]
            body = body[: len(body) // 2 * 2]
            return np.frombuffer(body, dtype="<i2").astype(np.float64), rate
        pos += 8 + size + (size & 1)
    raise CorpusError("espeak-ng output has no data chunk")


def synthesize(clip: Clip) -> Pcm:
    """Run espeak-ng for ``clip`` and return 8 kHz int16 PCM (no cache)."""
    cmd = [ESPEAK, "-v", clip.voice, "-s", str(clip.speed_wpm), "-p", str(clip.pitch)]
    cmd += ["--stdout", clip.text]
    try:
        done = subprocess.run(cmd, capture_output=True, check=True, timeout=ESPEAK_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CorpusError(f"{ESPEAK} failed for voice {clip.voice!r}: {exc}") from exc
    samples, rate = _read_wav(done.stdout)
    if samples.size < rate // 10:
        raise CorpusError(f"{ESPEAK} produced {samples.size} samples for {clip.text!r}")
    return to_pcm(resample(samples, round(samples.size * SAMPLE_RATE / rate)))


def load_clip(clip: Clip, cache_dir: Path) -> Pcm:
    """``clip`` as 8 kHz PCM, synthesised once and then read from ``cache_dir``."""
    path = cache_dir / f"{clip.key(espeak_version())}.s16"
    try:
        return np.fromfile(path, dtype="<i2").astype(np.int16)
    except FileNotFoundError:
        pass
    pcm = synthesize(clip)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pcm.astype("<i2").tobytes())
        os.replace(tmp, path)  # atomic: a parallel worker sees the whole file or none
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return pcm


def distinct_speech(cache_dir: Path | None = None) -> list[Pcm]:
    """Every clip of :func:`clips`, trimmed of leading/trailing silence."""
    where = cache_dir if cache_dir is not None else default_cache_dir()
    return [_trim(load_clip(c, where)) for c in clips()]


def _trim(pcm: Pcm, threshold: int = 64) -> Pcm:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    return pcm[loud[0] : loud[-1] + 1] if loud.size else pcm


def _active_rms(x: Samples) -> float:
    """RMS over the louder 20 ms blocks (a rough ITU-T P.56 active level)."""
    n = x.size // 160 * 160
    if n == 0:
        return float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    block_ms = np.mean(x[:n].reshape(-1, 160) ** 2, axis=1)
    active = block_ms[block_ms > 0.01 * block_ms.max()]
    return float(np.sqrt(np.mean(active)))


def _check_minutes(minutes: float) -> int:
    if not (0 < minutes <= MAX_MINUTES) or math.isnan(minutes):
        raise ValueError(f"minutes must be in (0, {MAX_MINUTES}], got {minutes}")
    return round(minutes * 60 * SAMPLE_RATE)


def speech_corpus(minutes: float, cache_dir: Path | None = None, *, seed: int = 0) -> Pcm:
    """``minutes`` of 8 kHz speech in several voices and languages (deterministic).

    Clips follow each other in a seeded order with a level drawn from
    ``SPEECH_LEVELS_DBM0``, a pitch/tempo factor from ``PITCH_FACTORS``, pauses of
    50-700 ms, and now and then a second talker overlapping the first.
    """
    total = _check_minutes(minutes)
    base = distinct_speech(cache_dir)
    rng = np.random.default_rng(seed)
    out = np.zeros(total, dtype=np.float64)
    pos = 0
    while pos < total:
        clip = base[int(rng.integers(len(base)))].astype(np.float64)
        factor = float(rng.choice(PITCH_FACTORS))
        if factor != 1.0:
            clip = resample(clip, round(clip.size * factor))
        gain = rms_for_dbm0(float(rng.choice(SPEECH_LEVELS_DBM0))) / max(_active_rms(clip), 1e-9)
        clip *= gain
        end = min(pos + clip.size, total)
        out[pos:end] += clip[: end - pos]
        if rng.random() < 0.15:  # crosstalk / two people talking at once
            other = base[int(rng.integers(len(base)))].astype(np.float64)
            start = pos + int(rng.integers(max(clip.size // 2, 1)))
            other *= gain * 10 ** (-float(rng.uniform(3, 12)) / 20) / max(_active_rms(other), 1e-9)
            o_end = min(start + other.size, total)
            if start < o_end:
                out[start:o_end] += other[: o_end - start]
        pos = end + int(rng.integers(SAMPLE_RATE // 20, SAMPLE_RATE * 7 // 10))
    return to_pcm(out)


# Equal-tempered scale around A4 = 440 Hz (ISO 16).
A4_HZ: Final = 440.0
CHORDS: Final = ((0, 4, 7), (0, 3, 7), (0, 4, 7, 11), (0, 3, 7, 10), (0, 4, 7, 10), (0, 5, 7))


def _timbre(rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Relative amplitudes of harmonics 1..8 for one instrument."""
    kind = int(rng.integers(4))
    h = np.arange(1, 9, dtype=np.float64)
    if kind == 0:  # flute-like: nearly pure
        amps = np.array([1.0, 0.25, 0.08, 0.03, 0, 0, 0, 0])
    elif kind == 1:  # clarinet-like: odd harmonics
        amps = np.where(h % 2 == 1, 1.0 / h, 0.05 / h)
    elif kind == 2:  # string-like: sawtooth-ish
        amps = 1.0 / h
    else:  # organ/brass-like: strong low harmonics
        amps = np.array([1.0, 0.7, 0.5, 0.35, 0.2, 0.12, 0.08, 0.05])
    return amps * rng.uniform(0.7, 1.3, size=8) * (h > 0)


def _note(freq: float, n: int, rng: np.random.Generator, amps: npt.NDArray[np.float64]) -> Samples:
    t = np.arange(n) / SAMPLE_RATE
    vib_rate = float(rng.uniform(4.5, 6.5))
    vib_depth = float(rng.choice((0.0, 0.003, 0.006, 0.012)))  # fraction of the frequency
    inst = freq * (1 + vib_depth * np.sin(2 * np.pi * vib_rate * t + rng.uniform(0, 6.3)))
    phase = 2 * np.pi * np.cumsum(inst) / SAMPLE_RATE
    sig = np.zeros(n)
    for k, a in enumerate(amps, start=1):
        if a > 0 and k * freq * (1 + vib_depth) < SAMPLE_RATE / 2 * 0.95:
            sig += a * np.sin(k * phase + rng.uniform(0, 6.3))
    attack = min(n, int(SAMPLE_RATE * rng.uniform(0.005, 0.08)))
    release = min(n - attack, int(SAMPLE_RATE * rng.uniform(0.02, 0.3)))
    env = np.ones(n)
    env[:attack] = np.linspace(0, 1, attack, endpoint=False)
    if release > 0:
        env[n - release :] = np.linspace(1, 0, release)
    decay = float(rng.uniform(0.0, 1.5))  # s^-1: plucked/struck notes fade
    return sig * env * np.exp(-decay * t)


def music_like(minutes: float, seed: int = 0) -> Pcm:
    """Tonal music-like audio: chords, sustained notes with vibrato, melodies over pads.

    Notes are equal-tempered (with a per-piece detune of up to ±30 cents) so that some
    pairs land inside the DTMF acceptance bands (F5 ~ 697 Hz, F#6 ~ 1477 Hz); their
    harmonics and the other notes around them are what a detector must not ignore.
    """
    total = _check_minutes(minutes)
    rng = np.random.default_rng(seed)
    out = np.zeros(total, dtype=np.float64)
    pos = 0
    while pos < total:
        piece_n = min(int(SAMPLE_RATE * rng.uniform(4, 12)), total - pos)
        detune = 2 ** (float(rng.uniform(-30, 30)) / 1200)
        tempo_s = float(rng.uniform(0.15, 0.8))  # seconds per melody note
        root = int(rng.integers(-12, 4))  # semitones from A4
        piece = np.zeros(piece_n)
        pad_amps, mel_amps = _timbre(rng), _timbre(rng)
        # chord pad: one chord per bar
        t0 = 0
        while t0 < piece_n:
            bar = min(int(SAMPLE_RATE * tempo_s * 4), piece_n - t0)
            chord = CHORDS[int(rng.integers(len(CHORDS)))]
            shift = int(rng.choice((0, 5, 7, -3, 2)))
            for iv in chord:
                f = A4_HZ * detune * 2 ** ((root + shift + iv) / 12)
                piece[t0 : t0 + bar] += 0.35 * _note(f, bar, rng, pad_amps)
            t0 += bar
        # melody an octave or two up, sometimes long sustained notes
        t0 = 0
        while t0 < piece_n:
            length = tempo_s * float(rng.choice((0.5, 1, 1, 2, 4)))
            n = min(int(SAMPLE_RATE * length), piece_n - t0)
            semis = root + 12 + int(rng.integers(0, 24))
            if rng.random() > 0.1:  # else a rest
                f = A4_HZ * detune * 2 ** (semis / 12)
                piece[t0 : t0 + n] += _note(f, n, rng, mel_amps)
            t0 += n
        level = float(rng.choice(MUSIC_LEVELS_DBM0))
        piece *= rms_for_dbm0(level) / max(float(np.sqrt(np.mean(piece**2))), 1e-9)
        out[pos : pos + piece_n] = piece
        pos += piece_n + int(rng.integers(0, SAMPLE_RATE // 2))
    return to_pcm(out)


def talk_corpus(minutes: float, cache_dir: Path | None = None, *, seed: int = 0) -> Pcm:
    """``minutes`` of speech and music-like audio: about 70% speech, 30% music.

    Sections of 10-40 s alternate in a seeded order; a quarter of the speech sections have
    music under them (an announcement over hold music).
    """
    total = _check_minutes(minutes)
    rng = np.random.default_rng(seed + 1_000_003)
    speech = speech_corpus(min(minutes * 0.8 + 1.0, MAX_MINUTES), cache_dir, seed=seed)
    music = music_like(min(minutes * 0.5 + 1.0, MAX_MINUTES), seed=seed)
    out = np.zeros(total, dtype=np.float64)
    cursor = {"speech": 0, "music": 0}

    def take(name: str, src: Pcm, n: int) -> Samples:
        start = cursor[name] if cursor[name] + n <= src.size else 0  # wrap, never overrun
        cursor[name] = start + n
        return src[start : start + n].astype(np.float64)

    pos = 0
    while pos < total:
        n = min(int(SAMPLE_RATE * rng.uniform(10, 40)), total - pos)
        if rng.random() < 0.7:
            out[pos : pos + n] = take("speech", speech, n)
            if rng.random() < 0.25:
                out[pos : pos + n] += 0.3 * take("music", music, n)
        else:
            out[pos : pos + n] = take("music", music, n)
        pos += n
    return to_pcm(out)
