"""SIP legs as call control sees them: events in, commands out (frozen, validated).

A *leg* is one SIP call of the endpoint, either direction, named by an int that
:meth:`firmware.pbx.calls.CallControl.new_leg` hands out: call control allocates the ids of
the calls it places, the shell allocates one for each INVITE it hands in.  The shell (the
SIP endpoint's side, ``firmware.service``) turns pjsua2 callbacks into the events here and
carries out the commands; this module knows nothing of pjsua2.

Rules of the road between the two:

- a leg is over for call control once it sent :class:`HangupSip` or received
  :class:`SipEnded`, whichever came first; later events for it are ignored (logged);
- when a leg ends by itself (:class:`SipEnded`) the shell drops its audio connections: call
  control sends :class:`DisconnectSip` only for legs that are still up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from firmware.lines import messages as m
from firmware.pbx.sipstatus import check_status

PeerKind = Literal["trunk", "account", "user"]
PEER_KINDS: Final = ("trunk", "account", "user")
NUMBER_MAX = 64  # cap on a called number or SIP user part we route (E.164 has at most 15)
TEXT_MAX = 256  # cap on names and reason phrases kept on a call


class SipEventError(ValueError):
    """A SIP event or command was built with a bad value (the shell's mistake)."""


def _leg(cls: str, leg: int) -> None:
    if isinstance(leg, bool) or not isinstance(leg, int) or leg < 0:
        raise SipEventError(f"{cls}.leg must be an int >= 0, got {leg!r}")


def _text(cls: str, name: str, value: str, cap: int = TEXT_MAX) -> None:
    if not isinstance(value, str) or len(value) > cap:
        raise SipEventError(f"{cls}.{name} must be a string of at most {cap}, got {value!r}")


def _caller(cls: str, caller: m.CallerId | None) -> None:
    if caller is not None and not isinstance(caller, m.CallerId):
        raise SipEventError(f"{cls}.caller must be a CallerId or None, got {caller!r}")


def _status(cls: str, code: int) -> None:
    try:
        check_status(code)
    except ValueError as e:
        raise SipEventError(f"{cls}.code: {e}") from None


# --- events in: from the SIP endpoint ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SipIncoming:
    """An INVITE the endpoint accepted for processing (authenticated, admitted by policy).

    ``account``: the pjsua account it came in on, a trunk name, a per-port account name, or
    ``"local"`` for IP peers.  ``peer``: the trunk, the account, or the extension number an
    IP phone authenticated as.  ``called``: the Request-URI's user part.  ``caller``: name
    and number from P-Asserted-Identity or From, None when neither is usable.
    """

    leg: int
    account: str
    peer_kind: PeerKind
    peer: str
    called: str
    caller: m.CallerId | None = None

    def __post_init__(self) -> None:
        _leg("SipIncoming", self.leg)
        _text("SipIncoming", "account", self.account)
        if self.peer_kind not in PEER_KINDS:
            raise SipEventError(
                f"SipIncoming.peer_kind must be one of {PEER_KINDS}, got {self.peer_kind!r}"
            )
        _text("SipIncoming", "peer", self.peer)
        _text("SipIncoming", "called", self.called, NUMBER_MAX)
        _caller("SipIncoming", self.caller)


@dataclass(frozen=True, slots=True)
class SipRinging:
    """180 Ringing or 183 Session Progress; ``early_media`` when the far end sends audio."""

    leg: int
    early_media: bool = False

    def __post_init__(self) -> None:
        _leg("SipRinging", self.leg)
        if not isinstance(self.early_media, bool):
            raise SipEventError(f"SipRinging.early_media must be a bool: {self.early_media!r}")


@dataclass(frozen=True, slots=True)
class SipAnswered:
    """2xx to our INVITE (or, on an incoming leg, the ACK to our 200)."""

    leg: int

    def __post_init__(self) -> None:
        _leg("SipAnswered", self.leg)


@dataclass(frozen=True, slots=True)
class SipEnded:
    """The leg is over: BYE, CANCEL, an error response, or the shell failing to place it
    (e.g. 503 when pjsua refused another call).  ``code``: the final status (100..699)."""

    leg: int
    code: int
    reason: str = ""

    def __post_init__(self) -> None:
        _leg("SipEnded", self.leg)
        _status("SipEnded", self.code)
        _text("SipEnded", "reason", self.reason)


@dataclass(frozen=True, slots=True)
class SipDtmf:
    """A digit from the far end (RFC 4733 event or SIP INFO)."""

    leg: int
    digit: str

    def __post_init__(self) -> None:
        _leg("SipDtmf", self.leg)
        if (
            not isinstance(self.digit, str)
            or len(self.digit) != 1
            or (self.digit not in m.DTMF_DIGITS)
        ):
            raise SipEventError(f"SipDtmf.digit must be one of {m.DTMF_DIGITS!r}: {self.digit!r}")


@dataclass(frozen=True, slots=True)
class SipHeld:
    """The far end put the leg on hold (``held``: its re-INVITE offered sendonly or
    inactive, RFC 3264 section 8.4) or took it off hold again."""

    leg: int
    held: bool

    def __post_init__(self) -> None:
        _leg("SipHeld", self.leg)
        if not isinstance(self.held, bool):
            raise SipEventError(f"SipHeld.held must be a bool: {self.held!r}")


@dataclass(frozen=True, slots=True)
class SipTransferred:
    """How a REFER we sent on ``leg`` (:class:`TransferSip`) went: the status line of a
    NOTIFY's sipfrag (RFC 3515 section 2.4.5), or the REFER's own error response.
    ``final``: the transfer is over (2xx: the far end talks to the target now)."""

    leg: int
    code: int
    reason: str = ""
    final: bool = True

    def __post_init__(self) -> None:
        _leg("SipTransferred", self.leg)
        _status("SipTransferred", self.code)
        _text("SipTransferred", "reason", self.reason)


@dataclass(frozen=True, slots=True)
class SipReferred:
    """The far end of ``leg`` transferred us (a REFER, RFC 3515): the endpoint accepted it
    and placed ``new_leg`` to ``number`` through the same account, to replace ``leg`` once
    it answers (the referrer ends ``leg`` when told, RFC 5589 section 6)."""

    leg: int
    new_leg: int
    number: str

    def __post_init__(self) -> None:
        _leg("SipReferred", self.leg)
        _leg("SipReferred", self.new_leg)
        _text("SipReferred", "number", self.number, NUMBER_MAX)


SipEvent = (
    SipIncoming
    | SipRinging
    | SipAnswered
    | SipEnded
    | SipDtmf
    | SipHeld
    | SipTransferred
    | SipReferred
)


# --- commands out: to the SIP endpoint --------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceSipCall:
    """INVITE ``number`` through ``account`` (a trunk or a per-port account); ``caller``
    goes out in From (display name and user part) where the account allows it."""

    leg: int
    account: str
    number: str
    caller: m.CallerId | None = None

    def __post_init__(self) -> None:
        _leg("PlaceSipCall", self.leg)
        _text("PlaceSipCall", "account", self.account)
        _text("PlaceSipCall", "number", self.number, NUMBER_MAX)
        if not self.number:
            raise SipEventError("PlaceSipCall.number must not be empty")
        _caller("PlaceSipCall", self.caller)


@dataclass(frozen=True, slots=True)
class RingSip:
    """Send 180 Ringing on an incoming leg."""

    leg: int

    def __post_init__(self) -> None:
        _leg("RingSip", self.leg)


@dataclass(frozen=True, slots=True)
class AnswerSip:
    """Send 200 OK on an incoming leg."""

    leg: int

    def __post_init__(self) -> None:
        _leg("AnswerSip", self.leg)


@dataclass(frozen=True, slots=True)
class HangupSip:
    """End the leg: BYE, CANCEL, or, on an unanswered incoming leg, the final response
    ``code`` (None: the shell's default for an unanswered leg)."""

    leg: int
    code: int | None = None

    def __post_init__(self) -> None:
        _leg("HangupSip", self.leg)
        if self.code is not None:
            _status("HangupSip", self.code)


@dataclass(frozen=True, slots=True)
class ConnectSip:
    """Connect the leg's audio both ways with a line port's."""

    leg: int
    port: int

    def __post_init__(self) -> None:
        _leg("ConnectSip", self.leg)


@dataclass(frozen=True, slots=True)
class DisconnectSip:
    leg: int
    port: int

    def __post_init__(self) -> None:
        _leg("DisconnectSip", self.leg)


@dataclass(frozen=True, slots=True)
class SendSipDtmf:
    """Digits the phone dialled during the call; the shell sends them per the account's DTMF
    mode (RFC 4733, INFO; nothing for in-band, where they already travel in the audio)."""

    leg: int
    digits: str

    def __post_init__(self) -> None:
        _leg("SendSipDtmf", self.leg)
        if not self.digits or any(d not in m.DTMF_DIGITS for d in self.digits):
            raise SipEventError(f"SendSipDtmf.digits must be DTMF digits, got {self.digits!r}")


@dataclass(frozen=True, slots=True)
class HoldSip:
    """Put the leg on hold: a re-INVITE offering sendonly (RFC 3264 section 8.4)."""

    leg: int

    def __post_init__(self) -> None:
        _leg("HoldSip", self.leg)


@dataclass(frozen=True, slots=True)
class ResumeSip:
    """Take a leg we held off hold: a re-INVITE offering sendrecv (nothing if not held)."""

    leg: int

    def __post_init__(self) -> None:
        _leg("ResumeSip", self.leg)


@dataclass(frozen=True, slots=True)
class BridgeSip:
    """Connect the audio of two legs both ways in the endpoint's conference bridge (a SIP
    caller put through to a SIP destination: no line takes part)."""

    a: int
    b: int

    def __post_init__(self) -> None:
        _leg("BridgeSip", self.a)
        _leg("BridgeSip", self.b)
        if self.a == self.b:
            raise SipEventError(f"BridgeSip: leg {self.a} cannot be bridged with itself")


@dataclass(frozen=True, slots=True)
class TransferSip:
    """Send a REFER on ``leg`` (RFC 3515): its far end is to call ``number`` through the
    leg's account (blind), or, with ``replaces``, to take over that other leg of ours
    (attended, RFC 3891 Replaces).  The outcome comes back as :class:`SipTransferred`."""

    leg: int
    number: str = ""
    replaces: int | None = None

    def __post_init__(self) -> None:
        _leg("TransferSip", self.leg)
        _text("TransferSip", "number", self.number, NUMBER_MAX)
        if self.replaces is not None:
            _leg("TransferSip", self.replaces)
        if bool(self.number) == (self.replaces is not None):
            raise SipEventError("TransferSip needs a number or a leg to replace (one of them)")


SipCommand = (
    PlaceSipCall
    | RingSip
    | AnswerSip
    | HangupSip
    | ConnectSip
    | DisconnectSip
    | SendSipDtmf
    | HoldSip
    | ResumeSip
    | BridgeSip
    | TransferSip
)
