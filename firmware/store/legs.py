"""What one call leg leaves behind: the record type shared by call control and the store.

A *leg* is one seizure of one place: an FXS or FXO port, a SIP trunk, or an IP peer.  An
internal call from port 1 to port 2 has two legs (one per port) sharing a ``call`` id; a
call from a trunk to port 3 has the trunk's leg and port 3's leg.  The recorder in
``firmware.pbx.records`` builds these from call-control events; ``firmware.store.records``
keeps them.  This module is plain data (no SQLite, no I/O) so that both layers can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, get_args

Direction = Literal["inbound", "outbound", "internal"]
Disposition = Literal["answered", "busy", "no-answer", "failed", "cancelled", "refused"]
PlaceKind = Literal["port", "trunk", "ip"]

DIRECTIONS: Final[tuple[str, ...]] = get_args(Direction)
DISPOSITIONS: Final[tuple[str, ...]] = get_args(Disposition)
PLACE_KINDS: Final[tuple[str, ...]] = get_args(PlaceKind)

# Caps on stored text.  Numbers: ITU-T E.164 allows 15 digits, SIP user parts are longer
# (RFC 3261 sets no limit); 128 keeps any sane URI user part.  Names: caller ID names are
# at most 50 characters (ETSI EN 300 659-3 section 5.4.4), SIP display names are free text.
MAX_ID_CHARS: Final = 128
MAX_NUMBER_CHARS: Final = 128
MAX_NAME_CHARS: Final = 128
MAX_REASON_CHARS: Final = 256
MAX_CODEC_CHARS: Final = 32
# RFC 3261 section 7.2 / 21: final and provisional status codes are 100..699.
SIP_CODE_MIN: Final = 100
SIP_CODE_MAX: Final = 699
# ITU-T P.800 / G.107 Annex B: the MOS scale the E-model maps to runs from 1 to 4.5.
MOS_MIN: Final = 1.0
MOS_MAX: Final = 4.5


class RecordError(ValueError):
    """A record (or a recorder event) that cannot be right, with what is wrong."""


def clip(text: str, limit: int) -> str:
    """``text`` without control characters and at most ``limit`` characters.

    Names and reasons come from the network (caller ID, SIP display names and reason
    phrases); a record keeps what a person can read, never terminal escapes or NULs.
    """
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return cleaned[:limit]


def _text(value: object, what: str, limit: int) -> None:
    if not isinstance(value, str):
        raise RecordError(f"{what} must be text, not {type(value).__name__}")
    if len(value) > limit:
        raise RecordError(f"{what} is longer than {limit} characters")


def _time(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise RecordError(f"{what} must be a finite time after 1970, not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Party:
    """A calling or called party as the leg saw it."""

    number: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        _text(self.number, "number", MAX_NUMBER_CHARS)
        _text(self.name, "name", MAX_NAME_CHARS)

    @classmethod
    def clean(cls, number: str = "", name: str = "") -> Party:
        """A party from untrusted text: control characters blanked, over-long text cut."""
        return cls(clip(number, MAX_NUMBER_CHARS), clip(name, MAX_NAME_CHARS))


@dataclass(frozen=True, slots=True)
class Place:
    """Where a leg was: ``port 3`` (the card's port number), ``trunk NAME`` or ``ip ADDR``."""

    kind: PlaceKind
    name: str

    def __post_init__(self) -> None:
        if self.kind not in PLACE_KINDS:
            raise RecordError(f"place kind {self.kind!r} is not one of {', '.join(PLACE_KINDS)}")
        _text(self.name, "place name", MAX_ID_CHARS)
        if not self.name:
            raise RecordError(f"a {self.kind} place needs a name")
        if self.kind == "port" and not (self.name.isdigit() and int(self.name) >= 1):
            raise RecordError(f"port {self.name!r} is not a port number (1, 2, ...)")

    @classmethod
    def port(cls, number: int) -> Place:
        return cls("port", str(number))

    @classmethod
    def trunk(cls, name: str) -> Place:
        return cls("trunk", name)

    @classmethod
    def ip(cls, address: str) -> Place:
        return cls("ip", address)

    @classmethod
    def parse(cls, text: str) -> Place:
        """The inverse of ``str()``: ``"port 3"``, ``"trunk sipgate"``, ``"ip 192.0.2.7"``."""
        kind, _, name = text.partition(" ")
        if kind not in PLACE_KINDS:
            raise RecordError(f"{text!r} is not 'port N', 'trunk NAME' or 'ip ADDRESS'")
        return cls(kind, name)  # type: ignore[arg-type]  # checked just above

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class Quality:
    """Receive quality of an IP leg from RTCP: interarrival jitter, loss, an estimated MOS."""

    jitter_ms: float
    loss_pct: float
    mos: float

    def __post_init__(self) -> None:
        for what, value in (("jitter_ms", self.jitter_ms), ("loss_pct", self.loss_pct)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise RecordError(f"{what} must be a finite number >= 0, not {value!r}")
        if self.loss_pct > 100:
            raise RecordError(f"loss_pct {self.loss_pct} is over 100")
        if not (isinstance(self.mos, (int, float)) and MOS_MIN <= self.mos <= MOS_MAX):
            raise RecordError(f"mos {self.mos!r} is outside {MOS_MIN}..{MOS_MAX}")


@dataclass(frozen=True, slots=True)
class LegRecord:
    """One finished call leg.  Times are POSIX seconds (UTC), as ``time.time()`` gives.

    ``answer`` is set exactly when ``disposition`` is ``answered``: the disposition says how
    the setup ended, whatever ended the conversation afterwards (``sip_code``/``sip_reason``
    keep that).  ``quality`` is ``None`` for legs that carried no RTP (analogue-only legs).
    """

    id: str
    call: str
    direction: Direction
    source: Party
    destination: Party
    where: Place
    start: float
    answer: float | None
    end: float
    disposition: Disposition
    sip_code: int | None = None
    sip_reason: str = ""
    codec: str = ""
    quality: Quality | None = None

    def __post_init__(self) -> None:
        _text(self.id, "leg id", MAX_ID_CHARS)
        _text(self.call, "call id", MAX_ID_CHARS)
        if not self.id or not self.call:
            raise RecordError("a leg needs a leg id and a call id")
        if self.direction not in DIRECTIONS:
            raise RecordError(f"direction {self.direction!r} is not one of {', '.join(DIRECTIONS)}")
        if self.disposition not in DISPOSITIONS:
            raise RecordError(
                f"disposition {self.disposition!r} is not one of {', '.join(DISPOSITIONS)}"
            )
        if not isinstance(self.source, Party) or not isinstance(self.destination, Party):
            raise RecordError("source and destination must be Party values")
        if not isinstance(self.where, Place):
            raise RecordError("where must be a Place")
        start = _time(self.start, "start")
        end = _time(self.end, "end")
        if end < start:
            raise RecordError(f"the leg ends ({end}) before it starts ({start})")
        if self.answer is None:
            if self.disposition == "answered":
                raise RecordError("an answered leg needs its answer time")
        else:
            answer = _time(self.answer, "answer")
            if not start <= answer <= end:
                raise RecordError(f"answer time {answer} is outside the leg ({start}..{end})")
            if self.disposition != "answered":
                raise RecordError(f"a leg with an answer time cannot be {self.disposition!r}")
        if self.sip_code is not None and (
            isinstance(self.sip_code, bool)
            or not isinstance(self.sip_code, int)
            or not SIP_CODE_MIN <= self.sip_code <= SIP_CODE_MAX
        ):
            raise RecordError(f"SIP code {self.sip_code!r} is not {SIP_CODE_MIN}..{SIP_CODE_MAX}")
        _text(self.sip_reason, "SIP reason", MAX_REASON_CHARS)
        _text(self.codec, "codec", MAX_CODEC_CHARS)
        if self.quality is not None and not isinstance(self.quality, Quality):
            raise RecordError("quality must be a Quality or None")

    @property
    def answered(self) -> bool:
        return self.answer is not None

    @property
    def ring_s(self) -> float:
        """From seizure to answer, or to the end for a leg never answered."""
        return (self.answer if self.answer is not None else self.end) - self.start

    @property
    def talk_s(self) -> float:
        """Conversation time: answer to end; 0 for a leg never answered."""
        return self.end - self.answer if self.answer is not None else 0.0

    def to_json(self) -> dict[str, str | int | float | bool | None]:
        """The API's and the event stream's form (times ISO 8601, UTC)."""
        q = self.quality
        return {
            "id": self.id,
            "call": self.call,
            "direction": self.direction,
            "source_number": self.source.number,
            "source_name": self.source.name,
            "destination_number": self.destination.number,
            "destination_name": self.destination.name,
            "where": str(self.where),
            "start": iso_utc(self.start),
            "answer": iso_utc(self.answer) if self.answer is not None else None,
            "end": iso_utc(self.end),
            "ring_s": round(self.ring_s, 3),
            "talk_s": round(self.talk_s, 3),
            "disposition": self.disposition,
            "sip_code": self.sip_code,
            "sip_reason": self.sip_reason,
            "codec": self.codec,
            "jitter_ms": q.jitter_ms if q else None,
            "loss_pct": q.loss_pct if q else None,
            "mos": q.mos if q else None,
        }


def iso_utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
