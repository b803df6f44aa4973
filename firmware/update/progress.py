"""Progress figures for a transfer: bytes, percent, rate and time left (pure)."""

from __future__ import annotations

from dataclasses import dataclass

RATE_WINDOW_S = 2.0  # smoothing time constant of the rate estimate


@dataclass(frozen=True)
class Snapshot:
    done: int
    total: int
    rate: float  # bytes per second, smoothed
    eta_s: float | None

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 100.0

    def render(self, phase: str) -> str:
        eta = "--:--" if self.eta_s is None else _clock(self.eta_s)
        return (
            f"{phase:<9} {_size(self.done)} / {_size(self.total)}  {self.percent:5.1f}%  "
            f"{_size(int(self.rate))}/s  {eta} left"
        )


class Meter:
    """Feed (done, now); read a Snapshot.  Rate is an exponentially weighted average."""

    def __init__(self, total: int, now: float) -> None:
        self.total = total
        self._t = now
        self._done = 0
        self.rate = 0.0

    def update(self, done: int, now: float) -> Snapshot:
        dt = now - self._t
        if dt > 0:
            instant = (done - self._done) / dt
            alpha = min(1.0, dt / RATE_WINDOW_S)
            self.rate = instant if self.rate == 0 else self.rate + alpha * (instant - self.rate)
            self._t, self._done = now, done
        eta = (self.total - done) / self.rate if self.rate > 0 else None
        return Snapshot(done, self.total, self.rate, eta)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )
