"""The espeak-ng build: every catalogue prompt, in each language built, as telephone WAVs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from firmware.dsp.levels import power_dbm0
from firmware.dsp.wavio import read_wav
from firmware.prompts.build import (
    MANIFEST,
    SPEECH_LEVEL_DBM0,
    EspeakNg,
    PromptBuildError,
    build,
    condition,
)
from firmware.prompts.catalogue import catalogue, parse_catalogue

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
LANGS = ("en", "de")


class Counting(EspeakNg):
    """The real espeak-ng, counting how often it is asked to speak."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def synthesize(self, text: str, voice: str) -> bytes:
        self.calls.append((text, voice))
        return super().synthesize(text, voice)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counting]:
    out = tmp_path_factory.mktemp("prompts")
    synth = Counting()
    report = build(out, LANGS, synthesizer=synth)
    assert report.rendered == len(catalogue().names) * len(LANGS)
    assert report.cached == 0
    return out, synth


def test_every_catalogue_prompt_exists_in_every_language_built(
    built: tuple[Path, Counting],
) -> None:
    out, _ = built
    for lang in LANGS:
        files = {p.stem for p in (out / lang).glob("*.wav")}
        assert files == set(catalogue().names), lang


@pytest.mark.parametrize("lang", LANGS)
def test_wav_format_level_and_speech(built: tuple[Path, Counting], lang: str) -> None:
    out, _ = built
    for name in catalogue().names:
        data = (out / lang / f"{name}.wav").read_bytes()
        audio = read_wav(data)
        assert (audio.rate, audio.channels, audio.encoding) == (8000, 1, "pcm16"), name
        assert 0.15 < audio.seconds < 20, (name, audio.seconds)
        # Non-silent, and at the speech level: the loudest 10 ms frames carry speech.
        frames = audio.pcm[: audio.pcm.size // 80 * 80].reshape(-1, 80)
        levels = np.array([power_dbm0(f) for f in frames])
        active = levels[levels > levels.max() - 35]
        level = 10 * np.log10(np.mean(10 ** (active / 10)))
        assert abs(level - SPEECH_LEVEL_DBM0) < 3.0, (name, level)
        assert int(np.abs(audio.pcm.astype(np.int32)).max()) < 32767, name


def test_the_german_prompt_is_german(built: tuple[Path, Counting]) -> None:
    _, synth = built
    assert ("Auf Wiederhören.", "de") in synth.calls
    assert ("Goodbye.", "en-us") in synth.calls
    assert ("42", "de") in synth.calls  # espeak-ng reads the numeral in German


def test_a_second_build_is_all_cache_hits_and_never_runs_espeak(
    built: tuple[Path, Counting], tmp_path: Path
) -> None:
    out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    synth = Counting()
    report = build(copy, LANGS, synthesizer=synth)
    assert synth.calls == []
    assert (report.rendered, report.cached) == (0, len(catalogue().names) * len(LANGS))


def test_a_changed_text_renders_only_that_prompt_and_stale_files_go(
    built: tuple[Path, Counting], tmp_path: Path
) -> None:
    out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out / "en", copy / "en")
    (copy / "en" / "no_longer_in_catalogue.wav").write_bytes(b"x")
    (copy / "en" / "welcome.wav").unlink()  # a lost file is rendered again too
    text = (Path(__file__).parents[2] / "firmware/prompts/catalogue.toml").read_text()
    changed = parse_catalogue(text.replace('en = "Goodbye."', 'en = "Bye now."'))
    synth = Counting()
    report = build(copy, ["en"], synthesizer=synth, cat=changed)
    assert sorted(synth.calls) == [("Bye now.", "en-us"), ("Welcome.", "en-us")]
    assert (report.rendered, report.removed) == (2, 1)
    manifest = json.loads((copy / "en" / MANIFEST).read_text())
    assert set(manifest) == set(changed.names)


def test_unknown_language_and_prompt(tmp_path: Path) -> None:
    with pytest.raises(PromptBuildError, match="no catalogue language"):
        build(tmp_path, ["xx"])
    with pytest.raises(PromptBuildError, match="not in the catalogue: nope"):
        build(tmp_path, ["en"], names=["nope"])


def test_espeak_failures_name_the_prompt(tmp_path: Path) -> None:
    class Broken(EspeakNg):
        def synthesize(self, text: str, voice: str) -> bytes:
            return b"not a wav"

    with pytest.raises(PromptBuildError, match=r"prompt 'goodbye' \(en, 'Goodbye.'\)"):
        build(tmp_path, ["en"], synthesizer=Broken(), names=["goodbye"])
    assert not (tmp_path / "en" / MANIFEST).exists()


def test_condition_refuses_silence() -> None:
    from firmware.dsp.wavio import WavError, write_wav

    with pytest.raises(WavError, match="no speech"):
        condition(write_wav(np.zeros(22050, np.int16), 22050))


@pytest.mark.parametrize("lang", LANGS)
def test_no_prompt_sounds_like_a_key_to_the_dtmf_receiver(
    built: tuple[Path, Counting], lang: str
) -> None:
    # A prompt echoed back from a line must not be taken for a caller's key (talk-off).
    from firmware.dsp.dtmf import detect_dtmf

    out, _ = built
    for name in catalogue().names:
        pcm = read_wav((out / lang / f"{name}.wav").read_bytes()).pcm
        assert detect_dtmf(pcm) == [], name
