from __future__ import annotations

import pytest

from firmware.service.crossconnect import (
    JITTER_FRAMES,
    MAX_SEND_FRAMES,
    PREFILL_FRAMES,
    CrossConnect,
    CrossConnectError,
)

FRAME = 320  # 20 ms of 16-bit PCM at 8 kHz


def frame(n: int) -> bytes:
    return bytes([n % 256]) * FRAME


def test_frames_cross_after_the_primed_silence_in_order() -> None:
    a, b = CrossConnect(FRAME), CrossConnect(FRAME)
    assert a.next_frame() is None  # not connected: the loop plays silence
    a.join(b)
    played = []
    for n in range(1, 8):
        a.heard(frame(n))
        played.append(b.next_frame())
    assert played[:PREFILL_FRAMES] == [bytes(FRAME)] * PREFILL_FRAMES
    assert played[PREFILL_FRAMES:] == [frame(n) for n in range(1, 8 - PREFILL_FRAMES)]
    assert b.underruns == b.overruns == 0


def test_a_late_thread_is_absorbed_and_a_stalled_one_counted() -> None:
    a, b = CrossConnect(FRAME), CrossConnect(FRAME)
    a.join(b)
    b.next_frame()  # b runs twice before a: still something to play
    b.next_frame()
    assert b.underruns == 0
    assert b.next_frame() is None and b.underruns == 1
    for n in range(JITTER_FRAMES + 2):  # a catches up in a burst: oldest dropped, counted
        a.heard(frame(n))
    assert b.overruns == 2


def test_split_stops_both_directions_and_dtmf_goes_first() -> None:
    a, b = CrossConnect(FRAME), CrossConnect(FRAME)
    a.join(b)
    assert b.send_pcm(b"\x01\x00" * (FRAME // 2 * 3 - 10)) == 3  # last frame padded
    a.heard(frame(9))
    sent = [b.next_frame() for _ in range(3)]
    assert all(f is not None and f[:2] == b"\x01\x00" for f in sent)
    a.split()
    assert a.peer is None and b.peer is None
    a.heard(frame(1))
    assert b.next_frame() is None


def test_bad_use_is_refused() -> None:
    a = CrossConnect(FRAME)
    with pytest.raises(CrossConnectError, match="itself"):
        a.join(a)
    with pytest.raises(CrossConnectError, match="frame sizes differ"):
        a.join(CrossConnect(160))
    with pytest.raises(CrossConnectError, match="whole 16-bit samples"):
        a.send_pcm(b"\x00")
    with pytest.raises(CrossConnectError, match="overfill"):
        a.send_pcm(bytes(FRAME * (MAX_SEND_FRAMES + 1)))
    with pytest.raises(CrossConnectError, match="not 16-bit PCM"):
        CrossConnect(3)


def test_a_hushed_port_is_silent_for_the_peer_including_what_it_had_in_hand() -> None:
    a, b = CrossConnect(FRAME), CrossConnect(FRAME)
    a.join(b)
    b.next_frame()
    b.next_frame()  # the primed silence is played
    a.heard(frame(1))
    a.heard(frame(2))  # the start of a digit, not played by b yet
    a.hush()
    a.heard(frame(3))
    assert [b.next_frame() for _ in range(3)] == [bytes(FRAME)] * 3
    a.hushed = False
    a.heard(frame(4))
    assert b.next_frame() == frame(4)
    a.hush_digits = "*"
    a.hush()
    a.split()
    a.join(b)  # a new call starts unhushed and unarmed
    assert not a.hushed and a.hush_digits == ""
