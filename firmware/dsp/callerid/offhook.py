"""Caller ID on call waiting (type II) on one line, frame by frame, on the line's own clock.

:class:`~firmware.dsp.callerid.type2.CallWaitingSender` is the handshake; this is the
handshake as a line's media loop runs it: 20 ms of what the line heard in, 20 ms to play
out, time counted in samples of the line's stream (the card's clock, so a loaded host that
answers late does not shrink the ACK window).  Sans-IO, no threads.

Sequence (GR-30-CORE / SR-TSV-002476 for Bell CAS, EN 300 659-2 for the ETSI DT-AS):

1. ``lead_ms`` of normal audio: the call-waiting tone the line already plays (its first
   burst, :func:`handshake_offset_ms`);
2. the far end is muted both ways from here on: ``CAS_GAP_MS`` of silence, then the CAS;
3. a fresh DTMF receiver (the full talk-off protection of :mod:`firmware.dsp.dtmf`) listens
   for 'A' or 'D' until the ACK window closes (widened by ``latency_ms`` of audio path);
4. acknowledged: ``FSK_AFTER_ACK_MS`` later the burst; not acknowledged: nothing more;
5. audio back to normal once the last sample has been played out.
"""

from __future__ import annotations

import enum
from typing import Final

import numpy as np

from firmware.dsp.callerid.type2 import (
    CallWaitingSender,
    CasStandard,
    HandshakeFinished,
    PlayAudio,
)
from firmware.dsp.dtmf import DtmfDetector, DtmfStart
from firmware.dsp.pcm import SAMPLE_RATE, Pcm, ms_to_samples
from firmware.dsp.tones import ToneSpec

# Silence, far end already muted, between the end of the call-waiting tone burst and the
# CAS: the telephone's receiver must not take the tail of the tone (or speech) for part of
# the CAS.  GR-30-CORE allows the CAS right after the SAS; EN 300 659-2 asks for the
# far end to be muted before the DT-AS.  100 ms is our choice inside both.
CAS_GAP_MS: Final = 100.0
# The handshake starts in the first pause of the call-waiting tone at least this long (the
# gap between cadence groups), so that it never cuts a burst of the tone in two.
LONG_PAUSE_MS: Final = 500.0
MAX_LEAD_MS: Final = 15_000.0  # the longest national call-waiting group is under 2 s


def handshake_offset_ms(tone: ToneSpec) -> float:
    """Where in ``tone`` (the country's call-waiting tone) type II caller ID begins.

    At the first pause of ``LONG_PAUSE_MS`` or more: after the first burst (US: one 300 ms
    burst) or group of bursts (ITU: 200 on, 200 off, 200 on).  A tone without such a pause
    has the handshake after one pass of its plan.
    """
    at = 0.0
    for seg in tone.segments:
        if seg.duration_ms is None:
            break
        if seg.silent and seg.duration_ms >= LONG_PAUSE_MS:
            break
        at += seg.duration_ms
    return min(at, MAX_LEAD_MS)


class Phase(enum.Enum):
    LEAD = "lead"  # normal audio: the call-waiting tone goes out
    HANDSHAKE = "handshake"  # far end muted: gap, CAS, ACK window, burst
    DONE = "done"  # normal audio again


class CallWaitingLine:
    """Type II on one line: ``frame(heard)`` once per period returns what to play.

    ``None`` means "normal audio" (before the handshake and after it); a frame means the far
    end is muted and this is what the line plays.  ``result`` holds the outcome once the
    handshake is over; ``done`` is true once everything it played has been handed out.
    """

    def __init__(
        self,
        burst: Pcm,
        *,
        cas_standard: CasStandard,
        lead_ms: float,
        latency_ms: float = 0.0,
        rate: int = SAMPLE_RATE,
    ) -> None:
        if not 0 <= lead_ms <= MAX_LEAD_MS:
            raise ValueError(f"lead of {lead_ms} ms outside 0..{MAX_LEAD_MS} ms")
        self._sender = CallWaitingSender(
            burst, cas_standard=cas_standard, rate=rate, ack_latency_ms=latency_ms
        )
        self._rate = rate
        self._t = 0  # samples of the line's stream since this object was made
        self._mute_at = ms_to_samples(lead_ms, rate)
        self._cas_at = self._mute_at + ms_to_samples(CAS_GAP_MS, rate)
        self._started = False
        self._queue: list[Pcm] = []  # what is still to be played, in order (CAS, burst)
        self._pos = 0  # samples of _queue[0] already played
        self._detector: DtmfDetector | None = None
        self.phase = Phase.LEAD
        self.result: HandshakeFinished | None = None

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def muted(self) -> bool:
        return self.phase is Phase.HANDSHAKE

    def _ms(self, samples: int) -> float:
        return samples * 1000 / self._rate

    def frame(self, heard: Pcm) -> Pcm | None:
        """The line heard ``heard`` this period; returns what to play (None: normal audio)."""
        n = len(heard)
        now = self._t
        self._t += n
        if self.phase is Phase.DONE:
            return None
        if self.phase is Phase.LEAD:
            if now < self._mute_at:
                return None
            self.phase = Phase.HANDSHAKE
        now_ms = self._ms(now)
        actions: list[PlayAudio | HandshakeFinished] = []
        if not self._started and now >= self._cas_at:
            self._started = True
            actions += self._sender.start(now_ms)
            self._detector = DtmfDetector(self._rate)
        elif self._detector is not None and self.result is None:
            for event in self._detector.feed(heard):
                if isinstance(event, DtmfStart):
                    actions += self._sender.on_digit(event.digit, now_ms)
        if self._started:
            actions += self._sender.poll(now_ms)
        for action in actions:
            if isinstance(action, PlayAudio):
                self._queue.append(action.pcm)
            else:
                self.result = action
                self._detector = None
        out = self._take(n)
        if self.result is not None and not self._queue:
            self.phase = Phase.DONE  # this last frame still plays (the tail, or silence)
        return out

    def _take(self, n: int) -> Pcm:
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        while filled < n and self._queue:
            head = self._queue[0]
            chunk = head[self._pos : self._pos + n - filled]
            out[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
            self._pos += len(chunk)
            if self._pos >= len(head):
                self._queue.pop(0)
                self._pos = 0
        return out
