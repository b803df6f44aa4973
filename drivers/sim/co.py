"""A virtual central office (exchange) behind the FXO ports.

Each FXO port is wired to one :class:`CoLine`.  The line gives dial tone when the
appliance seizes it, collects the digits dialled into it (DTMF from the audio, or decadic
pulses from hook breaks), plays ringback until the far end answers, carries the far end's
audio, rings the port for incoming calls, and clears calls by busy tone, polarity reversal
or a loop-current drop.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from drivers.linecard.protocol import Polarity
from drivers.sim.country import CountryTones
from drivers.sim.endpoint import MAX_LOG, AudioEndpoint, Scheduler, SimError, Timer
from drivers.sim.tones import FRAME_SAMPLES, DtmfDetector, Pcm, ToneSource

log = logging.getLogger(__name__)

# Hook breaks up to this long are dial pulses (decadic pulses break for about 60 ms);
# longer ones up to ON_HOOK_CONFIRM_MS are a flash; longer still, the call is released.
PULSE_BREAK_MAX_MS = 120
ON_HOOK_CONFIRM_MS = 400
# A make this long after the last pulse ends the digit (pulse trains make for ~40 ms).
PULSE_DIGIT_END_MS = 300
# Digits end when none follows for this long: the exchange then routes the call.
DIAL_TIMEOUT_S = 3.0
# Calling-party-control open loop: long enough for any disconnect-supervision detector.
LOOP_DROP_MS = 800


class CoState(enum.Enum):
    IDLE = "idle"
    RINGING = "ringing"  # ringing the port for an incoming call
    DIAL_TONE = "dial tone"
    COLLECTING = "collecting digits"
    RINGBACK = "ringback"  # the far end is being rung
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # the far end hung up; waiting for the port to release


class CoInput(enum.Enum):
    RING = "ring"
    CANCEL = "cancel"
    SEIZE = "seize"
    RELEASE = "release"
    DIGIT = "digit"
    DIAL_TIMEOUT = "dial timeout"
    ANSWER = "answer"
    DISCONNECT = "disconnect"


_T = CoState
_I = CoInput
TRANSITIONS: dict[tuple[CoState, CoInput], CoState] = {
    (_T.IDLE, _I.RING): _T.RINGING,
    (_T.IDLE, _I.SEIZE): _T.DIAL_TONE,
    (_T.RINGING, _I.SEIZE): _T.CONNECTED,
    (_T.RINGING, _I.CANCEL): _T.IDLE,
    (_T.DIAL_TONE, _I.DIGIT): _T.COLLECTING,
    (_T.DIAL_TONE, _I.DISCONNECT): _T.DISCONNECTED,
    (_T.COLLECTING, _I.DIGIT): _T.COLLECTING,
    (_T.COLLECTING, _I.DIAL_TIMEOUT): _T.RINGBACK,
    (_T.COLLECTING, _I.ANSWER): _T.CONNECTED,
    (_T.COLLECTING, _I.DISCONNECT): _T.DISCONNECTED,
    (_T.RINGBACK, _I.ANSWER): _T.CONNECTED,
    (_T.RINGBACK, _I.DISCONNECT): _T.DISCONNECTED,
    (_T.CONNECTED, _I.DIGIT): _T.CONNECTED,
    (_T.CONNECTED, _I.DISCONNECT): _T.DISCONNECTED,
}
for _state in (_T.DIAL_TONE, _T.COLLECTING, _T.RINGBACK, _T.CONNECTED, _T.DISCONNECTED):
    TRANSITIONS[_state, _I.RELEASE] = _T.IDLE


class DisconnectMode(enum.Enum):
    TONE = "tone"  # busy tone until the port releases
    REVERSAL = "reversal"  # line polarity reversal
    LOOP_DROP = "loop-drop"  # loop current interrupted for LOOP_DROP_MS


class LinePort(Protocol):
    """What the card's FXO port learns from the line."""

    def ring_voltage(self, active: bool, when: float) -> None: ...

    def loop_current(self, present: bool, when: float) -> None: ...

    def line_polarity(self, polarity: Polarity, when: float) -> None: ...


class CoLine(AudioEndpoint):
    """The exchange side of one FXO port, including the far-end party's audio."""

    def __init__(
        self,
        number: int,
        *,
        country: CountryTones,
        scheduler: Scheduler,
        clock: Callable[[], float],
        notify: Callable[[], None],
    ) -> None:
        super().__init__(f"co line {number}")
        self.number = number
        self.country = country
        self.state = CoState.IDLE
        self.digits = ""  # dialled in the current call
        self.dialled: deque[str] = deque(maxlen=MAX_LOG)  # completed numbers, oldest first
        self.caller_id: str | None = None  # of the current incoming call
        self.flashes = 0
        self.polarity = Polarity.FORWARD
        self.loop_current = False
        self.seized = False
        self.answer_reversal = False  # answer supervision by polarity reversal
        self.auto_answer_s: float | None = None  # far end answers by itself after this
        self.disconnect_mode: DisconnectMode | None = None
        self._port: LinePort | None = None
        self._scheduler = scheduler
        self._clock = clock
        self._notify = notify
        self._detector = DtmfDetector()
        self._tone: ToneSource | None = None
        self._timers: dict[str, Timer] = {}
        self._ring_timers: list[Timer] = []
        self._break_start: float | None = None
        self._pulses = 0

    def plug(self, port: LinePort) -> None:
        self._port = port

    # --- exchange-side actions (tests, CLI) ---------------------------------------

    def ring(self, caller_id: str | None = None) -> None:
        """An incoming call: ring the port with the country's cadence until it seizes.

        ``caller_id`` is kept with the call; FSK/DTMF generation arrives with the signal
        processing work (issue 3), so nothing is sent on the audio yet.
        """
        if caller_id is not None and not (caller_id.isdigit() and len(caller_id) <= 20):
            raise SimError(f"caller ID {caller_id!r} must be up to 20 digits")
        self._transition(CoInput.RING)
        self.caller_id = caller_id
        self._ring_cycle(self._clock())

    def cancel(self) -> None:
        """The caller gives up before the port answers."""
        self._transition(CoInput.CANCEL)
        self._stop_ringing(self._clock())
        self.caller_id = None

    def answer(self) -> None:
        """The far end answers the call the port is making."""
        self._transition(CoInput.ANSWER)
        self._cancel("dial")
        self._tone = None
        if self.answer_reversal:
            self._set_polarity(Polarity.REVERSE, self._clock())

    def disconnect(self, mode: DisconnectMode | str | None = None) -> None:
        """The far end hangs up; the exchange signals it by ``mode`` (country default)."""
        try:
            chosen = DisconnectMode(mode if mode is not None else self.country.disconnect)
        except ValueError:
            modes = ", ".join(m.value for m in DisconnectMode)
            raise SimError(f"disconnect mode {mode!r}: use one of {modes}") from None
        self._transition(CoInput.DISCONNECT)
        self._cancel("dial")
        self.disconnect_mode = chosen
        self.stop_playing()
        now = self._clock()
        if chosen is DisconnectMode.TONE:
            self._tone = ToneSource(self.country.busy)
        elif chosen is DisconnectMode.REVERSAL:
            self._tone = None
            flipped = Polarity.FORWARD if self.polarity is Polarity.REVERSE else Polarity.REVERSE
            self._set_polarity(flipped, now)
        else:
            self._tone = None
            self._set_loop_current(False, now)
            self._timers["loop"] = self._scheduler.at(
                now + LOOP_DROP_MS / 1000, lambda t: self._set_loop_current(self.seized, t)
            )

    # --- from the card's FXO port --------------------------------------------------

    def port_seize(self, when: float) -> None:
        self.seized = True
        if self._break_start is not None:
            broke_ms = (when - self._break_start) * 1000
            self._break_start = None
            self._cancel("release")
            if broke_ms <= PULSE_BREAK_MAX_MS and self.state in (
                CoState.DIAL_TONE,
                CoState.COLLECTING,
            ):
                self._pulses += 1
                self._cancel("pulse")
                self._timers["pulse"] = self._scheduler.at(
                    when + PULSE_DIGIT_END_MS / 1000, self._pulse_digit_end
                )
            else:
                self.flashes += 1
                log.info("%s: hook flash of %.0f ms", self.name, broke_ms)
            return
        previous = self.state
        self._transition(CoInput.SEIZE)
        if previous is CoState.RINGING:
            self._stop_ringing(when)
        else:
            self._tone = ToneSource(self.country.dial)
            self.digits = ""
        self._set_loop_current(True, when)

    def port_release(self, when: float) -> None:
        self.seized = False
        self._break_start = when
        self._timers["release"] = self._scheduler.at(
            when + ON_HOOK_CONFIRM_MS / 1000, self._released
        )

    def _released(self, when: float) -> None:
        self._break_start = None
        self._cancel("pulse")
        self._cancel("dial")
        self._cancel("loop")
        if self.state in (CoState.COLLECTING, CoState.DIAL_TONE) and self.digits:
            self.dialled.append(self.digits)
        if (self.state, CoInput.RELEASE) in TRANSITIONS:
            self._transition(CoInput.RELEASE)
        self._tone = None
        self.loop_current = False
        self.caller_id = None
        self.disconnect_mode = None
        self.stop_playing()
        if self.polarity is not Polarity.FORWARD:
            self._set_polarity(Polarity.FORWARD, when)

    # --- audio ------------------------------------------------------------------------

    def to_port(self) -> Pcm:
        """20 ms from the exchange towards the port (tones, or the far end talking)."""
        if not self.seized:
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if self._tone is not None:
            return self._tone.read(FRAME_SAMPLES)
        if self.state is CoState.CONNECTED:
            return self.talk_frame()
        return np.zeros(FRAME_SAMPLES, dtype=np.int16)

    def from_port(self, pcm: Pcm, when: float) -> None:
        """20 ms the appliance put on the line."""
        if not self.seized:
            return
        self.hear_frame(pcm, when)  # the exchange hears the whole call, dialling included
        for digit, _duration in self._detector.feed(pcm):
            self._digit(digit, when)

    # --- internals ---------------------------------------------------------------

    def _transition(self, event: CoInput) -> None:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise SimError(f"{self.name}: cannot {event.value} while {self.state.value}")
        log.debug("%s: %s --%s--> %s", self.name, self.state.value, event.value, new.value)
        self.state = new
        self._notify()

    def _digit(self, digit: str, when: float) -> None:
        if (self.state, CoInput.DIGIT) not in TRANSITIONS:
            return  # digits while ringing back or cleared go nowhere
        self._transition(CoInput.DIGIT)
        if self.state is CoState.CONNECTED:
            self.digits += digit
            return
        self._tone = None  # dial tone stops at the first digit
        self.digits += digit
        log.info("%s: digit %s (number so far %s)", self.name, digit, self.digits)
        self._cancel("dial")
        self._timers["dial"] = self._scheduler.at(when + DIAL_TIMEOUT_S, self._dial_timeout)

    def _pulse_digit_end(self, when: float) -> None:
        count, self._pulses = self._pulses, 0
        if 1 <= count <= 10:
            self._digit("0" if count == 10 else str(count), when)

    def _dial_timeout(self, when: float) -> None:
        self.dialled.append(self.digits)
        self._transition(CoInput.DIAL_TIMEOUT)
        self._tone = ToneSource(self.country.ringback)
        if self.auto_answer_s is not None:
            self._timers["dial"] = self._scheduler.at(
                when + self.auto_answer_s, lambda t: self.answer()
            )

    def _ring_cycle(self, start: float) -> None:
        self._ring_timers = [timer for timer in self._ring_timers if timer.when >= start]
        t = start
        for on, off in self.country.ring_cadence:
            self._ring_timers.append(self._scheduler.at(t, self._ring_on))
            t += on / 1000
            self._ring_timers.append(self._scheduler.at(t, self._ring_off))
            t += off / 1000
        self._ring_timers.append(self._scheduler.at(t, self._ring_cycle))

    def _ring_on(self, when: float) -> None:
        if self._port is not None:
            self._port.ring_voltage(True, when)

    def _ring_off(self, when: float) -> None:
        if self._port is not None:
            self._port.ring_voltage(False, when)

    def _stop_ringing(self, when: float) -> None:
        for timer in self._ring_timers:
            timer.cancel()
        self._ring_timers.clear()
        self._ring_off(when)

    def _set_loop_current(self, present: bool, when: float) -> None:
        if present == self.loop_current:
            return
        self.loop_current = present
        if self._port is not None:
            self._port.loop_current(present, when)

    def _set_polarity(self, polarity: Polarity, when: float) -> None:
        if polarity is self.polarity:
            return
        self.polarity = polarity
        if self._port is not None:
            self._port.line_polarity(polarity, when)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()


class CentralOffice:
    """All exchange lines of a simulator; ``line(1)`` is the one on the first FXO port."""

    def __init__(self, lines: list[CoLine]) -> None:
        self.lines = lines

    def line(self, number: int) -> CoLine:
        if not 1 <= number <= len(self.lines):
            raise SimError(f"no exchange line {number}: lines are 1..{len(self.lines)}")
        return self.lines[number - 1]
