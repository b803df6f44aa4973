"""Applications a call can be put through to instead of a person (sans-IO): voicemail.

Call control answers the calling line and hands it to an application with
:class:`StartApp`; the line's digits go to it as :class:`AppDigit`; :class:`StopApp` when the
line hangs up.  A SIP caller's application runs on an application port (``APP_PORTS``) that
call control connects its leg to; its RFC 4733 digits arrive as ``AppDigit`` too.  The
application itself (prompts, recording, the mailbox menu of
:mod:`firmware.pbx.voicemail`) runs in the shell's media side (``firmware.service.apps``),
which tells call control ``CallControl.app_finished(port, now)`` when the application hung
up itself.

Which application: :class:`LeaveMessage` (a caller leaves a message in ``box``: the
extension did not answer, or was busy), :class:`CheckMailbox` (the owner dialled the
voicemail code, ``features.codes.voicemail``) and :class:`JoinConference` (a conference
room's number was dialled, ``conference.rooms[].number``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from firmware.sip.limits import PJSUA_MAX_CALLS
from firmware.store.schema import Config

# Application ports: media loops with no line that run a SIP caller's application (the
# shell's firmware.service.appports).  Every such caller holds one of pjsua's calls, so more
# than PJSUA_MAX_CALLS of them are never needed at once.  Numbered far above any card's ports
# (1-based, a few dozen at most) so that logs tell them apart.
APP_PORT_BASE: Final = 1001
APP_PORTS: Final = tuple(range(APP_PORT_BASE, APP_PORT_BASE + PJSUA_MAX_CALLS))


@dataclass(frozen=True, slots=True)
class LeaveMessage:
    box: str
    reason: Literal["unavailable", "busy"] = "unavailable"
    caller_number: str = ""
    caller_name: str = ""


@dataclass(frozen=True, slots=True)
class CheckMailbox:
    box: str  # the caller's own box


@dataclass(frozen=True, slots=True)
class JoinConference:
    room: str  # conference.rooms[].number

    @property
    def box(self) -> str:  # what call control's log names
        return self.room


@dataclass(frozen=True, slots=True)
class RunIvr:
    """The auto-attendant (``ivr.number`` dialled, or an exchange line's destination)."""

    @property
    def box(self) -> str:  # what call control's log names
        return "ivr"


@dataclass(frozen=True, slots=True)
class WaitInQueue:
    """A queue's caller waits: announcement, music on hold, its position
    (firmware.pbx.groups; the media side is firmware.service.queues)."""

    queue: str  # queues[].number

    @property
    def box(self) -> str:  # what call control's log names
        return self.queue


App = LeaveMessage | CheckMailbox | JoinConference | RunIvr | WaitInQueue


@dataclass(frozen=True, slots=True)
class StartApp:
    """Connect ``port``'s audio and digits to ``app`` (the line is answered already)."""

    port: int
    app: App


@dataclass(frozen=True, slots=True)
class StopApp:
    port: int


@dataclass(frozen=True, slots=True)
class AppDigit:
    port: int
    digit: str


@dataclass(frozen=True, slots=True)
class RecordCall:
    """Record the call of ``port`` (joined to another port) from now until it is split or
    stopped: its recording policy (firmware.pbx.recording) says ``always``, or a party
    dialled the toggle code (``on_demand``; then ``beep``: both parties hear the notice)."""

    port: int
    caller: str
    callee: str
    reason: str = "always"
    beep: bool = False


@dataclass(frozen=True, slots=True)
class StopRecording:
    """A party dialled the toggle code again: the recording of ``port``'s call ends (both
    parties hear the notice when ``beep``)."""

    port: int
    beep: bool = True


@dataclass(frozen=True, slots=True)
class HushLine:
    """While ``hushed``, the party on ``port`` is not heard by the port it is joined to
    (digits that may be an in-call code are being dialled: firmware.pbx.recording).
    ``arm``: digits that hush the line at once when the media loop detects them, before
    call control hears of them (the code's first digit)."""

    port: int
    hushed: bool
    arm: str = ""


AppCommand = StartApp | StopApp | AppDigit | RecordCall | StopRecording | HushLine


def mailbox_of(config: Config, extension: str) -> str | None:
    """``extension``'s voicemail box (its number), or None when it has none."""
    for e in config.extensions:
        if e.number == extension and extension:
            return extension if e.voicemail else None
    return None
