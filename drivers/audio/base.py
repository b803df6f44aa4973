"""The audio seam: one small abstract class per line, backends found by name.

Like python-can's interfaces, every backend is a :class:`PcmStream` subclass registered in
:data:`BACKENDS` by module path, imported only when opened (so that importing drivers.audio
never loads alsaaudio).  The in-memory backend ships in the package, not only in the tests.

A stream is the line side of a line's audio: :meth:`PcmStream.read_frame` returns the next
frame heard on the line and :meth:`PcmStream.write_frame` plays one to it.  Both block on the
*device's* clock (ALSA's period wake-ups, a paced in-memory clock, a simulator's socket), never
on pjmedia's; a :class:`~drivers.audio.pump.LinePump` thread per direction moves frames between
the stream and the :class:`~drivers.audio.buffer.DriftBuffer` pjmedia's clock thread reads.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Any

from drivers.audio.errors import UnknownBackend
from drivers.audio.format import PcmFormat

# name -> (module, class).  Add a line for a new backend.
BACKENDS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "alsa": ("drivers.audio.alsa", "AlsaStream"),
        "memory": ("drivers.audio.memory", "MemoryStream"),
        "socket": ("drivers.audio.socket_stream", "SocketStream"),
    }
)


class PcmStream(abc.ABC):
    """One line's PCM endpoint (mono S16_LE, fixed frames).  Close it when done."""

    def __init__(self, fmt: PcmFormat) -> None:
        self.fmt = fmt
        self.closed = False

    @abc.abstractmethod
    def read_frame(self) -> bytes:
        """The next frame heard on the line; blocks for about one frame on the device clock."""

    @abc.abstractmethod
    def write_frame(self, frame: bytes | bytearray | memoryview) -> None:
        """Play one frame to the line; blocks while the device's queue is full."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device.  Idempotent; reads and writes afterwards raise."""

    def __enter__(self) -> PcmStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def backend_class(interface: str) -> type[PcmStream]:
    try:
        module_name, class_name = BACKENDS[interface]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise UnknownBackend(f"no audio backend {interface!r} (known: {known})") from None
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, PcmStream)):
        raise UnknownBackend(f"{module_name}.{class_name} is not a PcmStream")
    return cls


def open_stream(interface: str, fmt: PcmFormat | None = None, **options: Any) -> PcmStream:
    """Open a line's PCM stream on the named backend, e.g. ``open_stream("alsa", device=...)``."""
    return backend_class(interface)(fmt or PcmFormat(), **options)
