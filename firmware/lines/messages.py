"""Events into the line machines and outputs out of them: frozen, validated dataclasses.

Three families, kept independent of the line-card wire protocol (the service translates):

- *events* go in: hardware events from the line card (:class:`HookOff`, :class:`RingVoltage`,
  ... carrying the card's timestamp translated to the host's monotonic ms), detector verdicts
  from firmware.dsp (:class:`DtmfDigit`, :class:`BusyToneDetected`, ...) and requests from call
  control (:class:`Alert`, :class:`Connect`, :class:`Originate`, ...);
- *commands* come out for the line hardware and the tone/caller-ID generators
  (:class:`StartTone`, :class:`StartRinging`, :class:`Seize`, ...);
- *reports* come out for call control (:class:`OffHook`, :class:`DigitDialled`,
  :class:`HookFlash`, :class:`IncomingCall`, :class:`Disconnected`, ...).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from firmware.lines.errors import InvalidValue
from firmware.lines.timing import RingCadence

DTMF_DIGITS = "0123456789*#ABCD"  # ITU-T Q.23: the 16 DTMF signals
PULSE_MAX = 10  # ten breaks dial the digit 0 (ETSI ES 201 187, GR-506-CORE)
CALLER_ID_NUMBER_MAX = 20  # GR-30-CORE MDMF: calling number up to 20 characters
CALLER_ID_NAME_MAX = 50  # EN 300 659-3 allows 50 for the name; GR-30 uses 15
TIMESTAMP_MAX_MS = 2**63 - 1  # a monotonic ms clock fits in 63 bits for 292 million years


def _check_at(cls: str, at: int) -> None:
    if isinstance(at, bool) or not isinstance(at, int):
        raise InvalidValue(f"{cls}.at must be an int of ms, got {at!r}")
    if not 0 <= at <= TIMESTAMP_MAX_MS:
        raise InvalidValue(f"{cls}.at must be 0..2**63-1 ms, got {at}")


# --- shared values --------------------------------------------------------------------------


class Tone(enum.Enum):
    """Call-progress tones the FXS machine asks for; firmware.dsp renders them per country."""

    DIAL = "dial"
    RECALL_DIAL = "recall-dial"  # stuttered dial tone after a flash (consultation)
    RINGBACK = "ringback"
    BUSY = "busy"
    CONGESTION = "congestion"
    HOWLER = "howler"  # off-hook warning / receiver-off-hook tone
    CALL_WAITING = "call-waiting"


class DialMethod(enum.Enum):
    DTMF = "dtmf"
    PULSE = "pulse"


class DisconnectCause(enum.Enum):
    POLARITY_REVERSAL = "polarity-reversal"
    LOOP_CURRENT_DROP = "loop-current-drop"
    BUSY_TONE = "busy-tone"


class AnswerSignal(enum.Enum):
    POLARITY_REVERSAL = "polarity-reversal"
    DETECTOR = "detector"  # voice or other answer verdict from firmware.dsp


@dataclass(frozen=True, slots=True)
class CallerId:
    """Calling-line identity, as sent to an FXS port or received on an FXO port."""

    number: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.number is not None:
            if not isinstance(self.number, str) or not 1 <= len(self.number) <= (
                CALLER_ID_NUMBER_MAX
            ):
                raise InvalidValue(
                    f"CallerId.number must be 1..{CALLER_ID_NUMBER_MAX} characters, "
                    f"got {self.number!r}"
                )
            bad = sorted({c for c in self.number if c not in "0123456789+*#"})
            if bad:
                raise InvalidValue(f"CallerId.number has characters {bad!r}: {self.number!r}")
        if self.name is not None:
            if not isinstance(self.name, str) or not 1 <= len(self.name) <= CALLER_ID_NAME_MAX:
                raise InvalidValue(
                    f"CallerId.name must be 1..{CALLER_ID_NAME_MAX} characters, got {self.name!r}"
                )
            if not self.name.isprintable():
                raise InvalidValue(f"CallerId.name has unprintable characters: {self.name!r}")


# --- events: from the line card (hook and line state, with card timestamps) ------------------


@dataclass(frozen=True, slots=True)
class HookOff:
    """FXS: the handset went off-hook at ``at`` (host monotonic ms)."""

    at: int

    def __post_init__(self) -> None:
        _check_at("HookOff", self.at)


@dataclass(frozen=True, slots=True)
class HookOn:
    """FXS: the handset went on-hook at ``at`` (host monotonic ms)."""

    at: int

    def __post_init__(self) -> None:
        _check_at("HookOn", self.at)


@dataclass(frozen=True, slots=True)
class RingVoltage:
    """FXO: ringing voltage appeared (``on``) or went away at ``at``."""

    on: bool
    at: int

    def __post_init__(self) -> None:
        if not isinstance(self.on, bool):
            raise InvalidValue(f"RingVoltage.on must be a bool, got {self.on!r}")
        _check_at("RingVoltage", self.at)


@dataclass(frozen=True, slots=True)
class PolarityReversal:
    """FXO: the line's polarity reversed at ``at``."""

    at: int

    def __post_init__(self) -> None:
        _check_at("PolarityReversal", self.at)


@dataclass(frozen=True, slots=True)
class LoopCurrent:
    """FXO: loop current appeared (``present``) or went away at ``at``."""

    present: bool
    at: int

    def __post_init__(self) -> None:
        if not isinstance(self.present, bool):
            raise InvalidValue(f"LoopCurrent.present must be a bool, got {self.present!r}")
        _check_at("LoopCurrent", self.at)


# --- events: detector verdicts from firmware.dsp --------------------------------------------


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """FXS: the DTMF detector recognised a digit (ITU-T Q.24 timing is the detector's job)."""

    digit: str

    def __post_init__(self) -> None:
        if (
            not isinstance(self.digit, str)
            or len(self.digit) != 1
            or (self.digit not in DTMF_DIGITS)
        ):
            raise InvalidValue(
                f"DtmfDigit.digit must be one of {DTMF_DIGITS!r}, got {self.digit!r}"
            )


@dataclass(frozen=True, slots=True)
class CallerIdSent:
    """FXS: the caller-ID generator finished a transmission asked for by SendCallerId."""


@dataclass(frozen=True, slots=True)
class CallerIdDetected:
    """FXO: the caller-ID decoder received an identity."""

    caller_id: CallerId

    def __post_init__(self) -> None:
        if not isinstance(self.caller_id, CallerId):
            raise InvalidValue(f"CallerIdDetected.caller_id must be a CallerId: {self.caller_id!r}")


@dataclass(frozen=True, slots=True)
class BusyToneDetected:
    """FXO: the cadence detector heard busy or congestion tone from the central office."""


@dataclass(frozen=True, slots=True)
class AnswerDetected:
    """FXO: a detector decided the far end answered an outgoing call."""


# --- events: requests from call control -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    """FXS: ring the phone for an incoming call, with optional caller ID and cadence."""

    caller_id: CallerId | None = None
    cadence: RingCadence | None = None

    def __post_init__(self) -> None:
        if self.caller_id is not None and not isinstance(self.caller_id, CallerId):
            raise InvalidValue(f"Alert.caller_id must be a CallerId, got {self.caller_id!r}")
        if self.cadence is not None and not isinstance(self.cadence, RingCadence):
            raise InvalidValue(f"Alert.cadence must be a RingCadence, got {self.cadence!r}")


@dataclass(frozen=True, slots=True)
class CancelAlert:
    """FXS: the caller gave up; stop ringing."""


@dataclass(frozen=True, slots=True)
class Proceed:
    """FXS: the dialled number is complete and the call is being set up."""


@dataclass(frozen=True, slots=True)
class RemoteRinging:
    """FXS: the far end is ringing; play ringback."""


@dataclass(frozen=True, slots=True)
class EarlyMedia:
    """FXS: the far end sends audio before answering (SIP 183 with SDP, RFC 3960): local
    tones stop and the phone hears the far end's own ringback or announcement."""


@dataclass(frozen=True, slots=True)
class Connect:
    """FXS: the call is connected; audio flows."""


@dataclass(frozen=True, slots=True)
class Busy:
    """FXS: the far end is busy, or released the call."""


@dataclass(frozen=True, slots=True)
class Congestion:
    """FXS: the call cannot be completed (no route, network busy)."""


@dataclass(frozen=True, slots=True)
class RecallDialTone:
    """FXS: after a flash, give recall dial tone and collect digits (transfer, 3-way)."""


@dataclass(frozen=True, slots=True)
class CallWaiting:
    """FXS: a second call arrives during a call; play call-waiting tone."""

    caller_id: CallerId | None = None

    def __post_init__(self) -> None:
        if self.caller_id is not None and not isinstance(self.caller_id, CallerId):
            raise InvalidValue(f"CallWaiting.caller_id must be a CallerId, got {self.caller_id!r}")


@dataclass(frozen=True, slots=True)
class CallWaitingEnd:
    """FXS: the waiting call went away or was taken; back to the conversation."""


@dataclass(frozen=True, slots=True)
class Originate:
    """FXO: seize the line for an outgoing call."""


@dataclass(frozen=True, slots=True)
class AnswerCall:
    """FXO: answer the ringing line."""


@dataclass(frozen=True, slots=True)
class Hangup:
    """FXO: release the line."""


# --- commands: to the line hardware and the signal generators --------------------------------


@dataclass(frozen=True, slots=True)
class StartTone:
    tone: Tone


@dataclass(frozen=True, slots=True)
class StopTone:
    pass


@dataclass(frozen=True, slots=True)
class StartRinging:
    cadence: RingCadence


@dataclass(frozen=True, slots=True)
class StopRinging:
    pass


@dataclass(frozen=True, slots=True)
class SendCallerId:
    """Send on-hook caller ID (``off_hook`` False) or call-waiting caller ID (True)."""

    caller_id: CallerId
    off_hook: bool = False


@dataclass(frozen=True, slots=True)
class StopCallerId:
    """Abort a caller-ID transmission in progress (the phone was answered, the call left)."""


@dataclass(frozen=True, slots=True)
class Seize:
    """FXO: go off-hook."""


@dataclass(frozen=True, slots=True)
class Release:
    """FXO: go on-hook."""


# --- reports: to call control ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OffHook:
    """FXS: the phone was lifted to make a call (dial tone is on)."""


@dataclass(frozen=True, slots=True)
class Answered:
    """FXS: the ringing phone was answered."""


@dataclass(frozen=True, slots=True)
class DigitDialled:
    digit: str
    method: DialMethod


@dataclass(frozen=True, slots=True)
class PulseDigitRejected:
    """FXS: a pulse train had impossible timing or too many pulses; no digit was taken."""

    pulses: int
    reason: str


@dataclass(frozen=True, slots=True)
class HookFlash:
    pass


@dataclass(frozen=True, slots=True)
class HungUp:
    pass


@dataclass(frozen=True, slots=True)
class PermanentSignal:
    """FXS: off-hook without (complete) dialling; the howler is on.  ``digits`` so far."""

    digits: int


@dataclass(frozen=True, slots=True)
class LockedOut:
    """FXS: the howler ran out; the line is parked silent until hung up."""


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """FXO: a ring with valid cadence was recognised; ``caller_id`` if it came before it."""

    caller_id: CallerId | None


@dataclass(frozen=True, slots=True)
class CallerIdReceived:
    """FXO: caller ID arrived after the call was already reported."""

    caller_id: CallerId


@dataclass(frozen=True, slots=True)
class RingingStopped:
    """FXO: the central office stopped ringing before we answered."""


@dataclass(frozen=True, slots=True)
class FarEndAnswered:
    signal: AnswerSignal


@dataclass(frozen=True, slots=True)
class Disconnected:
    """FXO: the far end cleared; the line has been released."""

    cause: DisconnectCause


@dataclass(frozen=True, slots=True)
class NoLoopCurrent:
    """FXO: no loop current after seizing: the line is dead or unplugged."""


FxsEvent = (
    HookOff
    | HookOn
    | DtmfDigit
    | CallerIdSent
    | Alert
    | CancelAlert
    | Proceed
    | RemoteRinging
    | Connect
    | Busy
    | Congestion
    | RecallDialTone
    | CallWaiting
    | CallWaitingEnd
    | EarlyMedia
)
FxoEvent = (
    RingVoltage
    | PolarityReversal
    | LoopCurrent
    | CallerIdDetected
    | BusyToneDetected
    | AnswerDetected
    | Originate
    | AnswerCall
    | Hangup
)
Command = (
    StartTone
    | StopTone
    | StartRinging
    | StopRinging
    | SendCallerId
    | StopCallerId
    | Seize
    | Release
)
Report = (
    OffHook
    | Answered
    | DigitDialled
    | PulseDigitRejected
    | HookFlash
    | HungUp
    | PermanentSignal
    | LockedOut
    | IncomingCall
    | CallerIdReceived
    | RingingStopped
    | FarEndAnswered
    | Disconnected
    | NoLoopCurrent
)
Output = Command | Report
