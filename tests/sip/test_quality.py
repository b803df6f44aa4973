"""The E-model MOS estimate (ITU-T G.107) and the call-quality record."""

from __future__ import annotations

import math

import pytest

from firmware.sip.quality import (
    G711,
    CallQuality,
    call_quality,
    delay_impairment,
    effective_equipment_impairment,
    mos_from_r,
    one_way_delay_ms,
    r_factor,
)


def test_default_connection_rates_93_2_and_mos_4_41() -> None:
    # G.107 section 7.1: all defaults give R = 93.2; Annex B maps it to MOS 4.41.
    assert r_factor("PCMU", 0.0, 0.0) == pytest.approx(93.2)
    assert mos_from_r(93.2) == pytest.approx(4.41, abs=0.005)


def test_mos_mapping_ends_and_monotony() -> None:
    assert mos_from_r(-5) == 1.0 and mos_from_r(0) == 1.0
    assert mos_from_r(100) == 4.5 and mos_from_r(120) == 4.5
    values = [mos_from_r(r) for r in range(0, 101, 5)]
    assert values == sorted(values)
    # G.107 Annex B figure B.1: R = 50 sits near MOS 2.6
    assert mos_from_r(50) == pytest.approx(2.58, abs=0.01)


def test_delay_impairment_starts_at_100_ms_and_grows() -> None:
    assert delay_impairment(0) == 0 and delay_impairment(100) == 0
    assert 0 < delay_impairment(150) < delay_impairment(300) < delay_impairment(600)
    # Ta = 400 ms: X = 2, Idd = 25 * ((1 + 64)^(1/6) - 3 * (1 + 64/729)^(1/6) + 2)
    x = 2.0
    want = 25 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    assert delay_impairment(400) == pytest.approx(want)


def test_loss_impairment_follows_g107_equation_7_29() -> None:
    assert effective_equipment_impairment(G711, 0) == 0
    # G.711 with PLC, 2 % random loss: 95 * 2 / (2 + 25.1)
    assert effective_equipment_impairment(G711, 2) == pytest.approx(95 * 2 / 27.1)
    assert r_factor("PCMA", 5, 50) < r_factor("PCMA", 1, 50) < r_factor("PCMA", 0, 50)
    # a low-rate codec starts lower
    assert r_factor("GSM", 0, 0) == pytest.approx(93.2 - 20)
    # unknown codecs are rated, not refused
    assert 0 < r_factor("opus/48000/2", 1, 50) < 93.2


def test_refuses_what_is_not_a_measurement() -> None:
    with pytest.raises(ValueError, match="not a measurement"):
        r_factor("PCMU", math.nan, 10)
    with pytest.raises(ValueError, match="not a measurement"):
        r_factor("PCMU", 0, -1)
    with pytest.raises(ValueError, match="loss"):
        CallQuality("PCMU", 1, 1, 101.0, 0.0, None, 4.0)
    with pytest.raises(ValueError, match="MOS"):
        CallQuality("PCMU", 1, 1, 0.0, 0.0, None, 4.9)


def test_call_quality_assembles_the_figures() -> None:
    q = call_quality("PCMU", 990, 1000, 10, 2.5, None, 40, 20)
    assert q.rx_loss_pct == pytest.approx(1.0)
    assert q.rtt_ms is None
    assert 4.0 < q.mos < 4.41
    assert one_way_delay_ms(None, 40, 20) == 60
    assert one_way_delay_ms(200, 40, 20) == 160
    bad = call_quality("PCMU", 500, 500, 500, 30, 600, 120, 20)
    assert bad.rx_loss_pct == 50 and bad.mos < 2.0
    # no packets yet: no loss, a nominal estimate
    assert call_quality("PCMU", 0, 0, 0, 0, None, 0, 20).rx_loss_pct == 0
