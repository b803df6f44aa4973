"""An FXS port's DTMF receiver runs only while its phone is off hook."""

from __future__ import annotations

import time

import numpy as np

from drivers.audio.format import PcmFormat
from drivers.audio.memory import MemoryStream
from firmware.dsp.dtmf import DtmfDetector, DtmfStart, generate_dtmf
from firmware.service.media import PortMedia


def run_with(off_hook: bool) -> list[str]:
    stream = MemoryStream(PcmFormat(8000, 20), paced=False)
    digits: list[str] = []
    media = PortMedia(
        1,
        stream,
        detect_dtmf=True,
        on_digit=lambda _port, digit: digits.append(digit),
        on_failure=lambda _port, error: digits.append(f"failed: {error}"),
    )
    media.listen_for_digits(off_hook)
    stream.say(generate_dtmf("159#").tobytes())
    media.start()
    deadline = time.monotonic() + 10
    while stream.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the last frames through the receiver
    media.stop()
    return digits


def test_digits_are_heard_off_hook() -> None:
    assert run_with(off_hook=True) == ["1", "5", "9", "#"]


def test_a_phone_on_hook_is_not_listened_to() -> None:
    assert run_with(off_hook=False) == []


def test_a_code_s_last_digit_stays_hushed_to_its_end_though_unhushed_at_its_start() -> None:
    """The record-toggle code (firmware.pbx.recording): ``*`` hushes the line towards its
    peer on the media thread; ``1`` completes the code and the line is unhushed, here at
    once from the detection callback (sooner than the event loop ever does).  The rest of
    the ``1`` tone must still not reach the peer, nor anything of the ``*``; what the phone
    says after the code does."""
    fmt = PcmFormat(8000, 20)
    line1, line2 = MemoryStream(fmt), MemoryStream(fmt)
    digits: list[str] = []

    def on_digit(_port: int, digit: str) -> None:
        digits.append(digit)
        if digit == "1":
            media1.link.hushed = False

    media1 = PortMedia(1, line1, detect_dtmf=True, on_digit=on_digit, on_failure=print)
    media2 = PortMedia(2, line2, detect_dtmf=False, on_digit=print, on_failure=print)
    media1.listen_for_digits(True)
    media1.link.join(media2.link)
    media1.link.hush_digits = "*"
    quiet = np.zeros(1600, dtype="<i2")
    speech = np.rint(8000 * np.sin(2 * np.pi * 1000 * np.arange(4000) / 8000)).astype("<i2")
    key_presses = generate_dtmf("*1", on_ms=120, off_ms=80)  # a phone's key held 120 ms
    line1.say(np.concatenate([quiet, key_presses, quiet, speech, quiet]).tobytes())
    media1.start()
    media2.start()
    deadline = time.monotonic() + 20
    while line1.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # the last frames through the hand-off
    media1.stop()
    media2.stop()
    heard = np.frombuffer(line2.heard(), "<i2")
    assert digits == ["*", "1"]
    assert [e.digit for e in DtmfDetector(8000).feed(heard) if isinstance(e, DtmfStart)] == []
    loud = np.sqrt(np.mean(heard[: len(heard) // 160 * 160].reshape(-1, 160) ** 2.0, axis=1))
    assert (loud > 1000).sum() >= 20  # the speech after the code passes (25 frames said)
