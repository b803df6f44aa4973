"""Ring groups and queues end to end: a real ``ponte run`` with four simulated handsets.

Group 600 rings 102 and 103 at once; group 610 rings them one after the other and gives
the call to 104 when nobody answers.  Queue 700 plays music on hold to its caller until
agent 103, logged in with ``*45``, answers; queue 710 has no agent and sends its caller to
104 after its maximum wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware.api.client import ApiClient
from firmware.store import ConfigStore, default_config
from firmware.store.agents import AgentStore
from firmware.store.schema import Queue, RingGroup
from tests.service.test_features_calls import hears, level_at
from tests.service.test_local_calls import record, wait_status
from tests.service.test_run import Appliance

ARGS = ("--fxs", "4", "--fxo", "1", "--stderr")
RING_S = 5  # ring_groups[].ring_s, its minimum


def configure(tmp_path: Path) -> None:
    store = ConfigStore.open(tmp_path / "data", defaults=default_config(4, 1))
    try:
        config = store.current().config
        extensions = tuple(dataclasses.replace(e, voicemail=False) for e in config.extensions)
        groups = (
            RingGroup(number="600", members=("102", "103")),
            RingGroup(
                number="610",
                members=("102", "103"),
                strategy="sequential",
                ring_s=RING_S,
                timeout_s=2 * RING_S,
                no_answer="104",
            ),
        )
        queues = (
            # No announcement and no position: what the caller hears is the music alone.
            Queue(number="700", members=("103",), announce="", position_period_s=0),
            Queue(number="710", members=("102",), max_wait_s=10, overflow="104"),
        )
        store.apply(
            dataclasses.replace(config, extensions=extensions, ring_groups=groups, queues=queues),
            author="test",
            summary="groups and queues",
        )
    finally:
        store.close()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Appliance]:
    configure(tmp_path)
    app = Appliance(tmp_path, *ARGS)
    app.wait_notify("READY=1")
    app.wait_log("control API listening")
    yield app
    app.close()


def handset(box: Appliance, number: int, action: str, **kw: object) -> None:
    box.sim(target="handset", number=number, action=action, **kw)


def dial(box: Appliance, caller: int, number: str, count: int = 1) -> None:
    handset(box, caller, "off-hook")
    box.wait_log(f"port {caller}: OffHook", count=count)
    handset(box, caller, "dial", digits=number)


def api_call(box: Appliance, method: str) -> Any:
    async def go() -> Any:
        async with ApiClient(box.data / "api.sock", client_name="test", timeout=30) as api:
            return await api.call(method)

    return asyncio.run(go())


def test_simultaneous_group_first_answer_wins_other_stops(box: Appliance, tmp_path: Path) -> None:
    dial(box, 1, "600")
    wait_status(box, 2, "ringing", True, timeout=15)
    wait_status(box, 3, "ringing", True, timeout=15)
    local = api_call(box, "calls.list")["local"]
    assert [c["group"] for c in local] == ["group 600"]
    handset(box, 3, "off-hook")
    box.wait_log("group 600: 103 answered on port 3")
    box.wait_log("audio of ports 1 and 3 connected")
    wait_status(box, 2, "ringing", False)
    handset(box, 1, "tone", freqs=[1000])
    assert hears(box, 3, 1000, tmp_path / "at3.wav")


def test_sequential_group_then_no_answer_to_an_extension(box: Appliance, tmp_path: Path) -> None:
    dial(box, 1, "610")
    wait_status(box, 2, "ringing", True, timeout=15)
    assert box.sim(target="handset", number=3, action="status")["ringing"] is False  # type: ignore[index]
    wait_status(box, 3, "ringing", True, timeout=RING_S + 10)
    wait_status(box, 2, "ringing", False)
    box.wait_log("group 610: no answer", timeout=RING_S + 10)
    wait_status(box, 4, "ringing", True, timeout=10)
    handset(box, 4, "off-hook")
    box.wait_log("audio of ports 1 and 4 connected")
    handset(box, 4, "tone", freqs=[700])
    assert hears(box, 1, 700, tmp_path / "at1.wav")


def test_queue_caller_hears_music_until_the_logged_in_agent_answers(
    box: Appliance, tmp_path: Path
) -> None:
    dial(box, 3, "*45")
    box.wait_log("extension 103: queue_login")
    handset(box, 3, "on-hook")
    box.wait_log("port 3: HungUp")
    dial(box, 1, "700")
    box.wait_log("port 1: waiting in queue 700 with music on hold")
    # Three seconds: a loaded host may drop a few frames at the simulated card (underruns,
    # up to about 160 ms seen), which must not pass for a gap in the music itself.
    music = record(box, 1, tmp_path / "moh.wav", 3.0)[1600:]
    rms = np.sqrt(np.mean(music.reshape(-1, 160) ** 2, axis=1))
    assert (rms > 100).mean() > 0.9, rms  # music all the time, no gaps
    # The built-in music's notes lie between 390 and 1050 Hz (firmware.dsp.moh).
    spectrum = np.abs(np.fft.rfft(music)) ** 2
    freqs = np.fft.rfftfreq(len(music), 1 / 8000)
    assert spectrum[(freqs > 350) & (freqs < 1100)].sum() > 0.5 * spectrum.sum()
    wait_status(box, 3, "ringing", True, timeout=15)
    queues = api_call(box, "queues.list")["queues"]
    assert queues[0]["number"] == "700" and queues[0]["agents"] == ["103"]
    assert [(w["position"], w["caller"], w["ringing"]) for w in queues[0]["waiting"]] == [
        (1, "101", ["103"])
    ]
    handset(box, 3, "off-hook")
    box.wait_log("queue 700: 103 answered on port 3")
    box.wait_log("audio of ports 1 and 3 connected")
    handset(box, 3, "tone", freqs=[1300])
    assert hears(box, 1, 1300, tmp_path / "agent.wav")
    handset(box, 3, "stop-audio")
    quiet = record(box, 1, tmp_path / "quiet.wav", 1.0)[1600:]
    assert level_at(quiet, 1300) < 0.3 and np.sqrt(np.mean(quiet**2)) < 100  # music stopped
    assert api_call(box, "queues.list")["queues"][0]["waiting"] == []
    box.close()
    store = AgentStore.open(box.data)  # the log-in is kept for the next start
    try:
        assert store.load() == ["103"]
    finally:
        store.close()


def test_queue_without_agents_overflows_after_its_maximum_wait(box: Appliance) -> None:
    dial(box, 1, "710")
    box.wait_log("port 1: waiting in queue 710")
    box.wait_log("queue 710: waited too long", timeout=30)
    wait_status(box, 4, "ringing", True, timeout=10)
    handset(box, 4, "off-hook")
    box.wait_log("audio of ports 1 and 4 connected")
