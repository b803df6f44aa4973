"""ALSA backend through pyalsaaudio: one playback and (optionally) one capture PCM per line.

The PCM names come from the ALSA configuration (on the appliance, ``/etc/asound.conf`` maps
``ponte_line1`` ... to the line card's TDM slots).  The period is one frame, so a blocking
read returns every frame time and a blocking write returns as soon as the device has room.
"""

from __future__ import annotations

import errno
import logging

import alsaaudio

from drivers.audio.base import PcmStream
from drivers.audio.errors import AudioDeviceError, AudioFormatError
from drivers.audio.format import PcmFormat

log = logging.getLogger(__name__)

PERIODS = 4  # device queue of 4 frames (80 ms at 20 ms): absorbs scheduling hiccups
MAX_RETRIES = 3  # consecutive xruns tolerated in one call before giving up


class AlsaStream(PcmStream):
    def __init__(
        self,
        fmt: PcmFormat,
        *,
        device: str,
        capture_device: str | None = None,
        periods: int = PERIODS,
    ) -> None:
        """``device`` plays to the line; ``capture_device`` (default: ``device``) listens.

        Pass ``capture_device=""`` for a playback-only stream.
        """
        super().__init__(fmt)
        if not isinstance(device, str) or not device:
            raise AudioFormatError(f"ALSA device must be a PCM name, got {device!r}")
        if not 2 <= periods <= 16:
            raise AudioFormatError(f"ALSA periods must be 2..16, got {periods}")
        self.device = device
        self.capture_device = device if capture_device is None else capture_device
        self.xruns = 0  # over- and underruns the device reported
        self._playback = self._open(alsaaudio.PCM_PLAYBACK, device, periods)
        self._capture = None
        if self.capture_device:
            try:
                self._capture = self._open(alsaaudio.PCM_CAPTURE, self.capture_device, periods)
            except AudioDeviceError:
                self._playback.close()
                raise

    def _open(self, kind: int, device: str, periods: int) -> alsaaudio.PCM:
        try:
            return alsaaudio.PCM(
                type=kind,
                mode=alsaaudio.PCM_NORMAL,
                device=device,
                rate=self.fmt.rate,
                channels=1,
                format=alsaaudio.PCM_FORMAT_S16_LE,
                periodsize=self.fmt.samples_per_frame,
                periods=periods,
            )
        except alsaaudio.ALSAAudioError as e:
            direction = "playback" if kind == alsaaudio.PCM_PLAYBACK else "capture"
            raise AudioDeviceError(f"cannot open ALSA {direction} PCM {device!r}: {e}") from e

    def read_frame(self) -> bytes:
        if self.closed:
            raise AudioDeviceError(f"ALSA stream {self.device!r} is closed")
        if self._capture is None:
            raise AudioDeviceError(f"ALSA stream {self.device!r} was opened without capture")
        want = self.fmt.bytes_per_frame
        for _ in range(MAX_RETRIES):
            try:
                length, data = self._capture.read()
            except alsaaudio.ALSAAudioError as e:
                raise AudioDeviceError(f"ALSA capture on {self.capture_device!r}: {e}") from e
            if length == -errno.EPIPE:
                # Overrun: we were late and the device dropped audio; pyalsaaudio has already
                # re-prepared the PCM.  Count it and read again.
                self.xruns += 1
                log.warning("ALSA capture overrun on %s", self.capture_device)
                continue
            if length < 0:
                raise AudioDeviceError(f"ALSA capture on {self.capture_device!r}: error {length}")
            if len(data) == want:
                return bytes(data)
            # A short read (end of a file plugin's input, a stopping device): pad with silence
            # so that callers always see whole frames.
            return bytes(data) + bytes(want - len(data))
        raise AudioDeviceError(f"ALSA capture on {self.capture_device!r}: {MAX_RETRIES} overruns")

    def write_frame(self, frame: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise AudioDeviceError(f"ALSA stream {self.device!r} is closed")
        self.fmt.check_frame(frame)
        data = bytes(frame)
        for _ in range(MAX_RETRIES):
            try:
                written = self._playback.write(data)
            except alsaaudio.ALSAAudioError as e:
                raise AudioDeviceError(f"ALSA playback on {self.device!r}: {e}") from e
            if written == -errno.EPIPE:
                self.xruns += 1
                log.warning("ALSA playback underrun on %s", self.device)
                continue
            if written < 0:
                raise AudioDeviceError(f"ALSA playback on {self.device!r}: error {written}")
            return
        raise AudioDeviceError(f"ALSA playback on {self.device!r}: {MAX_RETRIES} underruns")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            # Let queued audio reach the device, then release it.
            self._playback.drain()
        except alsaaudio.ALSAAudioError as e:
            log.debug("ALSA drain on %s: %s", self.device, e)
        finally:
            self._playback.close()
            if self._capture is not None:
                self._capture.close()
