"""What the SIP core tells the rest of the firmware: frozen, validated, free of pjsua2 objects.

pjsua2 callbacks run on the endpoint thread; each becomes one of these and is handed to the
asyncio loop.  They carry plain values only, so nothing from pjsua2 outlives its thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from firmware.sip.limits import PJSUA_MAX_CALLS

TransportKind = Literal["udp", "tcp", "tls"]
DtmfMethod = Literal["rfc4733", "info"]

# RFC 4733 section 3.2 events 0-15: the sixteen DTMF digits.
DTMF_DIGITS = "0123456789*#ABCD"
# RFC 3966 section 3 global/local numbers use these (visual separators dropped); a leading
# "+" marks an E.164 number.  Caller ID (ETSI EN 300 659-3, Bell 202 MDMF) carries at most
# 20 digits and a name of at most 50 characters in the longest variant.
CALLER_NUMBER_CHARS = frozenset("0123456789+*#")
MAX_CALLER_NUMBER = 32
MAX_CALLER_NAME = 50

# RFC 3261 section 21: status codes are three digits, 100..699.
MIN_STATUS = 100
MAX_STATUS = 699


def _check_call_id(call_id: int) -> None:
    if not 0 <= call_id < PJSUA_MAX_CALLS:
        raise ValueError(f"call id {call_id} outside 0..{PJSUA_MAX_CALLS - 1}")


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
    # Who calls (P-Asserted-Identity if present, else From), None when withheld (Privacy: id,
    # an anonymous From) or absent; and whom (user part of the Request-URI, else of To).
    caller_number: str | None = None
    caller_name: str | None = None
    called: str = ""

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)


@dataclass(frozen=True)
class CallStateChanged:
    """pjsua's INVITE session state of a call we hold (pjsip_inv_state names, lower case)."""

    call_id: int
    state: str
    code: int
    reason: str

    def __post_init__(self) -> None:
        _check_status(self.code, f"call {self.call_id}")


@dataclass(frozen=True)
class CallMediaChanged:
    """A call's audio became usable (early media, answer, unhold) or stopped being so."""

    call_id: int
    active: bool
    # The far end holds the call (its offer was sendonly or inactive, RFC 3264 section 8.4);
    # our side of the audio still flows to it, so ``active`` stays true.
    remote_hold: bool = False

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)


@dataclass(frozen=True)
class TransferStatus:
    """Progress of a REFER we sent: the sipfrag status line of a NOTIFY (RFC 3515 section
    2.4.5), or the REFER's own failure.  ``final``: no more reports for this transfer."""

    call_id: int
    code: int
    reason: str
    final: bool

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        _check_status(self.code, f"transfer of call {self.call_id}")


@dataclass(frozen=True)
class DtmfReceived:
    """A DTMF digit the far end sent out of band (RFC 4733 telephone-event or SIP INFO)."""

    call_id: int
    digit: str
    method: DtmfMethod

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        if len(self.digit) != 1 or self.digit not in DTMF_DIGITS:
            raise ValueError(f"call {self.call_id}: {self.digit!r} is not a DTMF digit")


@dataclass(frozen=True)
class CallerIdentity:
    """Who the box says is calling, put in the From of an outgoing INVITE (FXO caller ID).

    A caller ID may carry a name without a number (the number withheld or unavailable); the
    From then keeps the account's user part and only shows the name.
    """

    number: str
    name: str = ""

    def __post_init__(self) -> None:
        if not self.number and not self.name:
            raise ValueError("a caller identity needs a number, a name or both")
        if len(self.number) > MAX_CALLER_NUMBER:
            raise ValueError(
                f"caller number {self.number!r}: at most {MAX_CALLER_NUMBER} characters"
            )
        if not all(c in CALLER_NUMBER_CHARS for c in self.number):
            raise ValueError(
                f"caller number {self.number!r}: only digits, '+', '*' and '#' may appear"
            )
        if len(self.name) > MAX_CALLER_NAME or any(ord(c) < 32 for c in self.name):
            raise ValueError(
                f"caller name {self.name!r}: at most {MAX_CALLER_NAME} printable characters"
            )


@dataclass(frozen=True)
class TransferCallPlaced:
    """A REFER from the far end of ``call_id`` was accepted (202 Accepted): pjsua called the
    Refer-To target, ``number`` at the same provider, as ``new_call_id`` through the same
    account; its progress goes back to the referrer in NOTIFYs (RFC 3515 section 2.4.4)."""

    call_id: int
    new_call_id: int
    number: str

    def __post_init__(self) -> None:
        _check_call_id(self.call_id)
        _check_call_id(self.new_call_id)


SipEvent = (
    RegistrationChanged
    | RegistrationRetryScheduled
    | InviteRefused
    | IncomingCall
    | CallStateChanged
    | CallMediaChanged
    | DtmfReceived
    | TransferStatus
    | TransferCallPlaced
)
