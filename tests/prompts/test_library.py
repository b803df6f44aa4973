"""PromptLibrary: custom recordings first, then the build, then English, then a tone."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from firmware.dsp.wavio import write_wav
from firmware.prompts.library import (
    ENV_DIR,
    SIT_FREQS_HZ,
    PromptLibrary,
    Source,
    default_generated_dir,
    error_tone,
)


def goertzel_power(x: np.ndarray, freq: float, rate: int) -> float:
    """Power of ``x`` at ``freq`` (a single DFT bin)."""
    n = np.arange(x.size)
    return float(abs(np.sum(x * np.exp(-2j * math.pi * freq * n / rate))) ** 2)


def tone(freq: float, seconds: float, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * math.pi * freq * t)).astype(np.int16)


def put(path: Path, pcm: np.ndarray, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(write_wav(pcm, rate))
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    generated, custom = tmp_path / "generated", tmp_path / "custom"
    put(generated / "en" / "welcome.wav", tone(500, 0.5))
    put(generated / "de" / "welcome.wav", tone(600, 0.5))
    put(generated / "en" / "goodbye.wav", tone(700, 0.3))
    custom.mkdir()
    return generated, custom


def test_generated_in_the_language(dirs: tuple[Path, Path]) -> None:
    lib = PromptLibrary(*dirs)
    p = lib.get("welcome", "de-DE")
    assert (p.source, p.language, p.path) == (Source.GENERATED, "de", dirs[0] / "de/welcome.wav")
    assert np.array_equal(p.pcm, tone(600, 0.5))
    assert p.seconds == pytest.approx(0.5)


def test_english_when_the_language_lacks_the_prompt(dirs: tuple[Path, Path]) -> None:
    lib = PromptLibrary(*dirs)
    assert lib.get("goodbye", "de").source is Source.ENGLISH
    assert lib.get("goodbye", "ja-JP").source is Source.GENERATED  # ja has no text: English


def test_custom_overrides_per_language_then_for_all(dirs: tuple[Path, Path]) -> None:
    generated, custom = dirs
    put(custom / "welcome.wav", tone(900, 0.2))
    put(custom / "de" / "welcome.wav", tone(1000, 0.2))
    lib = PromptLibrary(generated, custom)
    de, en = lib.get("welcome", "de"), lib.get("welcome", "en")
    assert (de.source, de.path) == (Source.CUSTOM, custom / "de" / "welcome.wav")
    assert (en.source, en.path) == (Source.CUSTOM, custom / "welcome.wav")


def test_a_custom_recording_at_another_rate_is_resampled(dirs: tuple[Path, Path]) -> None:
    generated, custom = dirs
    put(custom / "welcome.wav", tone(1000, 1.0, rate=16000), rate=16000)
    p = PromptLibrary(generated, custom).get("welcome")
    assert p.source is Source.CUSTOM and p.pcm.size == 8000
    assert goertzel_power(p.pcm.astype(float), 1000, 8000) > 100 * goertzel_power(
        p.pcm.astype(float), 1400, 8000
    )


def test_an_unreadable_custom_file_is_skipped_with_a_warning(
    dirs: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    generated, custom = dirs
    (custom / "welcome.wav").write_bytes(b"RIFF....WAVEjunk")
    (custom / "goodbye.wav").write_bytes(write_wav(np.zeros(0, np.int16), 8000))
    lib = PromptLibrary(generated, custom)
    with caplog.at_level(logging.WARNING):
        assert lib.get("welcome").source is Source.GENERATED
        assert lib.get("goodbye").source is Source.GENERATED
    assert "unusable" in caplog.text and "holds no audio" in caplog.text


def test_a_missing_prompt_is_the_error_tone_with_a_warning(
    dirs: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    lib = PromptLibrary(*dirs)
    with caplog.at_level(logging.WARNING):
        p = lib.get("no-such-prompt", "fr")
    assert p.source is Source.ERROR_TONE and p.path is None
    assert "'no-such-prompt' (fr) exists nowhere" in caplog.text
    assert lib.misses == 1
    assert lib.missing(["welcome", "no-such-prompt"], "fr") == ["no-such-prompt"]


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "Welcome", "", "a/b", "x" * 49, "é", "snake_case", "-x"]
)
def test_hostile_names_never_touch_the_file_system(
    dirs: tuple[Path, Path], name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        p = PromptLibrary(*dirs).get(name)
    assert p.source is Source.ERROR_TONE
    assert "not a valid name" in caplog.text


def test_the_error_tone_is_the_special_information_tone() -> None:
    pcm = error_tone().astype(float)
    assert 0.9 < pcm.size / 8000 < 1.2
    thirds = np.array_split(pcm, 3)
    for part, freq in zip(thirds, SIT_FREQS_HZ, strict=True):
        others = [f for f in SIT_FREQS_HZ if f != freq]
        here = goertzel_power(part, freq, 8000)
        assert all(here > 20 * goertzel_power(part, f, 8000) for f in others)


def test_lookups_are_cached_until_invalidated(dirs: tuple[Path, Path]) -> None:
    generated, custom = dirs
    lib = PromptLibrary(generated, custom)
    assert lib.get("welcome").source is Source.GENERATED
    put(custom / "welcome.wav", tone(900, 0.2))  # an upload
    assert lib.get("welcome").source is Source.GENERATED
    lib.invalidate()
    assert lib.get("welcome").source is Source.CUSTOM


def test_sequence_joins_prompts(dirs: tuple[Path, Path]) -> None:
    lib = PromptLibrary(*dirs)
    assert lib.sequence(["welcome", "goodbye"]).size == 4000 + 2400
    assert lib.sequence([]).size == 0


def test_default_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    assert default_generated_dir() == tmp_path
    assert PromptLibrary().generated == tmp_path
    lib = PromptLibrary.for_data_dir(tmp_path / "data")
    assert (lib.generated, lib.custom) == (tmp_path, tmp_path / "data" / "prompts")
    monkeypatch.delenv(ENV_DIR)
    assert default_generated_dir().name == "prompts"
