"""Conferences on the media threads: a seat per participant, the same contract as CrossConnect.

A port (or a SIP leg's media port) in a conference talks to a :class:`Seat` exactly as it
talks to a :class:`~firmware.service.crossconnect.CrossConnect` in a two-party call: once a
frame its media thread calls ``seat.heard(frame)`` with what the line produced, then
``seat.next_frame()`` for what to play (``None``: play silence).  So the service turns a
call into a conference by swapping ``PortMedia.link`` from a CrossConnect to a Seat; the
3-way call of a hook flash is a :class:`Conference` of three.

Who mixes: nobody owns the conference's clock.  Each seat counts its ``next_frame`` calls;
the first seat in a tick to ask for a frame the conference has not mixed yet runs the
round (one frame from every inbox, ``firmware.dsp.mixer.Mixer.mix``) and hands every seat
its frame.  Line ports all run on the card's PCM clock, so rounds happen once per 20 ms;
the inboxes (primed with silence) absorb the phase between threads, the per-seat outboxes
(``OUTBOX_FRAMES``) a thread that wakes late.  A SIP leg runs on pjmedia's clock: its
drift buffer (drivers.audio.DriftBuffer) sits between pjmedia and its seat, fed and
drained at the card's rate, as for a two-party call.

Threading: ``heard``/``next_frame`` run on the media threads; everything else
(``Conference.seat``, ``Seat.leave``, ``mute``, ``send_pcm``, ``view``) on the event loop.
One lock guards the mixer; it is held for one push or one round (tens of microseconds,
bench_conference), never for I/O, so a media thread never waits on slow code.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final

import numpy as np

from firmware.dsp.mixer import JITTER_FRAMES, MAX_PARTICIPANTS, Mixer, MixerError
from firmware.dsp.pcm import Pcm

OUTBOX_FRAMES: Final = JITTER_FRAMES  # mixed frames waiting for a seat's thread, 100 ms
MAX_SEND_FRAMES: Final = 500  # 10 s of prompt queued for one seat (CrossConnect's cap)


class ConferenceError(MixerError):
    """We broke it: a bad frame size, a seat used after it left, a full conference."""


@dataclass(frozen=True, slots=True)
class SeatView:
    participant: str
    muted: bool
    frames_in: int
    missing: int
    overruns: int
    underruns: int

    def to_json(self) -> dict[str, str | int | bool]:
        return {
            "participant": self.participant,
            "muted": self.muted,
            "frames_in": self.frames_in,
            "missing": self.missing,
            "overruns": self.overruns,
            "underruns": self.underruns,
        }


class Conference:
    """One mixing conference; ``seat(pid)`` adds a participant."""

    def __init__(
        self,
        frame_bytes: int,
        *,
        rate: int = 8000,
        max_participants: int = MAX_PARTICIPANTS,
        cues: bool = True,
        name: str = "",
    ) -> None:
        if frame_bytes <= 0 or frame_bytes % 2:
            raise ConferenceError(f"frame of {frame_bytes} bytes is not 16-bit PCM")
        self.name = name
        self.frame_bytes = frame_bytes
        self._mixer = Mixer(
            frame_samples=frame_bytes // 2, rate=rate, max_participants=max_participants, cues=cues
        )
        self._lock = threading.Lock()
        self._seats: dict[Hashable, Seat] = {}
        # Called with what the whole room sounded like, once a round, on a media thread
        # (a recorder's non-blocking write); None: nobody records.
        self.on_round: Callable[[Pcm], None] | None = None

    # --- event loop ----------------------------------------------------------------------

    def seat(self, pid: Hashable) -> Seat:
        with self._lock:
            self._mixer.join(pid)
            seat = Seat(self, pid, self._mixer.rounds)
            self._seats[pid] = seat
        return seat

    def mute(self, pid: Hashable, muted: bool = True) -> None:
        with self._lock:
            self._mixer.mute(pid, muted)

    def muted(self, pid: Hashable) -> bool:
        with self._lock:
            return self._mixer.muted(pid)

    def __len__(self) -> int:
        return len(self._seats)

    @property
    def participants(self) -> tuple[Hashable, ...]:
        return tuple(self._seats)

    @property
    def max_participants(self) -> int:
        return self._mixer.max_participants

    @property
    def rounds(self) -> int:
        return self._mixer.rounds

    def view(self) -> tuple[SeatView, ...]:
        with self._lock:
            out = []
            for pid, seat in self._seats.items():
                st = self._mixer.stats(pid)
                out.append(
                    SeatView(
                        str(pid),
                        self._mixer.muted(pid),
                        st.frames_in,
                        st.missing,
                        st.overruns + seat.overruns,
                        seat.underruns,
                    )
                )
        return tuple(out)

    def _leave(self, seat: Seat) -> None:
        with self._lock:
            if self._seats.get(seat.pid) is seat:
                del self._seats[seat.pid]
                self._mixer.leave(seat.pid)

    # --- media threads -------------------------------------------------------------------

    def _push(self, seat: Seat, frame: bytes) -> None:
        if len(frame) != self.frame_bytes:
            raise ConferenceError(f"frame of {len(frame)} bytes; expected {self.frame_bytes}")
        pcm = np.frombuffer(frame, dtype="<i2").astype(np.int16, copy=False)
        with self._lock:
            if seat.pid in self._mixer and self._seats.get(seat.pid) is seat:
                self._mixer.push(seat.pid, pcm)

    def _tick(self, seat: Seat) -> None:
        """``seat`` asks for its frame of tick ``seat.calls``: mix the round if it is new."""
        room: Pcm | None = None
        with self._lock:
            if self._seats.get(seat.pid) is not seat or seat.calls <= self._mixer.rounds:
                return
            heard = self._mixer.mix()
            for pid, pcm in heard.items():
                self._seats[pid]._deliver(pcm.tobytes())
            if self.on_round is not None:
                room = self._mixer.last_room
        if room is not None and self.on_round is not None:
            self.on_round(room)


class Seat:
    """One participant's end of a conference: what ``PortMedia`` calls each frame."""

    def __init__(self, conference: Conference, pid: Hashable, rounds: int) -> None:
        self.conference = conference
        self.pid = pid
        self.frame_bytes = conference.frame_bytes
        self.calls = rounds  # next_frame calls, counted from the round the seat joined at
        self._outbox: deque[bytes] = deque(maxlen=OUTBOX_FRAMES)
        self._send: deque[bytes] = deque()
        self.left = False
        self.frames_passed = 0
        self.overruns = 0
        self.underruns = 0

    def leave(self) -> None:
        """Leave the conference (event loop); later calls from a media thread play silence."""
        self.left = True
        self.conference._leave(self)
        self._outbox.clear()

    def send_pcm(self, pcm: bytes) -> int:
        """Queue a prompt (16-bit LE) for this participant only; played before the room."""
        if len(pcm) % 2:
            raise ConferenceError(f"PCM of {len(pcm)} bytes is not whole 16-bit samples")
        frames = [
            pcm[i : i + self.frame_bytes].ljust(self.frame_bytes, b"\0")
            for i in range(0, len(pcm), self.frame_bytes)
        ]
        if len(self._send) + len(frames) > MAX_SEND_FRAMES:
            raise ConferenceError(
                f"{len(frames)} frames would overfill the send queue ({MAX_SEND_FRAMES})"
            )
        self._send.extend(frames)
        return len(frames)

    @property
    def sending(self) -> bool:
        return bool(self._send)

    def _deliver(self, frame: bytes) -> None:
        if len(self._outbox) == self._outbox.maxlen:
            self.overruns += 1
        self._outbox.append(frame)

    # --- media thread --------------------------------------------------------------------

    def heard(self, frame: bytes) -> None:
        """This participant's line produced ``frame``: it goes into the next round."""
        if not self.left:
            self.conference._push(self, frame)

    def next_frame(self) -> bytes | None:
        """What this participant hears now; None: nothing (the loop plays silence)."""
        if self.left:
            return None
        self.calls += 1
        self.conference._tick(self)
        if self._send:
            try:
                frame = self._send.popleft()
            except IndexError:
                pass
            else:
                # The room goes on while a prompt plays; its frame is dropped, not delayed.
                with contextlib.suppress(IndexError):
                    self._outbox.popleft()
                return frame
        try:
            frame = self._outbox.popleft()
        except IndexError:
            self.underruns += 1
            return None
        self.frames_passed += 1
        return frame


class ConferenceRegistry:
    """The live conferences by name (room number, or a call's own 3-way), for the API."""

    def __init__(self) -> None:
        self._rooms: dict[str, Conference] = {}

    def add(self, name: str, conference: Conference) -> None:
        if name in self._rooms:
            raise ConferenceError(f"a conference named {name!r} is already running")
        self._rooms[name] = conference

    def get(self, name: str) -> Conference | None:
        return self._rooms.get(name)

    def remove(self, name: str) -> None:
        self._rooms.pop(name, None)

    def items(self) -> list[tuple[str, Conference]]:
        return sorted(self._rooms.items())
