"""Type II caller ID while the phone talks to a SIP far end (kamailio + baresip, real RTP).

Handset 1 talks to softphone 201 through the provider; handset 2 calls 101 and waits.  The
type II phone shows 102; the softphone gets no DTMF event for the phone's ACK and hears
none of the handshake in its audio, only the handset's voice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.sipsite import Site, phone_heard
from tests.service.test_call_waiting_id import HANDSHAKE_HZ, wait_caller_id
from tests.service.test_features_calls import level_at


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.close()


def test_the_sip_far_end_hears_nothing_of_type_ii(site: Site) -> None:
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    box.sim(target="handset", number=1, action="call-waiting-id", ack="D")
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="8201")
    phone.wait_event("CALL_INCOMING", timeout=20)
    phone.command("accept")
    phone.wait_event("CALL_ESTABLISHED", timeout=15)
    box.wait_log("audio of port 1 and SIP leg", timeout=15)
    box.sim(target="handset", number=1, action="tone", freqs=[500])
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("port 2: OffHook")
    box.sim(target="handset", number=2, action="dial", digits="101")
    box.wait_log("port 1: caller ID on call waiting sent (phone acknowledged with D)", timeout=20)
    cid = wait_caller_id(box, 1)
    assert (cid["number"], cid["name"], cid["call_waiting"]) == ("102", "Port 2", True)
    with pytest.raises(TimeoutError):
        phone.wait_event("CALL_DTMF_START", timeout=2)
    time.sleep(1.0)  # 101 goes on talking after the handshake
    box.sim(target="handset", number=2, action="on-hook")
    box.sim(target="handset", number=1, action="on-hook")
    phone.wait_event("CALL_CLOSED", timeout=15)
    box.wait_log("port 1: HungUp")
    played = phone_heard(site)
    assert len(played) > 8000
    assert level_at(played, 500) > 0.5
    for hz in HANDSHAKE_HZ:
        assert level_at(played, hz) < 0.01, f"the softphone heard {hz} Hz"
