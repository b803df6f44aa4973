"""Line-card wire protocol: frames, messages and the byte-stream codec (sans-IO).

Layout on the wire (full description in ``docs/linecard-protocol.md``)::

    0x00 | COBS( seq u8 | ack u8 | type u8 | payload 0..64 | crc16 u16 ) | 0x00

Every frame is COBS-encoded between ``0x00`` delimiters, so a receiver resynchronises at
the next ``0x00`` after any garbage.  The CRC is CRC-16/GENIBUS (CCITT polynomial,
final XOR) over header and payload.  Message types below ``0x10`` are link control
(unsequenced); the others are sequenced, acknowledged and retransmitted by
:mod:`drivers.linecard.session`.

This module does no I/O.  :class:`FrameDecoder` turns bytes into :class:`Frame` objects or
:class:`FrameError` values; :meth:`Frame.message` turns a frame into one of the frozen
message dataclasses.  Malformed input only ever produces this module's exception types.
"""

from __future__ import annotations

import binascii
import enum
import struct
import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

# --- numbers -----------------------------------------------------------------------

PROTOCOL_VERSION = 1
# CRC-16/GENIBUS: the CCITT polynomial 0x1021, init 0xFFFF, no reflection, final XOR
# 0xFFFF, check value 0xD64E over "123456789" (Greg Cook's CRC catalogue, aliases
# CRC-16/EPC, CRC-16/DARC).  Not CRC-16/CCITT-FALSE: without the final XOR a frame's CRC
# residue is zero, so a frame that gains trailing zero bytes (a delimiter hit by a bit
# flip) still checks; the hostile-wire tests found exactly that.
CRC_INIT = 0xFFFF
CRC_XOR_OUT = 0xFFFF
CRC_CHECK_VALUE = 0xD64E
HEADER_SIZE = 3  # seq, ack, type
CRC_SIZE = 2
# Chosen so that the largest frame (HelloAck with 32 ports) fits and one frame takes
# under 7 ms at 115200 Bd, keeping head-of-line blocking small.
MAX_PAYLOAD = 64
MAX_RAW_FRAME = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
# COBS adds one byte per 254 data bytes, plus the leading code byte (Cheshire & Baker,
# "Consistent Overhead Byte Stuffing", IEEE/ACM ToN 7(2), 1999).
MAX_ENCODED_FRAME = MAX_RAW_FRAME + 1 + MAX_RAW_FRAME // 254
DELIMITER = 0x00
MAX_PORTS = 32
SEQ_MODULUS = 256
# First type that is sequenced; below it are link-control frames.
FIRST_SEQUENCED_TYPE = 0x10


# --- errors ------------------------------------------------------------------------


class LinecardError(Exception):
    """Base of every error the line-card protocol raises."""


class LocalProtocolError(LinecardError):
    """We broke the protocol: our code asked for something the protocol forbids."""


class InvalidMessage(LocalProtocolError, ValueError):
    """A message was constructed with a field out of range."""


class RemoteProtocolError(LinecardError):
    """The peer (or the wire) broke the protocol."""


class FrameError(RemoteProtocolError):
    """Bytes between two delimiters were not a valid frame (COBS, length or CRC)."""


class MessageError(RemoteProtocolError):
    """A frame was intact but its message was unknown or malformed."""


# --- enumerations ------------------------------------------------------------------


class PortKind(enum.IntEnum):
    FXS = 1  # SLIC: a phone plugs in here
    FXO = 2  # DAA: a PSTN line plugs in here


class Polarity(enum.IntEnum):
    FORWARD = 0
    REVERSE = 1


class FaultKind(enum.IntEnum):
    OVER_CURRENT = 1
    THERMAL = 2
    FOREIGN_VOLTAGE = 3


class Impedance(enum.IntEnum):
    """AC termination impedance presets of the SLIC/DAA."""

    R600 = 1  # 600 ohm (North America, ITU-T G.712 reference)
    R900 = 2  # 900 ohm
    TBR21 = 3  # 270 ohm + (750 ohm || 150 nF), ETSI TBR 21 (most of Europe)
    AUSTRALIA = 4  # 220 ohm + (820 ohm || 120 nF)
    R370_620_310NF = 5  # 370 ohm + (620 ohm || 310 nF), Germany FTZ 1TR110
    R320_1050_230NF = 6  # 320 ohm + (1050 ohm || 230 nF), United Kingdom BT


class LineTestOutcome(enum.IntEnum):
    PASS = 0
    FAIL = 1
    UNSUPPORTED = 2


class RejectReason(enum.IntEnum):
    UNKNOWN_PORT = 1
    WRONG_PORT_KIND = 2
    BAD_PARAMETER = 3
    BUSY = 4  # e.g. ring requested on an off-hook FXS port
    UNSUPPORTED = 5
    MALFORMED = 6  # the card could not parse the command


class Capability(enum.IntFlag):
    NONE = 0
    DTMF_DETECT = 0x0001  # the card reports Digit events itself
    LINE_TEST = 0x0002
    ON_HOOK_TRANSMISSION = 0x0004
    POLARITY_REVERSAL = 0x0008


class StatusFlag(enum.IntFlag):
    NONE = 0
    OFF_HOOK = 0x01  # FXS: phone off hook; FXO: line seized
    RINGING = 0x02  # FXS: ring generator on
    REVERSED = 0x04
    LOOP_CURRENT = 0x08  # FXO
    RING_DETECT = 0x10  # FXO
    ON_HOOK_TX = 0x20
    FAULT = 0x40


# --- messages ----------------------------------------------------------------------

_RANGES = {
    "B": (0, 0xFF),
    "H": (0, 0xFFFF),
    "I": (0, 0xFFFF_FFFF),
    "h": (-0x8000, 0x7FFF),
}
_MESSAGE_TYPES: dict[int, type[Message]] = {}


@dataclass(frozen=True)
class Message:
    """Base of every message.  Subclasses set ``TYPE`` and, for fixed layouts, ``FORMAT``.

    ``FORMAT`` holds one struct code per dataclass field, in field order (big-endian).
    Fields typed as an ``IntEnum`` or ``IntFlag`` travel as their integer value;
    ``bool`` fields as one byte that must be 0 or 1.
    """

    TYPE: ClassVar[int]
    FORMAT: ClassVar[str] = ""
    # Which end may send it: "host", "card" or "both".
    SENDER: ClassVar[str] = "both"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "TYPE" in cls.__dict__:
            if cls.TYPE in _MESSAGE_TYPES:
                raise TypeError(f"message type 0x{cls.TYPE:02x} defined twice")
            _MESSAGE_TYPES[cls.TYPE] = cls

    @classmethod
    def sequenced(cls) -> bool:
        return cls.TYPE >= FIRST_SEQUENCED_TYPE

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f, code in zip(fields(self), self.FORMAT, strict=False):
            value = getattr(self, f.name)
            kind = hints[f.name]
            if kind is bool:
                if not isinstance(value, bool):
                    raise InvalidMessage(f"{type(self).__name__}.{f.name} must be a bool")
                continue
            if isinstance(kind, type) and issubclass(kind, enum.Enum):
                if not isinstance(value, kind):
                    raise InvalidMessage(
                        f"{type(self).__name__}.{f.name} must be a {kind.__name__}, got {value!r}"
                    )
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidMessage(f"{type(self).__name__}.{f.name} must be an int")
            low, high = _RANGES[code]
            if not low <= int(value) <= high:
                raise InvalidMessage(
                    f"{type(self).__name__}.{f.name}={value} outside {low}..{high}"
                )
        if "port" in hints:
            port = getattr(self, "port")  # noqa: B009 - not every message has a port
            if not 1 <= port <= MAX_PORTS:
                raise InvalidMessage(f"{type(self).__name__}.port={port} outside 1..{MAX_PORTS}")
        self._validate()

    def _validate(self) -> None:
        """Per-message checks beyond field ranges."""

    def to_bytes(self) -> bytes:
        """The payload bytes (no frame header, no CRC)."""
        values = [int(getattr(self, f.name)) for f in fields(self)]
        return struct.pack(">" + self.FORMAT, *values)

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        """Parse a payload; raises :class:`MessageError` naming what was wrong."""
        try:
            raw = struct.unpack(">" + cls.FORMAT, payload)
        except struct.error:
            size = struct.calcsize(">" + cls.FORMAT)
            raise MessageError(
                f"{cls.__name__}: payload is {len(payload)} bytes, expected {size}"
            ) from None
        return cls._build(cls, dict(zip([f.name for f in fields(cls)], raw, strict=True)))

    @staticmethod
    def _build(cls: type[_M], raw: dict[str, int]) -> _M:
        hints = _hints(cls)
        kwargs: dict[str, Any] = {}
        for name, value in raw.items():
            kind = hints[name]
            if kind is bool:
                if value not in (0, 1):
                    raise MessageError(f"{cls.__name__}.{name}: {value} is not 0 or 1")
                kwargs[name] = bool(value)
            elif isinstance(kind, type) and issubclass(kind, enum.Enum):
                try:
                    kwargs[name] = kind(value)
                except ValueError:
                    raise MessageError(
                        f"{cls.__name__}.{name}: {value} is not a {kind.__name__}"
                    ) from None
            else:
                kwargs[name] = value
        try:
            return cls(**kwargs)
        except InvalidMessage as exc:
            raise MessageError(str(exc)) from None


_M = typing.TypeVar("_M", bound=Message)
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


# Link control (unsequenced) -----------------------------------------------------------


@dataclass(frozen=True)
class Hello(Message):
    """Host -> card: open a session.  Repeated until a matching :class:`HelloAck`."""

    TYPE = 0x01
    FORMAT = "BI"
    SENDER = "host"
    version: int
    nonce: int  # host's session id, echoed by the card


@dataclass(frozen=True)
class HelloAck(Message):
    """Card -> host: accept a session and describe the card."""

    TYPE = 0x02
    SENDER = "card"
    version: int
    nonce: int
    boot_id: int  # random per card boot: a change means the card reset
    firmware: tuple[int, int, int]
    capabilities: Capability
    ports: tuple[PortKind, ...]

    _HEAD: ClassVar[str] = ">BIIBBBHB"

    def __post_init__(self) -> None:
        for name, value, high in (
            ("version", self.version, 0xFF),
            ("nonce", self.nonce, 0xFFFF_FFFF),
            ("boot_id", self.boot_id, 0xFFFF_FFFF),
        ):
            if not isinstance(value, int) or not 0 <= value <= high:
                raise InvalidMessage(f"HelloAck.{name}={value!r} outside 0..{high}")
        if len(self.firmware) != 3 or not all(0 <= v <= 0xFF for v in self.firmware):
            raise InvalidMessage(f"HelloAck.firmware={self.firmware!r}: need 3 bytes")
        if not isinstance(self.capabilities, Capability):
            raise InvalidMessage("HelloAck.capabilities must be a Capability")
        if not 1 <= len(self.ports) <= MAX_PORTS:
            raise InvalidMessage(f"HelloAck: {len(self.ports)} ports, need 1..{MAX_PORTS}")
        if not all(isinstance(p, PortKind) for p in self.ports):
            raise InvalidMessage("HelloAck.ports must be PortKind values")

    def to_bytes(self) -> bytes:
        head = struct.pack(
            self._HEAD,
            self.version,
            self.nonce,
            self.boot_id,
            *self.firmware,
            int(self.capabilities),
            len(self.ports),
        )
        return head + bytes(int(p) for p in self.ports)

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        size = struct.calcsize(cls._HEAD)
        if len(payload) < size:
            raise MessageError(f"HelloAck: payload is {len(payload)} bytes, need >= {size}")
        version, nonce, boot_id, major, minor, patch, caps, count = struct.unpack(
            cls._HEAD, payload[:size]
        )
        kinds = payload[size:]
        if len(kinds) != count:
            raise MessageError(f"HelloAck: announces {count} ports but carries {len(kinds)}")
        try:
            ports = tuple(PortKind(k) for k in kinds)
        except ValueError:
            raise MessageError(f"HelloAck: unknown port kind in {kinds.hex()}") from None
        try:
            return cls(version, nonce, boot_id, (major, minor, patch), Capability(caps), ports)
        except InvalidMessage as exc:
            raise MessageError(str(exc)) from None

    def kind(self, port: int) -> PortKind:
        """Kind of port number ``port`` (1-based)."""
        return self.ports[port - 1]


@dataclass(frozen=True)
class Heartbeat(Message):
    """Either way: sent when nothing else was sent for a heartbeat interval."""

    TYPE = 0x03
    FORMAT = "I"
    session_id: int  # host: its Hello nonce; card: its boot id


@dataclass(frozen=True)
class Ack(Message):
    """Either way: acknowledges (via the header's ack field) when there is nothing to send."""

    TYPE = 0x04
    FORMAT = ""


@dataclass(frozen=True)
class NotConnected(Message):
    """Card -> host: the card has no session (it just booted or reset)."""

    TYPE = 0x05
    FORMAT = "I"
    SENDER = "card"
    boot_id: int


# Commands (host -> card, sequenced) ---------------------------------------------------

# Ringing frequencies in use run from 16 2/3 Hz (parts of Europe) to 50 Hz; the range is
# what common SLIC ring generators synthesise.
RING_FREQUENCY_MIN_HZ = 15
RING_FREQUENCY_MAX_HZ = 68
MAX_CADENCE_SEGMENTS = 4


@dataclass(frozen=True)
class Ring(Message):
    """Ring an FXS port with a repeating cadence of (on_ms, off_ms) pairs until StopRing."""

    TYPE = 0x20
    SENDER = "host"
    port: int
    cadence: tuple[tuple[int, int], ...]
    frequency_hz: int = 20

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 1 <= self.port <= MAX_PORTS:
            raise InvalidMessage(f"Ring.port={self.port!r} outside 1..{MAX_PORTS}")
        if not RING_FREQUENCY_MIN_HZ <= self.frequency_hz <= RING_FREQUENCY_MAX_HZ:
            raise InvalidMessage(
                f"Ring.frequency_hz={self.frequency_hz} outside "
                f"{RING_FREQUENCY_MIN_HZ}..{RING_FREQUENCY_MAX_HZ}"
            )
        if not 1 <= len(self.cadence) <= MAX_CADENCE_SEGMENTS:
            raise InvalidMessage(
                f"Ring.cadence has {len(self.cadence)} segments, need 1..{MAX_CADENCE_SEGMENTS}"
            )
        for on, off in self.cadence:
            if not (0 < on <= 0xFFFF and 0 <= off <= 0xFFFF):
                raise InvalidMessage(f"Ring.cadence segment ({on}, {off}) out of range")

    def to_bytes(self) -> bytes:
        out = struct.pack(">BBB", self.port, self.frequency_hz, len(self.cadence))
        return out + b"".join(struct.pack(">HH", on, off) for on, off in self.cadence)

    @classmethod
    def from_bytes(cls, payload: bytes) -> Self:
        if len(payload) < 3:
            raise MessageError(f"Ring: payload is {len(payload)} bytes, need >= 3")
        port, frequency, count = payload[0], payload[1], payload[2]
        body = payload[3:]
        if len(body) != 4 * count:
            raise MessageError(f"Ring: {count} cadence segments but {len(body)} bytes")
        cadence = tuple(struct.unpack(">HH", body[i : i + 4]) for i in range(0, len(body), 4))
        try:
            return cls(port, tuple((int(a), int(b)) for a, b in cadence), frequency)
        except InvalidMessage as exc:
            raise MessageError(str(exc)) from None

    @property
    def period_ms(self) -> int:
        return sum(on + off for on, off in self.cadence)


@dataclass(frozen=True)
class StopRing(Message):
    TYPE = 0x21
    FORMAT = "B"
    SENDER = "host"
    port: int


@dataclass(frozen=True)
class SetPolarity(Message):
    TYPE = 0x22
    FORMAT = "BB"
    SENDER = "host"
    port: int
    polarity: Polarity


@dataclass(frozen=True)
class OnHookTransmission(Message):
    """Open the audio path of an on-hook FXS port (caller ID before/between rings)."""

    TYPE = 0x23
    FORMAT = "BB"
    SENDER = "host"
    port: int
    enable: bool


@dataclass(frozen=True)
class Seize(Message):
    """FXO: go off hook (draw loop current)."""

    TYPE = 0x24
    FORMAT = "B"
    SENDER = "host"
    port: int


@dataclass(frozen=True)
class Release(Message):
    """FXO: go back on hook."""

    TYPE = 0x25
    FORMAT = "B"
    SENDER = "host"
    port: int


# Gains are in hundredths of a dB; the SLIC/DAA gain stages span about +-12 dB.
GAIN_LIMIT_CDB = 1200


@dataclass(frozen=True)
class SetLineParams(Message):
    """Country-dependent analogue settings of one port."""

    TYPE = 0x26
    FORMAT = "BHBhh"
    SENDER = "host"
    port: int
    country: int  # ISO 3166-1 alpha-2, two ASCII letters packed big-endian ("US" = 0x5553)
    impedance: Impedance
    tx_gain_cdb: int = 0  # towards the line
    rx_gain_cdb: int = 0  # from the line

    def _validate(self) -> None:
        hi, lo = self.country >> 8, self.country & 0xFF
        if not (0x41 <= hi <= 0x5A and 0x41 <= lo <= 0x5A):
            raise InvalidMessage(f"SetLineParams.country=0x{self.country:04x}: not two A-Z")
        for name in ("tx_gain_cdb", "rx_gain_cdb"):
            if abs(getattr(self, name)) > GAIN_LIMIT_CDB:
                raise InvalidMessage(f"SetLineParams.{name} beyond +-{GAIN_LIMIT_CDB}")

    @staticmethod
    def country_code(text: str) -> int:
        """``"US"`` -> 0x5553."""
        if len(text) != 2 or not text.isascii() or not text.isalpha():
            raise InvalidMessage(f"country {text!r} is not two letters")
        up = text.upper()
        return (ord(up[0]) << 8) | ord(up[1])

    @property
    def country_name(self) -> str:
        return chr(self.country >> 8) + chr(self.country & 0xFF)


@dataclass(frozen=True)
class LineTest(Message):
    """Run the card's line test on a port; answered by :class:`LineTestResult`."""

    TYPE = 0x27
    FORMAT = "BB"
    SENDER = "host"
    port: int
    tag: int  # echoed in the result


@dataclass(frozen=True)
class StatusRequest(Message):
    """Ask for a :class:`PortStatus` of one port (after connecting, to learn the state)."""

    TYPE = 0x28
    FORMAT = "B"
    SENDER = "host"
    port: int


@dataclass(frozen=True)
class Flash(Message):
    """FXO: a timed hook flash towards the central office."""

    TYPE = 0x29
    FORMAT = "BH"
    SENDER = "host"
    port: int
    duration_ms: int


# Events (card -> host, sequenced) ---------------------------------------------------
# timestamp_ms is the card's millisecond clock (wraps at 2**32), taken when the card
# saw the change, so the host measures hook intervals without transport jitter.


@dataclass(frozen=True)
class HookChange(Message):
    TYPE = 0x40
    FORMAT = "BBI"
    SENDER = "card"
    port: int
    off_hook: bool
    timestamp_ms: int


@dataclass(frozen=True)
class RingDetect(Message):
    """FXO: ringing voltage started (active) or stopped; edges let the host see cadence."""

    TYPE = 0x41
    FORMAT = "BBI"
    SENDER = "card"
    port: int
    active: bool
    timestamp_ms: int


@dataclass(frozen=True)
class PolarityChange(Message):
    TYPE = 0x42
    FORMAT = "BBI"
    SENDER = "card"
    port: int
    polarity: Polarity
    timestamp_ms: int


@dataclass(frozen=True)
class LoopCurrent(Message):
    TYPE = 0x43
    FORMAT = "BBI"
    SENDER = "card"
    port: int
    present: bool
    timestamp_ms: int


@dataclass(frozen=True)
class Fault(Message):
    TYPE = 0x44
    FORMAT = "BBBI"
    SENDER = "card"
    port: int
    kind: FaultKind
    active: bool  # raised (True) or cleared
    timestamp_ms: int


DIGITS = "0123456789*#ABCD"


@dataclass(frozen=True)
class Digit(Message):
    """A DTMF digit the card detected itself (capability DTMF_DETECT)."""

    TYPE = 0x45
    FORMAT = "BBHI"
    SENDER = "card"
    port: int
    digit: int  # ASCII code of one of DIGITS
    duration_ms: int
    timestamp_ms: int

    def _validate(self) -> None:
        if chr(self.digit) not in DIGITS:
            raise InvalidMessage(f"Digit.digit={self.digit}: not one of {DIGITS}")

    @property
    def char(self) -> str:
        return chr(self.digit)


LOOP_OPEN = 0xFFFF  # loop resistance too high to measure


@dataclass(frozen=True)
class LineTestResult(Message):
    TYPE = 0x46
    FORMAT = "BBBhHHI"
    SENDER = "card"
    port: int
    tag: int
    outcome: LineTestOutcome
    foreign_voltage_dv: int  # tip-ring DC voltage in tenths of a volt when idle
    loop_resistance_ohm: int  # LOOP_OPEN when open
    ren_centi: int  # ringer equivalence number x 100
    timestamp_ms: int


@dataclass(frozen=True)
class PortStatus(Message):
    TYPE = 0x47
    FORMAT = "BBBI"
    SENDER = "card"
    port: int
    kind: PortKind
    flags: StatusFlag
    timestamp_ms: int


@dataclass(frozen=True)
class CommandRejected(Message):
    """The card refused a command.  ``command_seq`` is the rejected frame's sequence number."""

    TYPE = 0x48
    FORMAT = "BBBB"
    SENDER = "card"
    command_seq: int
    command_type: int
    port: int  # 0 when the command had no (valid) port
    reason: RejectReason

    def __post_init__(self) -> None:
        # port 0 is allowed here, unlike everywhere else; skip the generic port check.
        for name in ("command_seq", "command_type", "port"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 0xFF:
                raise InvalidMessage(f"CommandRejected.{name}={value!r} outside 0..255")
        if not isinstance(self.reason, RejectReason):
            raise InvalidMessage("CommandRejected.reason must be a RejectReason")


COMMANDS: tuple[type[Message], ...] = tuple(
    c for c in _MESSAGE_TYPES.values() if c.sequenced() and c.SENDER == "host"
)
EVENTS: tuple[type[Message], ...] = tuple(
    c for c in _MESSAGE_TYPES.values() if c.sequenced() and c.SENDER == "card"
)
MESSAGE_TYPES: dict[int, type[Message]] = dict(_MESSAGE_TYPES)


def decode_message(type_code: int, payload: bytes) -> Message:
    """Parse a payload of the given type; raises :class:`MessageError`."""
    cls = MESSAGE_TYPES.get(type_code)
    if cls is None:
        raise MessageError(f"unknown message type 0x{type_code:02x}")
    return cls.from_bytes(payload)


# --- frames ------------------------------------------------------------------------


def crc16(data: bytes) -> int:
    """CRC-16/GENIBUS (see CRC_INIT); binascii.crc_hqx computes the 0x1021 polynomial."""
    return binascii.crc_hqx(data, CRC_INIT) ^ CRC_XOR_OUT


@dataclass(frozen=True)
class Frame:
    """One frame before COBS: header, payload, CRC (the CRC is computed, not stored)."""

    seq: int
    ack: int
    type: int
    payload: bytes = b""

    def __post_init__(self) -> None:
        for name in ("seq", "ack", "type"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 0xFF:
                raise LocalProtocolError(f"Frame.{name}={value!r} outside 0..255")
        if len(self.payload) > MAX_PAYLOAD:
            raise LocalProtocolError(
                f"Frame payload is {len(self.payload)} bytes, limit {MAX_PAYLOAD}"
            )
        if self.type < FIRST_SEQUENCED_TYPE and self.seq != 0:
            raise LocalProtocolError("link-control frames carry seq 0")

    @classmethod
    def of(cls, message: Message, *, seq: int = 0, ack: int = 0) -> Frame:
        return cls(seq, ack, message.TYPE, message.to_bytes())

    def to_bytes(self) -> bytes:
        """Header + payload + CRC (not yet COBS-encoded)."""
        body = bytes((self.seq, self.ack, self.type)) + self.payload
        return body + crc16(body).to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, raw: bytes) -> Frame:
        """Parse a de-COBSed frame; raises :class:`FrameError`."""
        if len(raw) < HEADER_SIZE + CRC_SIZE:
            raise FrameError(f"frame of {len(raw)} bytes is shorter than header + CRC")
        if len(raw) > MAX_RAW_FRAME:
            raise FrameError(f"frame of {len(raw)} bytes exceeds {MAX_RAW_FRAME}")
        body, crc = raw[:-CRC_SIZE], int.from_bytes(raw[-CRC_SIZE:], "big")
        if crc16(body) != crc:
            raise FrameError(f"CRC mismatch: got 0x{crc:04x}, computed 0x{crc16(body):04x}")
        seq, ack, type_code = body[0], body[1], body[2]
        if type_code < FIRST_SEQUENCED_TYPE and seq != 0:
            raise FrameError(f"link-control frame type 0x{type_code:02x} with seq {seq}")
        return cls(seq, ack, type_code, bytes(body[HEADER_SIZE:]))

    def message(self) -> Message:
        """The message this frame carries; raises :class:`MessageError`."""
        return decode_message(self.type, self.payload)

    def encode(self) -> bytes:
        """Wire bytes: delimiter, COBS-encoded frame, delimiter."""
        return b"\x00" + cobs_encode(self.to_bytes()) + b"\x00"


def encode(message: Message, *, seq: int = 0, ack: int = 0) -> bytes:
    """Wire bytes of one message."""
    return Frame.of(message, seq=seq, ack=ack).encode()


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    for block in data.split(b"\x00"):
        # A zero-free run longer than 254 bytes is split into 0xFF-coded chunks.
        while len(block) >= 254:
            out.append(0xFF)
            out += block[:254]
            block = block[254:]
        out.append(len(block) + 1)
        out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; raises :class:`FrameError`."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError("COBS: zero byte inside a frame")
        end = i + code
        if end > n:
            raise FrameError(f"COBS: code {code} at {i} runs past the end ({n} bytes)")
        out += data[i + 1 : end]
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


class FrameDecoder:
    """Bytes in, frames out; keeps at most one partial frame (``MAX_ENCODED_FRAME`` bytes).

    :meth:`feed` never raises on wire input: corrupt stretches come back as
    :class:`FrameError` values among the frames, in stream order, and decoding carries on
    at the next delimiter.
    """

    def __init__(self) -> None:
        self._partial = bytearray()
        self._overflow = False  # discarding an over-long run until the next delimiter
        self.frames_ok = 0
        self.frames_bad = 0

    @property
    def buffered(self) -> int:
        return len(self._partial)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        out: list[Frame | FrameError] = []
        start = 0
        n = len(data)
        while start < n:
            end = data.find(b"\x00", start)
            chunk = data[start:] if end < 0 else data[start:end]
            if not self._overflow:
                if len(self._partial) + len(chunk) > MAX_ENCODED_FRAME:
                    self._overflow = True
                    self._partial.clear()
                    self.frames_bad += 1
                    out.append(FrameError(f"no delimiter within {MAX_ENCODED_FRAME} bytes"))
                else:
                    self._partial += chunk
            if end < 0:
                break
            start = end + 1
            if self._overflow:
                self._overflow = False
                continue
            if self._partial:
                raw = bytes(self._partial)
                self._partial.clear()
                out.append(self._decode(raw))
        return out

    def _decode(self, encoded: bytes) -> Frame | FrameError:
        try:
            frame = Frame.from_bytes(cobs_decode(encoded))
        except FrameError as exc:
            self.frames_bad += 1
            return exc
        self.frames_ok += 1
        return frame
