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
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from drivers.linecard.protocol import Polarity
from drivers.sim.endpoint import MAX_LOG, AudioEndpoint, Scheduler, SimError, Timer
from drivers.sim.signals import (
    MAX_CALLER_ID_DIGITS,
    MAX_CALLER_ID_NAME,
    Alerting,
    CallerIdBurst,
    DigitDetector,
    Exchange,
    ToneRenderer,
)
from drivers.sim.tones import FRAME_SAMPLES, SAMPLE_RATE, BufferSource, Pcm

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
        exchange: Exchange,
        detector: DigitDetector,
        scheduler: Scheduler,
        clock: Callable[[], float],
        notify: Callable[[], None],
    ) -> None:
        super().__init__(f"co line {number}")
        self.number = number
        self.country = exchange
        self.state = CoState.IDLE
        self.digits = ""  # dialled in the current call
        self.dialled: deque[str] = deque(maxlen=MAX_LOG)  # completed numbers, oldest first
        self.caller_id: str | None = None  # of the current incoming call
        self.caller_name: str | None = None
        self.caller_id_sent = 0  # bursts put on the line (the count, for status and tests)
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
        self._detector = detector
        self._tone: ToneRenderer | None = None
        self._on_hook_audio: BufferSource | None = None  # caller ID towards an idle port
        self._timers: dict[str, Timer] = {}
        self._ring_timers: list[Timer] = []
        self._break_start: float | None = None
        self._pulses = 0

    def plug(self, port: LinePort) -> None:
        self._port = port

    # --- exchange-side actions (tests, CLI) ---------------------------------------

    def ring(
        self, caller_id: str | None = None, name: str | None = None, date: str | None = None
    ) -> None:
        """An incoming call: ring the port with the country's cadence until it seizes.

        With ``caller_id`` or ``name``, and an exchange that renders caller ID, the burst
        goes on the line where the country puts it (:class:`~drivers.sim.signals.Alerting`);
        ``date`` is MMDDhhmm (default: the local time now).
        """
        if caller_id is not None and not (
            caller_id.isdigit() and len(caller_id) <= MAX_CALLER_ID_DIGITS
        ):
            raise SimError(f"caller ID {caller_id!r} must be up to {MAX_CALLER_ID_DIGITS} digits")
        if name is not None and not (
            0 < len(name) <= MAX_CALLER_ID_NAME and name.isascii() and name.isprintable()
        ):
            raise SimError(f"caller name {name!r} must be 1..{MAX_CALLER_ID_NAME} ASCII characters")
        if (self.state, CoInput.RING) not in TRANSITIONS:
            raise SimError(f"{self.name}: cannot ring while {self.state.value}")
        burst = None
        render = self.country.caller_id
        if render is not None and (caller_id is not None or name is not None):
            try:
                burst = render(caller_id, name, date or time.strftime("%m%d%H%M"))
            except ValueError as exc:
                raise SimError(f"caller ID for {self.country.code}: {exc}") from None
        self._transition(CoInput.RING)
        self.caller_id, self.caller_name = caller_id, name
        now = self._clock()
        if burst is None:
            self._ring_cycle(now)
        else:
            self._alert_and_send(burst, now)

    def cancel(self) -> None:
        """The caller gives up before the port answers."""
        self._transition(CoInput.CANCEL)
        now = self._clock()
        self._stop_ringing(now)
        self._set_polarity(Polarity.FORWARD, now)
        self.caller_id = self.caller_name = None

    def answer(self) -> None:
        """The far end answers the call the port is making."""
        self._transition(CoInput.ANSWER)
        self._cancel("dial")
        self._tone = None
        if self.answer_reversal:
            self._set_polarity(Polarity.REVERSE, self._clock())

    def press(self, digits: str) -> float:
        """The far party presses keys (DTMF towards the port); returns seconds of tone.

        Only in a call: an IVR reached through this line hears them.
        """
        if self.state is not CoState.CONNECTED:
            raise SimError(f"line {self.number} is {self.state.value}: no call to press keys in")
        self._send_dtmf(digits)
        return len(digits) * 0.16

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
            self._tone = self.country.busy()
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
            self._tone = self.country.dial()
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
        self.caller_id = self.caller_name = None
        self.disconnect_mode = None
        self.stop_playing()
        if self.polarity is not Polarity.FORWARD:
            self._set_polarity(Polarity.FORWARD, when)

    # --- audio ------------------------------------------------------------------------

    def to_port(self) -> Pcm:
        """20 ms from the exchange towards the port (tones, or the far end talking)."""
        if not self.seized:
            # On hook only caller ID is on the line; the port's DAA monitors it on hook.
            if self._on_hook_audio is not None:
                frame = self._on_hook_audio.read(FRAME_SAMPLES)
                if self._on_hook_audio.done:
                    self._on_hook_audio = None
                return frame
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
        self._tone = self.country.ringback()
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

    def _later(self, when: float, action: Callable[[float], None]) -> None:
        self._ring_timers.append(self._scheduler.at(when, action))

    def _alert_and_send(self, burst: CallerIdBurst, now: float) -> None:
        """Alerting, caller-ID data, then ringing, on the country's timeline."""
        delay = np.zeros(round(burst.delay_ms * SAMPLE_RATE / 1000), dtype=np.int16)
        if burst.alerting is Alerting.AFTER_FIRST_RING:
            # GR-30-CORE: the data goes in the silence after the first ring (cycle).
            t = now
            for on, off in self.country.ring_cadence:
                self._later(t, self._ring_on)
                t += on / 1000
                self._later(t, self._ring_off)
                last_off = t
                t += off / 1000
            data_at = last_off + burst.delay_ms / 1000
            self._later(data_at, lambda _t: self._send_on_hook(burst.data))
            data_end = data_at + len(burst.data) / SAMPLE_RATE
            # The second ring waits for the data if the cadence's silence is too short.
            self._later(max(t, data_end + burst.data_to_ring_ms / 1000), self._ring_cycle)
            return
        start = now
        parts = [delay, burst.data]
        if burst.alerting in (Alerting.POLARITY_REVERSAL_DTAS, Alerting.POLARITY_REVERSAL):
            self._set_polarity(Polarity.REVERSE, now)
            start = now + burst.pr_to_alert_ms / 1000
        if burst.alerting in (Alerting.POLARITY_REVERSAL_DTAS, Alerting.DTAS):
            if burst.alert is not None:
                parts.insert(0, burst.alert)
        elif burst.alerting is Alerting.RING_PULSE:
            self._later(now, self._ring_on)
            start = now + burst.ring_pulse_ms / 1000
            self._later(start, self._ring_off)
        audio = np.concatenate(parts)
        self._later(start, lambda _t: self._send_on_hook(audio))
        ring_at = start + len(audio) / SAMPLE_RATE + burst.data_to_ring_ms / 1000
        self._later(ring_at, self._first_ring_after_data)

    def _send_on_hook(self, pcm: Pcm) -> None:
        self.caller_id_sent += 1
        self._on_hook_audio = BufferSource(pcm)

    def _first_ring_after_data(self, when: float) -> None:
        # The reversal announced the call; the line returns to normal for ringing.
        self._set_polarity(Polarity.FORWARD, when)
        self._ring_cycle(when)

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
        self._on_hook_audio = None  # the exchange stops caller ID when the call is answered
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
