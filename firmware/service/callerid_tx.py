"""Caller ID towards the phones on the FXS ports: what to send (sans-IO), and sending it.

The line machine (``firmware.lines.fxs``) decides *when*: it emits ``SendCallerId`` at the
alerting moment of the port's country (before ringing, or after the first ring) and waits
for ``CallerIdSent``.  :class:`LineCallerId` decides *what*: the port's PCM from the
alerting event until ringing may start, and the line-card commands around it (open the
on-hook audio path, reverse the line, a ring pulse), as a :class:`Transmission`.
:class:`CallerIdTransmitter` carries one out per port: it renders, sends the commands,
hands the PCM to the port's media loop and, when the last sample has gone out, restores
the line and reports back so the machine gets its ``CallerIdSent``.

Caller ID on call waiting (type II, ``SendCallerId(off_hook=True)``) needs no line-card
command: :meth:`CallerIdTransmitter.call_waiting` hands the port's media loop a
:class:`~firmware.dsp.callerid.offhook.CallWaitingLine` (CAS, the phone's ACK, the burst)
and reports back the same way when it is over, whether the phone acknowledged or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from drivers.linecard import protocol as card
from firmware.dsp.callerid.messages import DateTime, InvalidMessage
from firmware.dsp.callerid.offhook import CallWaitingLine
from firmware.dsp.callerid.transmit import (
    Alerting,
    CallWaitingBurst,
    OnHookBurst,
    line_spec,
    render_call_waiting,
    render_on_hook,
    render_vmwi,
)
from firmware.dsp.pcm import SAMPLE_RATE, Pcm
from firmware.dsp.profiles import CallerIdSpec, CountryProfile
from firmware.lines import messages as m
from firmware.service.media import PortMedia

log = logging.getLogger(__name__)

# A ring pulse (RP-AS, NTT CAR) is one burst of the ringing cadence followed by a pause
# longer than any transmission; the transmission ends it with StopRing.
RING_PULSE_PAUSE_MS: Final = 0xFFFF  # the longest pause the Ring command carries
# The card plays PCM from a FIFO (the simulator's holds 200 ms, drivers/sim/card.py
# JITTER_FRAMES) while commands take the faster link: the on-hook audio path must stay open
# this long after the last sample we write, or the end of the data never reaches the phone.
CARD_FIFO_MS: Final = 200
# The same FIFO delays the data against the ring command that follows CallerIdSent: keep
# this much silence beyond data_to_ring_ms so the gap the phone sees is never shorter than
# the standard's (the simulator's FIFO runs 1-3 frames deep on a loaded machine).
FIFO_LATENCY_MARGIN_MS: Final = 100


@dataclass(frozen=True, slots=True)
class Transmission:
    """One on-hook transmission on one port: commands, PCM, commands."""

    port: int
    pcm: Pcm
    before: tuple[card.Message, ...]  # sent before the first sample
    after: tuple[card.Message, ...]  # sent when the last sample is out, or on a stop
    what: str  # for the log: "caller ID 101 'Port 1'", "VMWI on"

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) * 1000 // SAMPLE_RATE


def _with_tail(burst: OnHookBurst, pcm: Pcm) -> Pcm:
    """``pcm`` with enough silence after the data for the card's FIFO to play it out."""
    if burst.before_ring and burst.alerting is not Alerting.NONE:
        # line_audio ends in data_to_ring_ms of silence already.
        extra = max(FIFO_LATENCY_MARGIN_MS, CARD_FIFO_MS - burst.data_to_ring_ms)
    else:
        extra = CARD_FIFO_MS
    missing = extra * SAMPLE_RATE // 1000
    return np.concatenate((pcm, np.zeros(missing, dtype=np.int16))) if missing else pcm


def _commands(port: int, burst: OnHookBurst) -> tuple[list[card.Message], list[card.Message]]:
    before: list[card.Message] = [card.OnHookTransmission(port, True)]
    after: list[card.Message] = [card.OnHookTransmission(port, False)]
    if burst.reverses_polarity:
        before.insert(0, card.SetPolarity(port, card.Polarity.REVERSE))
        after.append(card.SetPolarity(port, card.Polarity.FORWARD))
    if burst.ring_pulse:
        before.insert(0, card.Ring(port, ((burst.ring_pulse_ms, RING_PULSE_PAUSE_MS),)))
        after.insert(0, card.StopRing(port))
    return before, after


class LineCallerId:
    """What one FXS port sends: its country's caller ID with the line's ``caller_id`` setting.

    Sans-IO: an identity and the wall-clock time in, a :class:`Transmission` out.  Raises
    ``InvalidMessage`` naming the problem when the identity cannot be sent at all (a DTMF
    format with no way to say "unavailable" and no number).
    """

    def __init__(self, port: int, profile: CountryProfile, setting: str = "country") -> None:
        self.port = port
        self.country = profile.code
        self.spec: CallerIdSpec | None = line_spec(profile.callerid, setting)

    @property
    def enabled(self) -> bool:
        return self.spec is not None

    def _spec(self) -> CallerIdSpec:
        if self.spec is None:
            raise InvalidMessage(f"port {self.port} is configured to send no caller ID")
        return self.spec

    def caller_id(self, cid: m.CallerId, now: datetime, *, already_ms: int = 0) -> Transmission:
        """Caller ID for an incoming call; ``already_ms`` of the data delay has passed."""
        burst = render_on_hook(self._spec(), number=cid.number, name=cid.name, when=_date_time(now))
        before, after = _commands(self.port, burst)
        what = f"caller ID {cid.number} {cid.name!r}"
        pcm = _with_tail(burst, burst.line_audio(already_ms=already_ms))
        return Transmission(self.port, pcm, tuple(before), tuple(after), what)

    @property
    def call_waiting_enabled(self) -> bool:
        """The line sends caller ID on call waiting (its country and setting have type II)."""
        return self.spec is not None and self.spec.call_waiting_alert is not None

    def call_waiting(self, cid: m.CallerId, now: datetime) -> CallWaitingBurst | None:
        """Type II caller ID for a waiting call; None where the line has none."""
        spec = self.spec
        if spec is None or spec.call_waiting_alert is None:
            return None
        return render_call_waiting(
            spec,
            number=cid.number,
            name=cid.name,
            when=_date_time(now),
            cas=spec.call_waiting_alert,
        )

    def message_waiting(
        self, active: bool, now: datetime, *, count: int | None = None
    ) -> Transmission:
        """Visual message waiting on or off (on hook, no ringing follows)."""
        burst = render_vmwi(self._spec(), active=active, count=count, when=_date_time(now))
        before, after = _commands(self.port, burst)
        what = f"message waiting {'on' if active else 'off'}"
        pcm = _with_tail(burst, burst.line_audio())
        return Transmission(self.port, pcm, tuple(before), tuple(after), what)


def _date_time(now: datetime) -> DateTime:
    return DateTime(now.month, now.day, now.hour, now.minute)


def zone(name: str) -> tzinfo:
    """The configured IANA time zone; UTC (with a warning) if this system does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("time zone %r unknown here: caller ID dates are in UTC", name)
        return ZoneInfo("UTC")


@dataclass(slots=True)
class _Job:
    generation: int
    transmission: Transmission | None = None  # None until rendered
    started: bool = False  # the commands before it went to the card
    task: asyncio.Task[None] | None = field(default=None, repr=False)


Send = Callable[[card.Message], Awaitable[object]]


class CallerIdTransmitter:
    """The I/O shell: at most one transmission per port, started and stopped on the loop.

    ``send`` puts a command on the line-card link; ``media`` are the ports' media loops;
    ``finished(port)`` is called on the loop when a transmission asked for with
    :meth:`start` is over (sent, or impossible), never for one that was stopped.
    """

    def __init__(
        self,
        send: Send,
        media: Mapping[int, PortMedia],
        finished: Callable[[int], None],
        *,
        tz: tzinfo,
        clock: Callable[[tzinfo], datetime] = datetime.now,
    ) -> None:
        self._send = send
        self._media = media
        self._finished = finished
        self._tz = tz
        self._clock = clock
        self._lines: dict[int, LineCallerId] = {}
        self._jobs: dict[int, _Job] = {}
        self._call_waiting: dict[int, int] = {}  # port -> generation of its type II exchange
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        self.stopped = 0
        self.failed = 0
        self.not_acknowledged = 0  # type II: the phone did not answer the CAS

    def add_line(self, line: LineCallerId) -> None:
        self._lines[line.port] = line

    def busy(self, port: int) -> bool:
        return port in self._jobs or port in self._call_waiting

    def call_waiting(self, port: int, cid: m.CallerId, *, lead_ms: float) -> None:
        """Caller ID on call waiting on ``port``, ``lead_ms`` into the call-waiting tone.

        ``finished(port)`` follows once it is over, acknowledged or not, or at once when the
        line has no type II (its country, or its ``caller_id`` setting).
        """
        self.stop(port)
        line = self._lines.get(port)
        media = self._media.get(port)
        try:
            burst = None if line is None else line.call_waiting(cid, self._clock(self._tz))
        except InvalidMessage as exc:
            log.warning("port %d: caller ID on call waiting not sent: %s", port, exc)
            burst = None
        if burst is None or media is None:
            log.info("port %d: no caller ID on call waiting on this line", port)
            self._finish_soon(port)
            return
        self._loop = asyncio.get_running_loop()
        self._generation += 1
        generation = self._generation
        self._call_waiting[port] = generation
        session = CallWaitingLine(
            burst.burst,
            cas_standard=burst.cas,
            lead_ms=lead_ms,
            latency_ms=CARD_FIFO_MS,  # the card's FIFO delays the CAS on its way out
            rate=burst.rate,
        )
        log.info(
            "port %d: caller ID on call waiting %s %r (%s alerting signal)",
            port,
            cid.number,
            cid.name,
            burst.cas,
        )

        def done(p: int, line: CallWaitingLine) -> None:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._call_waiting_done, p, generation, line)

        media.send_call_waiting(session, done)

    def _call_waiting_done(self, port: int, generation: int, line: CallWaitingLine) -> None:
        if self._call_waiting.get(port) != generation:
            return  # stopped, or replaced by a newer one
        del self._call_waiting[port]
        result = line.result
        if result is not None and result.sent:
            self.sent += 1
            log.info(
                "port %d: caller ID on call waiting sent (phone acknowledged with %s)",
                port,
                result.ack_digit,
            )
        else:
            self.not_acknowledged += 1
            log.info(
                "port %d: caller ID on call waiting not sent: the phone did not acknowledge "
                "(no type II display)",
                port,
            )
        self._finished(port)

    def start(self, port: int, cid: m.CallerId, *, already_ms: int = 0) -> None:
        """Begin sending ``cid`` on ``port`` (replacing anything in progress there)."""
        line = self._lines.get(port)
        if line is None:
            log.error("port %d: no caller ID generator (not an FXS port?)", port)
            self._finish_soon(port)
            return

        def render() -> Transmission:
            return line.caller_id(cid, self._clock(self._tz), already_ms=already_ms)

        self._begin(port, render)

    def message_waiting(self, port: int, active: bool, count: int | None = None) -> None:
        """Send visual message waiting on ``port`` (issue 5: voicemail); no report follows."""
        line = self._lines.get(port)
        if line is None:
            raise KeyError(f"port {port} has no caller ID generator")

        def render() -> Transmission:
            return line.message_waiting(active, self._clock(self._tz), count=count)

        self._begin(port, render, report=False)

    def stop(self, port: int) -> None:
        """Stop at once (the phone was answered, the caller gave up); restores the line."""
        if self._call_waiting.pop(port, None) is not None:
            self.stopped += 1
            media = self._media.get(port)
            if media is not None:
                media.stop_call_waiting()
            log.info("port %d: caller ID on call waiting stopped", port)
        job = self._jobs.pop(port, None)
        if job is None:
            return
        self.stopped += 1
        media = self._media.get(port)
        if media is not None:
            media.stop_on_hook()
        if job.task is not None and not job.task.done():
            job.task.cancel()
        if job.started and job.transmission is not None:
            log.info("port %d: %s stopped", port, job.transmission.what)
            self._spawn(self._send_all(job.transmission.after))

    async def close(self) -> None:
        for port in {*self._jobs, *self._call_waiting}:
            self.stop(port)

    # --- internals --------------------------------------------------------------------

    def _begin(self, port: int, render: Callable[[], Transmission], *, report: bool = True) -> None:
        self.stop(port)
        self._loop = asyncio.get_running_loop()
        self._generation += 1
        job = _Job(self._generation)
        self._jobs[port] = job
        job.task = asyncio.create_task(self._run(port, job, render, report))

    async def _run(
        self, port: int, job: _Job, render: Callable[[], Transmission], report: bool
    ) -> None:
        try:
            # About 0.25 ms of numpy for a whole burst (make bench callerid): on the loop is
            # cheaper than a hop to a worker thread.
            tx = render()
        except InvalidMessage as exc:
            log.warning("port %d: caller ID not sent: %s", port, exc)
            self._abandon(port, job, report)
            return
        media = self._media.get(port)
        if media is None:
            log.warning("port %d: no audio path: %s not sent", port, tx.what)
            self._abandon(port, job, report)
            return
        job.transmission = tx
        job.started = True
        try:
            await self._send_all(tx.before)
        except Exception as exc:
            log.error("port %d: line card refused caller ID set-up: %s", port, exc)
            self._jobs.pop(port, None)
            await self._send_all(tx.after, quiet=True)
            self._report(port, report, failed=True)
            return
        if self._jobs.get(port) is not job:
            return  # stopped meanwhile: stop() restored the line
        log.info("port %d: sending %s (%d ms)", port, tx.what, tx.duration_ms)
        generation = job.generation
        media.send_on_hook(tx.pcm, lambda p: self._played_from_thread(p, generation, report))

    def _played_from_thread(self, port: int, generation: int, report: bool) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._played, port, generation, report)

    def _played(self, port: int, generation: int, report: bool) -> None:
        job = self._jobs.get(port)
        if job is None or job.generation != generation:
            return  # stopped, or replaced by a newer one
        del self._jobs[port]
        assert job.transmission is not None
        log.info("port %d: %s sent", port, job.transmission.what)
        self.sent += 1
        self._spawn(self._restore_then_report(port, job.transmission, report))

    async def _restore_then_report(self, port: int, tx: Transmission, report: bool) -> None:
        # The line is back to normal (polarity, on-hook audio off) before ringing starts.
        await self._send_all(tx.after, quiet=True)
        self._report(port, report)

    def _abandon(self, port: int, job: _Job, report: bool) -> None:
        if self._jobs.get(port) is job:
            del self._jobs[port]
            self._report(port, report, failed=True)

    def _report(self, port: int, report: bool, *, failed: bool = False) -> None:
        if failed:
            self.failed += 1
        if report:
            self._finished(port)

    def _finish_soon(self, port: int) -> None:
        self.failed += 1
        asyncio.get_running_loop().call_soon(self._finished, port)

    async def _send_all(self, messages: tuple[card.Message, ...], *, quiet: bool = False) -> None:
        for message in messages:
            if not quiet:
                await self._send(message)
                continue
            try:
                await self._send(message)
            except Exception as exc:  # the link is down: the card resets its ports itself
                log.warning("line card: %s not sent: %s", type(message).__name__, exc)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        if task.exception() is not None:
            log.error("caller ID transmission failed", exc_info=task.exception())
