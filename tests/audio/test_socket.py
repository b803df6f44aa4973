"""PCM over sockets: the framing codec under hostile input, and streams over real sockets."""

from __future__ import annotations

import array
import itertools
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.audio import (
    AudioDeviceError,
    AudioFormatError,
    AudioFramingError,
    LinePump,
    PcmFormat,
    open_stream,
)
from drivers.audio.socket_stream import SocketStream
from drivers.audio.wire import (
    HEADER,
    MAX_PAYLOAD,
    Audio,
    Decoder,
    Hello,
    encode_audio,
    encode_hello,
)

F8 = PcmFormat()
F16 = PcmFormat(16000)


def ramp(start: int, count: int) -> bytes:
    return array.array("H", [(start + i) & 0xFFFF for i in range(count)]).tobytes()


def session(fmt: PcmFormat, frames: int) -> bytes:
    return encode_hello(Hello(fmt, 3), 0) + b"".join(
        encode_audio(fmt, ramp(k * fmt.samples_per_frame, fmt.samples_per_frame), k + 1)
        for k in range(frames)
    )


# --- codec ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [F8, F16], ids=["8k", "16k"])
def test_decode_whole_and_one_byte_at_a_time(fmt):
    data = session(fmt, 5)
    whole = Decoder().feed(data)
    dec = Decoder()
    trickled = [m for i in range(len(data)) for m in dec.feed(data[i : i + 1])]
    assert whole == trickled
    assert whole[0] == Hello(fmt, 3)
    assert [m.pcm for m in whole[1:] if isinstance(m, Audio)] == [
        ramp(k * fmt.samples_per_frame, fmt.samples_per_frame) for k in range(5)
    ]
    assert dec.seq_gaps == 0


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: b"XX" + d[2:], "bad magic"),
        (lambda d: d[:2] + b"\x07" + d[3:], "version 7"),
        (lambda d: d[:3] + b"\x09" + d[4:], "unknown message kind 9"),
        (lambda d: d[:4] + b"\xff\xff" + d[6:], "at most 2048"),
        (lambda d: d[HEADER.size + 7 :], "AUDIO before HELLO"),
        (lambda d: d + d[: HEADER.size + 7], "second HELLO"),
    ],
)
def test_malformed_input_raises_framing_error_and_stays_broken(mutate, error):
    data = mutate(session(F8, 2))
    dec = Decoder()
    with pytest.raises(AudioFramingError, match=error):
        dec.feed(data)
    with pytest.raises(AudioFramingError, match="earlier error"):
        dec.feed(b"")


def test_hello_with_an_unusable_format_is_refused():
    bad = bytearray(encode_hello(Hello(F8, 0)))
    bad[HEADER.size : HEADER.size + 4] = (44100).to_bytes(4, "big")
    with pytest.raises(AudioFramingError, match="unusable format"):
        Decoder().feed(bytes(bad))


def test_audio_of_the_wrong_length_is_refused():
    data = encode_hello(Hello(F8, 0)) + encode_audio(F16, bytes(640), 1)
    with pytest.raises(AudioFramingError, match="640 bytes, expected 320"):
        Decoder().feed(data)


def test_decoder_holds_at_most_one_incomplete_message():
    dec = Decoder()
    dec.feed(encode_hello(Hello(F8, 0)))
    # A header announcing the largest payload allowed, and all of it but one byte.
    assert dec.feed(HEADER.pack(b"PA", 1, 2, MAX_PAYLOAD, 1) + bytes(MAX_PAYLOAD - 1)) == []
    assert dec.buffered == HEADER.size + MAX_PAYLOAD - 1
    # One more byte completes it: the wrong length for the format is the peer's fault.
    with pytest.raises(AudioFramingError, match="2048 bytes, expected 320"):
        dec.feed(b"\x00")


def test_sequence_gaps_are_counted():
    msgs = encode_hello(Hello(F8, 0), 0) + encode_audio(F8, bytes(320), 5)
    dec = Decoder()
    dec.feed(msgs)
    assert dec.seq_gaps == 4


@settings(max_examples=500, deadline=None)
@given(
    prefix=st.integers(0, 400),
    junk=st.binary(max_size=300),
    flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 255)), max_size=4),
    chunk=st.integers(1, 700),
)
def test_random_and_mutated_input_only_raises_framing_errors(prefix, junk, flips, chunk):
    data = bytearray(session(F8, 4))
    for pos, x in flips:
        if pos < len(data):
            data[pos] ^= x
    data = data[:prefix] + junk + data[prefix:]
    dec = Decoder()
    try:
        for i in range(0, len(data), chunk):
            for m in dec.feed(bytes(data[i : i + chunk])):
                assert isinstance(m, Hello | Audio)
    except AudioFramingError:
        assert dec.broken is not None


# --- streams over real sockets --------------------------------------------------------------


def pair(fmt: PcmFormat = F8, **kw: Any) -> tuple[SocketStream, SocketStream]:
    a, b = socket.socketpair()
    return SocketStream(fmt, sock=a, **kw), SocketStream(fmt, sock=b, **kw)


def test_frames_cross_a_socket_pair_exactly():
    left, right = pair(paced=False)
    frames = [ramp(k * 160, 160) for k in range(30)]
    for f in frames:
        left.write_frame(f)
    assert [right.read_frame() for _ in frames] == frames
    assert right.peer == Hello(F8, 0) and right.seq_gaps == 0
    left.close()
    with pytest.raises(AudioDeviceError, match="peer"):  # closed or reset, by the peer
        right.read_frame()
    right.close()


def test_a_quiet_peer_reads_as_silence():
    left, right = pair(paced=False, read_timeout=0.05)
    assert right.read_frame() == bytes(320)  # only the HELLO arrived
    assert right.silent_reads == 1
    left.close()
    right.close()


def test_format_mismatch_is_named():
    a, b = socket.socketpair()
    left = SocketStream(F16, sock=a, paced=False)
    right = SocketStream(F8, sock=b, paced=False)
    with pytest.raises(AudioFramingError, match="16000 Hz"):
        right.read_frame()
    left.close()
    right.close()


def test_bad_urls_and_options():
    with pytest.raises(AudioFormatError, match="exactly one"):
        SocketStream(F8)
    with pytest.raises(AudioFormatError, match="tcp:// or unix://"):
        SocketStream(F8, url="udp://127.0.0.1:9")
    with pytest.raises(AudioDeviceError, match="cannot connect"):
        SocketStream(F8, url="unix:///nonexistent/ponte.sock")


def _serve_one(listener: socket.socket, fmt: PcmFormat, frames: list[bytes], got: list[bytes]):
    conn, _ = listener.accept()
    with SocketStream(fmt, sock=conn, paced=False, line=7) as sim:
        for f in frames:
            sim.write_frame(f)
        got.extend(sim.read_frame() for _ in frames)


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_simulator_side_and_appliance_side_over_a_listening_socket(family, tmp_path: Path):
    if family == "tcp":
        listener = socket.create_server(("127.0.0.1", 0))
        url = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    else:
        path = tmp_path / "pcm.sock"
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listener.listen(1)
        url = f"unix://{path}"
    frames = [ramp(k * 320, 320) for k in range(10)]
    got: list[bytes] = []
    server = threading.Thread(target=_serve_one, args=(listener, F16, frames, got))
    server.start()
    with open_stream("socket", F16, url=url, paced=False) as stream:
        heard = [stream.read_frame() for _ in frames]
        for f in reversed(frames):
            stream.write_frame(f)
        server.join(10)
        assert isinstance(stream, SocketStream) and stream.peer == Hello(F16, 7)
    listener.close()
    assert heard == frames
    assert got == list(reversed(frames))


def test_pump_over_a_paced_socket_pair():
    """Both ends paced by their own 20 ms clocks (one 1000 ppm fast), threads on both."""
    a, b = socket.socketpair()
    line = SocketStream(F8, sock=a, ppm=1000.0)
    app = SocketStream(F8, sock=b)
    pump = LinePump(app, name="sock")
    n = F8.samples_per_frame
    pump.start()
    # The "line" side: says a ramp, one frame per (fast) tick, and hears the downlink.
    for k in range(25):
        line.write_frame(ramp(k * n, n))
        if k < 20:
            pump.downlink.push(ramp(5000 + k * n, n))
    heard = [line.read_frame() for _ in range(20)]
    pump.stop()
    line.close()
    app.close()
    up = bytearray()
    frame = bytearray(2 * n)
    while pump.uplink.pop_into(frame):
        up += frame
    said = list(array.array("H", bytes(up)))
    assert said and said[0] == 0
    assert {(y - x) & 0xFFFF for x, y in itertools.pairwise(said)} <= {0, 1, 2}
    played = [s for f in heard for s in array.array("H", f) if s]
    assert played and played[0] == 5000
