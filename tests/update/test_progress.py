"""Progress figures (pure): bytes, percent, rate, time left."""

from __future__ import annotations

from firmware.update.progress import Meter


def test_rate_and_time_left_from_a_steady_transfer() -> None:
    m = Meter(total=100 * 2**20, now=0.0)
    snap = m.update(0, 0.0)
    assert snap.eta_s is None and snap.percent == 0
    for t in range(1, 11):
        snap = m.update(t * 5 * 2**20, float(t))
    assert abs(snap.rate - 5 * 2**20) < 1
    assert snap.percent == 50.0
    assert snap.eta_s is not None and abs(snap.eta_s - 10.0) < 0.01
    text = snap.render("write")
    assert "50.0 MiB / 100.0 MiB" in text and "50.0%" in text and "5.0 MiB/s" in text
    assert "0:10 left" in text


def test_no_time_passed_and_zero_total_are_safe() -> None:
    m = Meter(total=0, now=5.0)
    snap = m.update(0, 5.0)
    assert snap.percent == 100.0 and snap.eta_s is None
    assert "--:--" in snap.render("verify")


def test_long_eta_uses_hours() -> None:
    m = Meter(total=10 * 2**30, now=0.0)
    snap = m.update(2**20, 1.0)
    assert snap.eta_s is not None and snap.render("download").endswith(" left")
    assert ":" in snap.render("download").split()[-2]
