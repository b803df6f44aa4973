"""N-party conference mixing (N-1 mixes), sans-IO: frames in per participant, frames out.

Each participant hears the sum of everyone else; a muted participant still hears the room
but nobody hears them.  The sum is taken in 32 bits and saturated to 16 bits once, at the
end (never wrapped): ``mix = clip(total - own)``.  Computing the total once and taking each
participant's own frame back out makes a round O(N) instead of the O(N^2) of summing N-1
frames per listener (bench_conference measures it).

Join and leave cues are once-only tones (``JOIN_TONE_PLAN``/``LEAVE_TONE_PLAN``) added on
top of every participant's mix, frame by frame, until they are played out.

Jitter: every participant has an inbox of at most ``JITTER_FRAMES`` frames, primed with
``PREFILL_FRAMES`` of silence when they join (the same numbers, for the same reason, as
``firmware.service.crossconnect``: line ports share the card's clock, so only the phase
between their threads varies).  A round takes one frame from each inbox; an empty inbox
means that participant contributes silence this round (counted in ``missing``), a full one
drops its oldest frame (counted in ``overruns``).

Pure: no threads, no clock.  ``firmware.service.conference`` is the thread-safe shell the
media loops talk to.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from firmware.dsp.pcm import FRAME_SAMPLES, INT16_MAX, INT16_MIN, SAMPLE_RATE, Pcm
from firmware.dsp.tones import ToneSpec, render

JITTER_FRAMES: Final = 5  # 100 ms cap per participant, as CrossConnect's hand-off queue
PREFILL_FRAMES: Final = 2  # 40 ms in hand; CrossConnect measured one frame as too few
# The mixer's own cap; rooms are limited further by the SIP bridge and the ports
# (firmware.store.validate checks conference rooms against both).
MAX_PARTICIPANTS: Final = 32
MAX_PENDING_CUES: Final = 8  # joins/leaves in one burst beyond this are not announced

# No standard defines conference cues.  A rising two-note cue for a join and the same notes
# falling for a leave tell the two apart without words; both notes sit below the DTMF low
# group (697 Hz, ITU-T Q.23) so a cue can never be taken for a digit by a participant's
# DTMF receiver, and far from the 2100 Hz answer tone (ITU-T V.25) that disables echo
# cancellers.  120 ms a note is long enough to hear, short enough not to cover speech.
JOIN_TONE_PLAN: Final = "!440/120,!660/120"
LEAVE_TONE_PLAN: Final = "!660/120,!440/120"
# Per component: 6 dB under a nominal -10 dBm0 speech talker, so the cue is clear but
# never louder than the people it interrupts.
CUE_LEVEL_DBM0: Final = -16.0


class MixerError(ValueError):
    """We broke it: a bad frame, an unknown or duplicate participant, a full room."""


@dataclass(slots=True)
class ParticipantStats:
    frames_in: int = 0
    missing: int = 0  # rounds in which this participant had no frame (played as silence)
    overruns: int = 0  # frames dropped because the inbox was full


def cue_pcm(plan: str, rate: int = SAMPLE_RATE) -> Pcm:
    """The whole cue rendered once (it is short; see ``JOIN_TONE_PLAN``)."""
    spec = ToneSpec.parse(plan, CUE_LEVEL_DBM0, name="conference cue")
    assert spec.duration_ms is not None  # once-only plans have a length
    return render(spec, spec.duration_ms, rate)


class _Participant:
    __slots__ = ("inbox", "muted", "stats")

    def __init__(self, frame_samples: int) -> None:
        silence = np.zeros(frame_samples, dtype=np.int16)
        self.inbox: deque[Pcm] = deque([silence] * PREFILL_FRAMES, maxlen=JITTER_FRAMES)
        self.muted = False
        self.stats = ParticipantStats()


class Mixer:
    """The mixing core of one conference.  Participants are any hashable ids."""

    def __init__(
        self,
        *,
        frame_samples: int = FRAME_SAMPLES,
        rate: int = SAMPLE_RATE,
        max_participants: int = MAX_PARTICIPANTS,
        cues: bool = True,
    ) -> None:
        if frame_samples <= 0:
            raise MixerError(f"frame of {frame_samples} samples")
        if not 2 <= max_participants <= MAX_PARTICIPANTS:
            raise MixerError(f"{max_participants} participants is not in 2..{MAX_PARTICIPANTS}")
        self.frame_samples = frame_samples
        self.max_participants = max_participants
        self._parts: dict[Hashable, _Participant] = {}
        self._join_cue = cue_pcm(JOIN_TONE_PLAN, rate) if cues else None
        self._leave_cue = cue_pcm(LEAVE_TONE_PLAN, rate) if cues else None
        # Cues being played: (samples, position).  Played one after the other.
        self._cues: deque[tuple[Pcm, int]] = deque()
        self.rounds = 0
        self.cues_dropped = 0
        # What the whole room sounded like last round (everyone unmuted, and the cue): the
        # feed for a recording of the conference.
        self.last_room: Pcm = np.zeros(frame_samples, dtype=np.int16)

    # --- membership --------------------------------------------------------------------

    @property
    def participants(self) -> tuple[Hashable, ...]:
        return tuple(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def __contains__(self, pid: object) -> bool:
        return pid in self._parts

    def join(self, pid: Hashable) -> None:
        if pid in self._parts:
            raise MixerError(f"participant {pid!r} is already in the conference")
        if len(self._parts) >= self.max_participants:
            raise MixerError(f"the conference is full ({self.max_participants} participants)")
        self._parts[pid] = _Participant(self.frame_samples)
        self._cue(self._join_cue)

    def leave(self, pid: Hashable) -> ParticipantStats:
        part = self._parts.pop(self._known(pid))
        if self._parts:
            self._cue(self._leave_cue)
        return part.stats

    def mute(self, pid: Hashable, muted: bool = True) -> None:
        self._parts[self._known(pid)].muted = muted

    def muted(self, pid: Hashable) -> bool:
        return self._parts[self._known(pid)].muted

    def stats(self, pid: Hashable) -> ParticipantStats:
        return self._parts[self._known(pid)].stats

    def _known(self, pid: Hashable) -> Hashable:
        if pid not in self._parts:
            raise MixerError(f"participant {pid!r} is not in the conference")
        return pid

    def _cue(self, pcm: Pcm | None) -> None:
        if pcm is None:
            return
        if len(self._cues) >= MAX_PENDING_CUES:
            self.cues_dropped += 1
            return
        self._cues.append((pcm, 0))

    # --- audio -------------------------------------------------------------------------

    def push(self, pid: Hashable, frame: Pcm) -> None:
        """``pid`` said ``frame`` (int16, one frame); it is mixed in a coming round."""
        part = self._parts[self._known(pid)]
        if frame.shape != (self.frame_samples,) or frame.dtype != np.int16:
            raise MixerError(
                f"frame of shape {frame.shape} {frame.dtype}; "
                f"expected ({self.frame_samples},) int16"
            )
        inbox = part.inbox
        if len(inbox) == inbox.maxlen:
            part.stats.overruns += 1  # the deque drops the oldest itself
        inbox.append(frame)
        part.stats.frames_in += 1

    def mix(self) -> dict[Hashable, Pcm]:
        """One round: one frame from each inbox in, what each participant hears out."""
        self.rounds += 1
        ids = list(self._parts)
        n = self.frame_samples
        if not ids:
            self.last_room = np.zeros(n, dtype=np.int16)
            return {}
        own = np.zeros((len(ids), n), dtype=np.int32)
        for row, pid in enumerate(ids):
            part = self._parts[pid]
            try:
                frame = part.inbox.popleft()
            except IndexError:
                part.stats.missing += 1
                continue
            if not part.muted:
                own[row] = frame
        total = own.sum(axis=0)
        out = total[np.newaxis, :] - own  # everyone but yourself
        cue = self._next_cue(n)
        if cue is not None:
            out += cue[np.newaxis, :]
            total += cue
        np.clip(out, INT16_MIN, INT16_MAX, out=out)
        self.last_room = np.clip(total, INT16_MIN, INT16_MAX).astype(np.int16)
        heard = out.astype(np.int16)
        return {pid: heard[row] for row, pid in enumerate(ids)}

    def _next_cue(self, n: int) -> npt.NDArray[np.int32] | None:
        if not self._cues:
            return None
        pcm, pos = self._cues[0]
        chunk = np.zeros(n, dtype=np.int32)
        take = min(n, pcm.size - pos)
        chunk[:take] = pcm[pos : pos + take]
        if pos + take >= pcm.size:
            self._cues.popleft()
        else:
            self._cues[0] = (pcm, pos + take)
        return chunk

    @property
    def cue_playing(self) -> bool:
        return bool(self._cues)
