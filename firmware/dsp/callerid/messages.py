"""Caller ID messages: the data link layer shared by Bell 202 and V.23 FSK signalling.

Every message is ``type, length, body, checksum`` (Telcordia GR-30-CORE, ETSI EN 300 659-3):
the length counts the body bytes, and the checksum is the two's complement of the modulo-256
sum of all the other bytes, so a good message sums to zero.  Multiple-data-message bodies are
``parameter type, parameter length, value`` triples.

Numbering below follows Telcordia GR-30-CORE and SR-TSV-002476 for the Bell formats and ETSI
EN 300 659-3 for the European ones; both agree on the types they share (date/time, calling
number, reasons for absence, name, visual indicator), so one parameter model serves both.
BT SIN 227 / SIN 242 use the ETSI layout.

Building an invalid message raises :class:`InvalidMessage` (a ``ValueError``: the caller broke
the rules).  Decoding bad bytes from a line raises a :class:`CallerIdError` subclass that names
the fault and keeps the bytes (the far end broke the rules).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

# --- message types ------------------------------------------------------------------------
MSG_SDMF_CALLER_ID: Final = 0x04  # GR-30-CORE: Single Data Message Format (CND)
MSG_SDMF_VMWI: Final = 0x06  # SR-TSV-002476: SDMF message waiting indicator
MSG_MDMF_CALL_SETUP: Final = 0x80  # GR-30-CORE MDMF; ETSI EN 300 659-3 call set-up
MSG_MDMF_MESSAGE_WAITING: Final = 0x82  # ETSI EN 300 659-3; GR-30 MDMF VMWI
MSG_MDMF_ADVICE_OF_CHARGE: Final = 0x86  # ETSI EN 300 659-3 (kept as raw parameters)
MSG_MDMF_SMS: Final = 0x89  # ETSI EN 300 659-3 short message service (raw)
KNOWN_MESSAGE_TYPES: Final = frozenset(
    {
        MSG_SDMF_CALLER_ID,
        MSG_SDMF_VMWI,
        MSG_MDMF_CALL_SETUP,
        MSG_MDMF_MESSAGE_WAITING,
        MSG_MDMF_ADVICE_OF_CHARGE,
        MSG_MDMF_SMS,
    }
)

# --- parameter types (MDMF / ETSI) -----------------------------------------------------------
P_DATE_TIME: Final = 0x01  # GR-30 / EN 300 659-3 Table 3: MMDDHHMM, 8 ASCII digits
P_CALLING_NUMBER: Final = 0x02  # calling line identity (CLI)
P_CALLED_NUMBER: Final = 0x03  # called line identity / dialable directory number
P_NUMBER_ABSENCE: Final = 0x04  # reason for absence of CLI: 'P' private, 'O' unavailable
P_REDIRECTION_REASON: Final = 0x05  # GR-30 MDMF: call forwarding reason (Bell only)
P_CALL_QUALIFIER: Final = 0x06  # GR-30 MDMF: 'L' long distance (Bell only)
P_NAME: Final = 0x07  # calling party name
P_NAME_ABSENCE: Final = 0x08  # reason for absence of name: 'P' / 'O'
P_VISUAL_INDICATOR: Final = 0x0B  # EN 300 659-3: 0xFF on, 0x00 off
P_MESSAGE_ID: Final = 0x0D  # EN 300 659-3: message identification
P_CALL_TYPE: Final = 0x11  # EN 300 659-3: 1 voice, 2 ring-back-when-free, 0x81 msg waiting
P_MESSAGE_COUNT: Final = 0x13  # EN 300 659-3: number of messages waiting
P_FORWARDED_CALL_TYPE: Final = 0x15  # EN 300 659-3: type of forwarded call
P_CALLING_USER_TYPE: Final = 0x16  # EN 300 659-3: type of calling user
P_REDIRECTING_NUMBER: Final = 0x1A  # EN 300 659-3: last redirecting party number

VISUAL_INDICATOR_ON: Final = 0xFF  # EN 300 659-3 / GR-30: activation
VISUAL_INDICATOR_OFF: Final = 0x00  # deactivation
SDMF_VMWI_ON: Final = b"\x42\x42\x42"  # SR-TSV-002476: SDMF VMWI activate ("BBB")
SDMF_VMWI_OFF: Final = b"\x6f\x6f\x6f"  # SR-TSV-002476: SDMF VMWI deactivate ("ooo")

NUMBER_MAX: Final = 20  # EN 300 659-3 Table 3: CLI at most 20 characters
NAME_MAX: Final = 50  # EN 300 659-3 Table 3: calling party name at most 50 characters
BODY_MAX: Final = 255  # one length byte
NUMBER_CHARS: Final = frozenset("0123456789*#+")  # IA5 digits and the few symbols lines send
DATE_TIME_LEN: Final = 8  # MMDDHHMM


class InvalidMessage(ValueError):
    """A message we were asked to build breaks the standards (our fault)."""


class CallerIdError(Exception):
    """Received data is not a valid caller ID message (the far end's fault).

    ``reason`` says what was wrong; ``data`` keeps the bytes received so nothing is lost.
    """

    def __init__(self, reason: str, data: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.data = bytes(data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, data={self.data.hex()})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, CallerIdError)
            and (other.reason, other.data) == (self.reason, self.data)
        )

    def __hash__(self) -> int:
        return hash((type(self), self.reason, self.data))


class ChecksumError(CallerIdError):
    """The checksum byte does not make the message sum to zero."""


class LengthError(CallerIdError):
    """The length field disagrees with the bytes received, or a parameter overruns."""


class FormatError(CallerIdError):
    """The message frames correctly but its content breaks the format."""


class FramingError(CallerIdError):
    """The FSK receiver lost the asynchronous framing (bad stop bit, carrier lost)."""


class Absence(enum.Enum):
    """Reason the number or name is missing (GR-30 / EN 300 659-3 Table 3)."""

    PRIVATE = "P"  # withheld by the caller (CLIR)
    UNAVAILABLE = "O"  # out of area / not provided by the network


@dataclass(frozen=True, slots=True)
class DateTime:
    """Month, day, hour and minute as caller ID carries them (no year, local time)."""

    month: int
    day: int
    hour: int
    minute: int

    def __post_init__(self) -> None:
        for name, value, lo, hi in (
            ("month", self.month, 1, 12),
            ("day", self.day, 1, 31),
            ("hour", self.hour, 0, 23),
            ("minute", self.minute, 0, 59),
        ):
            if not isinstance(value, int) or not lo <= value <= hi:
                raise InvalidMessage(f"date/time {name} must be {lo}..{hi}, got {value!r}")

    def to_bytes(self) -> bytes:
        return f"{self.month:02d}{self.day:02d}{self.hour:02d}{self.minute:02d}".encode("ascii")

    @classmethod
    def from_bytes(cls, raw: bytes, data: bytes = b"") -> DateTime:
        """Parse MMDDHHMM; ``data`` (the whole message) goes into the error for the record."""
        if len(raw) != DATE_TIME_LEN or not raw.isdigit():
            raise FormatError(
                f"date/time must be 8 ASCII digits MMDDHHMM, got {raw!r}", data or raw
            )
        try:
            return cls(int(raw[0:2]), int(raw[2:4]), int(raw[4:6]), int(raw[6:8]))
        except InvalidMessage as exc:
            raise FormatError(str(exc), data or raw) from None

    def __str__(self) -> str:
        return f"{self.month:02d}-{self.day:02d} {self.hour:02d}:{self.minute:02d}"


@dataclass(frozen=True, slots=True)
class Parameter:
    """One MDMF parameter kept as raw bytes (types this module does not model)."""

    type: int
    value: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.type, int) or not 0 <= self.type <= 0xFF:
            raise InvalidMessage(f"parameter type must be a byte, got {self.type!r}")
        if not isinstance(self.value, bytes):
            raise InvalidMessage(f"parameter value must be bytes, got {type(self.value)}")
        if len(self.value) > BODY_MAX:
            raise InvalidMessage(
                f"parameter 0x{self.type:02X} is {len(self.value)} bytes (max 255)"
            )

    def to_bytes(self) -> bytes:
        return bytes((self.type, len(self.value))) + self.value


def _check_number(what: str, number: str | None) -> None:
    if number is None:
        return
    if not isinstance(number, str) or not 1 <= len(number) <= NUMBER_MAX:
        raise InvalidMessage(f"{what} must be 1..{NUMBER_MAX} characters, got {number!r}")
    bad = sorted(set(number) - NUMBER_CHARS)
    if bad:
        raise InvalidMessage(f"{what} {number!r} contains {''.join(bad)!r} (digits * # + only)")


def _check_name(name: str | None) -> None:
    if name is None:
        return
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX:
        raise InvalidMessage(f"name must be 1..{NAME_MAX} characters, got {name!r}")
    try:
        raw = name.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidMessage(f"name {name!r} is not representable in ISO 8859-1") from None
    if any(b < 0x20 or 0x7F <= b < 0xA0 for b in raw):
        raise InvalidMessage(f"name {name!r} contains control characters")


def _check_extra(extra: tuple[Parameter, ...], modelled: frozenset[int]) -> None:
    if not isinstance(extra, tuple) or not all(isinstance(p, Parameter) for p in extra):
        raise InvalidMessage("extra parameters must be a tuple of Parameter")
    clash = sorted({p.type for p in extra} & modelled)
    if clash:
        names = ", ".join(f"0x{t:02X}" for t in clash)
        raise InvalidMessage(f"parameter types {names} have their own fields; do not pass raw")


_CALL_SETUP_FIELDS: Final = frozenset(
    {
        P_DATE_TIME,
        P_CALLING_NUMBER,
        P_CALLED_NUMBER,
        P_NUMBER_ABSENCE,
        P_NAME,
        P_NAME_ABSENCE,
        P_REDIRECTING_NUMBER,
        P_CALL_TYPE,
    }
)
_MESSAGE_WAITING_FIELDS: Final = frozenset(
    {P_VISUAL_INDICATOR, P_DATE_TIME, P_CALLING_NUMBER, P_MESSAGE_COUNT}
)


@dataclass(frozen=True, slots=True)
class SdmfCallerId:
    """Bell SDMF calling number delivery (type 0x04): date/time then number or 'P'/'O'."""

    date_time: DateTime
    number: str | None = None
    absence: Absence | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.date_time, DateTime):
            raise InvalidMessage("SDMF needs a DateTime")
        if (self.number is None) == (self.absence is None):
            raise InvalidMessage("SDMF carries exactly one of number and absence reason")
        _check_number("number", self.number)

    def to_bytes(self) -> bytes:
        """Type, length, body and checksum (same as :func:`encode_message`)."""
        return encode_message(self)


@dataclass(frozen=True, slots=True)
class SdmfVmwi:
    """Bell SDMF visual message waiting indicator (type 0x06)."""

    active: bool

    def to_bytes(self) -> bytes:
        """Type, length, body and checksum (same as :func:`encode_message`)."""
        return encode_message(self)


@dataclass(frozen=True, slots=True)
class CallSetup:
    """MDMF (Bell) / ETSI EN 300 659-3 call set-up message (type 0x80)."""

    date_time: DateTime | None = None
    number: str | None = None
    number_absence: Absence | None = None
    name: str | None = None
    name_absence: Absence | None = None
    redirecting_number: str | None = None
    called_number: str | None = None
    call_type: int | None = None
    extra: tuple[Parameter, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.date_time is not None and not isinstance(self.date_time, DateTime):
            raise InvalidMessage("date_time must be a DateTime")
        if self.number is not None and self.number_absence is not None:
            raise InvalidMessage("a call set-up carries a number or its absence reason, not both")
        if self.name is not None and self.name_absence is not None:
            raise InvalidMessage("a call set-up carries a name or its absence reason, not both")
        for what, absence in (("number", self.number_absence), ("name", self.name_absence)):
            if absence is not None and not isinstance(absence, Absence):
                raise InvalidMessage(f"{what}_absence must be an Absence, got {absence!r}")
        _check_number("number", self.number)
        _check_number("redirecting number", self.redirecting_number)
        _check_number("called number", self.called_number)
        _check_name(self.name)
        if self.call_type is not None and not 0 <= self.call_type <= 0xFF:
            raise InvalidMessage(f"call type must be a byte, got {self.call_type!r}")
        _check_extra(self.extra, _CALL_SETUP_FIELDS)
        if not _call_setup_params(self):
            raise InvalidMessage("a call set-up message needs at least one parameter")

    def to_bytes(self) -> bytes:
        """Type, length, body and checksum (same as :func:`encode_message`)."""
        return encode_message(self)


@dataclass(frozen=True, slots=True)
class MessageWaiting:
    """MDMF / ETSI EN 300 659-3 message waiting indication (type 0x82): VMWI on or off."""

    active: bool
    date_time: DateTime | None = None
    number: str | None = None
    message_count: int | None = None
    extra: tuple[Parameter, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.active, bool):
            raise InvalidMessage(f"active must be a bool, got {self.active!r}")
        if self.date_time is not None and not isinstance(self.date_time, DateTime):
            raise InvalidMessage("date_time must be a DateTime")
        _check_number("number", self.number)
        if self.message_count is not None and not 0 <= self.message_count <= 0xFF:
            raise InvalidMessage(f"message count must be 0..255, got {self.message_count!r}")
        _check_extra(self.extra, _MESSAGE_WAITING_FIELDS)

    def to_bytes(self) -> bytes:
        """Type, length, body and checksum (same as :func:`encode_message`)."""
        return encode_message(self)


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A well-framed message of a type we do not interpret (advice of charge, SMS, ...)."""

    message_type: int
    body: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.message_type <= 0xFF:
            raise InvalidMessage(f"message type must be a byte, got {self.message_type!r}")
        if self.message_type in _MODELLED_TYPES:
            raise InvalidMessage(f"message type 0x{self.message_type:02X} has its own class")
        if len(self.body) > BODY_MAX:
            raise InvalidMessage(f"message body is {len(self.body)} bytes (max 255)")

    def to_bytes(self) -> bytes:
        """Type, length, body and checksum (same as :func:`encode_message`)."""
        return encode_message(self)


CallerIdMessage = SdmfCallerId | SdmfVmwi | CallSetup | MessageWaiting | UnknownMessage

_MODELLED_TYPES: Final = frozenset(
    {MSG_SDMF_CALLER_ID, MSG_SDMF_VMWI, MSG_MDMF_CALL_SETUP, MSG_MDMF_MESSAGE_WAITING}
)


def _call_setup_params(msg: CallSetup) -> list[Parameter]:
    params: list[Parameter] = []
    if msg.date_time is not None:
        params.append(Parameter(P_DATE_TIME, msg.date_time.to_bytes()))
    if msg.number is not None:
        params.append(Parameter(P_CALLING_NUMBER, msg.number.encode("ascii")))
    if msg.number_absence is not None:
        params.append(Parameter(P_NUMBER_ABSENCE, msg.number_absence.value.encode("ascii")))
    if msg.called_number is not None:
        params.append(Parameter(P_CALLED_NUMBER, msg.called_number.encode("ascii")))
    if msg.name is not None:
        params.append(Parameter(P_NAME, msg.name.encode("latin-1")))
    if msg.name_absence is not None:
        params.append(Parameter(P_NAME_ABSENCE, msg.name_absence.value.encode("ascii")))
    if msg.redirecting_number is not None:
        params.append(Parameter(P_REDIRECTING_NUMBER, msg.redirecting_number.encode("ascii")))
    if msg.call_type is not None:
        params.append(Parameter(P_CALL_TYPE, bytes((msg.call_type,))))
    params.extend(msg.extra)
    return params


def _message_waiting_params(msg: MessageWaiting) -> list[Parameter]:
    value = VISUAL_INDICATOR_ON if msg.active else VISUAL_INDICATOR_OFF
    params = [Parameter(P_VISUAL_INDICATOR, bytes((value,)))]
    if msg.date_time is not None:
        params.append(Parameter(P_DATE_TIME, msg.date_time.to_bytes()))
    if msg.number is not None:
        params.append(Parameter(P_CALLING_NUMBER, msg.number.encode("ascii")))
    if msg.message_count is not None:
        params.append(Parameter(P_MESSAGE_COUNT, bytes((msg.message_count,))))
    params.extend(msg.extra)
    return params


def checksum(data: bytes) -> int:
    """The byte that makes ``data`` plus itself sum to zero modulo 256 (GR-30)."""
    return -sum(data) & 0xFF


def message_type_of(msg: CallerIdMessage) -> int:
    if isinstance(msg, SdmfCallerId):
        return MSG_SDMF_CALLER_ID
    if isinstance(msg, SdmfVmwi):
        return MSG_SDMF_VMWI
    if isinstance(msg, CallSetup):
        return MSG_MDMF_CALL_SETUP
    if isinstance(msg, MessageWaiting):
        return MSG_MDMF_MESSAGE_WAITING
    return msg.message_type


def _body(msg: CallerIdMessage) -> bytes:
    if isinstance(msg, SdmfCallerId):
        tail = msg.number if msg.number is not None else msg.absence.value  # type: ignore[union-attr]  # validated: one is set
        return msg.date_time.to_bytes() + tail.encode("ascii")
    if isinstance(msg, SdmfVmwi):
        return SDMF_VMWI_ON if msg.active else SDMF_VMWI_OFF
    if isinstance(msg, CallSetup):
        return b"".join(p.to_bytes() for p in _call_setup_params(msg))
    if isinstance(msg, MessageWaiting):
        return b"".join(p.to_bytes() for p in _message_waiting_params(msg))
    return msg.body


def encode_message(msg: CallerIdMessage) -> bytes:
    """Type, length, body and checksum of ``msg``, ready for the modulator."""
    body = _body(msg)
    if len(body) > BODY_MAX:
        raise InvalidMessage(f"message body is {len(body)} bytes; one length byte allows 255")
    head = bytes((message_type_of(msg), len(body))) + body
    return head + bytes((checksum(head),))


def split_parameters(body: bytes, data: bytes = b"") -> list[Parameter]:
    """The parameters of an MDMF body; raises :class:`LengthError` if one overruns."""
    params: list[Parameter] = []
    i = 0
    while i < len(body):
        if i + 2 > len(body):
            raise LengthError(f"parameter header at body offset {i} is cut short", data or body)
        ptype, plen = body[i], body[i + 1]
        if i + 2 + plen > len(body):
            raise LengthError(
                f"parameter 0x{ptype:02X} claims {plen} bytes but only {len(body) - i - 2} remain",
                data or body,
            )
        params.append(Parameter(ptype, bytes(body[i + 2 : i + 2 + plen])))
        i += 2 + plen
    return params


def _ascii_field(what: str, raw: bytes, data: bytes) -> str:
    try:
        text = raw.decode("ascii")
        _check_number(what, text)
    except (UnicodeDecodeError, InvalidMessage):
        raise FormatError(f"{what} {raw!r} is not a valid number", data) from None
    return text


def _absence_field(what: str, raw: bytes, data: bytes) -> Absence:
    try:
        return Absence(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise FormatError(
            f"{what} {raw!r} is neither 'P' (private) nor 'O' (unavailable)", data
        ) from None


def _single_byte(what: str, raw: bytes, data: bytes) -> int:
    if len(raw) != 1:
        raise LengthError(f"{what} must be 1 byte, got {len(raw)}", data)
    return raw[0]


def _unique(params: list[Parameter], modelled: frozenset[int], data: bytes) -> dict[int, bytes]:
    seen: dict[int, bytes] = {}
    for p in params:
        if p.type in modelled:
            if p.type in seen:
                raise FormatError(f"parameter 0x{p.type:02X} appears twice", data)
            seen[p.type] = p.value
    return seen


def _decode_call_setup(body: bytes, data: bytes) -> CallSetup:
    params = split_parameters(body, data)
    if not params:
        raise FormatError("call set-up message has no parameters", data)
    seen = _unique(params, _CALL_SETUP_FIELDS, data)
    date_time = DateTime.from_bytes(seen[P_DATE_TIME], data) if P_DATE_TIME in seen else None
    number_absence = name_absence = None
    if P_NUMBER_ABSENCE in seen:
        number_absence = _absence_field("number absence", seen[P_NUMBER_ABSENCE], data)
    if P_NAME_ABSENCE in seen:
        name_absence = _absence_field("name absence", seen[P_NAME_ABSENCE], data)
    name = None
    if P_NAME in seen:
        name = seen[P_NAME].decode("latin-1")
        try:
            _check_name(name)
        except InvalidMessage as exc:
            raise FormatError(str(exc), data) from None
    try:
        return CallSetup(
            date_time=date_time,
            number=_ascii_field("number", seen[P_CALLING_NUMBER], data)
            if P_CALLING_NUMBER in seen
            else None,
            number_absence=number_absence,
            name=name,
            name_absence=name_absence,
            redirecting_number=_ascii_field("redirecting number", seen[P_REDIRECTING_NUMBER], data)
            if P_REDIRECTING_NUMBER in seen
            else None,
            called_number=_ascii_field("called number", seen[P_CALLED_NUMBER], data)
            if P_CALLED_NUMBER in seen
            else None,
            call_type=_single_byte("call type", seen[P_CALL_TYPE], data)
            if P_CALL_TYPE in seen
            else None,
            extra=tuple(p for p in params if p.type not in _CALL_SETUP_FIELDS),
        )
    except InvalidMessage as exc:
        raise FormatError(str(exc), data) from None


def _decode_message_waiting(body: bytes, data: bytes) -> MessageWaiting:
    params = split_parameters(body, data)
    seen = _unique(params, _MESSAGE_WAITING_FIELDS, data)
    if P_VISUAL_INDICATOR not in seen:
        raise FormatError("message waiting message lacks the visual indicator (0x0B)", data)
    indicator = _single_byte("visual indicator", seen[P_VISUAL_INDICATOR], data)
    if indicator not in (VISUAL_INDICATOR_ON, VISUAL_INDICATOR_OFF):
        raise FormatError(f"visual indicator 0x{indicator:02X} is neither 0xFF nor 0x00", data)
    return MessageWaiting(
        active=indicator == VISUAL_INDICATOR_ON,
        date_time=DateTime.from_bytes(seen[P_DATE_TIME], data) if P_DATE_TIME in seen else None,
        number=_ascii_field("number", seen[P_CALLING_NUMBER], data)
        if P_CALLING_NUMBER in seen
        else None,
        message_count=_single_byte("message count", seen[P_MESSAGE_COUNT], data)
        if P_MESSAGE_COUNT in seen
        else None,
        extra=tuple(p for p in params if p.type not in _MESSAGE_WAITING_FIELDS),
    )


def _decode_sdmf(body: bytes, data: bytes) -> SdmfCallerId:
    if len(body) < DATE_TIME_LEN + 1:
        raise LengthError(f"SDMF body of {len(body)} bytes cannot hold date/time and number", data)
    date_time = DateTime.from_bytes(body[:DATE_TIME_LEN], data)
    tail = body[DATE_TIME_LEN:]
    if tail in (b"P", b"O"):
        return SdmfCallerId(date_time, absence=Absence(tail.decode("ascii")))
    return SdmfCallerId(date_time, number=_ascii_field("number", tail, data))


def _decode_sdmf_vmwi(body: bytes, data: bytes) -> SdmfVmwi:
    if body == SDMF_VMWI_ON:
        return SdmfVmwi(True)
    if body == SDMF_VMWI_OFF:
        return SdmfVmwi(False)
    raise FormatError(f"SDMF VMWI body {body.hex()} is neither 424242 (on) nor 6f6f6f (off)", data)


def decode_message(data: bytes) -> CallerIdMessage:
    """Parse one complete message (type, length, body, checksum).

    Raises :class:`LengthError`, :class:`ChecksumError` or :class:`FormatError` naming the fault.
    """
    data = bytes(data)
    if len(data) < 3:
        raise LengthError(f"{len(data)} bytes cannot hold type, length and checksum", data)
    declared = data[1]
    if len(data) != declared + 3:
        raise LengthError(
            f"length field says {declared} body bytes but {len(data) - 3} were received", data
        )
    expected = checksum(data[:-1])
    if data[-1] != expected:
        raise ChecksumError(
            f"bad checksum: received 0x{data[-1]:02X}, the message sums to 0x{expected:02X}", data
        )
    mtype, body = data[0], data[2:-1]
    if mtype == MSG_SDMF_CALLER_ID:
        return _decode_sdmf(body, data)
    if mtype == MSG_SDMF_VMWI:
        return _decode_sdmf_vmwi(body, data)
    if mtype == MSG_MDMF_CALL_SETUP:
        return _decode_call_setup(body, data)
    if mtype == MSG_MDMF_MESSAGE_WAITING:
        return _decode_message_waiting(body, data)
    return UnknownMessage(mtype, body)
