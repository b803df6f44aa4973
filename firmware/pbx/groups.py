"""Ring groups and queues (sans-IO, pure): whom to ring next, who waits where, which agents
are logged in.

Call control (:mod:`firmware.pbx.calls`) owns the calls and the lines; when a number it is
given belongs to a ring group or a queue (``ring_groups[].number``, ``queues[].number``) it
starts a :class:`Hunt` here and keeps it on the call, asks :meth:`Groups.pick` which members
to alert now (it says which extensions could ring: free, not on do not disturb), and reports
back what happened (:meth:`Groups.answered`, :meth:`Groups.leave`).  The deadlines on a hunt
(the member's ring time, the group's timeout, a queue's maximum wait, the next position
announcement) are kept here and driven by call control's timer.

Strategies (docs/features.md "Ring groups"):

- ``simultaneous``: every member that can ring rings at once until the timeout; the first to
  answer takes the call and the others stop ringing.
- ``sequential``: the members in their listed order, ``ring_s`` each, round after round.
- ``round_robin``: like sequential, but each call starts after the member tried last by the
  previous call to the group (a cursor per group, kept while the configuration is).
- ``least_recent``: the member whose last answered group or queue call is the oldest (never
  answered: first of all), ties in listed order.

Queues: a caller is answered at once (music on hold, announcements: the shell's business,
firmware.service.queues) and waits in order of arrival; agents are the queue's members that
logged in by feature code (``features.codes.queue_login`` / ``queue_logout``).  Each waiting
caller hunts among the free agents by the queue's strategy, earlier callers first.  After
``max_wait_s``, or at once when ``max_callers`` wait already, the caller goes to ``overflow``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from firmware.store.schema import Config, Queue, RingGroup

Kind = Literal["group", "queue"]

# A queue caller nobody could be rung for looks for a free agent again this often: agents
# come free (hang up, log in) without call control telling the queue.  1 s is as soon as a
# caller notices a pause; the check is a dictionary walk.
QUEUE_RETRY_MS: Final = 1000
HANGUP: Final = "hangup"
VOICEMAIL_PREFIX: Final = "voicemail:"


@dataclass(slots=True)
class Hunt:
    """One call hunting through a ring group or waiting in a queue (``Call.hunt``)."""

    number: str
    kind: Kind
    started: int
    ends_at: int  # group: timeout_s; queue: max_wait_s; then the no-answer destination
    ringing: dict[int, str] = field(default_factory=dict)  # port -> member ringing on it
    ring_until: int | None = None  # when the members ringing now give way to the next
    retry_at: int | None = None  # queue: when to look for a free agent again
    announce_at: int | None = None  # queue: the next "you are caller number N"
    tried: list[str] = field(default_factory=list)  # members rung in this round, in order

    def deadlines(self) -> list[int]:
        return [
            d
            for d in (self.ends_at, self.ring_until, self.retry_at, self.announce_at)
            if d is not None
        ]


# --- commands to the shell ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnnouncePosition:
    """Tell the caller waiting on ``port`` its place in ``queue`` (1: next)."""

    port: int
    queue: str
    position: int


@dataclass(frozen=True, slots=True)
class AgentChanged:
    """Store that ``extension`` logged in (``logged_in``) or out of its queues."""

    extension: str
    logged_in: bool


GroupCommand = AnnouncePosition | AgentChanged


@dataclass(frozen=True, slots=True)
class WaitingView:
    """One caller in a queue, for ``queues.list``."""

    queue: str
    position: int
    caller: str
    since: int  # ms on call control's clock
    ringing: tuple[str, ...]  # agents alerted for this caller now


class GroupError(Exception):
    """We broke it: a hunt this module did not start, a number that is no group."""


class Groups:
    """The ring groups and queues of one configuration, with what they remember between
    calls (round-robin cursors, last-answered times, logged-in agents, the waiting lines)."""

    def __init__(self, config: Config, agents: Iterable[str] = ()) -> None:
        self.groups: dict[str, RingGroup] = {g.number: g for g in config.ring_groups}
        self.queues: dict[str, Queue] = {q.number: q for q in config.queues}
        members = {m for q in config.queues for m in q.members}
        # Logged-in agents: extensions, kept by the shell across restarts.  One that is no
        # queue's member any more is forgotten (the configuration changed).
        self.agents: set[str] = set(agents) & members
        self._cursor: dict[str, int] = {}  # group/queue -> index of the member tried last
        self.last_answered: dict[str, int] = {}  # member -> ms its last hunt call was answered
        self._lines: dict[str, list[tuple[Hunt, str]]] = {q: [] for q in self.queues}

    # --- what a number is -----------------------------------------------------------------

    def kind(self, number: str) -> Kind | None:
        if number in self.groups:
            return "group"
        if number in self.queues:
            return "queue"
        return None

    def destination(self, hunt: Hunt) -> str:
        """Where the call goes when the hunt is over unanswered (or the queue is full)."""
        if hunt.kind == "group":
            return self.groups[hunt.number].no_answer
        return self.queues[hunt.number].overflow

    # --- starting and ending ----------------------------------------------------------------

    def start(self, number: str, now: int) -> Hunt:
        group = self.groups.get(number)
        if group is not None:
            return Hunt(number, "group", now, now + group.timeout_s * 1000)
        queue = self.queues.get(number)
        if queue is None:
            raise GroupError(f"{number!r} is neither a ring group nor a queue")
        return Hunt(number, "queue", now, now + queue.max_wait_s * 1000)

    def full(self, number: str) -> bool:
        return len(self._lines[number]) >= self.queues[number].max_callers

    def enqueue(self, hunt: Hunt, caller: str, now: int) -> int:
        """Put a queue's caller at the end of its line; its position (1: next)."""
        line = self._line(hunt)
        if any(h is hunt for h, _ in line):
            raise GroupError(f"caller already waits in queue {hunt.number}")
        line.append((hunt, caller))
        period = self.queues[hunt.number].position_period_s
        hunt.announce_at = now if period else None
        return len(line)

    def position(self, hunt: Hunt) -> int | None:
        if hunt.kind != "queue":
            return None
        for i, (h, _) in enumerate(self._lines.get(hunt.number, ())):
            if h is hunt:
                return i + 1
        return None

    def announced(self, hunt: Hunt, now: int) -> int | None:
        """The position to announce now (None: not waiting); schedules the next one."""
        position = self.position(hunt)
        period = self.queues[hunt.number].position_period_s if hunt.kind == "queue" else 0
        hunt.announce_at = now + period * 1000 if position is not None and period else None
        return position

    def leave(self, hunt: Hunt) -> None:
        """The hunt is over (answered, abandoned, overflowed): out of its queue's line."""
        hunt.ringing.clear()
        hunt.ring_until = hunt.retry_at = hunt.announce_at = None
        if hunt.kind == "queue":
            line = self._lines.get(hunt.number, [])
            line[:] = [(h, c) for h, c in line if h is not hunt]

    def answered(self, hunt: Hunt, member: str, now: int) -> None:
        self.last_answered[member] = now
        self.leave(hunt)

    # --- whom to ring -----------------------------------------------------------------------

    def members(self, hunt: Hunt) -> tuple[str, ...]:
        """Who may be rung: a group's members; a queue's logged-in agents."""
        if hunt.kind == "group":
            return self.groups[hunt.number].members
        return tuple(m for m in self.queues[hunt.number].members if m in self.agents)

    def pick(self, hunt: Hunt, now: int, port_of: Callable[[str], int | None]) -> dict[int, str]:
        """The members to alert now (port -> extension), after the ones ringing stopped.

        ``port_of(extension)`` is the FXS port to alert, or None when that member cannot
        ring now (busy, do not disturb, no port).  Sets the hunt's ring and retry timers;
        an empty answer with no retry set means a ring group found nobody at all.
        """
        config = self.groups.get(hunt.number) if hunt.kind == "group" else None
        queue = self.queues.get(hunt.number) if hunt.kind == "queue" else None
        settings = config or queue
        if settings is None:
            raise GroupError(f"hunt for {hunt.number!r}, which is no group or queue now")
        hunt.ringing.clear()
        hunt.ring_until = hunt.retry_at = None
        free = {m: p for m in self.members(hunt) if (p := port_of(m)) is not None}
        chosen: list[str]
        if settings.strategy == "simultaneous":
            chosen = list(free)
        else:
            one = self._next(hunt, settings.strategy, free)
            chosen = [] if one is None else [one]
        if chosen:
            if settings.strategy != "simultaneous":
                hunt.tried.append(chosen[0])
                hunt.ring_until = now + settings.ring_s * 1000
            elif queue is not None:
                # A queue's agents ring ring_s at a time, then the free ones are taken again
                # (an agent who came free meanwhile joins in).
                hunt.ring_until = now + queue.ring_s * 1000
            hunt.ringing.update({free[m]: m for m in chosen})
        elif queue is not None:
            hunt.retry_at = now + QUEUE_RETRY_MS
        return dict(hunt.ringing)

    def _next(self, hunt: Hunt, strategy: str, free: dict[str, int]) -> str | None:
        members = self.members(hunt)
        if not free:
            return None
        untried = [m for m in members if m in free and m not in hunt.tried]
        if not untried:
            hunt.tried.clear()  # a new round
            untried = [m for m in members if m in free]
        if strategy == "least_recent":
            return min(untried, key=lambda m: (self.last_answered.get(m, -1), members.index(m)))
        if strategy == "round_robin":
            start = self._cursor.get(hunt.number, -1)
            order = [members[(start + 1 + i) % len(members)] for i in range(len(members))]
            chosen = next(m for m in order if m in untried)
            self._cursor[hunt.number] = members.index(chosen)
            return chosen
        return untried[0]  # sequential: listed order

    # --- agents -----------------------------------------------------------------------------

    def queues_of(self, extension: str) -> list[str]:
        return [q.number for q in self.queues.values() if extension in q.members]

    def log_in(self, extension: str) -> bool:
        """``extension`` takes calls from its queues; False when it is in none."""
        if not self.queues_of(extension):
            return False
        self.agents.add(extension)
        return True

    def log_out(self, extension: str) -> bool:
        if not self.queues_of(extension):
            return False
        self.agents.discard(extension)
        return True

    # --- views ------------------------------------------------------------------------------

    def waiting(self) -> list[WaitingView]:
        return [
            WaitingView(number, i + 1, caller, hunt.started, tuple(hunt.ringing.values()))
            for number, line in self._lines.items()
            for i, (hunt, caller) in enumerate(line)
        ]

    def _line(self, hunt: Hunt) -> list[tuple[Hunt, str]]:
        if hunt.kind != "queue" or hunt.number not in self._lines:
            raise GroupError(f"{hunt.number!r} is not a queue")
        return self._lines[hunt.number]


def parse_destination(target: str) -> tuple[Literal["hangup", "voicemail", "number"], str]:
    """``no_answer`` / ``overflow`` (validated by the store): what kind, and the number."""
    if target == HANGUP:
        return "hangup", ""
    if target.startswith(VOICEMAIL_PREFIX):
        return "voicemail", target[len(VOICEMAIL_PREFIX) :]
    return "number", target
