"""Admission control end to end: four SIP legs up, the fifth refused both ways.

A real ``ponte run`` with five simulated phones and a trunk to sipp (IP-authenticated, no
REGISTER); sipp answers every call and echoes its RTP.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware.dsp.profiles import get_profile
from firmware.store import ConfigStore, default_config
from firmware.store.schema import DialPlanConfig, NatConfig, Route, Trunk
from tests.service.sipsite import DIGIT_MAP
from tests.service.test_local_calls import record, wait_status
from tests.service.test_run import Appliance, dominant_hz
from tests.sip.peers import free_port

ITU = get_profile("ITU")
PHONES = 5


@pytest.fixture
def far_end(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1",
            "-mp", str(free_port()), "-rtp_echo", "-nostdin", "-bg",
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    proc.wait(10)  # -bg: the parent returns once the daemon runs
    yield port
    subprocess.run(["pkill", "-f", f"sipp -sn uas -i 127.0.0.1 -p {port} "], check=False)


@pytest.fixture
def box(tmp_path: Path, far_end: int) -> Iterator[Appliance]:
    store = ConfigStore.open(tmp_path / "data", defaults=default_config(PHONES, 1))
    try:
        config = store.current().config
        trunk = Trunk(
            name="far",
            registrar=f"127.0.0.1:{far_end}",
            username="ponte",
            register=False,
            nat=NatConfig(keepalive_s=0),
        )
        config = dataclasses.replace(
            config,
            sip=dataclasses.replace(config.sip, trunks=(trunk,)),
            dialplan=DialPlanConfig(
                digit_map=DIGIT_MAP,
                routes=(
                    Route(name="far", pattern="8xxx", to="trunk:far", strip=1),
                    *config.dialplan.routes,
                ),
            ),
            # The legs are the limit under test, not security.toll_fraud's (default 2).
            security=dataclasses.replace(
                config.security,
                toll_fraud=dataclasses.replace(config.security.toll_fraud, max_external_calls=4),
            ),
        )
        store.apply(config, author="test", summary="admission")
    finally:
        store.close()
    app = Appliance(tmp_path, "--fxs", str(PHONES), "--fxo", "1", "--stderr")
    app.wait_notify("READY=1")
    # The start is over (as sipsite.Site waits): a start slow enough to drop the line-card
    # link resets the simulated card, and a phone lifted during that reset is not heard.
    app.wait_log("control API listening", timeout=30)
    yield app
    app.close()


def sip_port(box: Appliance) -> int:
    m = re.search(r"SIP endpoint up: udp:127\.0\.0\.1:(\d+)", box.log_text())
    assert m is not None, box.log_text()
    return int(m.group(1))


def test_four_legs_up_the_fifth_gets_congestion_and_a_fifth_invite_is_refused(
    box: Appliance, tmp_path: Path
) -> None:
    for n in range(1, 5):
        box.sim(target="handset", number=n, action="off-hook")
        box.wait_log(f"port {n}: OffHook")
        box.sim(target="handset", number=n, action="dial", digits=f"820{n}")
        box.wait_log(f"audio of port {n} and SIP leg", timeout=20)
    box.wait_notify("STATUS=line card up, 5 FXS + 1 FXO, 4 in use, SIP legs 4/4", timeout=20)

    # The fifth phone hears the country's congestion tone, and the log says why.
    box.sim(target="handset", number=5, action="off-hook")
    box.wait_log("port 5: OffHook")
    box.sim(target="handset", number=5, action="dial", digits="8205")
    box.wait_log("all 4 SIP legs in use", timeout=15)
    tone = record(box, 5, tmp_path / "congestion.wav", 1.0)
    congestion = ITU.tones["congestion"].segments[0].components[0].freq_hz
    assert dominant_hz(tone) == pytest.approx(congestion, abs=5)

    # A fifth INVITE from the network is refused with an error, and nothing breaks.
    proc = subprocess.run(
        [
            "sipp", f"127.0.0.1:{sip_port(box)}", "-sn", "uac", "-s", "101", "-i",
            "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port()),
            "-m", "1", "-timeout", "20", "-timeout_error", "-nostdin",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode != 0, "the fifth INVITE must not be answered"
    # pjsua itself answers 486 once its four call slots are taken (DESIGN.md).
    box.wait_log("Unable to accept incoming call (too many calls)")

    # The four calls are still up and carry audio (sipp echoes what phone 1 says).
    box.sim(target="handset", number=1, action="tone", freqs=[1000])
    echo = record(box, 1, tmp_path / "echo.wav", 1.0)
    assert dominant_hz(echo[2400:]) == pytest.approx(1000, abs=10)  # drift slips: <1 %
    assert np.sqrt(np.mean(echo[2400:] ** 2)) > 100
    box.sim(target="handset", number=1, action="stop-audio")
    for n in range(1, 6):
        box.sim(target="handset", number=n, action="on-hook")
    box.wait_notify("STATUS=line card up, 5 FXS + 1 FXO, 0 in use, SIP legs 0/4", timeout=20)
    wait_status(box, 1, "off_hook", False)
