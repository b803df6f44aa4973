"""A flood of INVITEs leaves the box alive and the call already up with its audio.

A real ``ponte run``: phone 1 talks to sipp (which echoes RTP back), while another sipp
sends 300 INVITE/s from the same host for 10 s; the flood guard (docs/capacity.md) refuses
what the media ioqueue could not take, and phone 1 keeps hearing its own tone come back.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.service.test_local_calls import record
from tests.service.test_run import Appliance, dominant_hz
from tests.service.test_sip_admission import box, far_end, sip_port  # noqa: F401 (fixtures)
from tests.sip.peers import free_port

FLOOD_RATE = 300
FLOOD_SECONDS = 10


def test_the_call_up_keeps_its_audio_through_an_invite_flood(
    box: Appliance,  # noqa: F811
    tmp_path: Path,
) -> None:
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="8201")
    box.wait_log("audio of port 1 and SIP leg", timeout=20)
    box.sim(target="handset", number=1, action="tone", freqs=[1000])
    flood = subprocess.Popen(
        [
            "sipp", f"127.0.0.1:{sip_port(box)}", "-sn", "uac", "-s", "555", "-i", "127.0.0.1",
            "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port()),
            "-r", str(FLOOD_RATE), "-m", str(FLOOD_RATE * FLOOD_SECONDS), "-l", "200",
            "-timeout", str(FLOOD_SECONDS + 20), "-nostdin", "-recv_timeout", "2000",
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # In the middle of the flood, phone 1 still hears its tone echoed by the far end.
        heard = record(box, 1, tmp_path / "during.wav", 3.0)
        assert flood.poll() is None, "the flood ended before the audio was checked"
    finally:
        flood.wait(FLOOD_SECONDS + 40)
    assert box.proc.poll() is None, "ponte run died under the flood"
    assert dominant_hz(heard) == pytest.approx(1000, abs=5)
    frames = heard[: len(heard) // 160 * 160].reshape(-1, 160)
    loud = np.sqrt((frames.astype(float) ** 2).mean(axis=1)) > 300
    assert loud.mean() > 0.9, f"{(~loud).sum()} of {len(loud)} frames lost their audio"
    # The guard refused most of the flood before pjsua made media sockets for it.
    box.sim(target="handset", number=1, action="stop-audio")
    box.sim(target="handset", number=1, action="on-hook")
    box.wait_log("port 1: HungUp")
    status = box.wait_notify("STATUS=", timeout=10)
    assert re.search(r"SIP legs \d/4", status)
