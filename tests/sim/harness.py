"""A simulated card and a host session on one fake clock, bytes delivered instantly.

Everything is real (the card core, the session, the codec); only time is simulated, so
timing assertions are exact and the tests take milliseconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from drivers.linecard import protocol as p
from drivers.linecard.session import Received, Role, Session, SessionEvent
from drivers.sim.card import SimCard
from drivers.sim.tones import FRAME_SAMPLES, Pcm

TICK = 0.02
M = TypeVar("M", bound=p.Message)


class Bench:
    def __init__(self, fxs: int = 2, fxo: int = 1, country: str = "US", **kw: object) -> None:
        self.now = 0.0
        self.card = SimCard(
            fxs=fxs,
            fxo=fxo,
            clock=lambda: self.now,
            country=country,
            rng=random.Random(1),
            **kw,  # type: ignore[arg-type]
        )
        self.host = Session(Role.HOST, rng=random.Random(2))
        self.host.start(self.now)
        self.events: list[tuple[float, SessionEvent]] = []
        self.to_host: dict[int, list[Pcm]] = {}  # audio frames the card sent, per port
        self.host_audio: dict[int, Pcm] = {}  # audio the host plays into a port
        self._next_tick = TICK
        self.cut = False  # the UART is cut: bytes are lost both ways
        self.pump()

    def pump(self) -> None:
        for _ in range(100):
            a = self.host.data_to_send()
            b = self.card.data_to_send()
            if not a and not b:
                break
            if self.cut:
                continue
            if a:
                self.card.receive_data(a)
            if b:
                self.host.receive_data(b, self.now)
        self.events += [(self.now, e) for e in self.host.events()]

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            times = [self._next_tick]
            for t in (self.card.next_deadline(), self.host.get_timer()):
                if t is not None:
                    times.append(t)
            t = min(times)
            if t > end:
                self.now = end
                self.pump()
                return
            self.now = max(self.now, t)
            self.card.advance()
            timer = self.host.get_timer()
            if timer is not None and timer <= self.now:
                self.host.handle_timer(self.now)
            if self._next_tick <= self.now:
                self._next_tick += TICK
                self._audio()
            self.pump()

    def _audio(self) -> None:
        for port, pcm in list(self.host_audio.items()):
            chunk, rest = pcm[:FRAME_SAMPLES], pcm[FRAME_SAMPLES:]
            if len(chunk) < FRAME_SAMPLES:
                chunk = np.concatenate([chunk, np.zeros(FRAME_SAMPLES - len(chunk), np.int16)])
            self.card.audio_in(port, chunk)
            if len(rest):
                self.host_audio[port] = rest
            else:
                del self.host_audio[port]
        for port, pcm in self.card.audio_tick().items():
            self.to_host.setdefault(port, []).append(pcm)

    def send(self, message: p.Message) -> int:
        seq = self.host.send(message, self.now)
        self.pump()
        return seq

    def received(self, kind: type[M]) -> list[M]:
        out = [e.message for _, e in self.events if isinstance(e, Received)]
        return [m for m in out if isinstance(m, kind)]

    def link_events(self, kind: type) -> list[SessionEvent]:
        return [e for _, e in self.events if isinstance(e, kind)]

    def heard_by_host(self, port: int, last_ms: int) -> Pcm:
        frames = self.to_host.get(port, [])[-last_ms // 20 :]
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)

    def at(self, when: float, action: Callable[[], object]) -> None:
        self.run(when - self.now)
        action()


def tone_power(pcm: Pcm, freq: float) -> float:
    """Fraction of the signal's energy at ``freq`` (+-15 Hz)."""
    if len(pcm) < 2:
        return 0.0
    x = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    total = spectrum.sum()
    if total == 0:
        return 0.0
    return float(spectrum[np.abs(freqs - freq) <= 15].sum() / total)
