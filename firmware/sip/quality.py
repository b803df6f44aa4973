"""Call quality figures and a listening-quality estimate from them (sans-IO, pure arithmetic).

The estimate is the ITU-T G.107 E-model with its default values for everything a VoIP box
cannot measure (loudness ratings, room noise, sidetone, echo loss), keeping the three terms
it can: the delay impairment Idd, the codec's equipment impairment Ie and its packet-loss
robustness Bpl (ITU-T G.113 Appendix I).  The rating factor R maps to a MOS on the
conversational-quality scale with G.107 Annex B.  This is a planning-grade figure for the
console and the CDR, not a measurement per ITU-T P.863.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# G.107 (06/2015) section 7.1 and Table 3: with every parameter at its default value,
# Ro - Is = 93.2, the R of an undistorted, undelayed connection.
R_DEFAULT = 93.2
# G.107 section 7.4: the delay impairment Idd is zero up to Ta = 100 ms.
IDD_THRESHOLD_MS = 100.0
# G.107 equation 7-29: Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl).
IE_EFF_CEILING = 95.0
BURST_RATIO_RANDOM = 1.0  # G.107 Table 3 default: random (independent) loss
# G.107 Annex B, equation B-4.
MOS_MIN = 1.0
MOS_MAX = 4.5


@dataclass(frozen=True)
class CodecImpairment:
    ie: float  # equipment impairment factor
    bpl: float  # packet-loss robustness factor


# ITU-T G.113 (11/2007) Appendix I, Table I.1 (Ie) and Table I.3 (Bpl).  pjmedia conceals lost
# G.711 frames (its PLC), so G.711 takes the "with PLC" robustness.
G711 = CodecImpairment(ie=0.0, bpl=25.1)
# GSM 06.10 full rate: Ie = 20 (Table I.1); Table I.3 has no Bpl for it, so the value of its
# sibling GSM-EFR (10) is used.
GSM_FR = CodecImpairment(ie=20.0, bpl=10.0)
# Not tabulated in G.113: iLBC 15.2 kbit/s and Speex are rated like GSM-EFR-class codecs,
# Ie ~ 10 with Bpl 10, an estimate.  G.722 belongs to the wideband E-model (G.107.1); on this
# narrowband scale it is counted as transparent as G.711 (bridged at 8 kHz here anyway).
ESTIMATED = CodecImpairment(ie=10.0, bpl=10.0)
# Unknown codec: transparent but without concealment, G.711 without PLC (Table I.3: 4.3).
UNKNOWN = CodecImpairment(ie=0.0, bpl=4.3)

CODEC_IMPAIRMENTS: dict[str, CodecImpairment] = {
    "PCMU": G711,
    "PCMA": G711,
    "G722": G711,
    "GSM": GSM_FR,
    "iLBC": ESTIMATED,
    "speex": ESTIMATED,
}


def codec_impairment(codec: str) -> CodecImpairment:
    """Ie/Bpl of a codec by pjmedia name ("PCMU", "PCMU/8000/1", "speex/16000" ...)."""
    return CODEC_IMPAIRMENTS.get(codec.split("/", 1)[0], UNKNOWN)


def delay_impairment(one_way_ms: float) -> float:
    """G.107 section 7.4, equations 7-27/7-28: Idd for an absolute one-way delay Ta (ms)."""
    if one_way_ms <= IDD_THRESHOLD_MS:
        return 0.0
    x = math.log10(one_way_ms / 100.0) / math.log10(2.0)
    idd: float = 25.0 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    return idd


def effective_equipment_impairment(codec: CodecImpairment, loss_pct: float) -> float:
    """G.107 equation 7-29 with random loss (BurstR = 1)."""
    ppl = min(max(loss_pct, 0.0), 100.0)
    return codec.ie + (IE_EFF_CEILING - codec.ie) * ppl / (ppl / BURST_RATIO_RANDOM + codec.bpl)


def r_factor(codec: str, loss_pct: float, one_way_ms: float) -> float:
    """G.107 equation 7-1 with default Ro - Is and A = 0: R = 93.2 - Idd - Ie,eff."""
    if one_way_ms < 0 or math.isnan(one_way_ms) or math.isnan(loss_pct):
        raise ValueError(f"delay {one_way_ms} ms / loss {loss_pct} % is not a measurement")
    impairment = codec_impairment(codec)
    return (
        R_DEFAULT
        - delay_impairment(one_way_ms)
        - effective_equipment_impairment(impairment, loss_pct)
    )


def mos_from_r(r: float) -> float:
    """G.107 Annex B, equation B-4: the estimated conversational MOS for a rating R."""
    if r <= 0:
        return MOS_MIN
    if r >= 100:
        return MOS_MAX
    # the cubic dips just below 1 for R under ~6.5; the scale ends at 1
    return max(MOS_MIN, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)


def one_way_delay_ms(rtt_ms: float | None, jitter_buffer_ms: float, frame_ms: float) -> float:
    """Ta the far end hears: half the network round trip, the jitter buffer and one frame.

    Without an RTCP round trip yet, the network part counts as zero (loopback, LAN).
    """
    network = (rtt_ms or 0.0) / 2
    return network + max(jitter_buffer_ms, 0.0) + frame_ms


@dataclass(frozen=True)
class CallQuality:
    """One call's RTP figures as pjmedia's stream and RTCP statistics report them."""

    codec: str  # pjmedia codec name, e.g. "PCMU"
    rx_packets: int
    tx_packets: int
    rx_loss_pct: float  # lost / (received + lost), from RTP sequence numbers
    rx_jitter_ms: float  # RFC 3550 section 6.4.1 interarrival jitter, last value
    rtt_ms: float | None  # from RTCP SR/RR (RFC 3550 section 6.4.1); None before the first
    mos: float  # estimate, see the module doc
    jitter_buffer_ms: float = 0.0  # pjmedia's receive jitter buffer, average delay

    def __post_init__(self) -> None:
        if self.rx_packets < 0 or self.tx_packets < 0:
            raise ValueError(f"negative packet counts {self.rx_packets}/{self.tx_packets}")
        if not 0.0 <= self.rx_loss_pct <= 100.0:
            raise ValueError(f"loss {self.rx_loss_pct} % outside 0..100")
        if not MOS_MIN <= self.mos <= MOS_MAX:
            raise ValueError(f"MOS {self.mos} outside {MOS_MIN}..{MOS_MAX}")


def loss_pct(received: int, lost: int) -> float:
    total = received + lost
    return 100.0 * lost / total if total > 0 else 0.0


def call_quality(
    codec: str,
    rx_packets: int,
    tx_packets: int,
    rx_lost: int,
    rx_jitter_ms: float,
    rtt_ms: float | None,
    jitter_buffer_ms: float,
    frame_ms: float,
) -> CallQuality:
    """Assemble the figures and the MOS estimate for one call."""
    loss = loss_pct(rx_packets, max(rx_lost, 0))
    r = r_factor(codec, loss, one_way_delay_ms(rtt_ms, jitter_buffer_ms, frame_ms))
    return CallQuality(
        codec=codec,
        rx_packets=rx_packets,
        tx_packets=tx_packets,
        rx_loss_pct=loss,
        rx_jitter_ms=max(rx_jitter_ms, 0.0),
        rtt_ms=rtt_ms,
        mos=mos_from_r(r),
        jitter_buffer_ms=max(jitter_buffer_ms, 0.0),
    )
