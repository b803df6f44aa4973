"""The media side of queues without a running box: the hold link a waiting caller's media
thread reads, the music (built-in or a queue's WAV), and the stored agent log-ins."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from firmware.dsp.levels import peak_for_dbm0, power_dbm0
from firmware.dsp.moh import MOH_PEAK_DBM0, NOTE_MS, music_on_hold
from firmware.dsp.wavio import write_wav
from firmware.prompts.library import PromptLibrary
from firmware.service.queues import MAX_SPOKEN_FRAMES, HoldLink, QueueMedia, music_frames
from firmware.store import default_config
from firmware.store.agents import AgentStore
from firmware.store.schema import Queue

FB = 320


def frames(*values: int) -> list[bytes]:
    return [np.full(FB // 2, v, "<i2").tobytes() for v in values]


def test_speech_goes_first_and_the_music_resumes_where_it_paused() -> None:
    link = HoldLink(frames(1, 2, 3), FB)
    assert [link.next_frame() for _ in range(2)] == frames(1, 2)
    link.say(np.full(FB // 2 * 2, 9, "<i2").tobytes()[:-2])  # two frames, the last one short
    spoken = [link.next_frame() for _ in range(2)]
    assert spoken[0] == frames(9)[0] and spoken[1][-2:] == b"\0\0"
    assert [link.next_frame() for _ in range(3)] == frames(3, 1, 2)  # and round again
    assert link.frames_played == 7


def test_speech_queued_is_capped() -> None:
    link = HoldLink(frames(1), FB)
    link.say(bytes(FB * (MAX_SPOKEN_FRAMES + 10)))
    link.say(bytes(FB * 5))
    assert sum(1 for _ in range(MAX_SPOKEN_FRAMES + 20) if link.next_frame() != frames(1)[0]) == (
        MAX_SPOKEN_FRAMES
    )


def test_built_in_music_is_in_band_below_speech_and_loops_without_a_step() -> None:
    music = music_on_hold().astype(float)
    assert len(music) / 8000 == pytest.approx(19.2)
    assert np.max(np.abs(music)) == pytest.approx(peak_for_dbm0(MOH_PEAK_DBM0), abs=1)
    assert -22 < power_dbm0(music) < -15
    spectrum = np.abs(np.fft.rfft(music)) ** 2
    freqs = np.fft.rfftfreq(len(music), 1 / 8000)
    assert spectrum[(freqs < 300) | (freqs > 3400)].sum() < 0.001 * spectrum.sum()
    # Every note starts and ends at silence: no step between notes, nor at the loop's seam.
    note = 8000 * NOTE_MS // 1000
    edges = np.concatenate((music[::note], music[note - 1 :: note]))
    assert np.max(np.abs(edges)) < 0.01 * np.max(np.abs(music))


def media(tmp_path: Path, *queues: Queue) -> QueueMedia:
    config = dataclasses.replace(default_config(2, 0), queues=queues)
    return QueueMedia(lambda port: None, PromptLibrary(custom=tmp_path / "custom"), config)


def test_a_queue_file_is_played_and_a_broken_one_falls_back_to_the_built_in_music(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(16000 * 2) / 16000)).astype(np.int16)
    good = tmp_path / "hold.wav"
    good.write_bytes(write_wav(tone, 16000))
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really")
    queues = (
        Queue(number="700", music_on_hold=str(good)),
        Queue(number="710", music_on_hold=str(bad)),
    )
    qm = media(tmp_path, *queues)
    played = qm.music(queues[0], FB)
    assert len(played) == 100  # 2 s at 8 kHz after resampling from 16 kHz
    assert qm.music(queues[0], FB) is played  # cut once, shared by every caller
    built_in = music_frames(music_on_hold().astype("<i2").tobytes(), FB)
    assert qm.music(queues[1], FB) == built_in
    assert "music on hold" in caplog.text and "broken.wav" in caplog.text
    assert qm.music(Queue(number="720"), FB) == built_in


def test_agent_log_ins_survive_reopening(tmp_path: Path) -> None:
    store = AgentStore.open(tmp_path)
    store.save("103", True)
    store.save("102", True)
    store.save("103", True)  # twice: still once, still first
    store.close()
    store = AgentStore.open(tmp_path)
    try:
        assert store.load() == ["103", "102"]
        store.save("103", False)
        assert store.load() == ["102"]
    finally:
        store.close()
