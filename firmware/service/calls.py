"""The I/O shell around :class:`firmware.pbx.calls.CallControl` in the appliance.

Reports from the port controllers go to call control; its commands go back: line events
to the port controllers (whose card commands and tones the appliance applies as usual),
joins and splits to the media loops' cross-connects, DTMF into an exchange line's audio.
Runs on the event loop; owns one timer for the call-control deadlines.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal

from drivers.linecard import protocol as card
from firmware.dsp.dtmf import generate_dtmf
from firmware.dsp.pcm import SAMPLE_RATE
from firmware.lines import messages as m
from firmware.lines.timing import LineTiming
from firmware.pbx.apps import AppDigit, HushLine, RecordCall, StartApp, StopApp, StopRecording
from firmware.pbx.calllog import CallLog
from firmware.pbx.calls import (
    CallCommand,
    CallControl,
    Join,
    LineEvent,
    Mix,
    PortInfo,
    SendDtmf,
    Split,
    Unmix,
)
from firmware.pbx.features import Availability, AvailabilityChanged
from firmware.pbx.groups import AgentChanged, AnnouncePosition
from firmware.pbx.legs import (
    AnswerSip,
    BridgeSip,
    ConnectSip,
    DisconnectSip,
    HangupSip,
    HoldSip,
    PlaceSipCall,
    ResumeSip,
    RingSip,
    SendSipDtmf,
    SipEnded,
    SipEvent,
    SipTransferred,
    TransferSip,
)
from firmware.prompts.library import PromptLibrary
from firmware.service.conference import Conference, Seat
from firmware.service.crossconnect import CrossConnect, CrossConnectError
from firmware.service.ports import Action
from firmware.service.queues import QueueMedia
from firmware.service.recording import RecordedLink, RecordingError, notice_pcm
from firmware.store import Config
from firmware.store.agents import AgentStore
from firmware.store.availability import AvailabilityRow, AvailabilityStore
from firmware.store.db import StoreError
from firmware.store.ivrconfig import GoDial, GoExtension, GoVoicemail

if TYPE_CHECKING:
    from firmware.pbx.records import CallRecorder
    from firmware.service.appliance import Appliance
    from firmware.service.apps import Apps
    from firmware.service.media import PortMedia
    from firmware.service.recording import Recordings
    from firmware.service.sipbridge import SipBridge
    from firmware.store.recordings import RecordingRow

log = logging.getLogger(__name__)

# How often the RTP figures of answered SIP legs are read into the call records.  RTCP
# reports come every 5 s (RFC 3550 section 6.2); the stream's own counters move every packet,
# so a 1 s poll keeps the record's last figures at most a second old when the leg ends.
QUALITY_POLL_S: Final = 1.0


class LocalCalls:
    def __init__(self, appliance: Appliance) -> None:
        assert appliance.config is not None
        self._app = appliance
        infos: list[PortInfo] = []
        counts = {"fxs": 0, "fxo": 0}
        for number, controller in sorted(appliance.ports.items()):
            kind: Literal["fxs", "fxo"] = "fxs" if controller.kind is card.PortKind.FXS else "fxo"
            guard = LineTiming.from_profile(controller.profile).release_guard_ms
            # Caller ID after the first ring (alerting "ring": Bell 202 and the like): an
            # exchange call is held for it so that it can go out in a SIP From.
            after_ring = kind == "fxo" and controller.profile.callerid.alerting == "ring"
            infos.append(PortInfo(number, kind, counts[kind], guard, after_ring))
            counts[kind] += 1
        self.availability_store: AvailabilityStore | None = None
        stored: dict[str, Availability] = {}
        try:
            self.availability_store = AvailabilityStore.open(appliance.options.data_dir)
            for row in self.availability_store.load():
                stored[row.extension] = Availability(
                    row.forward_all, row.forward_busy, row.forward_no_answer, row.dnd
                )
        except (StoreError, sqlite3.Error):
            # Calls matter more than remembered forwardings: run without, and say so.
            log.exception("availability database unusable: forwarding and DND not kept")
        self._infos = tuple(infos)
        # Queue agents logged in by feature code (firmware.store.agents), kept likewise.
        self.agent_store: AgentStore | None = None
        agents: list[str] = []
        try:
            self.agent_store = AgentStore.open(appliance.options.data_dir)
            agents = self.agent_store.load()
        except (StoreError, sqlite3.Error):
            log.exception("agents database unusable: queue log-ins not kept")
        self.control = CallControl(
            appliance.config, infos, stored, agents, app_ports=appliance.app_ports.numbers
        )
        # Queue callers' music and announcements (firmware.service.queues).
        self.queues = QueueMedia(
            lambda port: appliance.media.get(port) or appliance.app_ports.get(port),
            PromptLibrary.for_data_dir(appliance.options.data_dir),
            appliance.config,
        )
        # Three-way calls: the conference, its seats and each port's own cross-connect.
        self._mixes: dict[int, tuple[Conference, dict[int, Seat], dict[int, CrossConnect]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.last_decision_ms: float | None = None  # last digit in -> commands out, for status
        self.sip: SipBridge | None = None
        self.call_log: CallLog | None = None
        self.apps: Apps | None = None  # voicemail on the lines (firmware.service.apps)
        # The call recordings (ControlApi opens them); None: calls are not recorded.
        self.recordings: Callable[[], Recordings | None] = lambda: None
        self._quality_task: asyncio.Task[None] | None = None

    def attach_records(self, recorder: CallRecorder) -> None:
        """Every call from now on leaves its legs in ``recorder`` (docs/records.md)."""
        self.call_log = CallLog(recorder, self.control.ports)
        if self._quality_task is None:
            self._quality_task = asyncio.get_running_loop().create_task(self._poll_quality())

    async def _poll_quality(self) -> None:
        while True:
            await asyncio.sleep(QUALITY_POLL_S)
            bridge, call_log = self.sip, self.call_log
            if bridge is None or call_log is None:
                continue
            for leg in list(bridge.legs.values()):
                leg_id = call_log.leg_id_of_sip(leg.leg)
                if leg.call_id is None or leg.state != "confirmed" or leg_id is None:
                    continue
                try:
                    q = await bridge.endpoint.call_quality(leg.call_id)
                except Exception as exc:  # the call ended while we asked
                    log.debug("quality of SIP leg %d: %s", leg.leg, exc)
                    continue
                call_log.recorder.quality(
                    leg_id,
                    jitter_ms=q.rx_jitter_ms,
                    loss_pct=q.rx_loss_pct,
                    rtt_ms=q.rtt_ms,
                    codec=q.codec,
                )

    @property
    def idle(self) -> bool:
        """No call of any kind is in progress (a new configuration may take over)."""
        return not self.control.calls_view() and self.control.sip_legs_in_use == 0

    def reconfigure(self, config: Config) -> None:
        """Call control for ``config``; only while idle (its calls would be forgotten)."""
        if not self.idle:
            raise RuntimeError("call control cannot be replaced while calls are up")
        # Forwarding and DND belong to the extensions, not to the configuration version.
        self.control = CallControl(
            config,
            self._infos,
            self.control.availability,
            self.control.groups.agents,
            app_ports=self._app.app_ports.numbers,
        )
        self.queues.configure(config)

    def attach_sip(self, bridge: SipBridge) -> None:
        self.sip = bridge
        bridge.on_sip_event = self.on_sip_event

    def on_sip_event(self, event: SipEvent) -> None:
        # A leg that ended by itself gets no DisconnectSip (firmware.pbx.legs): the recording
        # of the line it talked to stops here.
        call = self.control.call_of_leg(event.leg) if isinstance(event, SipEnded) else None
        line = call.leg_audio if call is not None else None
        try:
            commands = self.control.handle_sip(event, self._now())
        except Exception:
            log.exception("call control failed on %s", event)
            return
        if line is not None:
            self._stop_recording(line)
        self._run(commands)

    def _now(self) -> int:
        return int(time.monotonic() * 1000)

    def on_report(self, port: int, report: m.Report) -> None:
        started = time.perf_counter()
        if isinstance(report, m.OffHook) and self._app.cid_tx is not None:
            # A message-waiting burst still going out is cut off, as an exchange does: it
            # would be heard in place of the dial tone.
            self._app.cid_tx.stop(port)
        try:
            commands = self.control.handle(port, report, self._now())
        except Exception:
            log.exception("call control failed on %s from port %d", report, port)
            return
        if isinstance(report, m.DigitDialled) and commands:
            self.last_decision_ms = (time.perf_counter() - started) * 1000
            log.info(
                "port %d: route decided %.2f ms after the last digit", port, self.last_decision_ms
            )
        self._run(commands)

    def _record(self, command: RecordCall) -> None:
        media = self._app.media.get(command.port)
        recordings = self.recordings()
        if media is None or recordings is None or media.app is not None:
            log.warning("port %d: call not recorded (no recordings or media)", command.port)
            return
        try:
            recorder = recordings.start(
                command.caller,
                command.callee,
                command.reason,
                channels=2,
                frame_bytes=media.stream.fmt.bytes_per_frame,
            )
        except RecordingError as exc:
            log.error("port %d: cannot record the call: %s", command.port, exc)
            return
        media.app = RecordedLink(media.link, recorder)
        if command.beep:
            self._notice(command.port, start=True)

    def _notice(self, port: int, *, start: bool) -> None:
        """The recording notice to ``port`` and the port joined to it (after the recorder
        is on: the notice is in the recording too)."""
        media = self._app.media.get(port)
        if media is None:
            return
        pcm = notice_pcm(start, media.stream.fmt.rate)
        link = media.link
        peer = link.peer if isinstance(link, CrossConnect) else None
        for side in (link, peer):
            if side is not None:
                try:
                    side.send_pcm(pcm)
                except CrossConnectError as exc:  # a queue full of dialled DTMF
                    log.warning("port %d: recording notice not played: %s", port, exc)

    def _hush(self, command: HushLine) -> None:
        media = self._app.media.get(command.port)
        if media is not None and isinstance(media.link, CrossConnect):
            media.link.hush_digits = command.arm
            if command.hushed and not media.link.hushed:
                media.link.hush()
            media.link.hushed = command.hushed

    def _stop_recording(self, port: int) -> None:
        media = self._app.media.get(port)
        if media is None or not isinstance(media.app, RecordedLink):
            return
        recorded, media.app = media.app, None
        task = asyncio.get_running_loop().run_in_executor(None, recorded.recorder.stop)

        def done(f: asyncio.Future[RecordingRow]) -> None:
            if not f.cancelled() and f.exception() is not None:
                log.error("port %d: recording not finished: %s", port, f.exception())

        task.add_done_callback(done)

    def app_transfer(self, port: int, target: GoExtension | GoVoicemail | GoDial) -> None:
        """The IVR on ``port`` sends its caller to ``target``."""
        try:
            commands = self.control.app_transfer(port, target, self._now())
        except Exception:
            log.exception("call control failed transferring port %d to %s", port, target)
            return
        self._run(commands)

    def app_finished(self, port: int) -> None:
        """The application on ``port`` hung up by itself."""
        try:
            commands = self.control.app_finished(port, self._now())
        except Exception:
            log.exception("call control failed ending the application on port %d", port)
            return
        self._run(commands)

    def stop(self) -> None:
        if self._quality_task is not None:
            self._quality_task.cancel()
            self._quality_task = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.availability_store is not None:
            self.availability_store.close()
            self.availability_store = None
        self.queues.stop()
        if self.agent_store is not None:
            self.agent_store.close()
            self.agent_store = None

    def _observe(self) -> None:
        call_log = self.call_log
        if call_log is None:
            self.control.drain_closed()
            return
        try:
            call_log.observe(
                self.control.active_calls(), self.control.drain_closed(), self._now(), time.time()
            )
        except Exception:  # a record lost must never stop a call
            log.exception("call records: observing the calls failed")

    def _run(self, commands: list[CallCommand]) -> None:
        self._observe()
        actions: list[Action] = []
        now = self._now()
        for command in commands:
            match command:
                case LineEvent(port=port, event=event):
                    controller = self._app.ports.get(port)
                    if controller is None:
                        log.error("call control addressed port %d, which is not there", port)
                        continue
                    try:
                        actions += controller.on_call(event, now)
                    except Exception:
                        log.exception("port %d refused %s", port, event)
                case Join(a=a, b=b):
                    media_a, media_b = self._app.media.get(a), self._app.media.get(b)
                    if media_a is not None and media_b is not None:
                        media_a.link.join(media_b.link)
                        log.info("audio of ports %d and %d connected", a, b)
                case Split(a=a, b=b):
                    for port in (a, b):
                        media = self._app.media.get(port)
                        if media is not None:
                            self._stop_recording(port)
                            link = media.link
                            log.info(
                                "port %d audio split: %d frames from port %d, %d under- and "
                                "%d overruns",
                                port,
                                link.frames_passed,
                                b if port == a else a,
                                link.underruns,
                                link.overruns,
                            )
                            link.split()
                case RecordCall():
                    self._record(command)
                case StartApp() | StopApp() | AppDigit() if self.queues.takes(command):
                    self.queues.handle(command)
                    # A SIP caller that hung up while waiting gets no DisconnectSip: its
                    # application port stops here, unless voicemail or a queue follows on it.
                    if (
                        isinstance(command, StopApp)
                        and command.port in self._app.app_ports
                        and not any(
                            isinstance(c, StartApp) and c.port == command.port for c in commands
                        )
                    ):
                        self._app.app_ports.close(command.port)
                case AnnouncePosition():
                    self.queues.announce(command)
                case AgentChanged(extension=extension, logged_in=logged_in):
                    self._save_agent(extension, logged_in)
                case StopRecording(port=port, beep=beep):
                    if beep:
                        self._notice(port, start=False)
                    self._stop_recording(port)
                case HushLine():
                    self._hush(command)
                case StartApp() | StopApp() | AppDigit():
                    if self.apps is not None:
                        self.apps.handle(command)
                    elif isinstance(command, StartApp):
                        log.error("port %d: no applications running for %s", command.port, command)
                        asyncio.get_running_loop().call_soon(self.app_finished, command.port)
                    if isinstance(command, StopApp) and command.port in self._app.app_ports:
                        self._app.app_ports.close(command.port)
                case PlaceSipCall() | RingSip() | AnswerSip() | HangupSip() | SendSipDtmf():
                    self._sip_command(command)
                case HoldSip() | ResumeSip() | BridgeSip() | TransferSip():
                    self._sip_leg_command(command)
                case ConnectSip(leg=leg, port=port):
                    if port in self._app.app_ports:
                        self._app.app_ports.open(port)  # before the bridge sends it audio
                    if self.sip is not None:
                        self.sip.connect(leg, port)
                        log.info("audio of port %d and SIP leg %d connected", port, leg)
                case DisconnectSip(leg=leg, port=port):
                    self._stop_recording(port)
                    if self.sip is not None:
                        self.sip.disconnect(leg, port)
                    if port in self._app.app_ports:
                        self._app.app_ports.close(port)
                case Mix(ports=ports):
                    self._mix(ports)
                case Unmix(ports=ports):
                    self._unmix(ports)
                case AvailabilityChanged(extension=extension, availability=a):
                    self._save_availability(extension, a)
                case SendDtmf(port=port, digits=digits, on_ms=on_ms, off_ms=off_ms):
                    media = self._app.media.get(port)
                    if media is not None:
                        pcm = generate_dtmf(digits, on_ms=on_ms, off_ms=off_ms, rate=SAMPLE_RATE)
                        media.link.send_pcm(pcm.astype("<i2").tobytes())
                        log.info("port %d: dialling %s by DTMF", port, digits)
        if actions:
            self._app.run_actions(actions)
        self._schedule()

    def _port_media(self, port: int) -> PortMedia | None:
        """A line's media loop, or an application port's (a SIP party of a three-way call)."""
        return self._app.media.get(port) or self._app.app_ports.get(port)

    def _mix(self, ports: tuple[int, ...]) -> None:
        medias = [self._port_media(p) for p in ports]
        present = [(p, media) for p, media in zip(ports, medias, strict=True) if media is not None]
        if not present:
            return
        frame = present[0][1].stream.fmt.bytes_per_frame
        conference = Conference(
            frame, max_participants=len(ports), cues=False, name=f"3-way on port {ports[0]}"
        )
        seats: dict[int, Seat] = {}
        links: dict[int, CrossConnect] = {}
        for port, media in present:
            link = media.link
            link.split()
            links[port] = link
            seats[port] = conference.seat(port)
            # A Seat keeps a CrossConnect's contract with the media thread (heard/next_frame,
            # firmware.service.conference); the swap is one reference assignment.
            media.link = seats[port]  # type: ignore[assignment]
        self._mixes[ports[0]] = (conference, seats, links)
        log.info("ports %s mixed in a three-way call", ", ".join(map(str, ports)))

    def _unmix(self, ports: tuple[int, ...]) -> None:
        for key, (conference, seats, links) in list(self._mixes.items()):
            if not set(ports) & set(seats):
                continue
            del self._mixes[key]
            for port, seat in seats.items():
                media = self._port_media(port)
                if media is not None:
                    media.link = links[port]
                seat.leave()
            log.info(
                "three-way call of ports %s over after %d rounds",
                ", ".join(map(str, seats)),
                conference.rounds,
            )

    def _save_availability(self, extension: str, a: Availability) -> None:
        store = self.availability_store
        if store is None:
            return
        try:
            # One small row on the event loop: a feature code is dialled rarely.
            store.save(
                AvailabilityRow(
                    extension, a.forward_all, a.forward_busy, a.forward_no_answer, a.dnd
                )
            )
        except (StoreError, sqlite3.Error):
            log.exception("extension %s: availability not stored", extension)

    def _save_agent(self, extension: str, logged_in: bool) -> None:
        store = self.agent_store
        if store is None:
            return
        try:
            store.save(extension, logged_in)  # one small row: a code is dialled rarely
        except (StoreError, sqlite3.Error):
            log.exception("extension %s: queue log-in not stored", extension)

    def _sip_command(
        self, command: PlaceSipCall | RingSip | AnswerSip | HangupSip | SendSipDtmf
    ) -> None:
        bridge = self.sip
        if bridge is None:
            if isinstance(command, PlaceSipCall):
                # No SIP stack (it failed to start): the leg ends like an unplaceable one.
                self._spawn_sip_end(command.leg)
            return
        match command:
            case PlaceSipCall(leg=leg, account=account, number=number, caller=caller):
                bridge.place(leg, account, number, caller)
            case RingSip(leg=leg):
                bridge.ring(leg)
            case AnswerSip(leg=leg):
                bridge.answer(leg)
            case HangupSip(leg=leg, code=code):
                bridge.hangup(leg, code)
            case SendSipDtmf(leg=leg, digits=digits):
                bridge.send_dtmf(leg, digits)

    def _sip_leg_command(self, command: HoldSip | ResumeSip | BridgeSip | TransferSip) -> None:
        bridge = self.sip
        if bridge is None:
            if isinstance(command, TransferSip):
                asyncio.get_running_loop().call_soon(
                    self.on_sip_event,
                    SipTransferred(command.leg, 503, "the SIP stack is not running"),
                )
            return
        match command:
            case HoldSip(leg=leg):
                bridge.hold(leg)
            case ResumeSip(leg=leg):
                bridge.resume(leg)
            case BridgeSip(a=a, b=b):
                bridge.bridge(a, b)
            case TransferSip(leg=leg, number=number, replaces=replaces):
                bridge.transfer(leg, number, replaces)

    def _spawn_sip_end(self, leg: int) -> None:
        asyncio.get_running_loop().call_soon(
            self.on_sip_event, SipEnded(leg, 503, "the SIP stack is not running")
        )

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.control.next_deadline()
        if deadline is not None:
            delay = max(deadline - self._now(), 0) / 1000
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._run(self.control.handle_timer(self._now()))
