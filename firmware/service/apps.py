"""Applications on a line (voicemail) in the running appliance: the media side and the MWI.

Call control (``firmware.pbx.calls``) answers a line, or connects a SIP caller's leg to an
application port (``firmware.service.appports``, a media loop of its own), and sends
``StartApp``; this module runs the application's sans-IO machine
(:mod:`firmware.pbx.voicemail`) on the event loop and plugs an :class:`AppLink` into the
port's media loop (``PortMedia.app``): what the line hears goes to the recording, what it
plays comes from the prompts, messages and greetings queued here.  No thread per call: the
port's media thread calls ``heard``/``next_frame`` once a frame, exactly as for a
CrossConnect; a recording's writer is the voicemail store's
:class:`~firmware.store.voicemail.RecordingSink` (one thread while it records, because the
disk must never stall the media loop).

Message waiting: the voicemail store's ``MwiChanged`` events switch an FXS port's dial tone
to the stutter dial tone (``PortController.message_waiting``) and send an on-hook visual
message-waiting burst where the line's caller ID generator has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from firmware.dsp.levels import peak_for_dbm0
from firmware.dsp.pcm import SAMPLE_RATE, to_pcm
from firmware.dsp.profiles import get_profile
from firmware.dsp.wavio import WavError, read_wav
from firmware.pbx import conference as room
from firmware.pbx import ivr
from firmware.pbx import voicemail as vm
from firmware.pbx.apps import (
    AppCommand,
    AppDigit,
    CheckMailbox,
    JoinConference,
    LeaveMessage,
    RunIvr,
    StartApp,
    StopApp,
)
from firmware.prompts.library import PromptLibrary
from firmware.service.conference import Conference, ConferenceError, ConferenceRegistry, Seat
from firmware.store.voicemail import (
    GreetingKind,
    MailboxFull,
    MwiChanged,
    RecordingSink,
    VoicemailError,
    VoicemailStore,
)

if TYPE_CHECKING:
    from firmware.service.appliance import Appliance
    from firmware.service.media import PortMedia

log = logging.getLogger(__name__)

# What one Play may queue: the longest message (voicemail.max_message_s is at most 600 s)
# plus its envelope; 20 ms frames.
MAX_PLAY_FRAMES: Final = 660 * 50
# The beep before recording: 1000 Hz, 500 ms at -10 dBm0 (firmware.pbx.voicemail.BEEP_PLAN).
BEEP_HZ: Final = 1000.0
BEEP_MS: Final = 500
BEEP_DBM0: Final = -10.0


def beep() -> np.ndarray:
    n = SAMPLE_RATE * BEEP_MS // 1000
    t = np.arange(n) / SAMPLE_RATE
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.005 * SAMPLE_RATE))
    return to_pcm(peak_for_dbm0(BEEP_DBM0) * ramp * np.sin(2 * np.pi * BEEP_HZ * t))


class AppLink:
    """An application's end of a line's audio: the media-link contract of CrossConnect.

    ``heard``/``next_frame`` run on the port's media thread; ``play``/``stop_playback``/
    ``record_to`` on the event loop.  Each is a reference swap or a deque operation
    (atomic under the GIL).  ``on_drained(seq)`` is called on the media thread when the
    last frame of playback ``seq`` went out; it must be thread-safe.
    """

    def __init__(self, frame_bytes: int, on_drained: Callable[[int], None]) -> None:
        self.frame_bytes = frame_bytes
        self._on_drained = on_drained
        self._frames: deque[bytes] = deque()
        self._seq: int | None = None
        self._sink: Callable[[bytes], None] | None = None
        self.frames_played = 0
        self.frames_heard = 0

    def play(self, pcm: bytes, seq: int) -> None:
        fb = self.frame_bytes
        frames = [pcm[i : i + fb].ljust(fb, b"\0") for i in range(0, len(pcm), fb)]
        if len(frames) > MAX_PLAY_FRAMES:
            log.warning("playback of %d frames cut to %d", len(frames), MAX_PLAY_FRAMES)
            del frames[MAX_PLAY_FRAMES:]
        self._seq = None
        self._frames = deque(frames)
        self._seq = seq

    def append(self, pcm: bytes) -> None:
        """Queue ``pcm`` after what is playing (no playback id of its own)."""
        fb = self.frame_bytes
        room = MAX_PLAY_FRAMES - len(self._frames)
        self._frames.extend(
            [pcm[i : i + fb].ljust(fb, b"\0") for i in range(0, len(pcm), fb)][:room]
        )

    def notify_when_drained(self, seq: int) -> None:
        """Call ``on_drained(seq)`` once what is queued now went out."""
        self._seq = seq

    def stop_playback(self) -> None:
        self._seq = None
        self._frames = deque()

    def record_to(self, sink: Callable[[bytes], None] | None) -> None:
        self._sink = sink

    # --- media thread ---------------------------------------------------------------------

    def heard(self, frame: bytes) -> None:
        sink = self._sink
        if sink is not None:
            self.frames_heard += 1
            sink(frame)

    def next_frame(self) -> bytes | None:
        frames = self._frames
        try:
            frame = frames.popleft()
        except IndexError:
            seq, self._seq = self._seq, None
            if seq is not None:
                self._on_drained(seq)
            return None
        self.frames_played += 1
        return frame


@dataclass(slots=True)
class _Session:
    port: int
    machine: vm.LeaveMessage | vm.MailboxMenu
    link: AppLink
    app: LeaveMessage | CheckMailbox
    sink: RecordingSink | None = None
    over: bool = False


@dataclass(slots=True)
class _RoomSession:
    """A caller of a dial-in conference room: PIN prompts on an AppLink, then a Seat."""

    port: int
    caller: room.RoomCaller
    link: AppLink
    conference: Conference | None = None
    seat: Seat | None = None
    over: bool = False


@dataclass(slots=True)
class _IvrSession:
    port: int
    session: ivr.IvrSession
    link: AppLink


DISCONNECT_SEQ: Final = -1  # AppLink playback id: the last prompt before clearing the call


class Apps:
    """The applications of one appliance.  Event loop only."""

    def __init__(
        self,
        appliance: Appliance,
        store: VoicemailStore,
        prompts: PromptLibrary,
        app_finished: Callable[[int], None],
        app_transfer: Callable[[int, ivr.TransferTarget], None] | None = None,
    ) -> None:
        assert appliance.config is not None
        self._app = appliance
        self.store = store
        self.prompts = prompts
        self._app_finished = app_finished
        self._app_transfer = app_transfer
        self._ivr_plan: ivr.IvrPlan | None = None
        self._ivrs: dict[int, _IvrSession] = {}
        config = appliance.config
        self.language = config.ivr.language or get_profile(config.system.country).language
        self._sessions: dict[int, _Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._beep = beep().astype("<i2").tobytes()
        self.waiting: dict[str, int] = {}  # box -> new messages, as the MWI last said
        self.rooms = room.RoomDirectory(config.conference)
        # The conferences the API lists (conference.*); ponte run shares ControlApi's.
        self.conferences = ConferenceRegistry()
        self._rooms: dict[int, _RoomSession] = {}
        store.subscribe(self._mwi_threadsafe)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Message-waiting state as the store has it now (dial tones; no FSK at start)."""
        for box, new in self.store.mwi_state().items():
            self._set_waiting(box, new, send=False)

    async def stop(self) -> None:
        for port in list(self._sessions):
            self._close(port)
        for port in list(self._rooms):
            self._room_event(port, room.HangUp())
        for port in list(self._ivrs):
            self._close_ivr(port)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _media(self, port: int) -> PortMedia | None:
        """The media loop of a line, or of an application port (a SIP caller's)."""
        return self._app.media.get(port) or self._app.app_ports.get(port)

    # --- from call control ----------------------------------------------------------------

    def handle(self, command: AppCommand) -> None:
        match command:
            case StartApp(port=port, app=JoinConference(room=number)):
                self._start_room(port, number)
            case StartApp(port=port, app=RunIvr()):
                self._start_ivr(port)
            case StopApp(port=port) if port in self._ivrs:
                self._close_ivr(port)
            case AppDigit(port=port, digit=digit) if port in self._ivrs:
                self._ivr_carry(port, lambda s, now: s.digit(digit, now))
            case StartApp(port=port, app=LeaveMessage() | CheckMailbox() as app):
                self._start(port, app)
            case StopApp(port=port) if port in self._rooms:
                self._room_event(port, room.HangUp())
            case AppDigit(port=port, digit=digit) if port in self._rooms:
                if digit in room.DIGITS:
                    self._room_event(port, room.Digit(digit))
            case StopApp(port=port):
                session = self._sessions.get(port)
                if session is not None:
                    self._feed(session, vm.CallerHungUp())
                    self._close(port)
            case AppDigit(port=port, digit=digit):
                session = self._sessions.get(port)
                if session is not None and digit in vm.DTMF_DIGITS:
                    self._feed(session, vm.Digit(digit))

    def _start(self, port: int, app: LeaveMessage | CheckMailbox) -> None:
        media = self._media(port)
        if media is None:
            log.error("port %d: no media loop for %s", port, app)
            self._app_finished(port)
            return
        if port in self._sessions:
            self._close(port)
        machine: vm.LeaveMessage | vm.MailboxMenu
        if isinstance(app, LeaveMessage):
            counts = self.store.counts(app.box)
            machine = vm.LeaveMessage(
                app.box,
                has_greeting=self.store.greeting_path(app.box) is not None,
                has_busy_greeting=self.store.greeting_path(app.box, "busy") is not None,
                full=counts.total >= self.store.settings.max_messages,
                reason=app.reason,
            )
        else:
            pin = self._pin(app.box)
            machine = vm.MailboxMenu(app.box, skip_pin=not pin)

        def drained(seq: int) -> None:
            self._loop.call_soon_threadsafe(self._drained, port, seq)

        link = AppLink(media.stream.fmt.bytes_per_frame, drained)
        session = _Session(port, machine, link, app)
        self._sessions[port] = session
        media.app = link
        log.info("port %d: %s started", port, type(machine).__name__)
        self._carry(session, machine.start(time.monotonic()))

    def _pin(self, box: str) -> str:
        config = self._app.config
        assert config is not None
        for e in config.extensions:
            if e.number == box:
                return e.voicemail_pin
        return ""

    def _close(self, port: int) -> None:
        session = self._sessions.pop(port, None)
        if session is None:
            return
        session.over = True
        media = self._media(port)
        if media is not None and media.app is session.link:
            media.app = None
        session.link.stop_playback()
        session.link.record_to(None)
        if session.sink is not None:
            sink, session.sink = session.sink, None
            # The caller hung up mid-message: what was said is kept (docs/voicemail.md).
            self._spawn(self._finish_recording(sink, keep=True), "finishing a recording")
        log.info("port %d: %s ended", port, type(session.machine).__name__)

    # --- the machine ----------------------------------------------------------------------

    def _feed(self, session: _Session, event: vm.Event) -> None:
        try:
            commands = session.machine.handle(event, time.monotonic())
        except vm.MenuMisuse:
            log.exception("port %d: voicemail refused %s", session.port, event)
            return
        self._carry(session, commands)

    def _drained(self, port: int, seq: int) -> None:
        if port in self._ivrs:
            self._ivr_carry(port, lambda s, now: s.prompt_finished(seq, now))
            return
        if port in self._rooms:
            if seq == DISCONNECT_SEQ:
                self._close_room(port)
                self._app_finished(port)
            return
        session = self._sessions.get(port)
        if session is not None:
            self._feed(session, vm.PlayFinished(seq))

    def _carry(self, session: _Session, commands: list[vm.Command]) -> None:
        for command in commands:
            try:
                self._one(session, command)
            except Exception:
                log.exception("port %d: voicemail command %s failed", session.port, command)
        self._schedule()

    def _one(self, session: _Session, command: vm.Command) -> None:
        port = session.port
        match command:
            case vm.Play(seq=seq, items=items):
                session.link.play(self._render(items), seq)
            case vm.StopPlayback():
                session.link.stop_playback()
            case vm.StartRecording(kind=kind, box=box):
                self._start_recording(session, kind, box)
            case vm.StopRecording(keep=keep):
                session.link.record_to(None)
                sink, session.sink = session.sink, None
                if sink is not None:
                    self._spawn(self._finish_recording(sink, keep), "finishing a recording")
            case vm.ChangePin():
                self._spawn(self._change_pin(session, command), "changing a PIN")
            case vm.CheckPin() | vm.LoadMessages() | vm.MarkSaved() | vm.DeleteMessage():
                self._spawn(self._store_command(session, command), f"voicemail {command}")
            case vm.HangUp():
                self._close(port)
                self._app_finished(port)

    def _render(self, items: tuple[vm.PlayItem, ...]) -> bytes:
        parts: list[bytes] = []
        for item in items:
            match item:
                case vm.Prompt(name=name):
                    pcm = self.prompts.get(name, self.language).pcm
                    parts.append(pcm.astype("<i2").tobytes())
                case vm.Beep():
                    parts.append(self._beep)
                case vm.MessageAudio(box=box, message_id=mid):
                    parts.append(self._wav(self.store.path_of(box, mid)))
                case vm.GreetingAudio(box=box, kind=kind):
                    path = self.store.greeting_path(box, kind)
                    if path is not None:
                        parts.append(self._wav(path))
        return b"".join(parts)

    def _wav(self, path: object) -> bytes:
        try:
            with open(str(path), "rb") as f:
                audio = read_wav(f.read())
        except (OSError, WavError) as exc:
            log.error("voicemail: cannot play %s: %s", path, exc)
            return b""
        return bytes(audio.pcm.astype("<i2").tobytes())

    def _start_recording(self, session: _Session, kind: str, box: str) -> None:
        app = session.app
        try:
            if kind == "message":
                number = app.caller_number if isinstance(app, LeaveMessage) else ""
                name = app.caller_name if isinstance(app, LeaveMessage) else ""
                recording = self.store.begin_message(box, number, name)
            else:
                greeting: GreetingKind = "busy" if kind == "busy-greeting" else "unavailable"
                recording = self.store.begin_greeting(box, kind=greeting)
        except (MailboxFull, VoicemailError, OSError) as exc:
            log.warning("port %d: cannot record for box %s: %s", session.port, box, exc)
            self._loop.call_soon(self._feed, session, vm.RecordingEnded("refused"))
            return
        port = session.port

        def ended(reason: str) -> None:
            why: vm.RecordingEndReason = "cap" if reason == "cap" else "error"
            self._loop.call_soon_threadsafe(self._recording_ended, port, why)

        sink = RecordingSink(recording, ended)
        session.sink = sink
        session.link.record_to(sink.heard)
        log.info("port %d: recording a %s for box %s", port, kind, box)

    def _recording_ended(self, port: int, reason: vm.RecordingEndReason) -> None:
        session = self._sessions.get(port)
        if session is not None:
            self._feed(session, vm.RecordingEnded(reason))

    async def _finish_recording(self, sink: RecordingSink, keep: bool) -> None:
        info = await asyncio.to_thread(sink.stop, keep)
        if info is not None:
            log.info("voicemail: message %s stored in box %s", info.id, info.box)

    async def _store_command(self, session: _Session, command: vm.Command) -> None:
        expected = self._pin(command.box) if isinstance(command, vm.CheckPin) else ""
        event = await asyncio.to_thread(
            vm.run_store_command, self.store, command, expected_pin=expected
        )
        if event is not None and not session.over:
            self._feed(session, event)

    async def _change_pin(self, session: _Session, command: vm.ChangePin) -> None:
        config = self._app.store
        if config is None:
            result = vm.PinChanged(False)
        else:
            result = await asyncio.to_thread(vm.save_pin, config, command)
        if not session.over:
            self._feed(session, result)

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("voicemail: %s failed", what, exc_info=t.exception())

        task.add_done_callback(done)

    # --- the IVR ---------------------------------------------------------------------------

    def _start_ivr(self, port: int) -> None:
        media = self._media(port)
        config = self._app.config
        if media is None or config is None:
            self._app_finished(port)
            return
        if self._ivr_plan is None:
            self._ivr_plan = ivr.IvrPlan.from_config(config)

        def drained(seq: int) -> None:
            self._loop.call_soon_threadsafe(self._drained, port, seq)

        link = AppLink(media.stream.fmt.bytes_per_frame, drained)
        self._ivrs[port] = _IvrSession(port, self._ivr_plan.session(), link)
        media.app = link
        log.info("port %d: IVR started", port)
        self._ivr_carry(port, lambda s, now: s.start(now, dt.datetime.now(dt.UTC)))

    def _ivr_carry(
        self, port: int, step: Callable[[ivr.IvrSession, int], list[ivr.IvrCommand]]
    ) -> None:
        entry = self._ivrs.get(port)
        if entry is None:
            return
        try:
            commands = step(entry.session, int(time.monotonic() * 1000))
        except (ivr.IvrMisuse, ivr.BadDigit) as exc:
            log.info("port %d: IVR ignored an event: %s", port, exc)
            commands = []
        for command in commands:
            match command:
                case ivr.PlayPrompts(play_id=play_id, names=names, language=language):
                    pcm = self.prompts.sequence(names, language).astype("<i2").tobytes()
                    entry.link.play(pcm, play_id)
                case ivr.StopPrompt():
                    entry.link.stop_playback()
                case ivr.Transfer(destination=target, menu=menu):
                    log.info("port %d: IVR menu %r transfers to %s", port, menu, target)
                    self._close_ivr(port)
                    if self._app_transfer is not None:
                        self._app_transfer(port, target)
                case ivr.HangUp(reason=reason):
                    log.info("port %d: IVR hangs up (%s)", port, reason)
                    self._close_ivr(port)
                    self._app_finished(port)
        self._schedule()

    def _close_ivr(self, port: int) -> None:
        entry = self._ivrs.pop(port, None)
        if entry is None:
            return
        entry.session.stop()
        media = self._media(port)
        if media is not None and media.app is entry.link:
            media.app = None
        entry.link.stop_playback()

    # --- conference rooms -----------------------------------------------------------------

    def _start_room(self, port: int, number: str) -> None:
        media = self._media(port)
        if media is None or self.rooms.room(number) is None:
            log.error("port %d: cannot join conference room %s", port, number)
            self._app_finished(port)
            return

        def drained(seq: int) -> None:
            self._loop.call_soon_threadsafe(self._drained, port, seq)

        session = _RoomSession(
            port,
            room.RoomCaller(self.rooms, number),
            AppLink(media.stream.fmt.bytes_per_frame, drained),
        )
        self._rooms[port] = session
        media.app = session.link
        log.info("port %d: dialled conference room %s", port, number)
        self._room_carry(session, session.caller.start(time.monotonic()))

    def _room_event(self, port: int, event: room.Event) -> None:
        session = self._rooms.get(port)
        if session is None or session.over:
            return
        try:
            commands = session.caller.handle(event, time.monotonic())
        except room.ConferenceProtocolError:
            log.info("port %d: conference room ignored %s", port, event)
            commands = []
        self._room_carry(session, commands)
        if isinstance(event, room.HangUp):
            self._close_room(port)

    def _room_carry(self, session: _RoomSession, commands: list[room.Command]) -> None:
        port = session.port
        for command in commands:
            match command:
                case room.PlayPrompt(name=name):
                    pcm = self.prompts.get(name, self.language).pcm.astype("<i2").tobytes()
                    if session.seat is not None:
                        try:
                            session.seat.send_pcm(pcm)
                        except ConferenceError as exc:
                            log.warning("port %d: prompt %s not played: %s", port, name, exc)
                    else:
                        session.link.append(pcm)
                case room.JoinRoom(room=number):
                    self._join(session, number)
                case room.LeaveRoom():
                    self._leave(session)
                case room.SetMute(muted=muted):
                    if session.conference is not None:
                        session.conference.mute(port, muted)
                        log.info("port %d: %s in room", port, "muted" if muted else "unmuted")
                case room.Disconnect(reason=reason):
                    log.info("port %d: cleared from the conference room (%s)", port, reason)
                    session.link.notify_when_drained(DISCONNECT_SEQ)
        self._schedule()

    def _join(self, session: _RoomSession, number: str) -> None:
        media = self._media(session.port)
        config = self.rooms.room(number)
        if media is None or config is None:
            return
        conference = self.conferences.get(number)
        if conference is None:
            conference = Conference(
                media.stream.fmt.bytes_per_frame,
                max_participants=config.max_participants,
                name=config.name or number,
            )
            self.conferences.add(number, conference)
        session.conference = conference
        session.seat = conference.seat(session.port)
        session.link.stop_playback()
        media.app = session.seat
        log.info(
            "port %d: joined conference room %s (%d in it)", session.port, number, len(conference)
        )

    def _leave(self, session: _RoomSession) -> None:
        seat, conference = session.seat, session.conference
        session.seat = session.conference = None
        media = self._media(session.port)
        if media is not None and seat is not None and media.app is seat:
            media.app = None
        if seat is not None:
            seat.leave()
        if conference is not None:
            log.info("port %d: left conference room %s", session.port, conference.name)
            if len(conference) == 0:
                for name, c in self.conferences.items():
                    if c is conference:
                        self.conferences.remove(name)

    def _close_room(self, port: int) -> None:
        session = self._rooms.pop(port, None)
        if session is None:
            return
        session.over = True
        if session.seat is not None:
            self.rooms.release(session.caller.room.number)
            self._leave(session)
        media = self._media(port)
        if media is not None and media.app is session.link:
            media.app = None
        session.link.stop_playback()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [
            d for s in self._sessions.values() if (d := s.machine.next_deadline) is not None
        ] + [d for r in self._rooms.values() if (d := r.caller.timer()) is not None]
        deadlines += [
            d / 1000 for i in self._ivrs.values() if (d := i.session.next_deadline()) is not None
        ]
        if deadlines:
            delay = max(min(deadlines) - time.monotonic(), 0.0)
            self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = time.monotonic()
        for session in list(self._sessions.values()):
            deadline = session.machine.next_deadline
            if deadline is not None and deadline <= now:
                self._carry(session, session.machine.handle_timer(now))
        for entry in list(self._ivrs.values()):
            due_ms = entry.session.next_deadline()
            if due_ms is not None and due_ms <= now * 1000:
                self._ivr_carry(entry.port, lambda s, t: s.handle_timer(t))
        for caller in list(self._rooms.values()):
            due = caller.caller.timer()
            if due is not None and due <= now and not caller.over:
                self._room_carry(caller, caller.caller.handle_timer(now))
        self._schedule()

    # --- message waiting ------------------------------------------------------------------

    def _mwi_threadsafe(self, event: MwiChanged) -> None:
        self._loop.call_soon_threadsafe(self._mwi, event)

    def _mwi(self, event: MwiChanged) -> None:
        log.info(
            "voicemail box %s: %d new (message waiting %s)",
            event.extension,
            event.new_count,
            "on" if event.waiting else "off",
        )
        self._set_waiting(event.extension, event.new_count, send=True)

    def _set_waiting(self, box: str, new: int, *, send: bool) -> None:
        self.waiting[box] = new
        calls = self._app.calls
        config = self._app.config
        if calls is None or config is None:
            return
        lines = config.lines.fxs
        for info in calls.control.ports.values():
            if info.kind != "fxs" or info.index >= len(lines):
                continue
            if lines[info.index].extension != box:
                continue
            controller = self._app.ports.get(info.port)
            if controller is None:
                continue
            controller.message_waiting = new > 0
            if not send or self._app.cid_tx is None:
                continue
            on_hook = getattr(controller.machine, "hook_on", True)
            if not on_hook:
                continue  # the burst is an on-hook signal; the dial tone says it meanwhile
            try:
                self._app.cid_tx.message_waiting(info.port, new > 0, new)
                log.info("port %d: message waiting %s queued", info.port, "on" if new else "off")
            except KeyError:
                log.info("port %d: no visual message waiting on this line", info.port)
