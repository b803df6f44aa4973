"""FXO port state machine: one line from the central office (sans-IO).

Same driving model as :mod:`firmware.lines.fxs`: :meth:`FxoPort.handle` and
:meth:`FxoPort.handle_timer` return commands (:class:`~firmware.lines.messages.Seize`,
:class:`~firmware.lines.messages.Release`) and reports for call control; times are ints of host
monotonic ms.

Ring detection: ringing voltage comes as on/off edges.  A burst counts as a ring only if it
lasted ``ring_burst_min_ms .. ring_burst_max_ms``; the first such burst (at its end) makes an
:class:`~firmware.lines.messages.IncomingCall`.  Shorter or longer bursts (line tests, foreign
voltage) are ignored.  Ringing is over when no ring follows within ``ring_silence_max_ms``.
Caller ID is taken before the first ring (after a line reversal or alerting signal, EN 300
659-1) for ``pre_ring_cid_window_ms``, and between rings (GR-30-CORE) while ringing.

Disconnect supervision, each switchable per country: a polarity reversal while connected, a
loop-current drop longer than ``loop_drop_min_ms``, and a busy/congestion verdict from the
tone detector.  Answer supervision for outgoing calls: the first polarity reversal after
seizing, or a verdict from a detector.

Level-type hardware events (ring voltage, loop current) are idempotent: repeating the current
level changes nothing, because the card may resend a level after a resynchronisation.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from types import MappingProxyType

from firmware.lines import messages as m
from firmware.lines._clock import TimedMachine
from firmware.lines.errors import LocalProtocolError
from firmware.lines.timing import LineTiming

log = logging.getLogger(__name__)


class FxoState(enum.Enum):
    IDLE = "idle"  # on-hook, no call
    RINGING = "ringing"  # on-hook, incoming call recognised
    SEIZED = "seized"  # off-hook for an outgoing call, not (known to be) answered
    CONNECTED = "connected"  # off-hook, in a call
    GUARD = "guard"  # on-hook after a release, not yet allowed to seize again


class FxoTrigger(enum.Enum):
    RING = "ring"  # a valid ring burst ended
    CALLER_ID = "caller-id"
    ORIGINATE = "originate"
    ANSWER_CALL = "answer-call"
    HANGUP = "hangup"
    ANSWERED = "answered"  # far end answered (reversal or detector)
    DISCONNECT = "disconnect"  # far end cleared (cause in the port)
    IGNORED_SIGNAL = "ignored-signal"  # a supervision signal with no meaning in the state
    T_SILENCE = "t-silence"  # no ring for too long: ringing stopped
    T_NO_LOOP = "t-no-loop"
    T_GUARD = "t-guard"
    T_CID_EXPIRE = "t-cid-expire"


S, T = FxoState, FxoTrigger
ON_HOOK_STATES = frozenset({S.IDLE, S.RINGING, S.GUARD})
OFF_HOOK_STATES = frozenset({S.SEIZED, S.CONNECTED})


def _table() -> dict[tuple[FxoState, FxoTrigger], FxoState]:
    t: dict[tuple[FxoState, FxoTrigger], FxoState] = {}
    for s in (S.IDLE, S.GUARD, S.RINGING):
        t[s, T.RING] = S.RINGING
    for s in OFF_HOOK_STATES:
        t[s, T.RING] = s  # ringing voltage on a seized line: glare, the CO trips it
    t[S.RINGING, T.T_SILENCE] = S.IDLE
    for s in FxoState:
        t[s, T.CALLER_ID] = s
        t[s, T.IGNORED_SIGNAL] = s
    t[S.IDLE, T.ORIGINATE] = S.SEIZED
    t[S.RINGING, T.ANSWER_CALL] = S.CONNECTED
    for s in OFF_HOOK_STATES:
        t[s, T.HANGUP] = S.GUARD
        t[s, T.DISCONNECT] = S.GUARD
    # The far end may clear while call control is deciding to hang up: a late hangup is no error.
    t[S.GUARD, T.HANGUP] = S.GUARD
    t[S.IDLE, T.HANGUP] = S.IDLE
    t[S.SEIZED, T.ANSWERED] = S.CONNECTED
    t[S.SEIZED, T.T_NO_LOOP] = S.SEIZED
    t[S.GUARD, T.T_GUARD] = S.IDLE
    t[S.IDLE, T.T_CID_EXPIRE] = S.IDLE
    t[S.GUARD, T.T_CID_EXPIRE] = S.GUARD
    return t


TRANSITIONS: Mapping[tuple[FxoState, FxoTrigger], FxoState] = MappingProxyType(_table())


class FxoPort(TimedMachine):
    """One FXO port.  Not thread-safe: drive it from one thread (the event loop)."""

    def __init__(self, timing: LineTiming) -> None:
        super().__init__()
        if not isinstance(timing, LineTiming):
            raise TypeError(f"FxoPort needs a LineTiming, got {type(timing).__name__}")
        self.timing = timing
        self._state = S.IDLE
        self._ring_on = False
        self._ring_on_at = 0
        self._last_ring_end = 0
        self._loop = False
        self._loop_seen = False  # loop current appeared since seizing
        self._loop_drop_at = 0
        self._seized_at = 0
        self._no_loop_reported = False
        self._guard_until = 0
        self._outgoing = False
        self._reversals = 0  # polarity reversals since going off-hook
        self._cid: m.CallerId | None = None  # caller ID waiting for its ring
        self._cid_until = 0
        self._cause: m.DisconnectCause | None = None
        self._answer: m.AnswerSignal | None = None

    # --- read-only view ---------------------------------------------------------------------

    @property
    def state(self) -> FxoState:
        return self._state

    @property
    def off_hook(self) -> bool:
        return self._state in OFF_HOOK_STATES

    @property
    def ring_voltage(self) -> bool:
        return self._ring_on

    @property
    def loop_current(self) -> bool:
        return self._loop

    def next_deadline(self) -> int | None:
        due = self._due()
        return min(d for d, _ in due) if due else None

    # --- driving it -------------------------------------------------------------------------

    def handle(self, event: m.FxoEvent, now: int) -> list[m.Output]:
        """Feed one event; returns the outputs.  Raises and changes nothing if illegal."""
        hardware = m.RingVoltage | m.PolarityReversal | m.LoopCurrent
        at = event.at if isinstance(event, hardware) else None
        return self._handle(event, at, now)

    # --- timers -------------------------------------------------------------------------------

    def _due(self) -> list[tuple[int, FxoTrigger]]:
        timing, s = self.timing, self._state
        due: list[tuple[int, FxoTrigger]] = []
        if s is S.RINGING and not self._ring_on:
            due.append((self._last_ring_end + timing.ring_silence_max_ms, T.T_SILENCE))
        if s is S.GUARD:
            due.append((self._guard_until, T.T_GUARD))
        if s is S.SEIZED and not self._loop_seen and not self._no_loop_reported:
            due.append((self._seized_at + timing.seize_loop_timeout_ms, T.T_NO_LOOP))
        if (
            s in OFF_HOOK_STATES
            and self._loop_seen
            and not self._loop
            and timing.disconnect_on_loop_drop
        ):
            due.append((self._loop_drop_at + timing.loop_drop_min_ms, T.DISCONNECT))
        if self._cid is not None and s in (S.IDLE, S.GUARD):
            due.append((self._cid_until, T.T_CID_EXPIRE))
        return due

    def _run_timers(self, until: int) -> list[m.Output]:
        out: list[m.Output] = []
        while True:
            due = [d for d in self._due() if d[0] <= until]
            if not due:
                return out
            when, trigger = min(due, key=lambda d: d[0])
            self._clock = max(self._clock, when)
            if trigger is T.DISCONNECT:
                self._cause = m.DisconnectCause.LOOP_CURRENT_DROP
            out += self._apply(trigger, when)

    # --- events -------------------------------------------------------------------------------

    def _dispatch(self, event: m.FxoEvent, t: int) -> list[m.Output]:
        timing, s = self.timing, self._state
        if isinstance(event, m.RingVoltage):
            if event.on == self._ring_on:
                return []
            self._ring_on = event.on
            if event.on:
                self._ring_on_at = t
                return []
            burst = t - self._ring_on_at
            if not timing.ring_burst_min_ms <= burst <= timing.ring_burst_max_ms:
                log.debug("ring burst of %d ms ignored", burst)
                return []
            self._last_ring_end = t
            return self._apply(T.RING, t)
        if isinstance(event, m.LoopCurrent):
            if event.present == self._loop:
                return []
            self._loop = event.present
            if event.present:
                if s in OFF_HOOK_STATES:
                    self._loop_seen = True
            else:
                self._loop_drop_at = t
            return []
        if isinstance(event, m.PolarityReversal):
            if s is S.SEIZED:
                self._reversals += 1
                self._answer = m.AnswerSignal.POLARITY_REVERSAL
                return self._apply(T.ANSWERED, t)
            if s is S.CONNECTED:
                self._reversals += 1
                # An outgoing call answered by a detector may still see the answer reversal.
                answer_reversal = self._outgoing and self._reversals == 1
                if timing.disconnect_on_polarity_reversal and not answer_reversal:
                    self._cause = m.DisconnectCause.POLARITY_REVERSAL
                    return self._apply(T.DISCONNECT, t)
            return self._apply(T.IGNORED_SIGNAL, t)
        if isinstance(event, m.BusyToneDetected):
            if s in OFF_HOOK_STATES and timing.disconnect_on_busy_tone:
                self._cause = m.DisconnectCause.BUSY_TONE
                return self._apply(T.DISCONNECT, t)
            return self._apply(T.IGNORED_SIGNAL, t)
        if isinstance(event, m.AnswerDetected):
            if s is S.SEIZED:
                self._answer = m.AnswerSignal.DETECTOR
                return self._apply(T.ANSWERED, t)
            return self._apply(T.IGNORED_SIGNAL, t)
        if isinstance(event, m.CallerIdDetected):
            return self._caller_id(event.caller_id, t)
        trigger = _CALL_CONTROL.get(type(event))
        if trigger is None:
            raise LocalProtocolError(f"an FXO port does not take {type(event).__name__}")
        return self._apply(trigger, t)

    def _caller_id(self, cid: m.CallerId, t: int) -> list[m.Output]:
        s = self._state
        self._apply(T.CALLER_ID, t)
        if s is S.RINGING:
            return [m.CallerIdReceived(cid)]
        if s in (S.IDLE, S.GUARD):
            self._cid = cid
            self._cid_until = t + self.timing.pre_ring_cid_window_ms
        return []  # caller ID on an off-hook line is not ours to take (yet)

    def _apply(self, trigger: FxoTrigger, t: int) -> list[m.Output]:
        old = self._state
        new = TRANSITIONS.get((old, trigger))
        if new is None:
            raise LocalProtocolError(
                f"FXO port in state {old.value!r} cannot take {trigger.value!r}"
            )
        out: list[m.Output] = []
        if old in ON_HOOK_STATES and new in OFF_HOOK_STATES:
            out.append(m.Seize())
            self._seized_at = t
            self._loop_seen = self._loop
            self._no_loop_reported = False
            self._reversals = 0
            self._outgoing = trigger is T.ORIGINATE
        elif old in OFF_HOOK_STATES and new in ON_HOOK_STATES:
            out.append(m.Release())
            self._guard_until = t + self.timing.release_guard_ms
        out += self._report(old, trigger, new)
        if new is not old:
            log.debug("FXO %s -[%s]-> %s", old.value, trigger.value, new.value)
        self._state = new
        return out

    def _report(self, old: FxoState, trigger: FxoTrigger, new: FxoState) -> list[m.Output]:
        if trigger is T.RING and old is not S.RINGING and new is S.RINGING:
            cid, self._cid = self._cid, None
            return [m.IncomingCall(cid)]
        if trigger is T.T_SILENCE:
            return [m.RingingStopped()]
        if trigger is T.ANSWERED:
            assert self._answer is not None
            return [m.FarEndAnswered(self._answer)]
        if trigger is T.DISCONNECT:
            cause, self._cause = self._cause, None
            assert cause is not None
            return [m.Disconnected(cause)]
        if trigger is T.T_NO_LOOP:
            self._no_loop_reported = True
            return [m.NoLoopCurrent()]
        if trigger is T.T_CID_EXPIRE:
            self._cid = None
        return []


_CALL_CONTROL: Mapping[type[object], FxoTrigger] = MappingProxyType(
    {m.Originate: T.ORIGINATE, m.AnswerCall: T.ANSWER_CALL, m.Hangup: T.HANGUP}
)
