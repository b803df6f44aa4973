"""Conference seats on real media loops: PortMedia threads with their link swapped to a Seat."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from drivers.audio import PcmFormat
from drivers.audio.memory import MemoryStream
from firmware.dsp.pcm import SAMPLE_RATE
from firmware.service.conference import (
    MAX_SEND_FRAMES,
    Conference,
    ConferenceError,
    ConferenceRegistry,
)
from firmware.service.media import PortMedia

FMT = PcmFormat(8000)
FRAME = FMT.bytes_per_frame
FREQS = {1: 500.0, 2: 1100.0, 3: 1900.0}
SECONDS = 3.0
AMPLITUDE = 4000.0


def tone(freq: float, seconds: float) -> bytes:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.rint(AMPLITUDE * np.sin(2 * math.pi * freq * t)).astype("<i2").tobytes()


def frame_levels(x: np.ndarray, freq: float) -> np.ndarray:
    """Amplitude of ``freq`` in each 20 ms frame (every tone here has whole cycles in one)."""
    n = FRAME // 2
    frames = x[: x.size // n * n].reshape(-1, n).astype(np.float64)
    return 2 * np.abs(np.fft.rfft(frames, axis=1)[:, round(freq * n / SAMPLE_RATE)]) / n


def wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_three_way_call_on_three_media_threads() -> None:
    conference = Conference(FRAME, cues=False, name="3-way")
    rooms: list[np.ndarray] = []
    conference.on_round = lambda room: rooms.append(room.copy())
    streams = {port: MemoryStream(FMT) for port in FREQS}
    failures: list[BaseException] = []
    medias = {
        port: PortMedia(
            port,
            stream,
            detect_dtmf=False,
            on_digit=lambda port, digit: None,
            on_failure=lambda port, exc: failures.append(exc),
        )
        for port, stream in streams.items()
    }
    seats = {port: conference.seat(port) for port in FREQS}
    for port, media in medias.items():
        media.link = seats[port]  # type: ignore[assignment]  # the service's swap
        streams[port].say(tone(FREQS[port], SECONDS))
    heard: dict[int, list[bytes]] = {port: [] for port in FREQS}
    for media in medias.values():
        media.start()
    try:
        wait_for(lambda: all(s.pending == 0 for s in streams.values()))
        for port, stream in streams.items():
            heard[port].append(stream.heard())
    finally:
        for media in medias.values():
            media.stop()
    assert not failures
    views = {v.participant: v for v in conference.view()}
    assert set(views) == {"1", "2", "3"}
    assert all(v.frames_in >= SECONDS * 50 for v in views.values())
    # A thread-scheduling slip costs a frame now and then, more of them the more loaded the
    # machine is; the conference counts each one.  Frame by frame: a participant never
    # hears itself, and hears both others at full level in every frame but the counted
    # slips (its own underruns, a round that found another's inbox empty).
    for port, chunks in heard.items():
        audio = np.frombuffer(b"".join(chunks), dtype="<i2")
        # The middle second: past the primed silence, before the tones run out.
        middle = audio[SAMPLE_RATE : 2 * SAMPLE_RATE]
        others = [t for t in FREQS if t != port]
        own = frame_levels(middle, FREQS[port])
        assert own.max() < 0.01 * AMPLITUDE, (port, own.max())
        full = np.logical_and.reduce(
            [frame_levels(middle, FREQS[t]) > 0.9 * AMPLITUDE for t in others]
        )
        slips = views[str(port)].underruns + sum(views[str(t)].missing for t in others)
        assert int((~full).sum()) <= slips, (port, int((~full).sum()), slips)
        assert full.any(), port
    # The recording feed: everyone at once in every round but those missing someone.
    room = np.concatenate(rooms[60:110])
    full = np.logical_and.reduce([frame_levels(room, f) > 0.9 * AMPLITUDE for f in FREQS.values()])
    assert int((~full).sum()) <= sum(v.missing for v in views.values())
    assert full.any()


def test_seats_follow_the_crossconnect_contract_when_driven_by_hand() -> None:
    conference = Conference(FRAME, cues=False)
    a, b = conference.seat("a"), conference.seat("b")
    frame_a = np.full(FRAME // 2, 1000, dtype="<i2").tobytes()
    # b's thread runs first in every tick, a's second: the inboxes' silence covers it.
    got = []
    for _ in range(6):
        got.append(b.next_frame())
        b.heard(bytes(FRAME))
        a.heard(frame_a)
        assert a.next_frame() is not None
    assert got[:2] == [bytes(FRAME)] * 2
    assert got[3] == frame_a
    assert conference.rounds == 6
    # A prompt for b alone plays instead of the room, and the room keeps its pace.
    assert b.send_pcm(b"\x07\x00" * (FRAME // 2 + 1)) == 2
    a.heard(frame_a)
    prompt = b.next_frame()
    assert prompt is not None and prompt[:2] == b"\x07\x00"
    assert b.sending
    conference.mute("a")
    assert conference.muted("a")
    a.leave()
    assert a.next_frame() is None and len(conference) == 1
    a.heard(frame_a)  # a stale media thread after the leave is ignored
    with pytest.raises(ConferenceError, match="expected 320"):
        b.heard(b"\0" * 10)
    with pytest.raises(ConferenceError, match="overfill"):
        b.send_pcm(bytes(FRAME * (MAX_SEND_FRAMES + 1)))
    with pytest.raises(ConferenceError, match="16-bit"):
        Conference(321)


def test_a_stalled_seat_is_counted_not_fatal() -> None:
    conference = Conference(FRAME, cues=False)
    a, b = conference.seat("a"), conference.seat("b")
    for _ in range(20):  # b's thread is stuck: its mixed frames pile up, capped
        a.heard(bytes(FRAME))
        a.next_frame()
    views = {v.participant: v for v in conference.view()}
    assert views["b"].overruns > 0 and views["b"].missing > 0
    assert views["a"].underruns == 0
    assert b.next_frame() is not None  # b resumes with what is in its outbox


def test_registry_names_live_conferences() -> None:
    registry = ConferenceRegistry()
    conf = Conference(FRAME, name="Sales")
    registry.add("800", conf)
    with pytest.raises(ConferenceError, match="already running"):
        registry.add("800", conf)
    assert registry.get("800") is conf and registry.items() == [("800", conf)]
    registry.remove("800")
    assert registry.get("800") is None


async def test_conference_list_shows_live_participants_and_unconfigured_calls() -> None:
    from firmware.api.auth import MemoryCredentialStore
    from firmware.api.schema import NoParams
    from firmware.api.server import ApiServer
    from firmware.service.confrec_api import ConfRecApi
    from firmware.store import default_config, loads_toml

    config = loads_toml('[[conference.rooms]]\nnumber = "800"\n', default_config())
    registry = ConferenceRegistry()
    room = Conference(FRAME, name="800")
    registry.add("800", room)
    three_way = Conference(FRAME, max_participants=3, name="3-way on port 1")
    registry.add("port1-3way", three_way)
    room.seat("port2").heard(bytes(FRAME))
    room.seat("sip-leg-1")
    room.mute("sip-leg-1")
    three_way.seat("port1")
    server = ApiServer("/nonexistent/api.sock", credentials=MemoryCredentialStore())
    api = ConfRecApi(server, config=lambda: config, recordings=lambda: None, conferences=registry)
    result = await api.conference_list(NoParams(), None)  # type: ignore[arg-type]
    assert isinstance(result, dict)
    rooms = result["rooms"]
    assert isinstance(rooms, list) and len(rooms) == 2
    configured, live = rooms
    assert isinstance(configured, dict) and isinstance(live, dict)
    assert configured["number"] == "800" and configured["configured"] is True
    assert configured["participants"] == [
        {"participant": "port2", "muted": False, "frames_in": 1, "missing": 0,
         "overruns": 0, "underruns": 0},
        {"participant": "sip-leg-1", "muted": True, "frames_in": 0, "missing": 0,
         "overruns": 0, "underruns": 0},
    ]  # fmt: skip
    assert live["number"] == "port1-3way" and live["configured"] is False
    assert live["max_participants"] == 3 and live["name"] == "3-way on port 1"
    from firmware.api.protocol import ApiFault
    from firmware.service.confrec_api import RecordingsListParams

    with pytest.raises(ApiFault, match="not available"):
        await api.recordings_list(RecordingsListParams(), None)  # type: ignore[arg-type]
