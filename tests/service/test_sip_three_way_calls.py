"""A three-way call by hook flash with a SIP party, end to end: a real ``ponte run``
(simulated line card, real pjsua2) with a trunk to kamailio and a baresip softphone there.

The softphone's audio moves from handset 1's line to an application port, which the
three-way mixer seats like a line: each of the three hears the other two.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.pbx.apps import APP_PORTS
from tests.service.sipsite import Site, softphone_heard
from tests.service.test_features_calls import hears, level_at
from tests.service.test_local_calls import record, wait_status
from tests.service.test_sip_transfer_calls import BARESIP_TONE_HZ, talk_to_softphone

HANDSET_2_HZ = 1000  # what handset 2 plays into the three-way call
HANDSET_1_HZ = 700


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.close()


def test_softphone_handset_1_and_handset_2_hear_each_other(site: Site, tmp_path: Path) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    talk_to_softphone(site)
    box.sim(target="handset", number=1, action="flash")
    box.wait_log("flash holds the call", timeout=10)
    box.sim(target="handset", number=1, action="dial", digits="102")
    wait_status(box, 2, "ringing", True, timeout=15)
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("audio of ports 1 and 2 connected", timeout=15)
    box.sim(target="handset", number=1, action="flash")
    app_port = APP_PORTS[0]
    box.wait_log(f"ports 1, {app_port}, 2 mixed in a three-way call", timeout=15)
    box.wait_log(f"audio of port {app_port} and SIP leg", timeout=15)
    # Handset 2 hears the softphone's 440 Hz (handset 1 is silent).
    deadline = time.monotonic() + 20
    while not hears(box, 2, BARESIP_TONE_HZ, tmp_path / "at2.wav"):
        assert time.monotonic() < deadline, "handset 2 never heard the softphone"
    box.sim(target="handset", number=2, action="tone", freqs=[HANDSET_2_HZ])
    box.sim(target="handset", number=1, action="tone", freqs=[HANDSET_1_HZ])
    # Handset 1 hears both other parties at once.
    heard = record(box, 1, tmp_path / "at1.wav", 0.8)[800:]
    assert level_at(heard, BARESIP_TONE_HZ) > 0.05 and level_at(heard, HANDSET_2_HZ) > 0.05
    time.sleep(2.0)  # two seconds of handset 2's tone to the softphone through the mixer
    # Handset 2 hangs up: the softphone goes back to handset 1's line.
    box.sim(target="handset", number=2, action="on-hook")
    box.wait_log("three-way call of ports", timeout=15)
    box.wait_log(f"application port {app_port}: media loop stopped", timeout=15)
    box.sim(target="handset", number=1, action="stop-audio")
    deadline = time.monotonic() + 20
    while not hears(box, 1, BARESIP_TONE_HZ, tmp_path / "back.wav"):
        assert time.monotonic() < deadline, "handset 1 lost the softphone"
    box.sim(target="handset", number=1, action="on-hook")
    phone.wait_event("CALL_CLOSED", timeout=15)
    # (What the softphone heard is checked in the next test: baresip 1.0's decoder dump
    # ends at the hold re-INVITE.)


def test_a_softphone_consulted_joins_the_three_way_and_stays_with_handset_2(
    site: Site, tmp_path: Path
) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="102")
    wait_status(box, 2, "ringing", True, timeout=15)
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("audio of ports 1 and 2 connected", timeout=15)
    box.sim(target="handset", number=1, action="flash")
    box.wait_log("flash holds the call", timeout=10)
    box.sim(target="handset", number=1, action="dial", digits="8201")
    phone.wait_event("CALL_INCOMING", timeout=20)
    phone.command("accept")
    phone.wait_event("CALL_ESTABLISHED", timeout=15)
    box.wait_log("audio of port 1 and SIP leg", timeout=15)
    box.sim(target="handset", number=1, action="flash")
    app_port = APP_PORTS[0]
    box.wait_log(f"ports 1, 2, {app_port} mixed in a three-way call", timeout=15)
    box.sim(target="handset", number=2, action="tone", freqs=[HANDSET_2_HZ])
    deadline = time.monotonic() + 20
    while level_at(record(box, 1, tmp_path / "at1.wav", 0.8)[800:], BARESIP_TONE_HZ) < 0.05:
        assert time.monotonic() < deadline, "handset 1 never heard the softphone"
    time.sleep(2.0)  # two seconds of handset 2's tone to the softphone through the mixer
    box.sim(target="handset", number=2, action="stop-audio")  # before the mixer goes
    time.sleep(0.5)
    # Handset 1 hangs up (transfer): handset 2 and the softphone talk on, on port 2's line.
    box.sim(target="handset", number=1, action="on-hook")
    box.wait_log("audio of port 2 and SIP leg", timeout=15)
    box.wait_log(f"application port {app_port}: media loop stopped", timeout=15)
    deadline = time.monotonic() + 20
    while not hears(box, 2, BARESIP_TONE_HZ, tmp_path / "at2.wav"):
        assert time.monotonic() < deadline, "handset 2 never heard the softphone"
    box.sim(target="handset", number=2, action="on-hook")
    phone.wait_event("CALL_CLOSED", timeout=15)
    # The softphone decoded handset 2's tone, which reached it only through the mixer.
    assert softphone_heard(site.heard_dir, HANDSET_2_HZ)
