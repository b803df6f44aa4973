"""A virtual telephone on an FXS port: hook switch, ringer, keypad or rotary dial, audio."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from drivers.linecard.protocol import Polarity
from drivers.sim.endpoint import MAX_LOG, AudioEndpoint, Scheduler, SimError, Timer
from drivers.sim.signals import ACK_DIGITS, DecodedCallerId
from drivers.sim.tones import DTMF_KEYS, FRAME_SAMPLES, SAMPLE_RATE, BufferSource, Pcm, dtmf

log = logging.getLogger(__name__)

# Decadic (rotary) dialling: 10 pulses/s with a 60 % break, the usual European ratio
# (North America uses 61/39; both fall in any exchange's acceptance window).
PULSE_BREAK_MS = 60
PULSE_MAKE_MS = 40
# Pause between digits; exchanges need some hundreds of ms to see a digit end.
PULSE_INTERDIGIT_MS = 700
VALID_DIGITS = "".join(DTMF_KEYS)
# On-hook signal spans: a frame louder than this (peak) carries signal (caller ID is sent at
# -13 dBm0 or so, peaks in the thousands); silence shorter than the gap does not end a span,
# so DTMF digits (70 ms pauses) and a DT-AS before its data make one span (engineering).
SIGNAL_PEAK_MIN = 64
SIGNAL_GAP_S = 0.3
# Type II: the ACK digit lasts 55..65 ms (SR-TSV-002476); the telephone's own microphone is
# muted from the alerting signal until the burst is over, so the user's voice does not
# disturb the exchange's ACK receiver.
ACK_MS = 60


class HookSwitch(Protocol):
    """What a handset is plugged into (the card's FXS port)."""

    def hook(self, off_hook: bool, when: float) -> None: ...


@dataclass
class RingBurst:
    """One burst of ringing voltage (or of on-hook signal) the handset saw; ``end`` is None
    while it lasts."""

    start: float
    end: float | None = None


class Handset(AudioEndpoint):
    """A telephone.  Call its methods from the simulator's event loop thread.

    Numbered like its FXS port (handset 1 is on port 1).  Every hook change reaches the
    card at the exact simulated time, so pulse digits and flashes carry true timing.
    """

    def __init__(
        self,
        number: int,
        *,
        clock: Callable[[], float],
        scheduler: Scheduler,
        notify: Callable[[], None],
        flash_ms: int,
    ) -> None:
        super().__init__(f"handset {number}")
        self.number = number
        self.flash_ms = flash_ms
        self._clock = clock
        self._scheduler = scheduler
        self._notify = notify
        self._port: HookSwitch | None = None
        self.is_off_hook = False
        self.ringing = False  # ringing voltage present right now
        self.ring_log: deque[RingBurst] = deque(maxlen=MAX_LOG)
        self.hook_log: deque[tuple[float, bool]] = deque(maxlen=MAX_LOG)
        self.polarity = Polarity.FORWARD
        self._pending: list[Timer] = []
        # The display: the last caller ID (or decoding failure) heard on hook, and when.
        self.caller_id: DecodedCallerId | None = None
        self.caller_id_at: float | None = None
        self.caller_id_off_hook = False  # the last one came during a call (type II)
        self.caller_ids = 0
        # Caller ID on call waiting (type II): the digit it acknowledges the CPE alerting
        # signal with ('D', or 'A' like an ADSI set), None for a telephone without type II.
        self.call_waiting_ack: str | None = None
        self.cas_heard = 0  # alerting signals acknowledged
        self.cw_muted = False  # between its ACK and the end of the burst
        # An answering machine's habit: lift the handset this long after ringing starts,
        # and (if set) hang up again this long after lifting it.
        self.auto_answer_s: float | None = None
        self.auto_hangup_s: float | None = None
        self.auto_answered = 0
        # When the SLIC passed audio to the phone on hook (caller ID, VMWI): (start, end).
        self.on_hook_signal_log: deque[RingBurst] = deque(maxlen=MAX_LOG)
        self.polarity_log: deque[tuple[float, Polarity]] = deque(maxlen=MAX_LOG)

    def plug(self, port: HookSwitch) -> None:
        self._port = port

    # --- user actions ---------------------------------------------------------------

    def off_hook(self) -> None:
        """Lift the handset."""
        if self.is_off_hook:
            raise SimError(f"{self.name} is already off hook")
        self._cancel_pending()
        self._set_hook(True, self._clock())

    def on_hook(self) -> None:
        """Hang up (also ends any recording started with ``until_on_hook``)."""
        if not self.is_off_hook and not self._pending:
            raise SimError(f"{self.name} is already on hook")
        self._cancel_pending()
        if self.is_off_hook:
            self._set_hook(False, self._clock())
        self.stop_playing()

    def flash(self, ms: int | None = None) -> float:
        """Hook flash of ``ms`` (default: the country's); returns when it ends."""
        duration = self.flash_ms if ms is None else ms
        if not 10 <= duration <= 5000:
            raise SimError(f"flash of {duration} ms outside 10..5000 ms")
        self._require_idle_off_hook("flash")
        now = self._clock()
        self._set_hook(False, now)
        self._later(now + duration / 1000, lambda t: self._set_hook(True, t))
        return now + duration / 1000

    def dial(self, digits: str, *, pulse: bool = False) -> float:
        """Dial ``digits`` by DTMF (default) or by pulses; returns when dialling ends."""
        if not digits:
            raise SimError("nothing to dial")
        bad = [d for d in digits if d.upper() not in VALID_DIGITS]
        if bad:
            raise SimError(f"cannot dial {''.join(bad)!r}: digits are 0-9 * # A-D")
        self._require_idle_off_hook("dial")
        now = self._clock()
        if not pulse:
            self._send_dtmf(digits)
            return now + len(digits) * 0.16
        if any(not d.isdigit() for d in digits):
            raise SimError(f"pulse dialling sends 0-9 only, not {digits!r}")
        t = now
        for d in digits:
            for _ in range(10 if d == "0" else int(d)):
                self._later(t, lambda when: self._set_hook(False, when))
                t += PULSE_BREAK_MS / 1000
                self._later(t, lambda when: self._set_hook(True, when))
                t += PULSE_MAKE_MS / 1000
            t += PULSE_INTERDIGIT_MS / 1000
        self._notify()
        return t

    @property
    def busy(self) -> bool:
        """Pulse dialling or a flash is in progress."""
        return any(timer.when > self._clock() for timer in self._pending)

    # --- from the card --------------------------------------------------------------

    def ring_voltage(self, active: bool, when: float) -> None:
        if active == self.ringing:
            return
        self.ringing = active
        if active:
            self.ring_log.append(RingBurst(when))
            if self.auto_answer_s is not None and not self._pending and not self.is_off_hook:
                self._later(when + self.auto_answer_s, self._auto_answer)
                self._notify()
        elif self.ring_log:
            self.ring_log[-1].end = when

    def set_polarity(self, polarity: Polarity, when: float | None = None) -> None:
        if polarity is not self.polarity and when is not None:
            self.polarity_log.append((when, polarity))
        self.polarity = polarity

    def on_hook_audio(self, frame: Pcm, when: float) -> None:
        """A frame the SLIC passed to the phone while on hook (on-hook transmission)."""
        if not len(frame) or int(np.abs(frame.astype(np.int32)).max()) < SIGNAL_PEAK_MIN:
            return
        start = when - len(frame) / SAMPLE_RATE
        last = self.on_hook_signal_log[-1] if self.on_hook_signal_log else None
        if last is not None and last.end is not None and start - last.end <= SIGNAL_GAP_S:
            last.end = when
        else:
            self.on_hook_signal_log.append(RingBurst(start, when))

    def timeline(self) -> dict[str, list[list[float | str | None]]]:
        """Ring bursts and on-hook signal spans as [start, end], line reversals as
        [when, "reverse" | "forward"] (simulator clock, s)."""
        return {
            "rings": [[r.start, r.end] for r in self.ring_log],
            "on_hook_signal": [[s.start, s.end] for s in self.on_hook_signal_log],
            "polarity": [[t, pol.name.lower()] for t, pol in self.polarity_log],
        }

    def caller_id_received(
        self, decoded: DecodedCallerId, when: float, *, off_hook: bool = False
    ) -> None:
        """The phone's caller-ID receiver decoded a burst heard on hook (or, for a type II
        telephone, during a call)."""
        log.info("%s: caller ID%s %s", self.name, " on call waiting" if off_hook else "", decoded)
        self.caller_id = decoded
        self.caller_id_at = when
        self.caller_id_off_hook = off_hook
        self.caller_ids += 1
        if off_hook:
            self.cw_muted = False
        self._notify()

    def set_call_waiting(self, ack: str | None) -> None:
        """Make this a type II telephone answering with ``ack`` ('D' or 'A'), or not (None)."""
        if ack is not None and (len(ack) != 1 or ack.upper() not in ACK_DIGITS):
            raise SimError(f"type II ACK digit must be one of {', '.join(ACK_DIGITS)}, not {ack!r}")
        self.call_waiting_ack = None if ack is None else ack.upper()

    def alerting_signal(self, digit: str, when: float) -> None:
        """Type II: the receiver heard the CPE alerting signal; send the ACK, mute the mic."""
        log.info("%s: CPE alerting signal heard, acknowledging with %s", self.name, digit)
        self.cas_heard += 1
        self.cw_muted = True
        self._digits.appendleft(BufferSource(dtmf(digit, on_ms=ACK_MS, off_ms=0)))

    def no_burst(self, when: float) -> None:
        """Type II: acknowledged, but no caller ID followed."""
        log.info("%s: no caller ID followed the alerting signal", self.name)
        self.cw_muted = False

    def talk_frame(self) -> Pcm:
        """As :meth:`AudioEndpoint.talk_frame`, but only the ACK while type II mutes it."""
        if self.cw_muted:
            while self._digits:
                if not self._digits[0].done:
                    return self._digits[0].read(FRAME_SAMPLES)
                self._digits.popleft()
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        return super().talk_frame()

    def caller_id_view(self) -> dict[str, Any] | None:
        """The last caller ID for ``status`` (JSON-ready), None if none was received."""
        cid = self.caller_id
        if cid is None:
            return None
        return {
            "number": cid.number,
            "name": cid.name,
            "date": cid.date,
            "error": cid.error,
            "at": self.caller_id_at,
            "count": self.caller_ids,
            "call_waiting": self.caller_id_off_hook,
        }

    # --- internals ------------------------------------------------------------------

    def _auto_answer(self, when: float) -> None:
        if self.is_off_hook:
            return
        self.auto_answered += 1
        self._set_hook(True, when)
        if self.auto_hangup_s is not None:
            self._later(when + self.auto_hangup_s, lambda t: self._set_hook(False, t))
            self._notify()

    def _require_idle_off_hook(self, what: str) -> None:
        if not self.is_off_hook:
            raise SimError(f"{self.name} must be off hook to {what}")
        if self.busy:
            raise SimError(f"{self.name} is still dialling or flashing")

    def _later(self, when: float, action: Callable[[float], None]) -> None:
        self._pending.append(self._scheduler.at(when, action))

    def _cancel_pending(self) -> None:
        for timer in self._pending:
            timer.cancel()
        self._pending.clear()

    def _set_hook(self, off_hook: bool, when: float) -> None:
        self._pending = [t for t in self._pending if t.when > when]
        if off_hook == self.is_off_hook:
            return
        self.is_off_hook = off_hook
        self.cw_muted = False
        self.hook_log.append((when, off_hook))
        log.debug("%s %s at %.3f", self.name, "off hook" if off_hook else "on hook", when)
        if self._port is not None:
            self._port.hook(off_hook, when)
        self._notify()
