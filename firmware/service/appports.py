"""Application ports: a media loop for a SIP caller that talks to no line.

A caller on a line runs its application (voicemail, the IVR, a conference room:
:mod:`firmware.service.apps`) in that line's media loop, paced by the card's clock.  A SIP
caller has no line: call control (:mod:`firmware.pbx.calls`) connects its leg to an
*application port* instead (``firmware.pbx.apps.APP_PORTS``).  Each one is a bridge port of
the SIP endpoint like a line's (``SipEndpoint.line_audio``: the same ``LineAudio`` drift
buffers, created with the lines' because the service lists them in ``line_ports``), and,
while a caller uses it, a :class:`~firmware.service.media.PortMedia` whose "line" is a
:class:`LegStream`: reading a frame waits for the next tick of a 20 ms clock of its own and
gives what the caller said (the bridge's downlink); writing one sends it to the caller (the
uplink).  So an ``AppLink`` or a conference ``Seat`` plugs into ``PortMedia.app`` exactly as
on a line, and nothing of the applications knows the difference.

At most one thread per application port, only while it is in use: :meth:`AppPorts.open`
starts it when call control connects a leg to the port, :meth:`AppPorts.close` stops it when
the leg leaves (or the application is stopped); ``stop`` at shutdown.  The pool holds
``len(APP_PORTS)`` ports, as many as pjsua has calls (``PJSUA_MAX_CALLS``): each caller on
one holds a call, so a bigger pool could never fill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from drivers.audio.base import PcmStream
from drivers.audio.buffer import DriftBuffer
from drivers.audio.errors import AudioDeviceError
from drivers.audio.format import PcmFormat
from drivers.audio.memory import DeviceClock
from firmware.pbx.apps import APP_PORTS
from firmware.service.media import PortMedia
from firmware.sip.errors import SipError

if TYPE_CHECKING:
    from firmware.service.appliance import Appliance

log = logging.getLogger(__name__)

STOP_TIMEOUT_S: Final = 5.0  # PortMedia.stop joins within about a frame; a loaded box is slow


class LegStream(PcmStream):
    """The line side of an application port: a SIP leg's bridge buffers on a 20 ms clock.

    ``read_frame`` blocks until the clock's next tick and returns what the caller said
    (silence when the bridge had nothing); ``write_frame`` queues a frame for the caller
    (a full buffer drops it and counts an overrun).  One thread reads and writes.
    """

    def __init__(
        self,
        fmt: PcmFormat,
        uplink: DriftBuffer,
        downlink: DriftBuffer,
        *,
        clock: DeviceClock | None = None,
    ) -> None:
        super().__init__(fmt)
        self._uplink = uplink
        self._downlink = downlink
        self._clock = clock or DeviceClock(fmt.frame_ms / 1000)
        self._frame = bytearray(fmt.bytes_per_frame)
        # What an earlier session played must not reach this caller.  pjmedia reads the
        # uplink only while a call is connected to the port, which comes after this.
        uplink.reset()
        # What the earlier caller said is dropped by the first read instead: the bridge may
        # still be disconnecting that call, and only this buffer's consumer may take from it.
        self._fresh = True

    def read_frame(self) -> bytes:
        if self.closed:
            raise AudioDeviceError("application port stream is closed")
        self._clock.wait_next()
        down = self._downlink
        if self._fresh:
            self._fresh = False
            down.discard()
        down.pop_into(self._frame)
        return bytes(self._frame)

    def write_frame(self, frame: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise AudioDeviceError("application port stream is closed")
        self._uplink.push(frame)

    def close(self) -> None:
        self.closed = True  # the media thread sees it within one tick


class AppPorts:
    """The application ports of one appliance and the media loops of those in use.

    Event loop only.  ``numbers`` go to the SIP endpoint's ``line_ports`` (bridge ports) and
    to call control (which hands them out).
    """

    def __init__(
        self,
        appliance: Appliance,
        numbers: tuple[int, ...] = APP_PORTS,
        on_failure: Callable[[int, BaseException], None] | None = None,
    ) -> None:
        self._app = appliance
        self.numbers = numbers
        self.media: dict[int, PortMedia] = {}
        self._on_failure = on_failure or (lambda port, error: None)
        self._stopping: set[asyncio.Task[None]] = set()

    def __contains__(self, port: object) -> bool:
        return port in self.numbers

    def get(self, port: int) -> PortMedia | None:
        return self.media.get(port)

    def open(self, port: int) -> PortMedia | None:
        """Start ``port``'s media loop (once); None when the SIP stack has no bridge port."""
        media = self.media.get(port)
        if media is not None:
            return media
        bridge = self._app.sip
        if port not in self.numbers or bridge is None:
            log.error("application port %d: no SIP stack to carry its audio", port)
            return None
        try:
            audio = bridge.endpoint.line_audio(port)
        except SipError as exc:
            log.error("application port %d: %s", port, exc)
            return None
        stream = LegStream(audio.fmt, audio.uplink, audio.downlink)
        media = PortMedia(
            port,
            stream,
            detect_dtmf=False,  # a SIP caller's digits come as RFC 4733 events
            on_digit=lambda p, d: None,
            on_failure=self._on_failure,
        )
        self.media[port] = media
        media.start()
        log.info("application port %d: media loop started", port)
        return media

    def close(self, port: int) -> None:
        """Stop ``port``'s media loop (if it runs); the thread is joined off the loop."""
        media = self.media.pop(port, None)
        if media is None:
            return
        media.app = None
        task = asyncio.ensure_future(asyncio.to_thread(media.stop))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)
        log.info("application port %d: media loop stopped after %d frames", port, media.frames)

    async def stop(self) -> None:
        for port in list(self.media):
            self.close(port)
        for task in list(self._stopping):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, STOP_TIMEOUT_S)
