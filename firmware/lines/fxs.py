"""FXS port state machine: one analogue phone on one port (sans-IO).

Drive it with :meth:`FxsPort.handle` (an event and ``now``) and :meth:`FxsPort.handle_timer`
(whenever :meth:`FxsPort.next_deadline` has passed); both return the commands and reports to
act on, in order.  Every time is an int of host monotonic milliseconds.

The port has two layers:

- the *hook classifier* turns hook-on/hook-off timestamps into line-level triggers: a break
  inside the pulse window counts a dial pulse (in dialling states), a make longer than the
  inter-digit pause ends a pulse digit, a break inside the flash window is a hook flash, a
  break longer than the flash window is a hang-up (decided by a timer the moment it is longer,
  not when the phone comes back), anything shorter is a hit and ignored;
- the *call state* is a transition table keyed by (state, trigger).  A pair missing from the
  table is illegal: :class:`LocalProtocolError` if call control asked for it,
  :class:`RemoteProtocolError` if the hardware reported it.  Tones and ringing are attached to
  states (started on entry, stopped on exit), so they can never be left running.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType

from firmware.lines import messages as m
from firmware.lines._clock import TimedMachine
from firmware.lines.errors import LocalProtocolError, RemoteProtocolError
from firmware.lines.timing import CallerIdMode, LineTiming, RingCadence, digit_for_pulses

log = logging.getLogger(__name__)


class FxsState(enum.Enum):
    IDLE = "idle"  # on-hook, quiet
    CALLER_ID = "caller-id"  # on-hook, caller ID being sent before the first ring
    RINGING = "ringing"  # on-hook, ringing
    DIAL_TONE = "dial-tone"  # off-hook, dial tone, no digit yet
    RECALL_DIAL_TONE = "recall-dial-tone"  # off-hook after a flash, stuttered dial tone
    COLLECTING = "collecting"  # digits being dialled
    PROCEEDING = "proceeding"  # number complete, call being set up
    ALERTING = "alerting"  # far end ringing, ringback tone
    EARLY_MEDIA = "early-media"  # the far end's audio before answer (RFC 3960), no local tone
    TALKING = "talking"
    CALL_WAITING = "call-waiting"  # talking, a second call waits (hook for call waiting)
    BUSY = "busy"
    CONGESTION = "congestion"
    PERMANENT_SIGNAL = "permanent-signal"  # off-hook too long without dialling: howler
    LOCKOUT = "lockout"  # howler over, line parked silent until hang-up


class Trigger(enum.Enum):
    # from the hardware (after hook classification) and detectors
    OFF_HOOK = "off-hook"
    HANG_UP = "hang-up"
    FLASH = "flash"
    DIGIT = "digit"
    # from the caller-ID generator
    CID_SENT = "cid-sent"
    # from call control
    ALERT = "alert"
    ALERT_PRE_CID = "alert-pre-cid"
    CANCEL_ALERT = "cancel-alert"
    PROCEED = "proceed"
    REMOTE_RINGING = "remote-ringing"
    CONNECT = "connect"
    EARLY_MEDIA = "early-media"
    BUSY = "busy"
    CONGESTION = "congestion"
    RECALL_DIAL_TONE = "recall-dial-tone"
    CALL_WAITING = "call-waiting"
    CALL_WAITING_END = "call-waiting-end"
    # timers
    T_DIAL = "t-dial"  # no (further) digit in time
    T_TONE = "t-tone"  # busy/congestion played long enough
    T_HOWLER = "t-howler"
    T_CID_PRE = "t-cid-pre"  # caller ID before ringing took too long: ring anyway
    T_CID_AFTER = "t-cid-after"  # time to send caller ID after the first ring


S, T = FxsState, Trigger
ON_HOOK_STATES = frozenset({S.IDLE, S.CALLER_ID, S.RINGING})
OFF_HOOK_STATES = frozenset(set(S) - ON_HOOK_STATES)
PULSE_STATES = frozenset({S.DIAL_TONE, S.RECALL_DIAL_TONE, S.COLLECTING})
DIALLING_STATES = PULSE_STATES
IN_CALL_STATES = frozenset({S.PROCEEDING, S.ALERTING, S.EARLY_MEDIA, S.TALKING, S.CALL_WAITING})
TONE_STATES = frozenset({S.BUSY, S.CONGESTION})
STATE_TONE: Mapping[FxsState, m.Tone] = MappingProxyType(
    {
        S.DIAL_TONE: m.Tone.DIAL,
        S.RECALL_DIAL_TONE: m.Tone.RECALL_DIAL,
        S.ALERTING: m.Tone.RINGBACK,
        S.CALL_WAITING: m.Tone.CALL_WAITING,
        S.BUSY: m.Tone.BUSY,
        S.CONGESTION: m.Tone.CONGESTION,
        S.PERMANENT_SIGNAL: m.Tone.HOWLER,
    }
)
HARDWARE_TRIGGERS = frozenset({T.OFF_HOOK, T.HANG_UP, T.FLASH, T.DIGIT})


def _table() -> dict[tuple[FxsState, Trigger], FxsState]:
    t: dict[tuple[FxsState, Trigger], FxsState] = {}
    # Incoming call.
    t[S.IDLE, T.ALERT] = S.RINGING
    t[S.IDLE, T.ALERT_PRE_CID] = S.CALLER_ID
    t[S.CALLER_ID, T.CID_SENT] = S.RINGING
    t[S.CALLER_ID, T.T_CID_PRE] = S.RINGING
    t[S.RINGING, T.T_CID_AFTER] = S.RINGING
    for s in (S.CALLER_ID, S.RINGING):
        t[s, T.OFF_HOOK] = S.TALKING
        t[s, T.CANCEL_ALERT] = S.IDLE
    # Outgoing call.
    t[S.IDLE, T.OFF_HOOK] = S.DIAL_TONE
    for s in DIALLING_STATES:
        t[s, T.DIGIT] = S.COLLECTING
        t[s, T.T_DIAL] = S.PERMANENT_SIGNAL
        t[s, T.PROCEED] = S.PROCEEDING
        t[s, T.REMOTE_RINGING] = S.ALERTING
    t[S.PROCEEDING, T.REMOTE_RINGING] = S.ALERTING
    t[S.ALERTING, T.REMOTE_RINGING] = S.ALERTING
    # Early media replaces any local tone; once it flows a later 180 must not bring local
    # ringback back over it (RFC 3960 section 3.1: the far end's media wins).
    for s in DIALLING_STATES | {S.PROCEEDING, S.ALERTING, S.EARLY_MEDIA}:
        t[s, T.EARLY_MEDIA] = S.EARLY_MEDIA
    t[S.EARLY_MEDIA, T.REMOTE_RINGING] = S.EARLY_MEDIA
    # Digits during a call go to call control (in-band relay, IVR); elsewhere they are ignored.
    for s in IN_CALL_STATES | TONE_STATES | {S.PERMANENT_SIGNAL, S.LOCKOUT}:
        t[s, T.DIGIT] = s
    # Call control may connect, refuse or give recall dial tone from any live off-hook state.
    for s in DIALLING_STATES | IN_CALL_STATES | TONE_STATES:
        t[s, T.CONNECT] = S.TALKING
        t[s, T.BUSY] = S.BUSY
        t[s, T.CONGESTION] = S.CONGESTION
    for s in IN_CALL_STATES | TONE_STATES:
        t[s, T.RECALL_DIAL_TONE] = S.RECALL_DIAL_TONE
    for s in TONE_STATES:
        t[s, T.T_TONE] = S.PERMANENT_SIGNAL
    t[S.PERMANENT_SIGNAL, T.T_HOWLER] = S.LOCKOUT
    # Call waiting hooks.
    t[S.TALKING, T.CALL_WAITING] = S.CALL_WAITING
    t[S.CALL_WAITING, T.CALL_WAITING_END] = S.TALKING
    # A flash is reported from every off-hook state; what it means is call control's business.
    # A hang-up ends everything.
    for s in OFF_HOOK_STATES:
        t[s, T.FLASH] = s
        t[s, T.HANG_UP] = S.IDLE
    # The caller-ID generator may finish after the call moved on; that is no error.
    for s in FxsState:
        t.setdefault((s, T.CID_SENT), s)
    return t


TRANSITIONS: Mapping[tuple[FxsState, Trigger], FxsState] = MappingProxyType(_table())
# Self-transitions that restart the state (its timer), rather than staying inside it.
REENTER = frozenset({(S.COLLECTING, T.DIGIT), (S.ALERTING, T.REMOTE_RINGING)})


class FxsPort(TimedMachine):
    """One FXS port.  Not thread-safe: drive it from one thread (the event loop)."""

    def __init__(self, timing: LineTiming) -> None:
        super().__init__()
        if not isinstance(timing, LineTiming):
            raise TypeError(f"FxsPort needs a LineTiming, got {type(timing).__name__}")
        self.timing = timing
        self._state = S.IDLE
        self._hook_on = True  # physical switch-hook position
        self._state_timer: tuple[int, Trigger] | None = None
        self._break_start = 0  # when the current break began (hook on in an off-hook state)
        self._last_make = 0  # when the current make began
        self._pulses = 0  # breaks counted in the current pulse train
        self._poisoned = False  # the current train was rejected: swallow it to its end
        self._digits = 0  # digits dialled since the last dial tone
        self._cadence: RingCadence = timing.ring_cadence
        self._caller_id: m.CallerId | None = None
        self._tone: m.Tone | None = None
        self._ringing = False
        self._pending: m.DigitDialled | None = None  # digit carried by a DIGIT trigger
        self._cid_sending = False  # a SendCallerId not yet answered by CallerIdSent

    # --- read-only view ---------------------------------------------------------------------

    @property
    def state(self) -> FxsState:
        return self._state

    @property
    def hook_on(self) -> bool:
        """The physical switch-hook position (True also during a break while off-hook)."""
        return self._hook_on

    @property
    def tone(self) -> m.Tone | None:
        """The tone the port has asked for and not yet stopped."""
        return self._tone

    @property
    def ringing(self) -> bool:
        return self._ringing

    @property
    def caller_id_sending(self) -> bool:
        """A caller-ID transmission was asked for and has not finished (or been stopped)."""
        return self._cid_sending

    @property
    def pulses(self) -> int:
        """Breaks counted in the pulse train in progress."""
        return self._pulses

    def next_deadline(self) -> int | None:
        """When :meth:`handle_timer` must be called next (ms), or None."""
        hook = self._hook_deadline()
        state = self._state_timer[0] if self._state_timer else None
        if hook is None:
            return state
        return hook if state is None else min(hook, state)

    # --- driving it -------------------------------------------------------------------------

    def handle(self, event: m.FxsEvent, now: int) -> list[m.Output]:
        """Feed one event; returns the outputs.  Raises and changes nothing if illegal."""
        at = event.at if isinstance(event, m.HookOn | m.HookOff) else None
        return self._handle(event, at, now)

    # --- hook classifier ----------------------------------------------------------------------

    def _hook_deadline(self) -> int | None:
        if self._state in ON_HOOK_STATES:
            return None
        if self._hook_on:
            # Longer than the flash window is a hang-up.
            return self._break_start + self.timing.flash_max_ms + 1
        if self._pulses or self._poisoned:
            return self._last_make + self.timing.interdigit_pause_min_ms
        return None

    def _run_timers(self, until: int) -> list[m.Output]:
        out: list[m.Output] = []
        while True:
            hook = self._hook_deadline()
            state = self._state_timer
            if hook is not None and hook <= until and (state is None or hook <= state[0]):
                self._clock = max(self._clock, hook)
                if self._hook_on:
                    out += self._apply(T.HANG_UP, hook)
                else:
                    out += self._end_pulse_train(hook)
            elif state is not None and state[0] <= until:
                self._clock = max(self._clock, state[0])
                self._state_timer = None
                out += self._apply(state[1], state[0])
            else:
                return out

    def _end_pulse_train(self, t: int) -> list[m.Output]:
        pulses, self._pulses = self._pulses, 0
        if self._poisoned:
            self._poisoned = False  # already reported when it went wrong
            return []
        if pulses > m.PULSE_MAX:
            return [m.PulseDigitRejected(pulses, f"{pulses} pulses, at most {m.PULSE_MAX}")]
        digit = digit_for_pulses(pulses, self.timing.pulse_mapping)
        self._pending = m.DigitDialled(digit, m.DialMethod.PULSE)
        return self._apply(T.DIGIT, t)

    def _reject_train(self, reason: str, *, poison: bool) -> list[m.Output]:
        """Report a mutilated train.  ``poison``: the rest of it is still to come (a bounce,
        an over-long break) and must not be decoded as a digit of its own."""
        pulses, self._pulses = self._pulses, 0
        self._poisoned = poison
        log.info("pulse train of %d rejected: %s", pulses, reason)
        return [m.PulseDigitRejected(pulses, reason)]

    def _hook_changed(self, on: bool, t: int) -> list[m.Output]:
        if on == self._hook_on:
            where = "on" if on else "off"
            raise RemoteProtocolError(f"hook-{where} reported on a line already {where}-hook")
        timing = self.timing
        out: list[m.Output] = []
        if self._state in ON_HOOK_STATES:
            # Only an off-hook can reach us here: on-hook states imply the hook is on.
            self._hook_on = False
            self._last_make = t
            return self._apply(T.OFF_HOOK, t)
        if on:
            if self._pulses and not self._poisoned:
                make = t - self._last_make
                if make < timing.pulse_make_min_ms:
                    out += self._reject_train(
                        f"make of {make} ms < {timing.pulse_make_min_ms}", poison=True
                    )
                elif make > timing.pulse_make_max_ms:
                    # The previous digit ended too early for a digit pause: drop it, and
                    # take this break as the start of the next one.
                    out += self._reject_train(
                        f"make of {make} ms > {timing.pulse_make_max_ms}", poison=False
                    )
            self._hook_on = True
            self._break_start = t
            return out
        # A break ended inside the flash window (a longer one was a hang-up, by timer).
        self._hook_on = False
        brk = t - self._break_start
        if self._state in PULSE_STATES and (
            timing.pulse_break_min_ms <= brk <= timing.pulse_break_max_ms
        ):
            # Count one more, but never let the count grow without bound.
            self._pulses = min(self._pulses + 1, m.PULSE_MAX + 1)
            self._last_make = t
            return out
        if timing.flash_min_ms <= brk <= timing.flash_max_ms:
            if self._pulses and not self._poisoned:
                out += self._reject_train(
                    f"hook flash ({brk} ms) inside a pulse train", poison=False
                )
            self._pulses, self._poisoned = 0, False
            self._last_make = t
            return out + self._apply(T.FLASH, t)
        if (self._pulses or self._poisoned) and brk > timing.pulse_break_max_ms:
            if not self._poisoned:
                out += self._reject_train(
                    f"break of {brk} ms > {timing.pulse_break_max_ms}", poison=True
                )
            self._last_make = t
        # Otherwise a hit (too short for anything): ignored, the make goes on.
        return out

    # --- call state ---------------------------------------------------------------------------

    def _dispatch(self, event: m.FxsEvent, t: int) -> list[m.Output]:
        if isinstance(event, m.HookOn):
            return self._hook_changed(True, t)
        if isinstance(event, m.HookOff):
            return self._hook_changed(False, t)
        if isinstance(event, m.DtmfDigit):
            if self._hook_on and self._state in ON_HOOK_STATES:
                raise RemoteProtocolError(f"DTMF {event.digit!r} on an on-hook line")
            self._pending = m.DigitDialled(event.digit, m.DialMethod.DTMF)
            return self._apply(T.DIGIT, t)
        if isinstance(event, m.Alert):
            self._cadence = event.cadence or self.timing.ring_cadence
            mode = self.timing.caller_id_mode
            self._caller_id = event.caller_id if mode is not CallerIdMode.NONE else None
            if self._caller_id is not None and mode is CallerIdMode.BEFORE_FIRST_RING:
                return self._apply(T.ALERT_PRE_CID, t)
            return self._apply(T.ALERT, t)
        if isinstance(event, m.CallerIdSent):
            self._cid_sending = False
        if isinstance(event, m.CallWaiting):
            self._caller_id = event.caller_id
            return self._apply(T.CALL_WAITING, t)
        trigger = _SIMPLE.get(type(event))
        if trigger is None:
            raise LocalProtocolError(f"an FXS port does not take {type(event).__name__}")
        return self._apply(trigger, t)

    def _apply(self, trigger: Trigger, t: int) -> list[m.Output]:
        old = self._state
        new = TRANSITIONS.get((old, trigger))
        if new is None:
            error = RemoteProtocolError if trigger in HARDWARE_TRIGGERS else LocalProtocolError
            raise error(f"FXS port in state {old.value!r} cannot take {trigger.value!r}")
        out: list[m.Output] = []
        if new is not old:
            out += self._exit(old, new)
        out += self._act(old, trigger, new, t)
        if new is not old or (old, trigger) in REENTER:
            self._state = new
            out += self._enter(new, t)
        if new is not old:
            log.debug("FXS %s -[%s]-> %s", old.value, trigger.value, new.value)
        return out

    def _exit(self, old: FxsState, new: FxsState) -> list[m.Output]:
        out: list[m.Output] = []
        self._state_timer = None
        if self._cid_sending:
            # Leaving the state that sent it (answered, cancelled, timed out): the generator
            # must stop, or it would talk over the call or into the next ring.
            self._cid_sending = False
            out.append(m.StopCallerId())
        if self._ringing:
            self._ringing = False
            out.append(m.StopRinging())
        if self._tone is not None and STATE_TONE.get(new) is not self._tone:
            self._tone = None
            out.append(m.StopTone())
        if new in ON_HOOK_STATES:
            self._pulses, self._poisoned = 0, False
        return out

    def _act(self, old: FxsState, trigger: Trigger, new: FxsState, t: int) -> list[m.Output]:
        action = _ACTIONS.get(trigger)
        return action(self, old, new, t) if action else []

    def _enter(self, new: FxsState, t: int) -> list[m.Output]:
        timing = self.timing
        out: list[m.Output] = []
        tone = STATE_TONE.get(new)
        if tone is not None and self._tone is not tone:
            self._tone = tone
            out.append(m.StartTone(tone))
        timer: tuple[int, Trigger] | None = None
        if new in (S.DIAL_TONE, S.RECALL_DIAL_TONE):
            self._digits = 0
            timer = (t + timing.first_digit_timeout_ms, T.T_DIAL)
        elif new is S.COLLECTING:
            timer = (t + timing.partial_dial_timeout_ms, T.T_DIAL)
        elif new in TONE_STATES:
            timer = (t + timing.busy_tone_timeout_ms, T.T_TONE)
        elif new is S.PERMANENT_SIGNAL:
            timer = (t + timing.howler_timeout_ms, T.T_HOWLER)
        elif new is S.CALLER_ID:
            assert self._caller_id is not None
            out.append(m.SendCallerId(self._caller_id))
            self._cid_sending = True
            timer = (t + timing.caller_id_pre_ring_timeout_ms, T.T_CID_PRE)
        elif new is S.RINGING:
            self._ringing = True
            out.append(m.StartRinging(self._cadence))
            if self._caller_id is not None and self.timing.caller_id_mode is (
                CallerIdMode.AFTER_FIRST_RING
            ):
                when = t + self._cadence.first_ring_ms + timing.caller_id_delay_ms
                timer = (when, T.T_CID_AFTER)
            else:
                self._caller_id = None
        elif new is S.CALL_WAITING and self._caller_id is not None:
            # Type 2 caller ID follows the alerting tone (GR-30-CORE, EN 300 659-2).
            out.append(m.SendCallerId(self._caller_id, off_hook=True))
            self._cid_sending = True
            self._caller_id = None
        elif new is S.IDLE:
            self._caller_id = None
        self._state_timer = timer
        return out


# --- per-trigger actions (reports to call control) -----------------------------------------

Action = Callable[[FxsPort, FxsState, FxsState, int], list[m.Output]]


def _off_hook(p: FxsPort, old: FxsState, new: FxsState, t: int) -> list[m.Output]:
    return [m.OffHook()] if old is S.IDLE else [m.Answered()]


def _digit(p: FxsPort, old: FxsState, new: FxsState, t: int) -> list[m.Output]:
    digit, p._pending = p._pending, None
    assert digit is not None
    if old in DIALLING_STATES or old in IN_CALL_STATES:
        p._digits += 1
        return [digit]
    return []  # no one listens to digits over busy tone or the howler


def _cid_after(p: FxsPort, old: FxsState, new: FxsState, t: int) -> list[m.Output]:
    cid, p._caller_id = p._caller_id, None
    if cid is None:
        return []
    p._cid_sending = True
    return [m.SendCallerId(cid)]


_ACTIONS: Mapping[Trigger, Action] = MappingProxyType(
    {
        T.OFF_HOOK: _off_hook,
        T.DIGIT: _digit,
        T.FLASH: lambda p, old, new, t: [m.HookFlash()],
        T.HANG_UP: lambda p, old, new, t: [m.HungUp()],
        T.T_DIAL: lambda p, old, new, t: [m.PermanentSignal(p._digits)],
        T.T_TONE: lambda p, old, new, t: [m.PermanentSignal(p._digits)],
        T.T_HOWLER: lambda p, old, new, t: [m.LockedOut()],
        T.T_CID_AFTER: _cid_after,
    }
)

_SIMPLE: Mapping[type[object], Trigger] = MappingProxyType(
    {
        m.CallerIdSent: T.CID_SENT,
        m.CancelAlert: T.CANCEL_ALERT,
        m.Proceed: T.PROCEED,
        m.RemoteRinging: T.REMOTE_RINGING,
        m.Connect: T.CONNECT,
        m.EarlyMedia: T.EARLY_MEDIA,
        m.Busy: T.BUSY,
        m.Congestion: T.CONGESTION,
        m.RecallDialTone: T.RECALL_DIAL_TONE,
        m.CallWaitingEnd: T.CALL_WAITING_END,
    }
)
