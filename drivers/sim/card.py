"""The simulated line card: the card end of the real protocol, FXS and FXO ports (no I/O).

:class:`SimCard` holds a card-role :class:`~drivers.linecard.session.Session`, carries out
the host's commands on its ports, and turns what the handsets and the exchange do into
events stamped with the card's millisecond clock.  It is driven like any sans-IO core:
``receive_data(bytes)``, ``advance()`` at ``next_deadline()``, ``audio_tick()`` every 20 ms,
``data_to_send()``; the time comes from the ``clock`` it is given (the event loop's clock
in :mod:`drivers.sim.simulator`, a fake one in unit tests).
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable

import numpy as np

from drivers.linecard.protocol import (
    PROTOCOL_VERSION,
    Capability,
    CommandRejected,
    Digit,
    Fault,
    FaultKind,
    Flash,
    HelloAck,
    HookChange,
    LineTest,
    LineTestOutcome,
    LineTestResult,
    LoopCurrent,
    Message,
    OnHookTransmission,
    Polarity,
    PolarityChange,
    PortKind,
    PortStatus,
    RejectReason,
    Release,
    Ring,
    RingDetect,
    Seize,
    SetLineParams,
    SetPolarity,
    StatusFlag,
    StatusRequest,
    StopRing,
)
from drivers.linecard.session import (
    LinkDown,
    LinkUp,
    PeerFault,
    QueueFullError,
    Received,
    Role,
    Session,
    Timing,
)
from drivers.sim.co import CentralOffice, CoLine
from drivers.sim.endpoint import Scheduler, SimError, Timer
from drivers.sim.handset import Handset
from drivers.sim.signals import BUILTIN, CallWaitingReceiver, NoBurst, SendAck, SignalKit
from drivers.sim.tones import FRAME_SAMPLES, Pcm

log = logging.getLogger(__name__)

FIRMWARE = (0, 1, 0)
CAPABILITIES = (
    Capability.DTMF_DETECT
    | Capability.LINE_TEST
    | Capability.ON_HOOK_TRANSMISSION
    | Capability.POLARITY_REVERSAL
)
# Line test figures the simulated SLIC reports: one telephone of REN 1 on an idle loop.
SIM_LOOP_OHMS = 300
SIM_REN_CENTI = 100
SIM_FXO_LINE_DV = 480  # 48 V on-hook exchange battery
# Frames from the appliance buffered per port (200 ms): the oldest is dropped on overflow,
# silence played on underrun, as a card's PCM FIFO would.
JITTER_FRAMES = 10


class _Port:
    def __init__(self, card: SimCard, number: int, kind: PortKind) -> None:
        self.card = card
        self.number = number
        self.kind = kind
        self.params: SetLineParams | None = None
        self.faults: set[FaultKind] = set()
        self.to_line: deque[Pcm] = deque(maxlen=JITTER_FRAMES)
        self.audio_connected = False  # an appliance stream is attached to this port

    def flags(self) -> StatusFlag:
        return StatusFlag.FAULT if self.faults else StatusFlag.NONE


class FxsPort(_Port):
    """A SLIC port with a :class:`Handset` plugged in."""

    def __init__(self, card: SimCard, number: int, handset: Handset) -> None:
        super().__init__(card, number, PortKind.FXS)
        self.handset = handset
        self.polarity = Polarity.FORWARD
        self.on_hook_tx = False
        self.ring_command: Ring | None = None
        self._ring_timers: list[Timer] = []
        self.detector = card.signals.dtmf_detector()
        # The phone's caller-ID display: it decodes what the SLIC sends while on hook.
        self.caller_id_receiver = card.signals.caller_id_receiver(card.country.code)
        # A type II telephone's receiver, fresh for each off-hook period (None: not listening).
        self.call_waiting_receiver: CallWaitingReceiver | None = None
        handset.plug(self)

    def listen_for_call_waiting(self, heard: Pcm, now: float) -> None:
        """A type II telephone off hook: alerting signal -> ACK, then the burst."""
        handset = self.handset
        if not handset.is_off_hook or handset.call_waiting_ack is None:
            self.call_waiting_receiver = None
            return
        if self.call_waiting_receiver is None:
            self.call_waiting_receiver = self.card.signals.call_waiting_receiver(
                self.card.country.code, handset.call_waiting_ack
            )
            if self.call_waiting_receiver is None:
                return  # the simulator's own kit has no caller ID at all
        for event in self.call_waiting_receiver.feed(heard):
            if isinstance(event, SendAck):
                handset.alerting_signal(event.digit, now)
            elif isinstance(event, NoBurst):
                handset.no_burst(now)
            else:
                handset.caller_id_received(event, now, off_hook=True)

    def hook(self, off_hook: bool, when: float) -> None:
        if off_hook and self.ring_command is not None:
            # Ring trip: the SLIC stops ringing the moment the phone answers.
            self.stop_ring(when)
        self.card.emit(HookChange(self.number, off_hook, self.card.card_ms(when)))

    def ring(self, command: Ring, when: float) -> None:
        self.stop_ring(when)
        self.ring_command = command
        self._ring_cycle(when)

    def _ring_cycle(self, start: float) -> None:
        assert self.ring_command is not None
        self._ring_timers = [t for t in self._ring_timers if t.when >= start]
        t = start
        sched = self.card.scheduler
        for on, off in self.ring_command.cadence:
            self._ring_timers.append(sched.at(t, lambda w: self.handset.ring_voltage(True, w)))
            t += on / 1000
            self._ring_timers.append(sched.at(t, lambda w: self.handset.ring_voltage(False, w)))
            t += off / 1000
        self._ring_timers.append(sched.at(t, self._ring_cycle))

    def stop_ring(self, when: float) -> None:
        for timer in self._ring_timers:
            timer.cancel()
        self._ring_timers.clear()
        self.ring_command = None
        self.handset.ring_voltage(False, when)

    def flags(self) -> StatusFlag:
        flags = super().flags()
        if self.handset.is_off_hook:
            flags |= StatusFlag.OFF_HOOK
        if self.ring_command is not None:
            flags |= StatusFlag.RINGING
        if self.polarity is Polarity.REVERSE:
            flags |= StatusFlag.REVERSED
        if self.on_hook_tx:
            flags |= StatusFlag.ON_HOOK_TX
        return flags


class FxoPort(_Port):
    """A DAA port wired to a :class:`CoLine` of the virtual exchange."""

    def __init__(self, card: SimCard, number: int, line: CoLine) -> None:
        super().__init__(card, number, PortKind.FXO)
        self.line = line
        self.seized = False
        self.ring_detected = False
        self.current = False
        self.polarity = Polarity.FORWARD
        self._flash_timer: Timer | None = None
        line.plug(self)

    def seize(self, when: float) -> None:
        if not self.seized:
            self.seized = True
            self.line.port_seize(when)

    def release(self, when: float) -> None:
        if self.seized:
            self.seized = False
            self.current = False
            self.line.port_release(when)

    def flash(self, duration_ms: int, when: float) -> None:
        self.release(when)
        self._flash_timer = self.card.scheduler.at(when + duration_ms / 1000, self.seize)

    # LinePort: what the exchange does to the line.
    def ring_voltage(self, active: bool, when: float) -> None:
        if active != self.ring_detected:
            self.ring_detected = active
            self.card.emit(RingDetect(self.number, active, self.card.card_ms(when)))

    def loop_current(self, present: bool, when: float) -> None:
        if present != self.current and self.seized:
            self.current = present
            self.card.emit(LoopCurrent(self.number, present, self.card.card_ms(when)))

    def line_polarity(self, polarity: Polarity, when: float) -> None:
        if polarity is not self.polarity:
            self.polarity = polarity
            self.card.emit(PolarityChange(self.number, polarity, self.card.card_ms(when)))

    def flags(self) -> StatusFlag:
        flags = super().flags()
        if self.seized:
            flags |= StatusFlag.OFF_HOOK
        if self.current:
            flags |= StatusFlag.LOOP_CURRENT
        if self.ring_detected:
            flags |= StatusFlag.RING_DETECT
        if self.polarity is Polarity.REVERSE:
            flags |= StatusFlag.REVERSED
        return flags


class SimCard:
    """A line card with ``fxs`` FXS ports (1..fxs) and ``fxo`` FXO ports (fxs+1..fxs+fxo)."""

    def __init__(
        self,
        *,
        fxs: int,
        fxo: int,
        clock: Callable[[], float],
        country: str = "US",
        card_dtmf: bool = True,
        timing: Timing | None = None,
        rng: random.Random | None = None,
        signals: SignalKit | None = None,
    ) -> None:
        if fxs < 0 or fxo < 0 or not 1 <= fxs + fxo <= 32:
            raise SimError(f"{fxs} FXS + {fxo} FXO ports: need 1..32 ports in all")
        self.clock = clock
        self.signals = signals or BUILTIN
        self.country = self.signals.exchange(country)
        self.card_dtmf = card_dtmf
        self.timing = timing
        self._rng = rng or random.Random()
        self.scheduler = Scheduler()
        self.notify: Callable[[], None] = lambda: None  # set by the I/O shell
        self.events_dropped = 0  # events while no host was connected
        self.underruns = 0
        self.overruns = 0
        self.handsets = [
            Handset(
                n,
                clock=clock,
                scheduler=self.scheduler,
                notify=self._changed,
                flash_ms=self.country.flash_ms,
            )
            for n in range(1, fxs + 1)
        ]
        self.co = CentralOffice(
            [
                CoLine(
                    n,
                    exchange=self.country,
                    detector=self.signals.dtmf_detector(),
                    scheduler=self.scheduler,
                    clock=clock,
                    notify=self._changed,
                )
                for n in range(1, fxo + 1)
            ]
        )
        self.ports: list[FxsPort | FxoPort] = [
            FxsPort(self, n, h) for n, h in enumerate(self.handsets, start=1)
        ]
        self.ports += [FxoPort(self, fxs + n, line) for n, line in enumerate(self.co.lines, 1)]
        self._boot()

    def _boot(self) -> None:
        self.boot_time = self.clock()
        self.boot_id = self._rng.getrandbits(32)
        ack = HelloAck(
            PROTOCOL_VERSION,
            0,
            self.boot_id,
            FIRMWARE,
            CAPABILITIES if self.card_dtmf else CAPABILITIES & ~Capability.DTMF_DETECT,
            tuple(p.kind for p in self.ports),
        )
        self.session = Session(Role.CARD, card=ack, timing=self.timing, rng=self._rng)
        self.session.start(self.clock())
        self.host_connected = False

    # --- shell interface --------------------------------------------------------------

    def card_ms(self, when: float) -> int:
        """The card's millisecond clock at loop time ``when``."""
        return round((when - self.boot_time) * 1000) & 0xFFFF_FFFF

    def receive_data(self, data: bytes) -> None:
        now = self.clock()
        # What fell due before these bytes arrived happens first: after a stall of the
        # loop, a StopRing must not cut short a ring burst whose end was already due.
        self.scheduler.run_due(now)
        self.session.receive_data(data, now)
        self._drain()

    def advance(self) -> None:
        """Run everything due by now: scheduled port/handset/exchange actions, timers."""
        now = self.clock()
        self.scheduler.run_due(now)
        timer = self.session.get_timer()
        if timer is not None and timer <= now:
            self.session.handle_timer(now)
        self._drain()

    def next_deadline(self) -> float | None:
        times = [t for t in (self.scheduler.next_deadline(), self.session.get_timer()) if t]
        return min(times) if times else None

    def data_to_send(self) -> bytes:
        return self.session.data_to_send()

    def reset(self) -> None:
        """Reboot the card: new boot id, no session, ports back to rest.

        The phones stay as they are (a lifted handset is still lifted), the exchange
        sees its lines released.
        """
        log.info("simulated card resets")
        for port in self.ports:
            if isinstance(port, FxsPort):
                port.stop_ring(self.clock())
                port.on_hook_tx = False
                port.polarity = Polarity.FORWARD
            else:
                port.release(self.clock())
        self._boot()
        self._changed()

    # --- audio ------------------------------------------------------------------------

    def audio_tick(self) -> dict[int, Pcm]:
        """One 20 ms period: the frame towards the appliance for each port (by number).

        Also plays the appliance's buffered frames into the handsets and exchange lines.
        """
        now = self.clock()
        out: dict[int, Pcm] = {}
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        for port in self.ports:
            if port.to_line:
                heard = port.to_line.popleft()
            else:
                heard = silence
                if port.audio_connected:
                    self.underruns += 1
            if isinstance(port, FxsPort):
                handset = port.handset
                if handset.is_off_hook or port.on_hook_tx:
                    handset.hear_frame(heard, now)
                if port.on_hook_tx and not handset.is_off_hook:
                    handset.on_hook_audio(heard, now)
                    if port.caller_id_receiver:
                        for decoded in port.caller_id_receiver.feed(heard):
                            handset.caller_id_received(decoded, now)
                port.listen_for_call_waiting(heard, now)
                talk = handset.talk_frame() if handset.is_off_hook else silence
                if self.card_dtmf and handset.is_off_hook:
                    for digit, duration in port.detector.feed(talk):
                        start = now - duration / 1000
                        self.emit(Digit(port.number, ord(digit), duration, self.card_ms(start)))
            else:
                port.line.from_port(heard, now)
                talk = port.line.to_port()
            out[port.number] = talk
        self._drain()
        return out

    def audio_in(self, port_number: int, pcm: Pcm) -> None:
        """A 20 ms frame the appliance sends towards the line on ``port_number``."""
        port = self._port(port_number)
        if len(pcm) != FRAME_SAMPLES:
            raise SimError(f"audio frame of {len(pcm)} samples, need {FRAME_SAMPLES}")
        if len(port.to_line) == port.to_line.maxlen:
            self.overruns += 1  # deque drops the oldest
        port.to_line.append(pcm)

    # --- events and commands ----------------------------------------------------------

    def emit(self, message: Message) -> None:
        """Send an event to the host; without a host it is lost, as on a real card."""
        if not self.session.connected:
            self.events_dropped += 1
            log.debug("no host: %r dropped", message)
            return
        try:
            self.session.send(message, self.clock())
        except QueueFullError:
            self.events_dropped += 1
            log.warning("host not acknowledging: %r dropped", message)
        self._changed()

    def raise_fault(self, port: int, kind: FaultKind, active: bool = True) -> None:
        """Simulate a SLIC/DAA fault (over-current, thermal, foreign voltage)."""
        target = self._port(port)
        if active:
            target.faults.add(kind)
        else:
            target.faults.discard(kind)
        self.emit(Fault(port, kind, active, self.card_ms(self.clock())))

    def _port(self, number: int) -> FxsPort | FxoPort:
        if not 1 <= number <= len(self.ports):
            raise SimError(f"no port {number}: ports are 1..{len(self.ports)}")
        return self.ports[number - 1]

    def _drain(self) -> None:
        now = self.clock()
        while (event := self.session.next_event()) is not None:
            if isinstance(event, Received):
                self._command(event.message, event.seq, now)
            elif isinstance(event, LinkUp):
                log.info("host connected")
                self.host_connected = True
            elif isinstance(event, LinkDown):
                log.warning("host lost (%s): ports to rest", event.reason.value)
                self.host_connected = False
                self._safe_state(now)
            elif isinstance(event, PeerFault):
                log.warning("host protocol fault: %s", event.description)

    def _safe_state(self, now: float) -> None:
        for port in self.ports:
            if isinstance(port, FxsPort):
                port.stop_ring(now)
                port.on_hook_tx = False
            else:
                port.release(now)

    def _command(self, message: Message, seq: int, now: float) -> None:
        port_no = getattr(message, "port", 0)
        if not 1 <= port_no <= len(self.ports):
            self._reject(message, seq, port_no, RejectReason.UNKNOWN_PORT)
            return
        port = self.ports[port_no - 1]
        reason = self._carry_out(message, port, now)
        if reason is not None:
            self._reject(message, seq, port_no, reason)
        self._changed()

    def _carry_out(self, m: Message, port: FxsPort | FxoPort, now: float) -> RejectReason | None:
        """Do what the host asked; returns why not, if not."""
        fxs = port if isinstance(port, FxsPort) else None
        fxo = port if isinstance(port, FxoPort) else None
        match m:
            case StatusRequest():
                self.emit(PortStatus(port.number, port.kind, port.flags(), self.card_ms(now)))
            case SetLineParams():
                port.params = m
            case LineTest():
                self.emit(self._line_test(port, m.tag, now))
            case Ring() if fxs is not None:
                if fxs.handset.is_off_hook:
                    return RejectReason.BUSY
                fxs.ring(m, now)
            case StopRing() if fxs is not None:
                fxs.stop_ring(now)
            case SetPolarity() if fxs is not None:
                fxs.polarity = m.polarity
                fxs.handset.set_polarity(m.polarity, now)
            case OnHookTransmission() if fxs is not None:
                fxs.on_hook_tx = m.enable
            case Seize() if fxo is not None:
                fxo.seize(now)
            case Release() if fxo is not None:
                fxo.release(now)
            case Flash() if fxo is not None:
                if not fxo.seized:
                    return RejectReason.BUSY
                if not 10 <= m.duration_ms <= 5000:
                    return RejectReason.BAD_PARAMETER
                fxo.flash(m.duration_ms, now)
            case Ring() | StopRing() | SetPolarity() | OnHookTransmission():
                return RejectReason.WRONG_PORT_KIND
            case Seize() | Release() | Flash():
                return RejectReason.WRONG_PORT_KIND
            case _:
                return RejectReason.UNSUPPORTED
        return None

    def _line_test(self, port: FxsPort | FxoPort, tag: int, now: float) -> LineTestResult:
        ts = self.card_ms(now)
        if isinstance(port, FxsPort):
            foreign = 0 if FaultKind.FOREIGN_VOLTAGE not in port.faults else 600
            outcome = LineTestOutcome.FAIL if port.faults else LineTestOutcome.PASS
            loop = SIM_LOOP_OHMS if port.handset.is_off_hook else 0xFFFF
            return LineTestResult(port.number, tag, outcome, foreign, loop, SIM_REN_CENTI, ts)
        outcome = LineTestOutcome.FAIL if port.faults else LineTestOutcome.PASS
        return LineTestResult(port.number, tag, outcome, SIM_FXO_LINE_DV, 0xFFFF, 0, ts)

    def _reject(self, m: Message, seq: int, port: int, reason: RejectReason) -> None:
        log.info("rejecting %s on port %d: %s", type(m).__name__, port, reason.name)
        self.emit(CommandRejected(seq, m.TYPE, port if 0 <= port <= 255 else 0, reason))

    def _changed(self) -> None:
        self.notify()
