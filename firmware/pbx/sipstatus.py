"""What a SIP final response means to the analogue phone that made the call (pure).

Two standards decide it.  RFC 3398 section 8.2.6.1 maps each SIP response an ISUP gateway
receives to the Q.850 cause it releases the call with; that cause is what the box keeps on the
call (for the log, the status and call records).  The cause then picks the tone: "user busy"
(17) and "call rejected" by the person called (603 Decline) give busy tone; everything else
means the network could not complete the call and gives congestion.

A response code not in the table is treated as the ``x00`` code of its class, as RFC 3261
section 21 requires of every client ("a SIP client MUST treat any final response it does not
recognize as being equivalent to the x00 response code of that class").
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

# RFC 3261 section 7.2: status codes are three digits; 1xx provisional, 2xx-6xx final.
STATUS_MIN: Final = 100
STATUS_MAX: Final = 699
FINAL_MIN: Final = 200


class Tone(enum.Enum):
    """What the phone hears when the call failed."""

    BUSY = "busy"
    CONGESTION = "congestion"


@dataclass(frozen=True, slots=True)
class Q850:
    cause: int
    text: str


# ITU-T Q.850 table 1: the causes RFC 3398 uses.
UNALLOCATED = Q850(1, "unallocated number")
USER_BUSY = Q850(17, "user busy")
NO_USER_RESPONDING = Q850(18, "no user responding")
CALL_REJECTED = Q850(21, "call rejected")
NUMBER_CHANGED = Q850(22, "number changed")
EXCHANGE_ROUTING_ERROR = Q850(25, "exchange routing error")
INVALID_NUMBER_FORMAT = Q850(28, "invalid number format")
NETWORK_OUT_OF_ORDER = Q850(38, "network out of order")
TEMPORARY_FAILURE = Q850(41, "temporary failure")
SERVICE_UNAVAILABLE = Q850(63, "service or option unavailable")
NOT_IMPLEMENTED = Q850(79, "service or option not implemented")
RECOVERY_ON_TIMER_EXPIRY = Q850(102, "recovery on timer expiry")
INTERWORKING = Q850(127, "interworking, unspecified")

# RFC 3398 section 8.2.6.1, "SIP response received -> cause value in the REL".  487 has no
# mapping (the caller cancelled it); 488 and 606 take theirs from a Warning header we do not
# parse, so they are left without one here too.
RFC3398_CAUSES: Mapping[int, Q850 | None] = MappingProxyType(
    {
        400: TEMPORARY_FAILURE,
        401: CALL_REJECTED,
        402: CALL_REJECTED,
        403: CALL_REJECTED,
        404: UNALLOCATED,
        405: SERVICE_UNAVAILABLE,
        406: NOT_IMPLEMENTED,
        407: CALL_REJECTED,
        408: RECOVERY_ON_TIMER_EXPIRY,
        410: NUMBER_CHANGED,
        413: INTERWORKING,
        414: INTERWORKING,
        415: NOT_IMPLEMENTED,
        416: INTERWORKING,
        420: INTERWORKING,
        421: INTERWORKING,
        423: INTERWORKING,
        480: NO_USER_RESPONDING,
        481: TEMPORARY_FAILURE,
        482: EXCHANGE_ROUTING_ERROR,
        483: EXCHANGE_ROUTING_ERROR,
        484: INVALID_NUMBER_FORMAT,
        485: UNALLOCATED,
        486: USER_BUSY,
        487: None,
        488: None,
        500: TEMPORARY_FAILURE,
        501: NOT_IMPLEMENTED,
        502: NETWORK_OUT_OF_ORDER,
        503: TEMPORARY_FAILURE,
        504: RECOVERY_ON_TIMER_EXPIRY,
        505: INTERWORKING,
        513: INTERWORKING,
        600: USER_BUSY,
        603: CALL_REJECTED,
        604: UNALLOCATED,
        606: None,
    }
)

# Busy tone: the person called is busy (486 Busy Here, 600 Busy Everywhere) or declined
# (603 Decline, RFC 3261 section 21.6.2: "the callee's machine was successfully contacted but
# the user explicitly does not wish to or cannot participate").  Anything else is the
# network's failure: congestion.
BUSY_CODES: frozenset[int] = frozenset({486, 600, 603})


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an outgoing SIP call failed, as the phone and the records see it."""

    code: int
    reason: str  # the reason phrase the far end sent
    cause: Q850 | None
    tone: Tone

    def describe(self) -> str:
        """One line for the log and the call: ``486 Busy Here (Q.850 17 user busy)``."""
        text = f"{self.code} {self.reason}".rstrip()
        if self.cause is not None:
            text += f" (Q.850 {self.cause.cause} {self.cause.text})"
        return text


def equivalent(code: int) -> int:
    """The code the table is looked up with: itself if known, else its class's x00."""
    check_status(code)
    if code in RFC3398_CAUSES or code < 300:
        return code
    return code - code % 100


def failure(code: int, reason: str = "") -> Failure:
    """What a final (or missing: see ``SipEnded``) response to our INVITE means."""
    known = equivalent(code)
    cause = RFC3398_CAUSES.get(known)
    tone = Tone.BUSY if known in BUSY_CODES else Tone.CONGESTION
    return Failure(code, reason, cause, tone)


def check_status(code: int) -> None:
    if isinstance(code, bool) or not isinstance(code, int):
        raise ValueError(f"a SIP status code is an int, got {code!r}")
    if not STATUS_MIN <= code <= STATUS_MAX:
        raise ValueError(f"SIP status code {code} is outside {STATUS_MIN}..{STATUS_MAX}")
