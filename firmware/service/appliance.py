"""The composition root: configuration -> line card -> ports -> media, under systemd.

``Appliance`` owns every long-lived part and their order: it loads the configuration,
starts the simulator when asked, opens the line card, builds one ``PortController`` and
one ``PortMedia`` per port the card reports, then turns card events, detected digits and
the line machines' timers into commands, tones and reports until it is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from drivers.audio.format import PcmFormat
from drivers.audio.socket_stream import SocketStream
from drivers.linecard import protocol as card
from drivers.linecard.link import Link, LinkFailed
from drivers.linecard.session import DownReason, LinkDown, LinkUp, PeerFault
from firmware.dsp.callerid.offhook import handshake_offset_ms
from firmware.dsp.pcm import FRAME_MS, SAMPLE_RATE
from firmware.dsp.profiles import get_profile
from firmware.lines import messages as m
from firmware.lines.cardclock import CardClock
from firmware.service.appports import AppPorts
from firmware.service.callerid_rx import Heard
from firmware.service.callerid_tx import CallerIdTransmitter, LineCallerId, zone
from firmware.service.calls import LocalCalls
from firmware.service.media import PortMedia
from firmware.service.ports import (
    ACK_GUARD_OPEN,
    Action,
    CallerIdStart,
    CallerIdStop,
    CardCommand,
    PortController,
    Report,
    ToneChange,
    tone_spec,
)
from firmware.service.simulator import SimulatorProcess
from firmware.service.sipbridge import SipBridge
from firmware.service.sipsettings import sip_settings
from firmware.service.supervisor import Supervisor
from firmware.sip.errors import SipError
from firmware.store import Config, ConfigStore, default_config
from firmware.store.voicemail import VoicemailStore

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 10.0  # handshake; the card answers within ms when it is there
RECONFIGURE_POLL_S: Final = 1.0  # how often a waiting configuration looks for idle lines
CONFIG_POLL_S: Final = 2.0  # how often the store is asked for a newer version
PCM_FORMAT: Final = PcmFormat(SAMPLE_RATE, FRAME_MS)
# How long after a type II exchange a card-detected 'A'/'D' is still the phone's ACK: the
# card reports a digit when it ends, over a link that a loaded host reads late (engineering).
ACK_LATE_MS: Final = 1000


@dataclass(frozen=True, slots=True)
class Options:
    data_dir: Path
    linecard: str | None = None  # None: start the simulator
    audio: str | None = None  # PCM socket URL of the card; the simulator's when simulating
    fxs: int = 4  # simulator ports
    fxo: int = 2
    sim_control: Path | None = None
    sip: bool = True  # run the SIP stack (off: local calls only)
    sip_host: str | None = None  # SIP/RTP bind address; None: 127.0.0.1 simulated, else 0.0.0.0
    sip_port: int | None = None  # override the configured UDP port (0: any free port)


@dataclass(slots=True)
class PortView:
    """What the status line and the event stream show for a port."""

    port: int
    kind: str
    state: str
    tone: str | None = None
    digits: str = ""
    since: float = 0.0  # wall-clock time of the last state or tone change

    def to_json(self) -> dict[str, str | int | float | None]:
        return {
            "port": self.port,
            "kind": self.kind,
            "state": self.state,
            "tone": self.tone,
            "since": self.since,
        }


@dataclass(frozen=True, slots=True)
class Alarm:
    """A condition an installer must see until it clears (link down, a port fault)."""

    id: str
    severity: str  # "critical" or "major"
    text: str
    since: float

    def to_json(self) -> dict[str, str | float]:
        return {"id": self.id, "severity": self.severity, "text": self.text, "since": self.since}


# (topic, data): how the appliance tells the control API what changed.
Publisher = Callable[[str, dict[str, Any]], None]


@dataclass(slots=True)
class Counters:
    card_events: int = 0
    reports: int = 0
    link_downs: int = 0
    faults: int = 0
    media_failures: int = 0
    last_reports: list[tuple[int, str]] = field(default_factory=list)


class Appliance:
    def __init__(
        self,
        options: Options,
        supervisor: Supervisor | None = None,
        on_report: Callable[[int, m.Report], None] | None = None,
        publish: Publisher | None = None,
    ) -> None:
        self.options = options
        self.supervisor = supervisor or Supervisor(healthy=self.healthy)
        self._on_report = on_report
        self.publish: Publisher = publish or (lambda topic, data: None)
        self.alarms: dict[str, Alarm] = {}
        self._views: dict[int, PortView] = {}
        self.store: ConfigStore | None = None
        self.config: Config | None = None
        self.sim: SimulatorProcess | None = None
        self.link: Link | None = None
        self.card: card.HelloAck | None = None
        self.ports: dict[int, PortController] = {}
        self.media: dict[int, PortMedia] = {}
        # Media loops for SIP callers of applications (no line): firmware.service.appports.
        self.app_ports = AppPorts(self, on_failure=self._media_failed_from_thread)
        self.counters = Counters()
        self._clock = CardClock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = asyncio.Event()
        self.calls: LocalCalls | None = None  # call control (firmware.pbx) for local calls
        self.sip: SipBridge | None = None  # the SIP stack, when it runs
        # A saved configuration waiting for the calls in progress to end.
        self._pending_config: Config | None = None
        self._config_version = 0  # the stored version in service (or waiting to be)
        self._watch_task: asyncio.Task[None] | None = None
        self._reconfigure_task: asyncio.Task[None] | None = None
        # Told of every configuration that took effect (the kernel firewall, say).
        self.config_listeners: list[Callable[[Config], Coroutine[Any, Any, None]]] = []
        self.cid_tx: CallerIdTransmitter | None = None  # caller ID towards the FXS phones
        self._cid_settings: dict[int, str] = {}  # FXS port -> lines.fxs[i].caller_id
        # The voicemail store the lines and the API share (set by ponte run before the API).
        self.voicemail: VoicemailStore | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        # A new box in simulation gets extensions and lines for the simulated ports; with a
        # real card, ports beyond the configuration run with the system's country.
        defaults = (
            default_config(self.options.fxs, self.options.fxo)
            if self.options.linecard is None
            else None
        )
        self.store = ConfigStore.open(self.options.data_dir, defaults=defaults)
        current = self.store.current()
        self.config = current.config
        self._config_version = current.version
        log.info("configuration version %d loaded from %s", current.version, self.options.data_dir)
        linecard, audio = self.options.linecard, self.options.audio
        if linecard is None:
            control = self.options.sim_control or self.options.data_dir / "sim.sock"
            self.sim = SimulatorProcess(
                fxs=self.options.fxs,
                fxo=self.options.fxo,
                country=self.config.system.country,
                control=control,
            )
            endpoints = await self.sim.start()
            linecard, audio = endpoints.linecard, endpoints.audio
        self.link = Link(linecard)
        await self.link.open()
        self.card = await self.link.wait_connected(timeout=CONNECT_TIMEOUT_S)
        log.info(
            "line card %s, firmware %s, ports %s",
            linecard,
            ".".join(map(str, self.card.firmware)),
            ",".join(k.name for k in self.card.ports),
        )
        self._build_ports(self.card, audio)
        self._start_caller_id()
        self.calls = LocalCalls(self)
        await self._start_sip()
        self._events_task = asyncio.create_task(self._pump_events(), name="linecard-events")
        for port in self.ports:
            await self.link.send(card.StatusRequest(port))
        self.supervisor.ready(self.summary())
        self.supervisor.start_watchdog()
        self._watch_task = asyncio.create_task(self._watch_config(), name="config-watch")

    def _build_ports(self, hello: card.HelloAck, audio: str | None) -> None:
        assert self.config is not None
        detect_dtmf = not hello.capabilities & card.Capability.DTMF_DETECT
        fxs_index = fxo_index = 0
        for number, kind in enumerate(hello.ports, start=1):
            if kind is card.PortKind.FXS:
                lines = self.config.lines.fxs
                line = lines[fxs_index] if fxs_index < len(lines) else None
                fxs_index += 1
            else:
                lines = self.config.lines.fxo  # type: ignore[assignment]
                line = lines[fxo_index] if fxo_index < len(lines) else None
                fxo_index += 1
            country = (line.country if line is not None else "") or self.config.system.country
            profile = get_profile(country)
            if kind is card.PortKind.FXS:
                self._cid_settings[number] = line.caller_id if line is not None else "country"
            sends_cid = self._cid_settings.get(number) != "none"
            self.ports[number] = PortController(
                number, kind, profile, self._clock, caller_id=sends_cid
            )
            if audio is None:
                log.warning("port %d: no PCM audio configured; tones and DTMF are off", number)
                continue
            stream = SocketStream(PCM_FORMAT, url=audio, line=number, paced=False)
            media = PortMedia(
                number,
                stream,
                detect_dtmf=detect_dtmf and kind is card.PortKind.FXS,
                on_digit=self._digit_from_thread,
                on_failure=self._media_failed_from_thread,
                fxo_profile=profile if kind is card.PortKind.FXO else None,
                on_caller_id=self._caller_id_from_thread,
                on_busy=self._busy_from_thread,
            )
            self.media[number] = media
            media.start()

    async def _start_sip(self) -> None:
        """The SIP stack, bound to the lines' audio; a failure leaves local calls working."""
        assert self.config is not None and self.calls is not None
        if not self.options.sip:
            return
        simulated = self.options.linecard is None
        host = self.options.sip_host or ("127.0.0.1" if simulated else "0.0.0.0")
        try:
            settings, policy = await asyncio.to_thread(
                sip_settings,
                self.config,
                bind_host=host,
                data_dir=self.options.data_dir,
                line_ports=(*sorted(self.media), *self.app_ports.numbers),
                udp_port=self.options.sip_port,
            )
            bridge = SipBridge(
                self,
                settings,
                port_accounts={a.name: a.fxs for a in self.config.sip.accounts if a.enabled},
                policy=policy,
            )
            await bridge.start()
        except (SipError, OSError) as exc:
            log.error("SIP stack not started: %s", exc)
            self.raise_alarm("sip.stack", "critical", f"SIP stack not started: {exc}")
            return
        self.sip = bridge
        self.calls.attach_sip(bridge)

    # --- configuration changes -----------------------------------------------------

    async def _watch_config(self) -> None:
        """Notice versions saved by anyone (``ponte config`` on the data dir, the API)."""
        while True:
            await asyncio.sleep(CONFIG_POLL_S)
            store = self.store
            if store is None:
                return
            try:
                head = await asyncio.to_thread(store.head)
                if head != self._config_version:
                    current = await asyncio.to_thread(store.current)
                    log.info("configuration version %d saved", current.version)
                    self.reconfigure(current.config, current.version)
            except Exception:  # a locked or vanished store: the next look may succeed
                log.exception("watching the configuration store")

    def reconfigure(self, config: Config, version: int | None = None) -> None:
        """Take ``config`` (just saved) into service as soon as no call is in progress.

        Call control and the SIP stack change together, between calls: a call keeps the
        routes and trunk it started with.  The lines' country and port settings need a
        restart (the card's ports are built once).
        """
        self._pending_config = config
        if version is not None:
            self._config_version = version
        if self._reconfigure_task is None or self._reconfigure_task.done():
            self._reconfigure_task = asyncio.create_task(
                self._reconfigure_when_idle(), name="reconfigure"
            )

    async def _reconfigure_when_idle(self) -> None:
        waited = False
        while self._pending_config is not None:
            calls = self.calls
            if calls is not None and not calls.idle:
                if not waited:
                    log.info("new configuration waits for the calls in progress to end")
                    waited = True
                await asyncio.sleep(RECONFIGURE_POLL_S)
                continue
            config, self._pending_config = self._pending_config, None
            old, self.config = self.config, config
            if calls is not None:
                calls.reconfigure(config)
            if old is None or _sip_relevant(old) != _sip_relevant(config):
                if self.sip is not None:
                    log.info("restarting the SIP stack for the new configuration")
                    await self.sip.stop()
                    self.sip = None
                    if calls is not None:
                        calls.sip = None  # until (and unless) the new stack starts
                self.clear_alarm("sip.stack")
                await self._start_sip()
            for listener in self.config_listeners:
                try:
                    await listener(config)
                except Exception:
                    log.exception("applying the new configuration")
            log.info("new configuration in service")
            self.supervisor.status(self.summary())

    async def stop(self) -> None:
        """Stop everything that was started, in reverse order; safe to call twice."""
        self.supervisor.stopping()
        await self.supervisor.stop()  # no keep-alives judged on a half-stopped appliance
        for task in (self._watch_task, self._reconfigure_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._watch_task = self._reconfigure_task = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.calls is not None:
            self.calls.stop()
        if self.sip is not None:
            try:
                await self.sip.stop()
            except Exception:
                log.exception("stopping the SIP stack")
            self.sip = None
        if self.cid_tx is not None:
            await self.cid_tx.close()
        await self.app_ports.stop()
        for media in self.media.values():
            await asyncio.to_thread(media.stop)
        self.media.clear()
        if self.link is not None:
            await self.link.close()
        if self._events_task is not None:
            self._events_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._events_task
            self._events_task = None
        if self.sim is not None:
            await self.sim.stop()
            self.sim = None
        if self.store is not None:
            self.store.close()
            self.store = None
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    # --- health and status ----------------------------------------------------------

    def healthy(self) -> bool:
        return self.link is not None and self.link.connected

    def summary(self) -> str:
        kinds = [p.kind for p in self.ports.values()]
        fxs = sum(k is card.PortKind.FXS for k in kinds)
        fxo = len(kinds) - fxs
        busy = sum(p.state not in ("idle",) for p in self.ports.values())
        link = "up" if self.healthy() else "DOWN"
        text = f"line card {link}, {fxs} FXS + {fxo} FXO, {busy} in use"
        if self.sip is not None:
            text += f", SIP legs {self.sip.legs_in_use}/{self.sip.settings.max_calls}"
        return text

    def port_views(self) -> list[PortView]:
        return [self._view(n) for n in sorted(self.ports)]

    def _view(self, number: int) -> PortView:
        p = self.ports[number]
        tone = p.tone.value if p.tone else None
        view = self._views.get(number)
        if view is None or (view.state, view.tone) != (p.state, tone):
            view = PortView(number, p.kind.name, p.state, tone, since=time.time())
            self._views[number] = view
        return view

    def _port_changed(self, number: int, report: str | None = None) -> None:
        """Publish ``ports.state`` when a port's state or tone changed, or it reported."""
        if number not in self.ports:
            return
        before = self._views.get(number)
        view = self._view(number)
        if before is view and report is None:
            return
        self.publish("ports.state", {**view.to_json(), "report": report})

    def raise_alarm(self, alarm_id: str, severity: str, text: str) -> None:
        if alarm_id in self.alarms:
            return
        alarm = Alarm(alarm_id, severity, text, time.time())
        self.alarms[alarm_id] = alarm
        self.publish("alarms.raised", alarm.to_json())

    def clear_alarm(self, alarm_id: str) -> None:
        alarm = self.alarms.pop(alarm_id, None)
        if alarm is not None:
            self.publish("alarms.cleared", alarm.to_json())

    # --- events ---------------------------------------------------------------------

    def _now(self) -> int:
        return int(time.monotonic() * 1000)

    async def _pump_events(self) -> None:
        assert self.link is not None
        async for event in self.link:
            self.counters.card_events += 1
            match event:
                case LinkUp():
                    log.info("line card link up")
                    self.clear_alarm("linecard.link")
                    self._clock.reset()
                    for port in self.ports:
                        await self.link.send(card.StatusRequest(port))
                case LinkDown(reason=DownReason.CLOSED):
                    log.info("line card link closed")  # we closed it: stopping
                case LinkDown(reason=reason):
                    self.counters.link_downs += 1
                    log.error("line card link down: %s", reason.value)
                    self.raise_alarm(
                        "linecard.link", "critical", f"line card link down: {reason.value}"
                    )
                case PeerFault():
                    log.warning("line card protocol fault: %s", event)
                case LinkFailed(description=why):
                    log.error("line card port failed: %s", why)
                    self.raise_alarm("linecard.link", "critical", f"line card failed: {why}")
                case card.Fault(port=port, kind=kind, active=active):
                    alarm_id = f"port.{port}.{kind.name.lower()}"
                    if active:
                        self.counters.faults += 1
                        log.error("port %d fault: %s", port, kind.name)
                        text = f"port {port}: {kind.name.lower().replace('_', '-')} fault"
                        self.raise_alarm(alarm_id, "major", text)
                    else:
                        log.warning("port %d fault cleared: %s", port, kind.name)
                        self.clear_alarm(alarm_id)
                case card.CommandRejected():
                    log.error("line card rejected a command: %s", event)
                case card.Message():
                    controller = self.ports.get(getattr(event, "port", 0))
                    if controller is not None:
                        await self._apply(controller.on_card(event, self._now()))
                        self._port_changed(controller.port)
                    else:
                        log.debug("line card: %s", event)
            self.supervisor.status(self.summary())

    def _digit_from_thread(self, port: int, digit: str) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._on_digit, port, digit)

    def _on_digit(self, port: int, digit: str) -> None:
        controller = self.ports.get(port)
        if controller is not None:
            self._spawn(self._apply(controller.on_digit(digit, self._now())))

    def _caller_id_from_thread(self, port: int, heard: Heard) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._on_caller_id, port, heard)

    def _on_caller_id(self, port: int, heard: Heard) -> None:
        if heard.error is not None:
            log.warning("port %d: caller ID not decoded: %s", port, heard.error)
            return
        log.info("port %d: caller ID %s %r", port, heard.number, heard.name)
        controller = self.ports.get(port)
        if controller is not None:
            now = self._now()
            self._spawn(self._apply(controller.on_caller_id(heard.number, heard.name, now)))

    def _busy_from_thread(self, port: int, tone: str) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._on_busy, port, tone)

    def _on_busy(self, port: int, tone: str) -> None:
        log.info("port %d: %s tone from the exchange", port, tone)
        controller = self.ports.get(port)
        if controller is not None:
            self._spawn(self._apply(controller.on_busy(self._now())))

    def _media_failed_from_thread(self, port: int, error: BaseException) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._media_failed, port, error)

    def _media_failed(self, port: int, error: BaseException) -> None:
        self.counters.media_failures += 1
        log.error("port %d: audio lost (%s)", port, error)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_log_task_failure)

    async def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case ToneChange(port=port, spec=spec):
                    media = self.media.get(port)
                    if media is not None:
                        # The call-waiting tone goes over the conversation, not instead of it.
                        controller = self.ports.get(port)
                        waiting = controller is not None and controller.tone is m.Tone.CALL_WAITING
                        media.play(spec, over_call=waiting and spec is not None)
                    self._port_changed(port)
                case CardCommand(message=message):
                    assert self.link is not None
                    await self.link.send(message)
                    if isinstance(message, card.Seize | card.Release):
                        media = self.media.get(message.port)
                        if media is not None:
                            media.listen_for_progress(isinstance(message, card.Seize))
                case CallerIdStart(port=port, caller_id=identity, off_hook=off_hook):
                    self._send_caller_id(port, identity, off_hook, action.already_ms)
                case CallerIdStop(port=port):
                    if self.cid_tx is not None:
                        controller = self.ports.get(port)
                        if controller is not None and controller.acknowledgement_guarded:
                            controller.guard_acknowledgement(self._now() + ACK_LATE_MS)
                        self.cid_tx.stop(port)
                case Report(port=port, report=report):
                    self.counters.reports += 1
                    cid = getattr(report, "caller_id", None)
                    if cid is None:
                        log.info("port %d: %s", port, type(report).__name__)
                    else:
                        log.info(
                            "port %d: %s number=%s name=%s",
                            port,
                            type(report).__name__,
                            cid.number,
                            cid.name,
                        )
                    self._port_changed(port, type(report).__name__)
                    if isinstance(report, m.OffHook | m.Answered | m.HungUp):
                        media = self.media.get(port)
                        if media is not None:
                            media.listen_for_digits(not isinstance(report, m.HungUp))
                    if self._on_report is not None:
                        self._on_report(port, report)
                    if self.calls is not None:
                        self.calls.on_report(port, report)
        self._schedule_timer()

    # --- caller ID towards the FXS phones ----------------------------------------------

    def _start_caller_id(self) -> None:
        assert self.link is not None and self.config is not None
        self.cid_tx = CallerIdTransmitter(
            self.link.send,
            self.media,
            self._caller_id_sent,
            tz=zone(self.config.system.timezone),
        )
        for number, setting in self._cid_settings.items():
            self.cid_tx.add_line(LineCallerId(number, self.ports[number].profile, setting))

    def _send_caller_id(self, port: int, cid: m.CallerId, off_hook: bool, already_ms: int) -> None:
        if self.cid_tx is None:
            return
        if off_hook:
            # Type II: the handshake begins in the first long pause of the call-waiting
            # tone, which the line machine started just before asking for caller ID.
            controller = self.ports[port]
            lead = handshake_offset_ms(tone_spec(controller.profile, m.Tone.CALL_WAITING))
            controller.guard_acknowledgement(ACK_GUARD_OPEN)
            self.cid_tx.call_waiting(port, cid, lead_ms=lead)
            return
        self.cid_tx.start(port, cid, already_ms=already_ms)

    def _caller_id_sent(self, port: int) -> None:
        controller = self.ports.get(port)
        if controller is not None:
            if controller.acknowledgement_guarded:
                # A card that detects digits reports the ACK when it ends: it may come late.
                controller.guard_acknowledgement(self._now() + ACK_LATE_MS)
            self._spawn(self._apply(controller.on_call(m.CallerIdSent(), self._now())))
            self._port_changed(port)

    def run_actions(self, actions: list[Action]) -> None:
        """Apply actions produced outside card events (call control), in order."""
        self._spawn(self._apply(actions))

    def _schedule_timer(self) -> None:
        deadlines = [d for p in self.ports.values() if (d := p.next_deadline()) is not None]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadlines and self._loop is not None:
            delay = max(min(deadlines) - self._now(), 0) / 1000
            self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._now()
        actions: list[Action] = []
        for controller in self.ports.values():
            deadline = controller.next_deadline()
            if deadline is not None and deadline <= now:
                actions += controller.on_timer(now)
                self._port_changed(controller.port)
        self._spawn(self._apply(actions))


def _sip_relevant(config: Config) -> tuple[object, ...]:
    """The parts of the configuration the SIP stack is built from (firmware.sip.provision)."""
    return (
        config.sip,
        config.security,
        config.network.dns,
        tuple((e.number, e.sip_password) for e in config.extensions),
        config.system.hostname,  # the digest realm
    )


def _log_task_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("event handling failed", exc_info=task.exception())
