"""Queue callers in the running appliance: announcement, music on hold, their position.

Call control (:mod:`firmware.pbx.calls` with :mod:`firmware.pbx.groups`) answers a queue's
caller and sends ``StartApp(port, WaitInQueue(queue))``; this module plugs a
:class:`HoldLink` into the port's media loop (``PortMedia.app``) that plays the queue's
``announce`` prompt, then its music on hold in a loop; ``AnnouncePosition`` commands put
"you are caller number N" in front of the music, which resumes where it paused.
``StopApp`` (an agent answered, the caller hung up or overflowed) takes the link out.

The music is cut into frames once per queue and shared by every caller of that queue: a
caller costs one list index (or one deque pop while something is spoken) per 20 ms frame on
its port's media thread (bench/bench_queue.py).  The built-in music
(:func:`firmware.dsp.moh.music_on_hold`) is synthesized at start, so it is never missing;
a queue's ``music_on_hold`` WAV that cannot be read is logged and replaced by it.

``queues.list`` (control API) shows each queue, its logged-in agents and its callers.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from firmware.api.core import CallContext
from firmware.api.protocol import JsonValue
from firmware.api.schema import NoParams
from firmware.dsp.moh import music_on_hold
from firmware.dsp.pcm import SAMPLE_RATE
from firmware.dsp.profiles import get_profile
from firmware.dsp.wavio import WavError, read_wav, resample
from firmware.pbx.apps import AppCommand, StartApp, StopApp, WaitInQueue
from firmware.pbx.groups import AnnouncePosition
from firmware.prompts.library import PromptLibrary
from firmware.prompts.speech import say_number
from firmware.store.schema import Config, Queue

if TYPE_CHECKING:
    from firmware.api.server import ApiServer
    from firmware.service.calls import LocalCalls
    from firmware.service.media import PortMedia

log = logging.getLogger(__name__)

# Longest music file kept in memory: 10 minutes of 8 kHz 16-bit PCM is 9.6 MB; a loop of
# a few minutes is what hold music is.
MAX_MUSIC_S: Final = 600
# What may be spoken ahead of the music at once: the announcement and one position
# (prompts are a few seconds); 60 s of 20 ms frames.
MAX_SPOKEN_FRAMES: Final = 60 * 50
POSITION_PROMPT: Final = "queue-position"  # "You are caller number" (catalogue.toml)


class HoldLink:
    """A waiting caller's end of its line's audio: the media-link contract of CrossConnect.

    ``next_frame``/``heard`` run on the port's media thread; ``say`` on the event loop.  The
    spoken frames are a deque (append and popleft are atomic under the GIL); the music is a
    shared, read-only list of frames with a cursor of this caller's own.
    """

    def __init__(self, music: Sequence[bytes], frame_bytes: int) -> None:
        if not music:
            raise ValueError("music on hold needs at least one frame")
        self.frame_bytes = frame_bytes
        self._music = music
        self._at = 0
        self._spoken: deque[bytes] = deque()
        self.frames_played = 0

    def say(self, pcm: bytes) -> None:
        """Speak ``pcm`` before the music goes on (cut at MAX_SPOKEN_FRAMES queued)."""
        fb = self.frame_bytes
        room = MAX_SPOKEN_FRAMES - len(self._spoken)
        frames = [pcm[i : i + fb].ljust(fb, b"\0") for i in range(0, len(pcm), fb)]
        if len(frames) > room:
            log.warning("queue announcement of %d frames cut to %d", len(frames), room)
        self._spoken.extend(frames[: max(room, 0)])

    @property
    def speaking(self) -> bool:
        return bool(self._spoken)

    # --- media thread ---------------------------------------------------------------------

    def heard(self, frame: bytes) -> None:
        """What the caller says while waiting goes nowhere."""

    def next_frame(self) -> bytes:
        self.frames_played += 1
        try:
            return self._spoken.popleft()
        except IndexError:
            pass
        music = self._music
        at = self._at
        self._at = at + 1 if at + 1 < len(music) else 0
        return music[at]


@dataclass(slots=True)
class _Waiting:
    port: int
    queue: str
    link: HoldLink
    since: float  # time.monotonic()


def music_frames(pcm: bytes, frame_bytes: int) -> list[bytes]:
    usable = len(pcm) - len(pcm) % frame_bytes
    return [pcm[i : i + frame_bytes] for i in range(0, usable, frame_bytes)]


class QueueMedia:
    """The waiting callers of one appliance.  Event loop only (but for the links)."""

    def __init__(
        self,
        media: Callable[[int], PortMedia | None],
        prompts: PromptLibrary,
        config: Config,
    ) -> None:
        self._media = media
        self.prompts = prompts
        self._music: dict[tuple[str, int], list[bytes]] = {}  # (file or "", frame) -> frames
        self._spoken: dict[tuple[str, int], bytes] = {}  # (what, n) -> pcm, bounded by config
        self.waiting: dict[int, _Waiting] = {}
        self.queues: dict[str, Queue] = {}
        self.language = ""
        self.configure(config)

    def configure(self, config: Config) -> None:
        self.queues = {q.number: q for q in config.queues}
        self.language = config.ivr.language or get_profile(config.system.country).language
        self._spoken.clear()
        files = {q.music_on_hold for q in config.queues}
        self._music = {k: v for k, v in self._music.items() if k[0] in files}

    # --- from call control ----------------------------------------------------------------

    def takes(self, command: AppCommand) -> bool:
        if isinstance(command, StartApp):
            return isinstance(command.app, WaitInQueue)
        return isinstance(command, StopApp) and command.port in self.waiting

    def handle(self, command: AppCommand) -> None:
        match command:
            case StartApp(port=port, app=WaitInQueue(queue=number)):
                self._start(port, number)
            case StopApp(port=port):
                self._stop(port)

    def announce(self, command: AnnouncePosition) -> None:
        entry = self.waiting.get(command.port)
        if entry is None:
            return
        key = ("position", command.position)
        pcm = self._spoken.get(key)
        if pcm is None:
            names = (POSITION_PROMPT, *say_number(command.position))
            pcm = self.prompts.sequence(names, self.language).astype("<i2").tobytes()
            self._spoken[key] = pcm
        entry.link.say(pcm)
        log.info(
            "port %d: caller number %d in queue %s", command.port, command.position, entry.queue
        )

    def stop(self) -> None:
        for port in list(self.waiting):
            self._stop(port)

    # --- the links ------------------------------------------------------------------------

    def _start(self, port: int, number: str) -> None:
        media = self._media(port)
        queue = self.queues.get(number)
        if media is None or queue is None:
            log.error("port %d: cannot wait in queue %s (no media loop or queue)", port, number)
            return
        if port in self.waiting:
            self._stop(port)
        frame_bytes = media.stream.fmt.bytes_per_frame
        link = HoldLink(self.music(queue, frame_bytes), frame_bytes)
        if queue.announce:
            key = (queue.announce, 0)
            pcm = self._spoken.get(key)
            if pcm is None:
                pcm = self.prompts.get(queue.announce, self.language).pcm.astype("<i2").tobytes()
                self._spoken[key] = pcm
            link.say(pcm)
        self.waiting[port] = _Waiting(port, number, link, time.monotonic())
        media.app = link
        log.info("port %d: waiting in queue %s with music on hold", port, number)

    def _stop(self, port: int) -> None:
        entry = self.waiting.pop(port, None)
        if entry is None:
            return
        media = self._media(port)
        if media is not None and media.app is entry.link:
            media.app = None
        log.info(
            "port %d: left queue %s after %d frames of hold audio",
            port,
            entry.queue,
            entry.link.frames_played,
        )

    def music(self, queue: Queue, frame_bytes: int) -> list[bytes]:
        """The queue's music as frames, cut once and shared by its callers."""
        key = (queue.music_on_hold, frame_bytes)
        frames = self._music.get(key)
        if frames is None:
            frames = music_frames(self._load(queue), frame_bytes)
            if not frames:
                frames = music_frames(music_on_hold().astype("<i2").tobytes(), frame_bytes)
            self._music[key] = frames
        return frames

    def _load(self, queue: Queue) -> bytes:
        path = queue.music_on_hold
        if path:
            try:
                audio = read_wav(Path(path).read_bytes())
                if audio.seconds > MAX_MUSIC_S:
                    raise WavError(f"{audio.seconds:.0f} s is longer than {MAX_MUSIC_S} s")
                pcm = (
                    audio.pcm
                    if audio.rate == SAMPLE_RATE
                    else resample(audio.pcm, audio.rate, SAMPLE_RATE)
                )
                return bytes(pcm.astype("<i2").tobytes())
            except (OSError, WavError) as exc:
                log.error(
                    "queue %s: music on hold %s unusable (%s); playing the built-in music",
                    queue.number,
                    path,
                    exc,
                )
        return bytes(music_on_hold().astype("<i2").tobytes())


# --- control API --------------------------------------------------------------------------


def register_queues_api(server: ApiServer, calls: Callable[[], LocalCalls | None]) -> None:
    async def queues_list(params: NoParams, ctx: CallContext) -> JsonValue:
        """Each queue with its agents and the callers waiting in it, first in line first."""
        local = calls()
        if local is None:
            return {"queues": []}
        groups = local.control.groups
        now_ms = int(time.monotonic() * 1000)
        waiting = groups.waiting()
        out: list[JsonValue] = []
        for number, queue in groups.queues.items():
            callers: list[JsonValue] = [
                {
                    "position": w.position,
                    "caller": w.caller,
                    "waited_s": round(max(0, now_ms - w.since) / 1000, 1),
                    "ringing": list(w.ringing),
                }
                for w in waiting
                if w.queue == number
            ]
            out.append(
                {
                    "number": number,
                    "name": queue.name,
                    "strategy": queue.strategy,
                    "members": list(queue.members),
                    "agents": [m for m in queue.members if m in groups.agents],
                    "waiting": callers,
                }
            )
        return {"queues": out}

    server.register(
        "queues.list",
        queues_list,
        NoParams,
        result="{queues: [{number, name, strategy, members, agents (logged in), "
        "waiting: [{position, caller, waited_s, ringing}]}]}",
        summary="Call queues: the agents logged in and the callers waiting, in order",
    )
