"""A simulated line for the SIP media tests: a thread that plays the line's media clock."""

from __future__ import annotations

import threading
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from firmware.sip.audio import LineAudio

FRAME_S = 0.02
RATE = 8000
FRAME_SAMPLES = 160


def record_config(directory: Path) -> str:
    """baresip config lines that dump what it hears and sends to WAV files (module sndfile:
    ``dump-<time>-dec.wav`` is the decoded far-end audio).  baresip 1.0's aufile is a
    source only, it cannot play into a file."""
    directory.mkdir(parents=True, exist_ok=True)
    return f"module\t\t\tsndfile.so\nsnd_path\t\t{directory}\n"


def decoded_wav(directory: Path) -> Path:
    files = sorted(directory.glob("dump-*-dec.wav"))
    if not files:
        raise FileNotFoundError(f"baresip left no dump-*-dec.wav in {directory}")
    return files[-1]


def tone(freq_hz: float, seconds: float, amplitude: int = 8000) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def dominant_hz(pcm: npt.NDArray[np.int16], rate: int = RATE) -> float:
    x = pcm.astype(np.float64)
    x -= x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[int(np.argmax(spectrum))])


def rms(pcm: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0


def read_wav(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        channels, rate = w.getnchannels(), w.getframerate()
    return data[::channels].copy(), rate


class LineClock(threading.Thread):
    """Push 20 ms frames of ``source`` (looped, or silence) into the uplink on a 20 ms clock
    and keep every frame popped from the downlink, as a line's media thread does."""

    def __init__(self, audio: LineAudio) -> None:
        super().__init__(name=f"line{audio.port}", daemon=True)
        self.audio = audio
        self._source: npt.NDArray[np.int16] = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._loop = True
        self._pos = 0
        self._lock = threading.Lock()
        self._received: list[bytes] = []
        self._halt = threading.Event()

    def play(self, pcm: npt.NDArray[np.int16], loop: bool = True) -> None:
        pad = (-pcm.size) % FRAME_SAMPLES
        with self._lock:
            self._source = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
            self._loop, self._pos = loop, 0

    def received(self) -> npt.NDArray[np.int16]:
        with self._lock:
            return np.frombuffer(b"".join(self._received), dtype=np.int16)

    def clear_received(self) -> None:
        with self._lock:
            self._received.clear()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def run(self) -> None:
        due = time.monotonic()
        while not self._halt.is_set():
            with self._lock:
                if self._pos >= self._source.size:
                    if self._loop:
                        self._pos = 0
                if self._pos < self._source.size:
                    frame = self._source[self._pos : self._pos + FRAME_SAMPLES]
                    self._pos += FRAME_SAMPLES
                else:
                    frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            self.audio.uplink.push(frame.tobytes())
            out = self.audio.downlink.pop()
            with self._lock:
                self._received.append(out)
            due += FRAME_S
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.2:  # starved by a loaded machine: do not try to catch up
                due = time.monotonic()
