"""Exceptions of the SIP core: our misuse, a peer's fault and pjsua2's refusals are distinct."""

from __future__ import annotations


class SipError(Exception):
    """Base class of everything ``firmware.sip`` raises."""


class SipUsageError(SipError):
    """We broke it: a command in the wrong lifecycle state or with an impossible argument."""


class SipLimitError(SipUsageError):
    """A hard limit of the pjsua2 build would be crossed; refused before pjsua2 can abort."""


class SipConfigError(SipUsageError):
    """A settings object that cannot be turned into a pjsua2 configuration."""


class PjsuaError(SipError):
    """pjsua2 refused a command (its ``pj.Error``), with the operation and status kept."""

    def __init__(self, operation: str, status: int, reason: str) -> None:
        super().__init__(f"{operation} failed: {reason} (status {status})")
        self.operation = operation
        self.status = status
        self.reason = reason


class PeerProtocolError(SipError):
    """The peer broke it: a header or message we cannot parse."""
