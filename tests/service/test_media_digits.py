"""An FXS port's DTMF receiver runs only while its phone is off hook."""

from __future__ import annotations

import time

from drivers.audio.format import PcmFormat
from drivers.audio.memory import MemoryStream
from firmware.dsp.dtmf import generate_dtmf
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
