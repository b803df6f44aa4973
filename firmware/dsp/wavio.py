"""WAV files for the technician's tool: write 16-bit PCM, read what line recorders produce.

Reads 8/16/24/32-bit integer PCM, 32/64-bit float, and G.711 A-law / µ-law WAV files (the
usual output of call recorders and ``sox``), mono or multi-channel (the first channel is
analysed), at any rate; :func:`resample` brings them to the detectors' rate.  The RIFF
chunks are parsed here because the standard library's ``wave`` reads integer PCM only.
Pure: bytes in, arrays out (the CLI does the file I/O).
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from firmware.dsp import g711
from firmware.dsp.pcm import Pcm, Samples, to_pcm

MAX_SECONDS: Final = 3600.0  # an hour of audio is the longest recording we will analyse
WAVE_FORMAT_PCM: Final = 0x0001
WAVE_FORMAT_IEEE_FLOAT: Final = 0x0003
WAVE_FORMAT_ALAW: Final = 0x0006
WAVE_FORMAT_MULAW: Final = 0x0007
WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE
MAX_RATE: Final = 192_000
MAX_RESAMPLE_SAMPLES: Final = 30_000_000  # ~10 min at 48 kHz: the FFT's memory stays < 1 GB


class WavError(ValueError):
    """The file is not a WAV file we can read, with the reason."""


@dataclass(frozen=True, slots=True)
class WavAudio:
    pcm: Pcm  # first channel, 16-bit linear
    rate: int
    channels: int
    encoding: str  # "pcm16", "alaw", "float32", ...

    @property
    def seconds(self) -> float:
        return self.pcm.size / self.rate


def write_wav(pcm: npt.ArrayLike, rate: int) -> bytes:
    """A mono 16-bit PCM WAV file."""
    samples = np.asarray(pcm, dtype=np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def _chunks(data: bytes) -> dict[bytes, bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    chunks: dict[bytes, bytes] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = data[pos + 8 : pos + 8 + size]
        if cid not in chunks:
            chunks[cid] = body
        pos += 8 + size + (size & 1)
    if b"fmt " not in chunks:
        raise WavError("no 'fmt ' chunk")
    if b"data" not in chunks:
        raise WavError("no 'data' chunk")
    return chunks


def read_wav(data: bytes) -> WavAudio:
    """Decode a WAV file's bytes (see the module docstring for the encodings)."""
    chunks = _chunks(data)
    fmt = chunks[b"fmt "]
    if len(fmt) < 16:
        raise WavError(f"'fmt ' chunk of {len(fmt)} bytes is too short")
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
        (tag,) = struct.unpack_from("<H", fmt, 24)  # first two bytes of the sub-format GUID
    if channels < 1 or not 1000 <= rate <= MAX_RATE:
        raise WavError(f"{channels} channels at {rate} Hz is not audio we can analyse")
    body = chunks[b"data"]
    width = max(bits // 8, 1)
    if block_align != channels * width:
        raise WavError(f"block align {block_align} does not match {channels}x{bits} bits")
    frames = len(body) // block_align
    if frames / rate > MAX_SECONDS:
        raise WavError(f"{frames / rate:.0f} s of audio exceeds the {MAX_SECONDS:.0f} s cap")
    raw = body[: frames * block_align]
    x: Samples | Pcm
    if tag == WAVE_FORMAT_PCM and bits == 8:
        x = (np.frombuffer(raw, np.uint8).astype(np.int16) - 128) * 256
        encoding = "pcm8"
    elif tag == WAVE_FORMAT_PCM and bits == 16:
        x = np.frombuffer(raw, "<i2").astype(np.int16)
        encoding = "pcm16"
    elif tag == WAVE_FORMAT_PCM and bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = to_pcm(v / 256.0)
        encoding = "pcm24"
    elif tag == WAVE_FORMAT_PCM and bits == 32:
        x = to_pcm(np.frombuffer(raw, "<i4") / 65536.0)
        encoding = "pcm32"
    elif tag == WAVE_FORMAT_IEEE_FLOAT and bits in (32, 64):
        f = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float64)
        if not np.all(np.isfinite(f)):
            raise WavError("float samples include NaN or infinity")
        x = to_pcm(f * 32768.0)
        encoding = f"float{bits}"
    elif tag == WAVE_FORMAT_ALAW and bits == 8:
        x = g711.alaw_decode(np.frombuffer(raw, np.uint8))
        encoding = "alaw"
    elif tag == WAVE_FORMAT_MULAW and bits == 8:
        x = g711.ulaw_decode(np.frombuffer(raw, np.uint8))
        encoding = "ulaw"
    else:
        raise WavError(f"unsupported WAV encoding (format tag {tag:#06x}, {bits} bits)")
    first = np.asarray(x).reshape(-1, channels)[:, 0]
    return WavAudio(np.ascontiguousarray(first, dtype=np.int16), rate, channels, encoding)


def resample(pcm: npt.ArrayLike, rate_in: int, rate_out: int) -> Pcm:
    """Band-limited resampling of a whole recording (FFT method; fine for analysis)."""
    x = np.asarray(pcm, dtype=np.float64)
    if rate_in == rate_out or x.size == 0:
        return to_pcm(x)
    if x.size > MAX_RESAMPLE_SAMPLES:
        raise WavError(
            f"{x.size} samples at {rate_in} Hz is too long to resample here; "
            f"convert to {rate_out} Hz first (sox in.wav -r {rate_out} out.wav)"
        )
    n_out = round(x.size * rate_out / rate_in)
    spec = np.fft.rfft(x)
    keep = min(spec.size, n_out // 2 + 1)
    out_spec = np.zeros(n_out // 2 + 1, dtype=np.complex128)
    out_spec[:keep] = spec[:keep]
    y = np.fft.irfft(out_spec, n_out) * (n_out / x.size)
    return to_pcm(y)
