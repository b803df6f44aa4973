"""SIP callers in queues, and a SIP caller the IVR sends out through the trunk, end to end.

A real ``ponte run`` (simulated line card, real pjsua2) with a trunk to kamailio; baresip is
user 201 at the provider and calls the box, whose trunk destination is queue 700 (or the
IVR).  The caller waits on an application port hearing the queue's music; agent 102 logs in
with ``*45`` on handset 2 and answers; baresip's 440 Hz reaches the handset and the
handset's tone reaches baresip (its decoded dump, ``phone_heard``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware.api.client import ApiClient
from firmware.store.schema import Config, IvrMenu, IvrOption, Queue
from tests.service.sipsite import Site, phone_heard, softphone_heard
from tests.service.test_local_calls import record, wait_status
from tests.service.test_run import dominant_hz
from tests.service.test_sip_apps import trunk_to, windows

BARESIP_HZ = 440.0  # tests/sip/baresip.py: audio_source ausine,440
AGENT_HZ = 1300.0  # above the built-in music's notes (390..1050 Hz, firmware.dsp.moh)
APP_PORT = 1001  # firmware.pbx.apps.APP_PORTS[0]
OTHER_USER, OTHER_PASSWORD = "202", "pw202"


def with_queue(config: Config) -> Config:
    # No announcement and no position: what the caller hears is the music alone.
    queue = Queue(number="700", members=("102",), announce="", position_period_s=0)
    extensions = tuple(dataclasses.replace(e, voicemail=False) for e in config.extensions)
    return dataclasses.replace(config, queues=(queue,), extensions=extensions)


def with_ivr_out(config: Config) -> Config:
    menu = IvrMenu(name="main", options=(IvrOption(digit="1", to=f"dial:8{OTHER_USER}"),))
    ivr = dataclasses.replace(
        config.ivr, enabled=True, number="500", open_menu="main", menus=(menu,)
    )
    return dataclasses.replace(config, ivr=ivr)


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator[Callable[[Callable[[Config], Config]], Site]]:
    sites: list[Site] = []

    def make(adjust: Callable[[Config], Config]) -> Site:
        site = Site(tmp_path, users={OTHER_USER: OTHER_PASSWORD}, adjust=adjust)
        sites.append(site)
        assert site.box is not None and site.phone is not None
        return site

    yield make
    for site in sites:
        site.close()


def queues_list(data: Path) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        async with ApiClient(data / "api.sock", client_name="test", timeout=30) as api:
            result: list[dict[str, Any]] = (await api.call("queues.list"))["queues"]
            return result

    return asyncio.run(go())


def music(pcm: np.ndarray) -> bool:
    """Loud, with most of its energy where the built-in music's notes are."""
    if len(pcm) < 4000 or float(np.sqrt(np.mean(pcm**2))) < 100:
        return False
    spectrum = np.abs(np.fft.rfft(pcm)) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / 8000)
    return bool(spectrum[(freqs > 350) & (freqs < 1100)].sum() > 0.5 * spectrum.sum())


def test_a_trunk_caller_waits_with_music_until_the_logged_in_agent_answers(
    make_site: Callable[[Callable[[Config], Config]], Site], tmp_path: Path
) -> None:
    site = make_site(trunk_to("700", with_queue))
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    phone.command("dial", f"sip:ponte@{site.provider_uri}")
    phone.wait_event("CALL_ESTABLISHED", timeout=20)  # the queue answers
    box.wait_log(f"port {APP_PORT}: waiting in queue 700 with music on hold", timeout=20)
    (queue,) = queues_list(box.data)
    assert [(w["position"], w["caller"]) for w in queue["waiting"]] == [(1, "201")]
    time.sleep(3.0)  # the music goes out to the caller
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("port 2: OffHook")
    box.sim(target="handset", number=2, action="dial", digits="*45")
    box.wait_log("extension 102: queue_login", timeout=10)
    box.sim(target="handset", number=2, action="on-hook")
    box.wait_log("port 2: HungUp")
    wait_status(box, 2, "ringing", True, timeout=20)
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("queue 700: 102 answered on port 2", timeout=10)
    box.wait_log("audio of port 2 and SIP leg", timeout=20)
    box.wait_log(f"application port {APP_PORT}: media loop stopped", timeout=20)
    heard = record(box, 2, tmp_path / "agent.wav", 1.5)
    assert dominant_hz(heard[2400:]) == pytest.approx(BARESIP_HZ, abs=10)
    assert queues_list(box.data)[0]["waiting"] == []
    box.sim(target="handset", number=2, action="tone", freqs=[AGENT_HZ])
    time.sleep(2.0)
    box.sim(target="handset", number=2, action="on-hook")
    phone.wait_event("CALL_CLOSED", timeout=20)
    played = phone_heard(site)
    # The caller heard the music while it waited, then the agent.
    assert music(played[8000:24000]), "no music on hold reached the SIP caller"
    assert any(dominant_hz(w) == pytest.approx(AGENT_HZ, abs=10) for w in windows(played)), (
        "the agent was not heard by the SIP caller"
    )


def test_a_sip_caller_hanging_up_in_the_queue_frees_its_application_port(
    make_site: Callable[[Callable[[Config], Config]], Site],
) -> None:
    site = make_site(trunk_to("700", with_queue))
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    for count in (1, 2):  # the second call finds the same port free again
        phone.command("dial", f"sip:ponte@{site.provider_uri}")
        phone.wait_event("CALL_ESTABLISHED", timeout=20)
        box.wait_log(f"port {APP_PORT}: waiting in queue 700", count=count, timeout=20)
        time.sleep(1.0)
        phone.command("hangup")
        phone.wait_event("CALL_CLOSED", timeout=20)
        box.wait_log(f"port {APP_PORT}: left queue 700", count=count, timeout=20)
        box.wait_log(f"application port {APP_PORT}: media loop stopped", count=count, timeout=20)
        deadline = time.monotonic() + 20
        while queues_list(box.data)[0]["waiting"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert queues_list(box.data)[0]["waiting"] == []


def test_the_ivr_sends_a_sip_caller_out_through_the_trunk(
    make_site: Callable[[Callable[[Config], Config]], Site],
) -> None:
    site = make_site(trunk_to("500", with_ivr_out))
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    other, other_heard = site.add_phone(OTHER_USER, OTHER_PASSWORD)
    phone.command("dial", f"sip:ponte@{site.provider_uri}")
    phone.wait_event("CALL_ESTABLISHED", timeout=20)  # the attendant answers
    box.wait_log(f"port {APP_PORT}: IVR started", timeout=20)
    time.sleep(2.0)
    phone.command("sndcode", "1")
    box.wait_log("IVR menu 'main' transfers to", timeout=20)
    incoming = other.wait_event("CALL_INCOMING", timeout=30)
    assert "201" in str(incoming.get("peeruri", "")), incoming  # the caller's number goes on
    other.command("accept")
    other.wait_event("CALL_ESTABLISHED", timeout=15)
    box.wait_log("audio of SIP legs", timeout=15)
    time.sleep(2.0)  # each side's 440 Hz through the bridge
    phone.command("hangup")
    other.wait_event("CALL_CLOSED", timeout=15)  # the box ended the second leg
    phone.wait_event("CALL_CLOSED", timeout=15)
    # Each softphone decoded the other's 440 Hz, which reached it only through the box's
    # conference bridge (the IVR's prompts are speech, not a steady 440 Hz).
    assert softphone_heard(other_heard, BARESIP_HZ)
    assert softphone_heard(site.heard_dir, BARESIP_HZ)
