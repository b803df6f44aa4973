"""Exceptions of the line state machines.

"We broke it" and "the peer broke it" are different classes (STYLE.md #3): a
:class:`LocalProtocolError` means our own software drove the machine wrongly (call control
asked for something the line's state does not allow, or time ran backwards), a
:class:`RemoteProtocolError` means the line card or a detector reported something that cannot
happen (a hook-off on a line that is already off-hook, card timestamps running backwards).

A machine that raises either of them has changed nothing: its state, timers and pending digits
are exactly as before the rejected event.
"""

from __future__ import annotations


class LineError(Exception):
    """Base class of every error the line state machines raise."""


class InvalidValue(LineError, ValueError):
    """An event, command or timing profile was constructed with a bad value."""


class LocalProtocolError(LineError):
    """Our side misused the machine (an illegal call-control event, time going backwards)."""


class RemoteProtocolError(LineError):
    """The line card or a detector reported something impossible for the line's state."""
