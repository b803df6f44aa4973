"""Per-line PCM streams: ALSA through pyalsaaudio, an in-memory backend, and a socket one.

Mono S16_LE at 8 or 16 kHz in 20 ms frames.  Backends are :class:`PcmStream` subclasses found
by name (:func:`open_stream`); :class:`DriftBuffer` joins a line's clock to pjmedia's and
:class:`LinePump` runs the threads between them.  See docs/audio.md.
"""

from drivers.audio.base import BACKENDS, PcmStream, backend_class, open_stream
from drivers.audio.buffer import BufferStats, DriftBuffer
from drivers.audio.errors import (
    AudioDeviceError,
    AudioError,
    AudioFormatError,
    AudioFramingError,
    UnknownBackend,
)
from drivers.audio.format import PcmFormat
from drivers.audio.pump import LinePump

__all__ = [
    "BACKENDS",
    "AudioDeviceError",
    "AudioError",
    "AudioFormatError",
    "AudioFramingError",
    "BufferStats",
    "DriftBuffer",
    "LinePump",
    "PcmFormat",
    "PcmStream",
    "UnknownBackend",
    "backend_class",
    "open_stream",
]
