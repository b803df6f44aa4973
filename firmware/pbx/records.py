"""Call records: from call-control events to finished :class:`LegRecord` values (sans-IO).

Call control's shell tells a :class:`CallRecorder` what happens to each leg::

    rec.started("sip-17", call="c-9", direction="inbound", source=Party("0301234", "Ada"),
                destination=Party("101"), where=Place.trunk("office"), now=time.time())
    rec.answered("sip-17", time.time(), codec="PCMA")
    rec.quality("sip-17", jitter_ms=4.2, loss_pct=0.3, rtt_ms=38)      # any time, repeated
    rec.ended("sip-17", time.time(), "answered", sip_code=200, reason="BYE")
    for record in rec.drain(): ...                                     # to the store

``now`` is wall-clock POSIX seconds (``time.time()``): records are read by people and
billing, so they carry calendar time.

Telephony events race (a CANCEL crosses a 200 OK, a BYE overtakes the last RTCP report), so
an event the recorder cannot use is *ignored and counted* (``anomalies``), never raised: a
late ``answered`` after ``ended``, an unknown leg, a second ``started``, a time that runs
backwards (clamped).  Values that cannot be right (an unknown direction or disposition)
are the caller's bug and raise :class:`RecordError`.

In-flight legs are bounded: past ``max_in_flight`` the oldest is closed as ``failed`` and
emitted, and a leg still unanswered after ``SETUP_TIMEOUT_S`` is closed the same way at
``handle_timer`` (see ``next_deadline``), so a lost ``ended`` cannot leak.  ``close_all``
ends every leg at shutdown so that no record is lost on a clean stop.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Final

from firmware.store.legs import (
    DIRECTIONS,
    DISPOSITIONS,
    MAX_CODEC_CHARS,
    MAX_ID_CHARS,
    MAX_REASON_CHARS,
    MOS_MAX,
    MOS_MIN,
    SIP_CODE_MAX,
    SIP_CODE_MIN,
    Direction,
    Disposition,
    LegRecord,
    Party,
    Place,
    Quality,
    RecordError,
    clip,
)

log = logging.getLogger(__name__)

# The box has at most 32 analogue ports (ponte run) and pjsua2 carries at most 4 SIP legs
# (DESIGN.md, "pjsua2 as shipped"): 64 in flight leaves room for forks and ring groups.
MAX_IN_FLIGHT: Final = 64
# Finished records waiting for drain(); the shell drains after every event or tick.
MAX_FINISHED: Final = 1024
# RFC 3261 section 16.6 step 11: a proxy's INVITE timer C is "greater than 3 minutes"; no
# leg rings for 10 minutes, so one still unanswered then lost its end event.
SETUP_TIMEOUT_S: Final = 600.0

EVICTED_REASON: Final = "record closed: too many legs in flight"
TIMEOUT_REASON: Final = "record closed: no answer or end seen in time"
SHUTDOWN_REASON: Final = "record closed: service stopping"


# --- estimated MOS (ITU-T G.107 E-model, simplified) ---------------------------------------

# G.107 (06/2015) section 7.7 and Table 3: with every parameter at its default value the
# rating is R = 93.2 (R0 - Is at default noise and loudness).
R_DEFAULT: Final = 93.2
# G.107 section 7.4, Idd: no delay impairment up to Ta = 100 ms one way.
IDD_THRESHOLD_MS: Final = 100.0
# RTP voice frames are 20 ms in pjmedia's default ptime (RFC 3551 section 4.2 recommends 20).
PACKET_MS: Final = 20.0
# An adaptive jitter buffer holds about two jitter spans (pjmedia jbuf's usual prefetch);
# a planning assumption, not a measurement of the peer's buffer.
JITTER_BUFFER_FACTOR: Final = 2.0


@dataclass(frozen=True, slots=True)
class CodecImpairment:
    ie: float  # equipment impairment factor
    bpl: float  # packet-loss robustness factor
    source: str


# ITU-T G.113 (11/2007) Appendix I: Table I.1 (Ie) and Table I.3 (Bpl, random loss).
_G711 = CodecImpairment(0.0, 25.1, "G.113 App. I: G.711 with PLC (pjmedia conceals G.711)")
CODEC_IMPAIRMENT: Final[dict[str, CodecImpairment]] = {
    "PCMU": _G711,
    "PCMA": _G711,
    # G.722 is wideband; the narrowband E-model has no value for it.  Rated like G.711 on
    # the narrowband scale (it is at least as good as G.711 in the band G.711 carries).
    "G722": CodecImpairment(0.0, 25.1, "G.711's values (no narrowband value for G.722)"),
    "GSM": CodecImpairment(20.0, 10.0, "G.113 App. I: GSM-FR Ie 20; Bpl of GSM-EFR (none for FR)"),
    # Not in G.113: planning guesses of the order of other 8-15 kbit/s CELP codecs there.
    "iLBC": CodecImpairment(11.0, 20.0, "planning guess (not in G.113)"),
    "speex": CodecImpairment(11.0, 20.0, "planning guess (not in G.113)"),
}
_UNKNOWN_CODEC = CodecImpairment(11.0, 20.0, "planning guess for an unknown codec")


def _idd(ta_ms: float) -> float:
    """G.107 section 7.4, equation for Idd (delay impairment, echo-free path)."""
    if ta_ms <= IDD_THRESHOLD_MS:
        return 0.0
    x = math.log10(ta_ms / IDD_THRESHOLD_MS) / math.log10(2)
    return float(25.0 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2))


def r_to_mos(r: float) -> float:
    """G.107 Annex B, equation B-4."""
    if r <= 0:
        return MOS_MIN
    if r >= 100:
        return MOS_MAX
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def estimate_mos(
    codec: str, jitter_ms: float, loss_pct: float, rtt_ms: float | None = None
) -> float:
    """An E-model estimate of the listening MOS from RTCP figures (ITU-T G.107).

    R = 93.2 - Idd(Ta) - Ie,eff, with Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)
    (G.107 section 7.6), BurstR = 1 (RTCP's loss fraction says nothing about bursts), and a
    one-way delay Ta = RTT/2 + jitter buffer + one packet.  An estimate for comparing calls
    and spotting bad links, not a measurement.
    """
    imp = CODEC_IMPAIRMENT.get(codec, _UNKNOWN_CODEC)
    ppl = min(max(loss_pct, 0.0), 100.0)
    ie_eff = imp.ie + (95 - imp.ie) * ppl / (ppl + imp.bpl)
    network_ms = rtt_ms / 2 if rtt_ms is not None and rtt_ms > 0 else 0.0
    ta = network_ms + JITTER_BUFFER_FACTOR * max(jitter_ms, 0.0) + PACKET_MS
    r = R_DEFAULT - _idd(ta) - ie_eff
    return round(r_to_mos(r), 2)


# --- the recorder -----------------------------------------------------------------------


@dataclass(slots=True)
class _Leg:
    id: str
    call: str
    direction: Direction
    source: Party
    destination: Party
    where: Place
    start: float
    answer: float | None = None
    codec: str = ""
    quality: Quality | None = None


def _check_now(now: float, what: str) -> float:
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise RecordError(f"{what}: now must be finite POSIX seconds, not {now!r}")
    if now < 0:
        raise RecordError(f"{what}: now {now!r} is before 1970")
    return float(now)


class CallRecorder:
    """Legs in flight -> finished records.  Drive it from one thread (the event loop)."""

    def __init__(
        self,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_finished: int = MAX_FINISHED,
        setup_timeout_s: float = SETUP_TIMEOUT_S,
    ) -> None:
        if max_in_flight < 1 or max_finished < 1:
            raise ValueError("max_in_flight and max_finished must be at least 1")
        self._legs: OrderedDict[str, _Leg] = OrderedDict()  # oldest started first
        self._finished: deque[LegRecord] = deque()
        self._max_in_flight = max_in_flight
        self._max_finished = max_finished
        self._setup_timeout_s = setup_timeout_s
        self.anomalies: Counter[str] = Counter()
        self.dropped = 0  # finished records pushed out because nobody drained them

    # -- events -------------------------------------------------------------------------
    def started(
        self,
        leg: str,
        *,
        call: str,
        direction: Direction,
        source: Party,
        destination: Party,
        where: Place,
        now: float,
    ) -> bool:
        """A leg was seized (an INVITE sent or received, a port went off hook or rang)."""
        now = _check_now(now, "started")
        if direction not in DIRECTIONS:
            raise RecordError(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
        if not isinstance(source, Party) or not isinstance(destination, Party):
            raise RecordError("source and destination must be Party values (Party.clean)")
        if not isinstance(where, Place):
            raise RecordError("where must be a Place (Place.port / .trunk / .ip)")
        if not (isinstance(leg, str) and 0 < len(leg) <= MAX_ID_CHARS):
            raise RecordError(f"leg id must be 1..{MAX_ID_CHARS} characters")
        if not (isinstance(call, str) and 0 < len(call) <= MAX_ID_CHARS):
            raise RecordError(f"call id must be 1..{MAX_ID_CHARS} characters")
        if leg in self._legs:
            return self._anomaly("started twice", leg)
        while len(self._legs) >= self._max_in_flight:
            oldest = next(iter(self._legs))
            self.anomalies["evicted"] += 1
            log.warning("call records: more than %d legs in flight", self._max_in_flight)
            self._finish(oldest, now, "failed", None, EVICTED_REASON)
        self._legs[leg] = _Leg(leg, call, direction, source, destination, where, now)
        return True

    def answered(self, leg: str, now: float, *, codec: str = "") -> bool:
        """The leg was answered (200 OK, the called phone went off hook, the line answered)."""
        now = _check_now(now, "answered")
        state = self._legs.get(leg)
        if state is None:
            return self._anomaly("answer for an unknown or ended leg", leg)
        if state.answer is not None:
            return self._anomaly("answered twice", leg)
        if now < state.start:
            self.anomalies["clock ran backwards"] += 1
            now = state.start
        state.answer = now
        if codec:
            state.codec = clip(codec, MAX_CODEC_CHARS)
        return True

    def quality(
        self,
        leg: str,
        *,
        jitter_ms: float,
        loss_pct: float,
        rtt_ms: float | None = None,
        codec: str = "",
    ) -> bool:
        """The latest receive statistics of an IP leg (from RTCP); the last report wins."""
        state = self._legs.get(leg)
        if state is None:
            return self._anomaly("quality for an unknown or ended leg", leg)
        figures = (jitter_ms, loss_pct, 0.0 if rtt_ms is None else rtt_ms)
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in figures
        ):
            return self._anomaly("unusable quality figures", leg)
        if codec:
            state.codec = clip(codec, MAX_CODEC_CHARS)
        loss = min(float(loss_pct), 100.0)
        mos = estimate_mos(state.codec, float(jitter_ms), loss, rtt_ms)
        state.quality = Quality(round(float(jitter_ms), 3), round(loss, 3), mos)
        return True

    def ended(
        self,
        leg: str,
        now: float,
        disposition: Disposition,
        *,
        sip_code: int | None = None,
        reason: str = "",
    ) -> bool:
        """The leg is over.  ``disposition`` says how setup ended for a leg never answered
        (busy, no-answer, failed, cancelled, refused); an answered leg stays ``answered``
        whatever is passed.  ``sip_code``/``reason``: the final response or the BYE's reason."""
        now = _check_now(now, "ended")
        if disposition not in DISPOSITIONS:
            raise RecordError(
                f"disposition {disposition!r} is not one of {', '.join(DISPOSITIONS)}"
            )
        if leg not in self._legs:
            return self._anomaly("end for an unknown or ended leg", leg)
        code = sip_code
        if code is not None and (
            isinstance(code, bool)
            or not isinstance(code, int)
            or not SIP_CODE_MIN <= code <= SIP_CODE_MAX
        ):
            self.anomalies["bad SIP code"] += 1
            code = None
        self._finish(leg, now, disposition, code, reason)
        return True

    def close_all(self, now: float, reason: str = SHUTDOWN_REASON) -> int:
        """End every leg in flight (at shutdown); returns how many."""
        now = _check_now(now, "close_all")
        count = len(self._legs)
        for leg in list(self._legs):
            self._finish(leg, now, "failed", None, reason)
        return count

    # -- time ---------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """When the oldest unanswered leg times out, or None."""
        starts = [s.start for s in self._legs.values() if s.answer is None]
        return min(starts) + self._setup_timeout_s if starts else None

    def handle_timer(self, now: float) -> int:
        """Close legs left unanswered for ``SETUP_TIMEOUT_S``; returns how many."""
        now = _check_now(now, "handle_timer")
        stale = [
            s.id
            for s in self._legs.values()
            if s.answer is None and now - s.start >= self._setup_timeout_s
        ]
        for leg in stale:
            self.anomalies["setup timed out"] += 1
            self._finish(leg, now, "failed", None, TIMEOUT_REASON)
        return len(stale)

    # -- output -------------------------------------------------------------------------
    def drain(self) -> list[LegRecord]:
        """The records finished since the last drain, oldest first."""
        out = list(self._finished)
        self._finished.clear()
        return out

    @property
    def in_flight(self) -> int:
        return len(self._legs)

    def _finish(
        self,
        leg: str,
        now: float,
        disposition: Disposition,
        sip_code: int | None,
        reason: str,
    ) -> None:
        state = self._legs.pop(leg)
        end = now
        if end < (state.answer if state.answer is not None else state.start):
            self.anomalies["clock ran backwards"] += 1
            end = state.answer if state.answer is not None else state.start
        record = LegRecord(
            id=state.id,
            call=state.call,
            direction=state.direction,
            source=state.source,
            destination=state.destination,
            where=state.where,
            start=state.start,
            answer=state.answer,
            end=end,
            disposition="answered" if state.answer is not None else disposition,
            sip_code=sip_code,
            sip_reason=clip(reason, MAX_REASON_CHARS),
            codec=state.codec,
            quality=state.quality,
        )
        if len(self._finished) >= self._max_finished:
            self._finished.popleft()
            self.dropped += 1
            log.error(
                "call records: %d finished records not collected, dropping", self._max_finished
            )
        self._finished.append(record)

    def _anomaly(self, what: str, leg: object) -> bool:
        self.anomalies[what] += 1
        log.debug("call records: %s (%r) ignored", what, leg)
        return False


__all__ = [
    "CODEC_IMPAIRMENT",
    "MAX_IN_FLIGHT",
    "SETUP_TIMEOUT_S",
    "CallRecorder",
    "Direction",
    "Disposition",
    "LegRecord",
    "Party",
    "Place",
    "Quality",
    "RecordError",
    "estimate_mos",
    "r_to_mos",
]
