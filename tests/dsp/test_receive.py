"""The per-line receiver: every detector sees every frame, levels match the level meter."""

from __future__ import annotations

import numpy as np
import pytest

from firmware.dsp import levels
from firmware.dsp.callerid import CallSetup, modulate_message
from firmware.dsp.dtmf import DtmfEnd, DtmfStart, generate_dtmf
from firmware.dsp.pcm import FRAME_SAMPLES
from firmware.dsp.profiles import get_profile
from firmware.dsp.progress import ProgressError, ToneDetected
from firmware.dsp.receive import LineReceiver
from firmware.dsp.tones import TonePlayer


def frames(pcm: np.ndarray) -> list[np.ndarray]:
    return [pcm[i : i + FRAME_SAMPLES] for i in range(0, pcm.size, FRAME_SAMPLES)]


def test_one_line_hears_caller_id_digits_and_busy():
    us = get_profile("US")
    line = np.concatenate(
        [
            np.zeros(4000, np.int16),
            modulate_message(CallSetup(number="5551234", name="ALICE")),
            np.zeros(4000, np.int16),
            generate_dtmf("19#"),
            np.zeros(4000, np.int16),
            TonePlayer(us.tones["busy"]).render_ms(5000),
        ]
    )
    rx = LineReceiver(us)
    meter = levels.LevelMeter(tau_frames=1)
    dtmf, cid, progress = [], [], []
    for f in frames(line):
        got = rx.feed(f)
        want = meter.feed(f)
        assert got.level.peak == want.peak and got.level.clipped == want.clipped
        assert got.level.power_dbm0 == pytest.approx(want.power_dbm0, abs=1e-9)
        dtmf += got.dtmf
        cid += got.callerid
        progress += got.progress
    assert cid == [CallSetup(number="5551234", name="ALICE")]
    assert "".join(e.digit for e in dtmf if isinstance(e, DtmfStart)) == "19#"
    assert sum(isinstance(e, DtmfEnd) for e in dtmf) == 3
    assert [e.tone for e in progress if isinstance(e, ToneDetected)] == ["busy"]


def test_dtmf_caller_id_country_has_no_fsk_demodulator():
    assert LineReceiver(get_profile("DK")).fsk is None
    assert LineReceiver(get_profile("GB")).fsk is not None
    assert LineReceiver(get_profile("US"), callerid=False, dtmf=False).dtmf is None


def test_clipping_is_counted_and_bad_frames_refused():
    rx = LineReceiver(get_profile("DE"))
    loud = np.full(160, 32767, np.int16)
    loud[::2] = -32768
    assert rx.feed(loud).level.clipped == 160
    with pytest.raises(ProgressError, match="int16"):
        rx.feed(np.zeros(160, np.float32))
    with pytest.raises(ProgressError, match=r"1\.\.8000"):
        rx.feed(np.zeros(0, np.int16))
    rx.reset()
    assert rx.progress.now_ms == 0
