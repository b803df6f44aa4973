"""ITU-T G.711 µ-law and A-law companding between 16-bit linear PCM and 8-bit codes.

Implemented with lookup tables built once at import, so that encoding and decoding a
frame is a single numpy indexing operation.  The arithmetic is that of the CCITT/Sun
Microsystems reference g711.c, which pjmedia and CPython's ``audioop`` also use, so that
our codes are bit-identical to what the SIP stack puts on the wire.  (The G.191 reference
rounds negative µ-law magnitudes one step differently at segment edges; nothing audible.)
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from firmware.dsp.pcm import Pcm

Codes = npt.NDArray[np.uint8]

ULAW_BIAS_14: Final = 33  # G.711 µ-law bias in 14-bit units
ULAW_CLIP_14: Final = 8159  # largest 14-bit magnitude µ-law encodes (G.711 Table 2)
ULAW_BIAS: Final = ULAW_BIAS_14 << 2  # the same bias on the 16-bit scale, for decoding
ALAW_XOR: Final = 0x55  # G.711 A-law even-bit inversion
ALAW_SEG_END: Final = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)  # 13-bit segments


def _ulaw_encode_scalar(sample: int) -> int:
    value = sample >> 2  # µ-law works on 14-bit values (arithmetic shift, as the reference)
    sign = 0x80 if value < 0 else 0
    mag = min(-value if value < 0 else value, ULAW_CLIP_14) + ULAW_BIAS_14
    exponent = max(mag.bit_length() - 6, 0)
    if exponent > 7:  # beyond the last segment: the largest code of that sign
        return 0x80 if not sign else 0x00
    mantissa = (mag >> (exponent + 1)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode_scalar(code: int) -> int:
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    mag = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS
    return -mag if code & 0x80 else mag


def _alaw_encode_scalar(sample: int) -> int:
    value = sample >> 3  # A-law works on 13-bit magnitudes
    if value >= 0:
        mask = 0xD5  # sign bit set for positive values, then the even-bit inversion
    else:
        mask = ALAW_XOR
        value = -value - 1
    seg = next((i for i, end in enumerate(ALAW_SEG_END) if value <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    code = seg << 4
    code |= (value >> 1) & 0x0F if seg < 2 else (value >> seg) & 0x0F
    return code ^ mask


def _alaw_decode_scalar(code: int) -> int:
    code ^= ALAW_XOR
    mag = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        mag += 8
    else:
        mag = (mag + 0x108) << (seg - 1)
    return mag if code & 0x80 else -mag


_ALL_SAMPLES = range(-32768, 32768)
# Indexed by the int16 sample reinterpreted as uint16.
_ULAW_ENC: Final = np.zeros(65536, dtype=np.uint8)
_ALAW_ENC: Final = np.zeros(65536, dtype=np.uint8)
for _s in _ALL_SAMPLES:
    _ULAW_ENC[_s & 0xFFFF] = _ulaw_encode_scalar(_s)
    _ALAW_ENC[_s & 0xFFFF] = _alaw_encode_scalar(_s)
_ULAW_DEC: Final = np.array([_ulaw_decode_scalar(c) for c in range(256)], dtype=np.int16)
_ALAW_DEC: Final = np.array([_alaw_decode_scalar(c) for c in range(256)], dtype=np.int16)


def ulaw_encode(pcm: Pcm) -> Codes:
    return _ULAW_ENC[np.asarray(pcm, dtype=np.int16).view(np.uint16)]


def ulaw_decode(codes: npt.ArrayLike) -> Pcm:
    return _ULAW_DEC[np.asarray(codes, dtype=np.uint8)]


def alaw_encode(pcm: Pcm) -> Codes:
    return _ALAW_ENC[np.asarray(pcm, dtype=np.int16).view(np.uint16)]


def alaw_decode(codes: npt.ArrayLike) -> Pcm:
    return _ALAW_DEC[np.asarray(codes, dtype=np.uint8)]


def ulaw_round_trip(pcm: Pcm) -> Pcm:
    """What a µ-law channel delivers for ``pcm``."""
    return ulaw_decode(ulaw_encode(pcm))


def alaw_round_trip(pcm: Pcm) -> Pcm:
    """What an A-law channel delivers for ``pcm``."""
    return alaw_decode(alaw_encode(pcm))
