"""Applications for SIP callers, and recorded line <-> SIP calls, end to end.

A real ``ponte run`` (simulated line card, real pjsua2) with a trunk to kamailio; baresip is
user 201 at the provider and calls the box (``sip:ponte@provider``): the trunk's destination
says what answers.  baresip sends a 440 Hz sine (tests/sip/baresip.py) and its RFC 4733
digits (``sndcode``); what it heard is its decoded dump (``phone_heard``).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware.api.client import ApiClient
from firmware.dsp.wavio import read_wav
from firmware.store.schema import ConferenceRoom, Config, IvrMenu, IvrOption
from tests.service.live import login
from tests.service.sipsite import Site, phone_heard
from tests.service.test_local_calls import record, wait_status
from tests.service.test_recorded_calls import recordings_of
from tests.service.test_run import dominant_hz

BARESIP_HZ = 440.0  # tests/sip/baresip.py: audio_source ausine,440
HANDSET_HZ = 1000.0
APP_PORT = 1001  # firmware.pbx.apps.APP_PORTS[0]
ROOM = "600"  # [1-7]xx in the site's digit map (8xxx goes to the provider)


def trunk_to(destination: str, change: Callable[[Config], Config]) -> Callable[[Config], Config]:
    def adjust(config: Config) -> Config:
        config = change(config)
        trunks = tuple(dataclasses.replace(t, destination=destination) for t in config.sip.trunks)
        return dataclasses.replace(config, sip=dataclasses.replace(config.sip, trunks=trunks))

    return adjust


def with_ivr(config: Config) -> Config:
    menu = IvrMenu(name="main", options=(IvrOption(digit="1", to="extension:102"),))
    ivr = dataclasses.replace(
        config.ivr, enabled=True, number="500", open_menu="main", menus=(menu,)
    )
    return dataclasses.replace(config, ivr=ivr)


def with_room(config: Config) -> Config:
    rooms = (ConferenceRoom(number=ROOM, name="Team"),)
    return dataclasses.replace(
        config, conference=dataclasses.replace(config.conference, rooms=rooms)
    )


def recording_101(config: Config) -> Config:
    extensions = tuple(
        dataclasses.replace(e, recording="always") if e.number == "101" else e
        for e in config.extensions
    )
    return dataclasses.replace(config, extensions=extensions)


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator[Callable[[Callable[[Config], Config]], Site]]:
    sites: list[Site] = []

    def make(adjust: Callable[[Config], Config]) -> Site:
        site = Site(tmp_path, adjust=adjust)
        sites.append(site)
        assert site.box is not None and site.phone is not None
        site.box.wait_log("control API listening", timeout=30)
        return site

    yield make
    for site in sites:
        site.close()


def loud(pcm: np.ndarray) -> bool:
    return bool(len(pcm)) and float(np.sqrt(np.mean(pcm**2))) > 100


def windows(pcm: np.ndarray, size: int = 4000) -> list[np.ndarray]:
    return [pcm[i : i + size] for i in range(0, len(pcm) - size, size // 2)]


def test_a_trunk_caller_reaches_the_ivr_and_chooses_an_extension_by_rfc4733(
    make_site: Callable[[Callable[[Config], Config]], Site], tmp_path: Path
) -> None:
    site = make_site(trunk_to("500", with_ivr))
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    phone.command("dial", f"sip:ponte@{site.provider_uri}")
    phone.wait_event("CALL_ESTABLISHED", timeout=20)  # the attendant answers
    box.wait_log(f"port {APP_PORT}: IVR started", timeout=20)
    time.sleep(2.0)  # some of the menu prompt goes out
    phone.command("sndcode", "1")
    box.wait_log("IVR menu 'main' transfers to", timeout=20)
    wait_status(box, 2, "ringing", True, timeout=20)
    box.wait_log(f"application port {APP_PORT}: media loop stopped", timeout=20)
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("audio of port 2 and SIP leg", timeout=20)
    heard = record(box, 2, tmp_path / "heard.wav", 1.5)
    assert dominant_hz(heard[2400:]) == pytest.approx(BARESIP_HZ, abs=10)
    box.sim(target="handset", number=2, action="tone", freqs=[HANDSET_HZ])
    time.sleep(1.5)
    box.sim(target="handset", number=2, action="on-hook")
    phone.wait_event("CALL_CLOSED", timeout=20)
    played = phone_heard(site)
    # The caller heard the spoken menu first (the prompt: speech, loud), then handset 2.
    assert loud(played[8000:16000]), "the IVR menu did not reach the SIP caller"
    assert any(dominant_hz(w) == pytest.approx(HANDSET_HZ, abs=10) for w in windows(played)), (
        "handset 2 was not heard by the SIP caller"
    )


async def messages_of(data: Path, box: str, timeout: float = 30) -> list[dict[str, Any]]:
    async with ApiClient(data / "api.sock", client_name="test", timeout=30) as api:
        await login(api)
        deadline = time.monotonic() + timeout
        while True:
            (entry,) = (await api.call("voicemail.list", {"box": box}))["boxes"]
            found: list[dict[str, Any]] = entry["messages"]
            if found or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.3)


async def export(data: Path, box: str, message: str) -> bytes:
    async with ApiClient(data / "api.sock", client_name="test", timeout=30) as api:
        await login(api)
        out = b""
        while True:
            chunk = await api.call(
                "voicemail.export", {"box": box, "id": message, "data": True, "offset": len(out)}
            )
            out += base64.b64decode(chunk["data_b64"])
            if chunk["eof"]:
                return out


def test_a_trunk_caller_to_a_busy_extension_leaves_a_message(
    make_site: Callable[[Callable[[Config], Config]], Site], tmp_path: Path
) -> None:
    site = make_site(lambda config: config)  # the trunk rings 101, which has a mailbox
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    box.sim(target="handset", number=1, action="off-hook")  # 101 is busy
    box.wait_log("port 1: OffHook")
    phone.command("dial", f"sip:ponte@{site.provider_uri}")
    phone.wait_event("CALL_ESTABLISHED", timeout=20)
    box.wait_log("recording a message for box 101", timeout=60)  # greeting, beep
    time.sleep(3.0)  # baresip's 440 Hz is the message
    phone.command("hangup")
    phone.wait_event("CALL_CLOSED", timeout=20)
    box.wait_log("voicemail: message", timeout=30)
    (message,) = asyncio.run(messages_of(box.data, "101"))
    assert message["caller_number"] == "201", message
    wav = asyncio.run(export(box.data, "101", message["id"]))
    pcm = read_wav(wav).pcm.astype(float)  # G.711 in the WAV (docs/voicemail.md)
    assert len(pcm) >= 2 * 8000
    assert dominant_hz(pcm[4000:12000]) == pytest.approx(BARESIP_HZ, abs=10)

    # The owner listens on handset 1: *98 (its own phone, no PIN set), 1 = new messages.
    box.sim(target="handset", number=1, action="on-hook")
    box.wait_log("port 1: HungUp")
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook", count=2)
    box.sim(target="handset", number=1, action="dial", digits="*98")
    box.wait_log("port 1: MailboxMenu started", timeout=20)
    time.sleep(1.0)
    box.sim(target="handset", number=1, action="dial", digits="1")
    heard = record(box, 1, tmp_path / "message.wav", 6.0)
    assert any(dominant_hz(w) == pytest.approx(BARESIP_HZ, abs=10) for w in windows(heard))
    box.sim(target="handset", number=1, action="on-hook")


def test_a_trunk_caller_joins_a_room_with_a_handset(
    make_site: Callable[[Callable[[Config], Config]], Site], tmp_path: Path
) -> None:
    site = make_site(trunk_to(ROOM, with_room))
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits=ROOM)
    box.wait_log(f"port 1: joined conference room {ROOM}", timeout=30)
    phone.command("dial", f"sip:ponte@{site.provider_uri}")
    phone.wait_event("CALL_ESTABLISHED", timeout=20)
    box.wait_log(f"port {APP_PORT}: joined conference room {ROOM}", timeout=30)
    box.sim(target="handset", number=1, action="tone", freqs=[HANDSET_HZ])
    time.sleep(5.0)  # handset 1's own "joined, the only person" prompts are over
    heard = record(box, 1, tmp_path / "room.wav", 2.0)
    assert dominant_hz(heard) == pytest.approx(BARESIP_HZ, abs=10)
    time.sleep(1.0)
    phone.command("hangup")
    phone.wait_event("CALL_CLOSED", timeout=20)
    box.wait_log(f"port {APP_PORT}: left conference room", timeout=20)
    played = phone_heard(site)
    assert any(dominant_hz(w) == pytest.approx(HANDSET_HZ, abs=10) for w in windows(played)), (
        "the room did not reach the SIP caller"
    )
    box.sim(target="handset", number=1, action="stop-audio")
    box.sim(target="handset", number=1, action="on-hook")


def test_a_recorded_extension_records_a_sip_call_in_both_channels(
    make_site: Callable[[Callable[[Config], Config]], Site],
) -> None:
    site = make_site(recording_101)
    box, phone = site.box, site.phone
    assert box is not None and phone is not None
    phone.command("dial", f"sip:ponte@{site.provider_uri}")
    wait_status(box, 1, "ringing", True, timeout=20)
    box.sim(target="handset", number=1, action="off-hook")
    phone.wait_event("CALL_ESTABLISHED", timeout=20)
    box.wait_log("recording 1 started: 201 -> 101 (always)", timeout=20)
    box.sim(target="handset", number=1, action="tone", freqs=[HANDSET_HZ])
    time.sleep(3.0)
    box.sim(target="handset", number=1, action="stop-audio")
    box.sim(target="handset", number=1, action="on-hook")
    phone.wait_event("CALL_CLOSED", timeout=20)

    (row,) = asyncio.run(recordings_of(box.data))
    assert (row["caller"], row["callee"], row["reason"]) == ("201", "101", "always")
    assert row["channels"] == 2 and row["duration_ms"] >= 2500
    with wave.open(str(box.data / "recordings" / row["path"])) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2).astype(float)
    middle = slice(len(pcm) // 3, len(pcm) // 3 + 8000)
    assert dominant_hz(pcm[middle, 0]) == pytest.approx(HANDSET_HZ, abs=10)  # 101 said
    assert dominant_hz(pcm[middle, 1]) == pytest.approx(BARESIP_HZ, abs=10)  # 101 heard
