"""Caller ID on call waiting (type II): the CPE alerting signal, its detector, the handshake.

While a call is in progress the exchange (our FXS port) mutes the far end, sends the CPE
alerting signal (CAS, 2130 Hz + 2750 Hz), and waits for the telephone to acknowledge with a
DTMF digit ('D', or 'A' from an ADSI set).  Only then does it send the FSK burst, without
channel seizure and with a short mark signal
(:func:`firmware.dsp.callerid.fsk.modulate_message` with ``call_waiting=True``).  No
acknowledgement, no burst: a telephone without type II would otherwise hear the modem.

- :func:`cas_tone` renders the alerting signal (Bell CAS 80 ms, ETSI DT-AS 100 ms);
- :class:`CasDetector` finds it in received audio (FXO side), refusing speech;
- :class:`CallWaitingSender` is the exchange-side handshake as a sans-IO state machine fed with
  the current time and the digits the line's DTMF detector reports.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from firmware.dsp.callerid import fsk as fsk_module
from firmware.dsp.callerid.messages import CallerIdError, CallerIdMessage
from firmware.dsp.levels import peak_for_dbm0
from firmware.dsp.pcm import SAMPLE_RATE, Pcm, to_pcm

CAS_LOW_HZ: Final = 2130.0  # SR-TSV-002476 / GR-30-CORE: CPE alerting signal, ±0.5 %
CAS_HIGH_HZ: Final = 2750.0  # SR-TSV-002476; ETSI EN 300 659-1 DT-AS uses the same
BELL_CAS_MS: Final = 80.0  # SR-TSV-002476: 80 ms (75..85 ms)
ETSI_DTAS_MS: Final = 100.0  # ETSI EN 300 659-2 / EN 300 659-1: DT-AS 100 ms (±10 ms)
CAS_DEFAULT_LEVEL_DBM0: Final = -15.0  # per tone; SR-TSV-002476: -14..-32 dBm per tone at CPE
CAS_RAMP_MS: Final = 2.0  # rise and fall so the tone does not splatter into the DTMF band

# Detector (FXO side).  Figures are ours unless cited; they implement the CPE requirements.
CAS_MIN_LEVEL_DBM0: Final = -34.0  # SR-TSV-002476: detect down to -32 dBm per tone, 2 dB margin
CAS_MAX_TWIST_DB: Final = 6.0  # SR-TSV-002476: up to 6 dB between the two tones
CAS_BLOCK_MS: Final = 10.0  # analysis block: 100 Hz resolution, 2130/2750 are 620 Hz apart
CAS_MIN_MS: Final = 60.0  # shortest accepted (75 ms spec, minus one block of misalignment)
CAS_MAX_MS: Final = 130.0  # longest accepted (ETSI 110 ms, plus margin)
CAS_PURITY: Final = 0.8  # share of the block energy the two tones must hold (speech: far less)

# Handshake (FXS side).
ACK_DIGITS: Final = frozenset("AD")  # SR-TSV-002476: 'D' non-ADSI CPE, 'A' ADSI CPE;
# ETSI EN 300 659-2 requires 'D' to be accepted (other digits only in some networks).
DEFAULT_ACK_DIGIT: Final = "D"  # what a plain (non-ADSI) caller ID telephone sends
ACK_WINDOW_MS: Final = 160.0  # SR-TSV-002476: ACK must start within 160 ms of CAS end
FSK_AFTER_ACK_MS: Final = 60.0  # SR-TSV-002476: FSK starts 50..500 ms after the ACK
# Round trip an audio path may add between our CAS and the ACK we hear (a line card's PCM
# FIFO both ways); beyond this the phone could not tell which CAS it answered.
MAX_ACK_LATENCY_MS: Final = 500.0

CasStandard = Literal["bell", "etsi"]


def cas_tone(
    *,
    standard: CasStandard = "bell",
    level_dbm0: float = CAS_DEFAULT_LEVEL_DBM0,
    duration_ms: float | None = None,
    rate: int = SAMPLE_RATE,
) -> Pcm:
    """The dual-tone alerting signal (each tone at ``level_dbm0``)."""
    if standard not in ("bell", "etsi"):
        raise ValueError(f"unknown CAS standard {standard!r}; use 'bell' or 'etsi'")
    ms = (
        (BELL_CAS_MS if standard == "bell" else ETSI_DTAS_MS)
        if duration_ms is None
        else duration_ms
    )
    if not 0 < ms <= 1000:
        raise ValueError(f"CAS duration must be 0..1000 ms, got {ms}")
    n = round(ms * rate / 1000)
    t = np.arange(n) / rate
    amp = peak_for_dbm0(level_dbm0)
    x = amp * (np.sin(2 * np.pi * CAS_LOW_HZ * t) + np.sin(2 * np.pi * CAS_HIGH_HZ * t))
    ramp = min(round(CAS_RAMP_MS * rate / 1000), n // 2)
    if ramp:
        w = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        x[:ramp] *= w
        x[n - ramp :] *= w[::-1]
    return to_pcm(x)


@dataclass(frozen=True, slots=True)
class CasDetected:
    """An alerting signal ended at ``at_ms`` (stream time) after ``duration_ms``."""

    at_ms: float
    duration_ms: float

    def __post_init__(self) -> None:
        if self.at_ms < 0 or self.duration_ms <= 0:
            raise ValueError(f"bad CAS event at {self.at_ms} ms lasting {self.duration_ms} ms")


class CasDetector:
    """Finds the 2130 + 2750 Hz alerting signal, frame by frame.

    Each 10 ms block is correlated with both tones (one matrix product per frame).  A block
    qualifies when both tones are above the floor, within the twist limit, and together hold
    ``CAS_PURITY`` of the block's energy; a run of qualifying blocks between ``CAS_MIN_MS``
    and ``CAS_MAX_MS`` long is a CAS, reported when it ends.
    """

    def __init__(self, rate: int = SAMPLE_RATE) -> None:
        self.rate = rate
        self._block = round(CAS_BLOCK_MS * rate / 1000)
        n = np.arange(self._block)
        cols = []
        for f in (CAS_LOW_HZ, CAS_HIGH_HZ):
            cols += [np.cos(2 * np.pi * f * n / rate), np.sin(2 * np.pi * f * n / rate)]
        self._basis = np.ascontiguousarray(np.array(cols).T)  # (block, 4)
        # |X|² of a tone of peak a over the block is (block * a / 2)².
        self._tone_min = (self._block * peak_for_dbm0(CAS_MIN_LEVEL_DBM0) / 2) ** 2
        self._twist = 10 ** (CAS_MAX_TWIST_DB / 10)
        self._min_blocks = math.ceil(CAS_MIN_MS / CAS_BLOCK_MS)
        self._max_blocks = math.floor(CAS_MAX_MS / CAS_BLOCK_MS)
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0)
        self._blocks_seen = 0
        self._run = 0

    def feed(self, frame: npt.ArrayLike) -> list[CasDetected]:
        x = np.asarray(frame, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"frame must be one-dimensional, got shape {x.shape}")
        if self._pending.size:
            x = np.concatenate((self._pending, x))
        whole = len(x) // self._block * self._block
        self._pending = x[whole:].copy()  # less than one block: the cap is the block size
        if whole == 0:
            return []
        blocks = x[:whole].reshape(-1, self._block)
        r = blocks @ self._basis
        r *= r
        low = r[:, 0] + r[:, 1]
        high = r[:, 2] + r[:, 3]
        energy = np.einsum("ij,ij->i", blocks, blocks)
        # A pure tone gives |X|² = block * energy / 2, so two pure tones make `purity` 1.
        purity = 2 * (low + high) / np.maximum(self._block * energy, 1e-9)
        good = (
            (low > self._tone_min)
            & (high > self._tone_min)
            & (low < self._twist * high)
            & (high < self._twist * low)
            & (purity > CAS_PURITY)
        )
        out: list[CasDetected] = []
        for ok in good.tolist():
            self._blocks_seen += 1
            if ok:
                self._run += 1
                continue
            if self._min_blocks <= self._run <= self._max_blocks:
                end_ms = (self._blocks_seen - 1) * CAS_BLOCK_MS
                out.append(CasDetected(end_ms, self._run * CAS_BLOCK_MS))
            self._run = 0
        return out


class CallWaitingState(enum.Enum):
    IDLE = "idle"
    ALERTING = "alerting"  # CAS on the line
    AWAITING_ACK = "awaiting_ack"  # CAS done, listening for 'A' / 'D'
    ACKNOWLEDGED = "acknowledged"  # waiting the short pause before the FSK
    SENDING = "sending"  # FSK burst on the line
    DONE = "done"
    NO_ACK = "no_ack"  # the telephone does not do type II: no burst sent


class Event(enum.Enum):
    START = "start"
    CAS_ENDED = "cas_ended"
    ACK = "ack"
    WINDOW_EXPIRED = "window_expired"
    PAUSE_ENDED = "pause_ended"
    FSK_ENDED = "fsk_ended"


_TRANSITIONS: Final[dict[tuple[CallWaitingState, Event], CallWaitingState]] = {
    (CallWaitingState.IDLE, Event.START): CallWaitingState.ALERTING,
    (CallWaitingState.ALERTING, Event.CAS_ENDED): CallWaitingState.AWAITING_ACK,
    # A fast telephone may start its ACK while the last of our CAS is still in flight.
    (CallWaitingState.ALERTING, Event.ACK): CallWaitingState.ACKNOWLEDGED,
    (CallWaitingState.AWAITING_ACK, Event.ACK): CallWaitingState.ACKNOWLEDGED,
    (CallWaitingState.AWAITING_ACK, Event.WINDOW_EXPIRED): CallWaitingState.NO_ACK,
    (CallWaitingState.ACKNOWLEDGED, Event.PAUSE_ENDED): CallWaitingState.SENDING,
    (CallWaitingState.SENDING, Event.FSK_ENDED): CallWaitingState.DONE,
}


class HandshakeError(RuntimeError):
    """The handshake was driven in an order it does not allow (our bug)."""


@dataclass(frozen=True, slots=True)
class PlayAudio:
    """Put ``pcm`` on the line now."""

    pcm: Pcm


@dataclass(frozen=True, slots=True)
class HandshakeFinished:
    """The handshake is over; ``sent`` says whether the caller ID burst went out."""

    sent: bool
    ack_digit: str | None


Action = PlayAudio | HandshakeFinished


class CallWaitingSender:
    """Exchange side of type II caller ID: CAS, wait for the ACK digit, then the FSK burst.

    Sans-IO: ``start(now_ms)`` returns the CAS to play; ``on_digit(digit, now_ms)`` takes the
    digits the line's DTMF detector reports; ``poll(now_ms)`` advances timers.  Each returns
    actions; ``deadline()`` says when ``poll`` is next due.  ``ack_latency_ms`` widens the
    ACK window by the round trip of the audio path between this code and the telephone.
    """

    def __init__(
        self,
        burst: Pcm,
        *,
        cas_standard: CasStandard = "bell",
        rate: int = SAMPLE_RATE,
        ack_latency_ms: float = 0.0,
    ) -> None:
        if not 0 <= ack_latency_ms <= MAX_ACK_LATENCY_MS:
            raise ValueError(
                f"ACK latency must be 0..{MAX_ACK_LATENCY_MS} ms, got {ack_latency_ms}"
            )
        self._burst = burst
        self._cas = cas_tone(standard=cas_standard, rate=rate)
        self._rate = rate
        # The window is the telephone's; the audio path adds this much round trip to it.
        self._window_ms = ACK_WINDOW_MS + ack_latency_ms
        self.state = CallWaitingState.IDLE
        self.ack_digit: str | None = None
        self._deadline: float | None = None

    def _fire(self, event: Event) -> None:
        try:
            self.state = _TRANSITIONS[(self.state, event)]
        except KeyError:
            raise HandshakeError(
                f"event {event.value} is not allowed in {self.state.value}"
            ) from None

    def _ms(self, pcm: Pcm) -> float:
        return len(pcm) * 1000 / self._rate

    def deadline(self) -> float | None:
        return self._deadline

    def start(self, now_ms: float) -> list[Action]:
        self._fire(Event.START)
        self._deadline = now_ms + self._ms(self._cas)
        return [PlayAudio(self._cas)]

    def on_digit(self, digit: str, now_ms: float) -> list[Action]:
        """A DTMF digit from the telephone; anything but a valid, timely ACK is ignored."""
        if digit not in ACK_DIGITS or self.state not in (
            CallWaitingState.ALERTING,
            CallWaitingState.AWAITING_ACK,
        ):
            return []
        if self.state is CallWaitingState.AWAITING_ACK and now_ms > (self._deadline or now_ms):
            return self.poll(now_ms)
        self._fire(Event.ACK)
        self.ack_digit = digit
        self._deadline = now_ms + FSK_AFTER_ACK_MS
        return []

    def poll(self, now_ms: float) -> list[Action]:
        out: list[Action] = []
        while self._deadline is not None and now_ms >= self._deadline:
            due = self._deadline
            if self.state is CallWaitingState.ALERTING:
                self._fire(Event.CAS_ENDED)
                self._deadline = due + self._window_ms
            elif self.state is CallWaitingState.AWAITING_ACK:
                self._fire(Event.WINDOW_EXPIRED)
                self._deadline = None
                out.append(HandshakeFinished(sent=False, ack_digit=None))
            elif self.state is CallWaitingState.ACKNOWLEDGED:
                self._fire(Event.PAUSE_ENDED)
                self._deadline = due + self._ms(self._burst)
                out.append(PlayAudio(self._burst))
            elif self.state is CallWaitingState.SENDING:
                self._fire(Event.FSK_ENDED)
                self._deadline = None
                out.append(HandshakeFinished(sent=True, ack_digit=self.ack_digit))
            else:  # pragma: no cover - every timed state is handled above
                raise HandshakeError(f"no timer belongs to {self.state.value}")
        return out


CPE_ACK_WITHIN_MS: Final = 100.0  # SR-TSV-002476: the CPE sends its ACK within 100 ms
FSK_WAIT_MS: Final = 700.0  # ACK to FSK may take 500 ms (SR-TSV-002476); margin for the mark
FSK_MAX_MS: Final = 2000.0  # a burst in progress may run this much past the wait (255 bytes)


@dataclass(frozen=True, slots=True)
class SendAck:
    """Send the DTMF acknowledgement ``digit`` now (the telephone side answers a CAS)."""

    digit: str
    at_ms: float


@dataclass(frozen=True, slots=True)
class NoBurst:
    """We acknowledged a CAS but no caller ID burst followed within ``FSK_WAIT_MS``."""

    at_ms: float


class ReceiverState(enum.Enum):
    LISTENING = "listening"  # off-hook, watching for a CAS
    AWAITING_FSK = "awaiting_fsk"  # ACK requested, FSK receiver running


class CallWaitingReceiver:
    """Telephone side of type II caller ID, for an FXO port that is off-hook.

    Feed every received frame: on a CAS it asks for the ACK digit (``SendAck``; the line
    sends it with :func:`firmware.dsp.dtmf.generate_dtmf` and mutes its own audio), then runs
    the FSK receiver until a message, an error, or ``FSK_WAIT_MS`` without one (``NoBurst``).
    """

    def __init__(
        self,
        standard: fsk_module.FskStandard = "bell202",
        *,
        ack_digit: str = DEFAULT_ACK_DIGIT,
        rate: int = SAMPLE_RATE,
    ) -> None:
        if ack_digit not in ACK_DIGITS:
            raise ValueError(f"ACK digit must be one of {sorted(ACK_DIGITS)}, got {ack_digit!r}")
        self._cas = CasDetector(rate)
        self._fsk = fsk_module.FskDemodulator(standard, rate)
        self._ack = ack_digit
        self._rate = rate
        self._samples = 0
        self._deadline_ms = 0.0
        self.state = ReceiverState.LISTENING

    @property
    def now_ms(self) -> float:
        return self._samples * 1000 / self._rate

    def feed(
        self, frame: npt.ArrayLike
    ) -> list[SendAck | NoBurst | CallerIdMessage | CallerIdError]:
        x = np.asarray(frame)
        self._samples += len(x)
        out: list[SendAck | NoBurst | CallerIdMessage | CallerIdError] = []
        if self.state is ReceiverState.LISTENING:
            if self._cas.feed(x):
                out.append(SendAck(self._ack, self.now_ms))
                self._fsk.reset()
                self._deadline_ms = self.now_ms + FSK_WAIT_MS
                self.state = ReceiverState.AWAITING_FSK
            return out
        results = self._fsk.feed(x)
        if results:
            out += results
            self._listen()
        elif self.now_ms >= self._deadline_ms and (
            not self._fsk.busy or self.now_ms >= self._deadline_ms + FSK_MAX_MS
        ):
            out.append(NoBurst(self.now_ms))
            self._listen()
        return out

    def _listen(self) -> None:
        self._cas.reset()
        self.state = ReceiverState.LISTENING
