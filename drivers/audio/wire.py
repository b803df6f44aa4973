"""Framing of PCM over a stream socket (TCP or Unix), sans-IO.  Documented in docs/audio.md.

Every message is an 8-byte header and a payload::

    0      2      3      4        6        8
    +------+------+------+--------+--------+----------------+
    | "PA" | ver  | kind | length | seq    | payload ...    |
    +------+------+------+--------+--------+----------------+
      magic   u8     u8    u16 BE   u16 BE   ``length`` bytes

- ``ver`` is 1.  ``kind`` 1 is HELLO, 2 is AUDIO.  ``seq`` counts messages per direction and
  wraps at 65536.
- HELLO (first message each way): payload ``rate`` u32 BE, ``frame_ms`` u8, ``line`` u16 BE.
- AUDIO: payload is exactly one frame of mono S16_LE samples (``rate * frame_ms / 1000``
  samples) in the format both HELLOs agreed on.

A stream socket neither loses nor reorders bytes, so there is no resynchronisation: anything
malformed means the peer is broken and raises :class:`AudioFramingError`, after which the
decoder refuses further input.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import NoReturn

from drivers.audio.errors import AudioFormatError, AudioFramingError
from drivers.audio.format import PcmFormat

MAGIC = b"PA"
VERSION = 1
HEADER = struct.Struct(">2sBBHH")
HELLO = struct.Struct(">IBH")
MAX_PAYLOAD = 2048  # the longest frame (16 kHz, 30 ms) is 960 bytes
SEQ_MOD = 1 << 16


class Kind(enum.IntEnum):
    HELLO = 1
    AUDIO = 2


@dataclass(frozen=True, slots=True)
class Hello:
    fmt: PcmFormat
    line: int

    def __post_init__(self) -> None:
        if not 0 <= self.line < SEQ_MOD:
            raise AudioFormatError(f"line number must be 0..65535, got {self.line}")


@dataclass(frozen=True, slots=True)
class Audio:
    seq: int
    pcm: bytes


def encode_hello(hello: Hello, seq: int = 0) -> bytes:
    payload = HELLO.pack(hello.fmt.rate, hello.fmt.frame_ms, hello.line)
    return HEADER.pack(MAGIC, VERSION, Kind.HELLO, len(payload), seq % SEQ_MOD) + payload


def encode_audio(fmt: PcmFormat, pcm: bytes | bytearray | memoryview, seq: int) -> bytes:
    fmt.check_frame(pcm)
    return HEADER.pack(MAGIC, VERSION, Kind.AUDIO, len(pcm), seq % SEQ_MOD) + bytes(pcm)


class Decoder:
    """Bytes in, :class:`Hello` then :class:`Audio` messages out."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._fmt: PcmFormat | None = None
        self._next_seq = 0
        self.broken: AudioFramingError | None = None
        self.seq_gaps = 0  # messages the peer skipped (a peer bug or restart)

    @property
    def fmt(self) -> PcmFormat | None:
        """The format the peer announced, once its HELLO arrived."""
        return self._fmt

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete message held; never more than a header and MAX_PAYLOAD."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Hello | Audio]:
        """Decode what ``data`` completes.  Between calls at most one incomplete message is
        kept (the length is checked as soon as a header is complete), so memory is bounded by
        the caller's chunk size plus :data:`MAX_PAYLOAD`."""
        if self.broken is not None:
            raise AudioFramingError(f"decoder stopped after an earlier error: {self.broken}")
        self._buf += data
        out: list[Hello | Audio] = []
        while len(self._buf) >= HEADER.size:
            magic, version, kind, length, seq = HEADER.unpack_from(self._buf)
            if magic != MAGIC:
                self._fail(f"bad magic {bytes(magic)!r}, expected {MAGIC!r}")
            if version != VERSION:
                self._fail(f"protocol version {version}, we speak {VERSION}")
            if length > MAX_PAYLOAD:
                self._fail(f"payload of {length} bytes, at most {MAX_PAYLOAD}")
            if len(self._buf) < HEADER.size + length:
                break
            payload = bytes(self._buf[HEADER.size : HEADER.size + length])
            del self._buf[: HEADER.size + length]
            if seq != self._next_seq:
                self.seq_gaps += (seq - self._next_seq) % SEQ_MOD
            self._next_seq = (seq + 1) % SEQ_MOD
            out.append(self._message(kind, payload, seq))
        return out

    def _message(self, kind: int, payload: bytes, seq: int) -> Hello | Audio:
        if kind == Kind.HELLO:
            if self._fmt is not None:
                self._fail("a second HELLO")
            if len(payload) != HELLO.size:
                self._fail(f"HELLO of {len(payload)} bytes, expected {HELLO.size}")
            rate, frame_ms, line = HELLO.unpack(payload)
            try:
                fmt = PcmFormat(rate, frame_ms)
            except AudioFormatError as e:
                self._fail(f"HELLO announces an unusable format: {e}")
            self._fmt = fmt
            return Hello(fmt, line)
        if kind == Kind.AUDIO:
            if self._fmt is None:
                self._fail("AUDIO before HELLO")
            if len(payload) != self._fmt.bytes_per_frame:
                self._fail(f"AUDIO of {len(payload)} bytes, expected {self._fmt.bytes_per_frame}")
            return Audio(seq, payload)
        self._fail(f"unknown message kind {kind}")

    def _fail(self, reason: str) -> NoReturn:
        self.broken = AudioFramingError(f"PCM socket framing: {reason}")
        raise self.broken
