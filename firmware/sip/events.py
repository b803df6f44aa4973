"""What the SIP core tells the rest of the firmware: frozen, validated, free of pjsua2 objects.

pjsua2 callbacks run on the endpoint thread; each becomes one of these and is handed to the
asyncio loop.  They carry plain values only, so nothing from pjsua2 outlives its thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from firmware.sip.limits import PJSUA_MAX_CALLS

TransportKind = Literal["udp", "tcp", "tls"]

# RFC 3261 section 21: status codes are three digits, 100..699.
MIN_STATUS = 100
MAX_STATUS = 699


def _check_status(code: int, what: str) -> None:
    # pjsua reports 0 for "no response yet" in registration and call state callbacks.
    if code != 0 and not MIN_STATUS <= code <= MAX_STATUS:
        raise ValueError(f"{what}: SIP status {code} outside 100..699")


@dataclass(frozen=True)
class TransportInfo:
    """A listening transport as pjsua2 created it (port 0 resolved to the port it chose)."""

    transport_id: int
    kind: TransportKind
    host: str
    port: int

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"transport {self.transport_id}: port {self.port} out of range")


@dataclass(frozen=True)
class RegistrationChanged:
    """A REGISTER transaction of an account ended (or an unregistration did)."""

    account: str
    code: int
    reason: str
    expires_s: int
    registered: bool

    def __post_init__(self) -> None:
        _check_status(self.code, f"account {self.account!r}")
        if self.expires_s < 0:
            raise ValueError(f"account {self.account!r}: negative expiry {self.expires_s}")


@dataclass(frozen=True)
class RegistrationRetryScheduled:
    """A failed registration will be tried again after ``delay_s`` (our back-off)."""

    account: str
    attempt: int
    delay_s: float


@dataclass(frozen=True)
class InviteRefused:
    """An incoming INVITE was answered with an error before it reached any line."""

    source: str
    code: int
    reason: str
    counted_as_failure: bool

    def __post_init__(self) -> None:
        _check_status(self.code, f"refusal to {self.source}")
        if self.code < 300:
            raise ValueError(f"refusal to {self.source}: {self.code} is not an error status")


@dataclass(frozen=True)
class IncomingCall:
    """An INVITE that passed the inbound policy: from a trunk's host or an authenticated peer."""

    call_id: int
    account: str
    source: str
    peer: str  # trunk name or authenticated user name
    peer_kind: Literal["trunk", "user"]
    from_uri: str
    to_uri: str

    def __post_init__(self) -> None:
        if not 0 <= self.call_id < PJSUA_MAX_CALLS:
            raise ValueError(f"call id {self.call_id} outside 0..{PJSUA_MAX_CALLS - 1}")


@dataclass(frozen=True)
class CallStateChanged:
    """pjsua's INVITE session state of a call we hold (pjsip_inv_state names, lower case)."""

    call_id: int
    state: str
    code: int
    reason: str

    def __post_init__(self) -> None:
        _check_status(self.code, f"call {self.call_id}")


SipEvent = (
    RegistrationChanged
    | RegistrationRetryScheduled
    | InviteRefused
    | IncomingCall
    | CallStateChanged
)
