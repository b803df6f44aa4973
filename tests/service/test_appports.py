"""Application ports and line <-> SIP recording on real media loops: PortMedia threads,
drift buffers, and a stand-in for pjmedia's clock that feeds and drains them every 20 ms
(the real bridge is exercised end to end in tests/service/test_sip_apps.py)."""

from __future__ import annotations

import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.audio.buffer import DriftBuffer
from drivers.audio.errors import AudioDeviceError
from drivers.audio.memory import MemoryStream
from firmware.service.appports import LegStream
from firmware.service.apps import AppLink
from firmware.service.media import PortMedia
from firmware.service.recording import RecordedLink, Recordings
from firmware.store.db import DB_FILENAME, Database
from firmware.store.schema import RecordingConfig
from tests.service.test_recording import FMT, FRAME, dominant_hz, tone, wait_for

CALLER_HZ, PROMPT_HZ, LINE_HZ, STALE_HZ = 400.0, 700.0, 1000.0, 2000.0


class Bridge:
    """pjmedia's side of one bridge port: pushes ``say`` into the downlink and keeps what
    comes up the uplink, one frame each per 20 ms tick, on a thread of its own."""

    def __init__(self, uplink: DriftBuffer, downlink: DriftBuffer, say: bytes) -> None:
        self.uplink, self.downlink = uplink, downlink
        self._say = say
        self.heard = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Bridge:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        out = bytearray(FRAME)
        at, tick = 0, time.monotonic()
        while not self._stop.is_set():
            self.downlink.push(self._say[at : at + FRAME].ljust(FRAME, b"\0"))
            at = (at + FRAME) % len(self._say)
            if self.uplink.pop_into(out):
                self.heard += out
            tick += 0.020
            time.sleep(max(0.0, tick - time.monotonic()))


def start(media: PortMedia) -> Callable[[], None]:
    media.start()
    return media.stop


def test_an_application_port_plays_to_its_leg_and_hears_it() -> None:
    up, down = DriftBuffer(FMT), DriftBuffer(FMT)
    stale = tone(STALE_HZ, -10.0, 0.2)  # what the port's previous caller said
    for i in range(0, len(stale), FRAME):
        down.push(stale[i : i + FRAME])
    stream = LegStream(FMT, up, down)
    media = PortMedia(1001, stream, detect_dtmf=False, on_digit=print, on_failure=print)
    drained: list[int] = []
    link = AppLink(FRAME, drained.append)
    heard = bytearray()
    link.record_to(heard.extend)
    link.play(tone(PROMPT_HZ, -10.0, 1.0), 7)
    media.app = link
    with Bridge(up, down, tone(CALLER_HZ, -15.0, 1.0)) as bridge:
        stop = start(media)
        try:
            wait_for(lambda: drained == [7] and len(heard) >= 2 * 8000 * 2)
        finally:
            stop()
    # The prompt reached the caller, the caller reached the application (its recording).
    sent = np.frombuffer(bytes(bridge.heard), "<i2")
    first = int(np.argmax(np.abs(sent) > 100))
    prompt = sent[first : first + 4000]
    assert len(prompt) == 4000 and dominant_hz(prompt) == pytest.approx(PROMPT_HZ, abs=5)
    got = np.frombuffer(bytes(heard), "<i2")
    assert dominant_hz(got[-8000:]) == pytest.approx(CALLER_HZ, abs=5)
    frames = [got[i : i + 160] for i in range(0, len(got), 160)]
    assert not any(
        np.abs(f).max() > 100 and dominant_hz(f) == pytest.approx(STALE_HZ, abs=60) for f in frames
    ), "the previous caller's audio reached the application"
    # Paced by its own clock: about 50 frames a second, never a burst.
    assert media.frames > 0 and link.frames_played == 50
    with pytest.raises(AudioDeviceError):
        stream.read_frame()


@pytest.fixture
def recordings(tmp_path: Path) -> Iterator[Recordings]:
    db = Database(tmp_path / DB_FILENAME)
    recs = Recordings.for_data_dir(db, tmp_path)
    recs.open(RecordingConfig())
    yield recs
    recs.close()
    db.close()


def test_a_line_talking_to_a_sip_leg_is_recorded_in_both_channels(
    recordings: Recordings,
) -> None:
    line = MemoryStream(FMT)
    media = PortMedia(1, line, detect_dtmf=False, on_digit=print, on_failure=print)
    up, down = DriftBuffer(FMT), DriftBuffer(FMT)
    media.attach_sip(up, down)
    rec = recordings.start("101", "201", "always")
    media.app = RecordedLink(media.link, rec)  # as LocalCalls does for RecordCall
    line.say(tone(LINE_HZ, -10.0, 2.0))
    with Bridge(up, down, tone(CALLER_HZ, -15.0, 1.0)):
        stop = start(media)
        try:
            wait_for(lambda: line.pending == 0)
        finally:
            stop()
    row = rec.stop()
    with wave.open(str(recordings.directory / row.path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    middle = slice(len(pcm) // 2, len(pcm) // 2 + 4000)
    assert dominant_hz(pcm[middle, 0]) == pytest.approx(LINE_HZ, abs=5)  # the line said
    assert dominant_hz(pcm[middle, 1]) == pytest.approx(CALLER_HZ, abs=5)  # the leg said
