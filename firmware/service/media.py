"""Per-port media loop: the line's PCM clock drives it, one thread per port.

Each 20 ms frame the card sends is read, fed to the DTMF detector (when the card does
not detect digits itself) and, on FXO ports, to the caller-ID receiver (always: caller ID
comes while on hook) and the call-progress detector (while the line is seized), and
answered at once with one frame of whatever the port should hear: the current tone, or
silence.  Answering in lockstep with the card's clock
keeps the two directions aligned without a buffer of our own, and a new tone goes out
with the very next frame (dial tone within one frame of the hook event being handled).

Threading: the loop thread owns the stream and the detector.  The asyncio side changes
the tone with :meth:`PortMedia.play`, a single reference swap (atomic under the GIL);
detected digits, caller IDs and busy-tone verdicts go back through ``on_digit``,
``on_caller_id`` and ``on_busy``, which must be thread-safe (``loop.call_soon_threadsafe``
in the service).  :meth:`PortMedia.listen_for_progress` is another reference swap.

FXS ports also play on-hook transmissions (caller ID, message waiting) queued with
:meth:`PortMedia.send_on_hook`: they go before any tone or call audio, frame by frame on
the card's clock, and ``on_done`` is called from the loop thread once the last sample has
been written.  :meth:`PortMedia.stop_on_hook` drops the rest at once.  Both are reference
swaps too; a finished transmission stays in place (marked done) rather than being cleared,
so the loop never overwrites a newer one that the asyncio side just queued.

Caller ID on call waiting (type II) is a ``CallWaitingLine``
(:mod:`firmware.dsp.callerid.offhook`) handed over with :meth:`PortMedia.send_call_waiting`:
each frame it decides what the line plays; while it does, the far end is muted both ways
(the far party hears silence, not the phone's ACK or the FSK, and the phone hears no
speech over the CAS and burst), then audio flows again.  ``on_done`` runs on the loop
thread when it is over.

FXO ports run a DTMF receiver while the line is seized (the card's digit detection, where
it has one, covers FXS ports only): an exchange caller in the IVR chooses by DTMF.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt

from drivers.audio.base import PcmStream
from drivers.audio.buffer import DriftBuffer
from drivers.audio.errors import AudioError
from firmware.dsp.callerid.offhook import CallWaitingLine
from firmware.dsp.dtmf import DtmfDetector, DtmfEnd, DtmfStart
from firmware.dsp.profiles import CountryProfile
from firmware.dsp.progress import CallProgressDetector, ToneDetected
from firmware.dsp.tones import TonePlayer, ToneSpec
from firmware.service.callerid_rx import CallerIdReceiver, Heard
from firmware.service.crossconnect import CrossConnect
from firmware.service.linelevels import LineLevels
from firmware.service.recording import MediaLink, RecordedLink

log = logging.getLogger(__name__)

MAX_ON_HOOK_S: Final = 10.0  # cap on one queued transmission (caller ID lasts under 4 s)
# Frames of an on-hook transmission written ahead into the card's PCM FIFO when it starts:
# a loaded host answers the card's clock a frame late now and then, and the card fills the
# gap with silence, which in the middle of FSK loses 24 bits and the message.  Taken back
# at the end (no frame written for as many periods), so call audio gets no extra delay.
# 60 ms still underran about one Bell 202 burst in 40 on the 2-core CI machine at load 10;
# 120 ms leaves the FIFO (at most cushion + 1 frames) 60 ms short of overflowing.
ON_HOOK_CUSHION_FRAMES: Final = 6  # engineering choice: 120 ms of the card's 200 ms FIFO
JOIN_TIMEOUT_S: Final = 2.0  # a stream blocks for at most a few frames; beyond that it is wedged
# Call-progress verdicts that mean the far end is gone (or never came).
CLEARING_TONES: Final = frozenset({"busy", "congestion"})


class _SipAttachment:
    """A SIP leg's buffers as one line's media loop uses them (owned by that loop's thread)."""

    __slots__ = ("downlink", "frames", "fresh", "uplink")

    def __init__(self, uplink: DriftBuffer, downlink: DriftBuffer) -> None:
        self.uplink = uplink
        self.downlink = downlink
        self.fresh = True  # not drained yet
        self.frames = 0  # frames of the leg's audio played


class _OnHook:
    """One queued transmission: its samples, how far it got, who to tell at the end."""

    __slots__ = ("ahead", "done", "on_done", "pcm", "position")

    def __init__(self, pcm: npt.NDArray[np.int16], on_done: Callable[[int], None]) -> None:
        self.pcm = pcm
        self.position = 0
        self.on_done = on_done
        self.done = False
        self.ahead = 0  # frames written beyond one per period (the cushion)

    def next_frame(self, samples: int) -> bytes:
        chunk = self.pcm[self.position : self.position + samples]
        self.position += samples
        if len(chunk) < samples:
            chunk = np.concatenate((chunk, np.zeros(samples - len(chunk), dtype=np.int16)))
        return chunk.astype("<i2", copy=False).tobytes()


class _CallWaiting:
    """One type II exchange: the sans-IO line, and whether its end has been reported."""

    __slots__ = ("ahead", "line", "on_done", "reported")

    def __init__(
        self, line: CallWaitingLine, on_done: Callable[[int, CallWaitingLine], None]
    ) -> None:
        self.line = line
        self.on_done = on_done
        self.reported = False
        self.ahead = 0  # frames written beyond one per period (the cushion, as on hook)


class PortMedia:
    def __init__(
        self,
        port: int,
        stream: PcmStream,
        *,
        detect_dtmf: bool,
        on_digit: Callable[[int, str], None],
        on_failure: Callable[[int, BaseException], None],
        fxo_profile: CountryProfile | None = None,
        on_caller_id: Callable[[int, Heard], None] | None = None,
        on_busy: Callable[[int, str], None] | None = None,
    ) -> None:
        self.port = port
        self.stream = stream
        # The DTMF receiver runs only while the phone is off hook (listen_for_digits): a
        # phone on hook cannot dial, and idle ports are most ports most of the time.
        self._detect_dtmf = detect_dtmf
        self._detector: DtmfDetector | None = None
        self._on_digit = on_digit
        self._on_failure = on_failure
        # FXO ports: what the exchange sends on hook, and its tones once seized.
        self._profile = fxo_profile
        self._cid = (
            CallerIdReceiver(fxo_profile, stream.fmt.rate) if fxo_profile is not None else None
        )
        self._on_caller_id = on_caller_id
        self._on_busy = on_busy
        self._progress: CallProgressDetector | None = None
        self._player: TonePlayer | None = None
        self._over_call = False  # the tone is mixed over the call's audio (call waiting)
        self._silence = bytes(stream.fmt.bytes_per_frame)
        self._samples = stream.fmt.samples_per_frame
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = 0
        self.tone_started_at: float | None = None  # monotonic time the current tone first went out
        self._on_hook: _OnHook | None = None
        self._call_waiting: _CallWaiting | None = None  # type II in progress (reference swap)
        self._drain = 0  # periods to write nothing in, so the card's FIFO shrinks back
        self.link = CrossConnect(
            stream.fmt.bytes_per_frame
        )  # audio to and from another port (pbx calls)
        # Audio to and from a SIP leg: (uplink, downlink) drift buffers between this loop
        # (the card's clock) and pjmedia's clock.  A reference swap, like the tone player.
        self._sip: _SipAttachment | None = None
        # An application (voicemail: firmware.service.apps) in place of the cross-connect:
        # it hears the line and plays to it.  A reference swap, like the tone player.
        self.app: MediaLink | None = None
        self._sip_frame = bytearray(stream.fmt.bytes_per_frame)
        self.levels = LineLevels(self._samples)  # ports.levels: what the line hears and plays

    def attach_sip(self, uplink: DriftBuffer | None, downlink: DriftBuffer | None = None) -> None:
        """Talk to a SIP leg from the next frame on (None: stop).  Any thread.

        What the line hears is pushed into ``uplink``; what it plays comes from ``downlink``
        whenever no tone, dialled DTMF or cross-connected port has the line.
        """
        self._sip = None if uplink is None or downlink is None else _SipAttachment(uplink, downlink)

    def play(self, spec: ToneSpec | None, *, over_call: bool = False) -> None:
        """Play ``spec`` from the next frame on (None: silence).  Any thread.

        ``over_call``: mixed with the call's audio rather than instead of it (the
        call-waiting tone: the conversation goes on between its bursts).
        """
        self._over_call = over_call
        self._player = None if spec is None else TonePlayer(spec, self.stream.fmt.rate)
        self.tone_started_at = None

    def send_on_hook(self, pcm: npt.NDArray[np.int16], on_done: Callable[[int], None]) -> None:
        """Play ``pcm`` from the next frame on, before anything else.  Any thread.

        ``on_done(port)`` runs on the media thread after the last sample went out (not
        after :meth:`stop_on_hook`); it must be thread-safe and quick.
        """
        if pcm.ndim != 1 or len(pcm) > MAX_ON_HOOK_S * self.stream.fmt.rate:
            raise ValueError(
                f"on-hook transmission of {pcm.shape} samples, at most {MAX_ON_HOOK_S} s"
            )
        self._on_hook = _OnHook(pcm, on_done)

    def stop_on_hook(self) -> None:
        """Drop the on-hook transmission in progress from the next frame on.  Any thread."""
        tx, self._on_hook = self._on_hook, None
        if tx is not None and not tx.done:
            self._drain = tx.ahead  # take the cushion back

    def send_call_waiting(
        self, line: CallWaitingLine, on_done: Callable[[int, CallWaitingLine], None]
    ) -> None:
        """Run type II caller ID from the next frame on.  Any thread.

        ``on_done(port, line)`` runs on the media thread once the line is done (not after
        :meth:`stop_call_waiting`); it must be thread-safe and quick.
        """
        self._call_waiting = _CallWaiting(line, on_done)

    def stop_call_waiting(self) -> None:
        """Drop the type II exchange in progress; audio flows from the next frame.  Any thread."""
        cw, self._call_waiting = self._call_waiting, None
        if cw is not None and not cw.reported:
            self._drain = cw.ahead  # take the cushion back

    @property
    def call_waiting_active(self) -> bool:
        cw = self._call_waiting
        return cw is not None and not cw.reported

    @property
    def sending_on_hook(self) -> bool:
        tx = self._on_hook
        return tx is not None and not tx.done

    def listen_for_digits(self, off_hook: bool) -> None:
        """FXS: run a fresh DTMF receiver from the next frame on, or stop it.  Any thread."""
        self._detector = (
            DtmfDetector(self.stream.fmt.rate) if off_hook and self._detect_dtmf else None
        )

    def listen_for_progress(self, seized: bool) -> None:
        """FXO: run the call-progress detector and the DTMF receiver from now on (fresh
        ones) or stop them."""
        if self._profile is None:
            return
        rate = self.stream.fmt.rate
        self._progress = CallProgressDetector(self._profile, rate) if seized else None
        self._detector = DtmfDetector(rate) if seized else None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"port {self.port} media already started")
        self._thread = threading.Thread(
            target=self._run, name=f"media-port{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and close the stream; waits for the thread."""
        self._stop.set()
        self.stream.close()  # unblocks a read in progress
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.error("media thread of port %d did not stop", self.port)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                heard = self.stream.read_frame()
                self.levels.heard(heard)
                pcm = np.frombuffer(heard, dtype="<i2")
                cw_frames = self._call_waiting_frames(pcm)
                towards_far_end = heard if cw_frames is None else self._silence
                app = self.app
                (self.link if app is None else app).heard(towards_far_end)
                sip = self._sip
                if sip is not None:
                    # A full buffer counts an overrun and drops the frame.
                    sip.uplink.push(towards_far_end)
                player = self._player
                on_hook = self._on_hook
                if on_hook is not None and not on_hook.done:
                    self._on_hook_frame(on_hook)
                elif cw_frames is not None:
                    self._next_frame(sip)  # the far end, muted: keep its buffers moving
                    for out in cw_frames:
                        self.stream.write_frame(out)
                        self.levels.played(out)
                elif self._drain > 0:
                    self._drain -= 1
                elif player is None:
                    out = self._next_frame(sip)
                    self.stream.write_frame(out)
                    self.levels.played(out)
                    if isinstance(app, RecordedLink):
                        app.played(out)  # a line <-> SIP call: the leg's audio is recorded
                else:
                    tone = player.next_frame(self._samples)
                    if self._over_call:
                        far = np.frombuffer(self._next_frame(sip), dtype="<i2")
                        tone = np.clip(tone.astype(np.int32) + far, -32768, 32767)
                    out = tone.astype("<i2", copy=False).tobytes()
                    self.stream.write_frame(out)
                    self.levels.played(out)
                    if self.tone_started_at is None:
                        self.tone_started_at = time.monotonic()
                self.frames += 1
                detector = self._detector
                if detector is not None:
                    for event in detector.feed(pcm):
                        link = self.link
                        if isinstance(event, DtmfStart):
                            if isinstance(link, CrossConnect):
                                if event.digit in link.hush_digits:
                                    link.hush()  # a code begins (firmware.pbx.recording)
                                # A digit of a code being dialled stays hushed to its end.
                                link.digit_hush = link.hushed
                            self._on_digit(self.port, event.digit)
                        elif isinstance(event, DtmfEnd) and isinstance(link, CrossConnect):
                            link.digit_hush = False
                if self._cid is not None:
                    self._fxo_frame(pcm)
        except AudioError as e:
            if not self._stop.is_set():
                log.error("port %d audio stopped: %s", self.port, e)
                self._on_failure(self.port, e)
        except Exception as e:  # a bug: the service must hear of it, not a silent thread
            log.exception("port %d media loop crashed", self.port)
            self._on_failure(self.port, e)

    def _next_frame(self, sip: _SipAttachment | None) -> bytes:
        """Dialled DTMF or the cross-connected port first, then the SIP leg, else silence."""
        app = self.app
        frame = app.next_frame() if app is not None else self.link.next_frame()
        if sip is None:
            return frame or self._silence
        out = self._sip_frame
        if sip.fresh:
            # Whatever an earlier call left in the downlink would be played first: drop it
            # (here, because this thread is the buffer's only consumer).
            sip.fresh = False
            for _ in range(sip.downlink.capacity_samples):
                if sip.downlink.stats().fill < len(out) // 2 or not sip.downlink.pop_into(out):
                    break
        if frame is not None:
            sip.downlink.pop_into(out)  # keep the leg's buffer level steady meanwhile
            return frame
        if sip.downlink.pop_into(out):
            sip.frames += 1
            return bytes(out)
        return self._silence

    def _call_waiting_frames(self, heard: npt.NDArray[np.int16]) -> list[bytes] | None:
        """Type II's frames to play this period (None: none in progress, or audio flows).

        Normally one; when the far end is first muted, also the cushion of an on-hook
        transmission, written ahead (silence: the CAS comes later) so that a late answer to
        the card's clock does not cut a hole in the FSK.  It is taken back (periods with
        nothing written) once the exchange is over.
        """
        cw = self._call_waiting
        if cw is None or cw.reported:
            return None
        line = cw.line
        was_muted = line.muted
        out = line.frame(heard)
        frames = [] if out is None else [out]
        if out is not None and not was_muted:
            quiet = np.zeros(len(heard), dtype=np.int16)
            while cw.ahead < ON_HOOK_CUSHION_FRAMES and not line.done:
                extra = line.frame(quiet)
                if extra is None:
                    break
                frames.append(extra)
                cw.ahead += 1
        if line.done:
            cw.reported = True
            self._drain = cw.ahead
            cw.on_done(self.port, line)
        return [f.astype("<i2", copy=False).tobytes() for f in frames] or None

    def _on_hook_frame(self, tx: _OnHook) -> None:
        samples = self._samples
        if tx.position == 0:
            while tx.ahead < ON_HOOK_CUSHION_FRAMES and tx.position + samples < len(tx.pcm):
                self.stream.write_frame(tx.next_frame(samples))
                tx.ahead += 1
        if tx.position < len(tx.pcm):
            self.stream.write_frame(tx.next_frame(samples))
        elif tx.ahead > 0:
            tx.ahead -= 1  # the card plays what it holds
        if tx.position >= len(tx.pcm) and tx.ahead == 0:
            tx.done = True
            tx.on_done(self.port)

    def _fxo_frame(self, pcm: npt.NDArray[np.int16]) -> None:
        assert self._cid is not None
        for result in self._cid.feed(pcm):
            if self._on_caller_id is not None:
                self._on_caller_id(self.port, result)
        progress = self._progress
        if progress is not None:
            for event in progress.feed(pcm):
                if isinstance(event, ToneDetected) and event.tone in CLEARING_TONES:
                    if self._on_busy is not None:
                        self._on_busy(self.port, event.tone)
