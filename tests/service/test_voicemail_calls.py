"""Voicemail in the call flow, end to end: a real ``ponte run`` with simulated handsets.

Handset 1 calls 102, nobody answers, the voicemail takes the call and handset 1 leaves a
message (a 600 Hz tone).  Handset 2 then hears the stutter dial tone (message waiting),
dials the voicemail code, and the message comes back; once it was heard to the end the
dial tone is steady again.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firmware.pbx import voicemail as vm
from firmware.prompts.library import PromptLibrary
from firmware.store import ConfigStore, default_config
from firmware.store.voicemail import VoicemailStore
from tests.service.test_local_calls import record, wait_status
from tests.service.test_run import Appliance, dominant_hz

MESSAGE_HZ = 600  # no DTMF or call-progress frequency: it can only come from the message
NO_ANSWER_S = 5  # features.no_answer_timeout_s, its minimum
GREETING_HZ = 500  # the busy greeting recorded by phone: far from the DTMF frequencies


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Appliance]:
    data = tmp_path / "data"
    store = ConfigStore.open(data, defaults=default_config(2, 1))
    try:
        config = store.current().config
        features = dataclasses.replace(config.features, no_answer_timeout_s=NO_ANSWER_S)
        store.apply(
            dataclasses.replace(config, features=features), author="test", summary="voicemail"
        )
    finally:
        store.close()
    app = Appliance(tmp_path, "--fxs", "2", "--fxo", "1", "--stderr")
    app.wait_notify("READY=1")
    app.wait_log("control API listening")  # voicemail and rooms are up before the API
    yield app
    app.close()


def frames_on(pcm: np.ndarray, frame: int = 80) -> list[bool]:
    """10 ms frames with tone in them."""
    frames = pcm[: len(pcm) // frame * frame].reshape(-1, frame)
    return [bool(np.sqrt(np.mean(f**2)) > 100) for f in frames]


def recorded(path: Path, seconds: float) -> np.ndarray:
    """The recording a handset was asked to make, once it is complete."""
    deadline = time.monotonic() + seconds + 20
    while time.monotonic() < deadline:
        if path.exists():
            try:
                with wave.open(str(path)) as w:
                    pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
                if len(pcm) >= int(seconds * 8000) - 160:
                    return pcm
            except (EOFError, wave.Error):
                pass  # still being written
        time.sleep(0.05)
    raise AssertionError(f"no recording in {path}")


DROPOUT_FRAMES = 5  # 50 ms in the 10 ms frames of frames_on


def closed_dropouts(runs: list[tuple[bool, int]], max_gap: int) -> list[tuple[bool, int]]:
    """(tone?, length) runs with silences of at most ``max_gap`` between tone merged in."""
    out: list[tuple[bool, int]] = []
    for i, (tone, n) in enumerate(runs):
        inner = 0 < i < len(runs) - 1
        if not tone and inner and n <= max_gap:
            tone = True  # a dropout inside the tone
        if out and out[-1][0] == tone:
            out[-1] = (tone, out[-1][1] + n)
        else:
            out.append((tone, n))
    return out


def dial_tone_bursts(box: Appliance, handset: int, path: Path) -> int:
    """Lift ``handset`` while recording it: the 100 ms bursts of a stutter dial tone
    (ITU: 6 x 100 ms on / 100 ms off, then steady) in its first 1.5 s."""
    box.sim(target="handset", number=handset, action="record", file=str(path), seconds=4.0)
    box.sim(target="handset", number=handset, action="off-hook")
    pcm = recorded(path, 4.0)
    on = frames_on(pcm)
    assert any(on), f"no dial tone on handset {handset}"
    first = on.index(True)
    window = on[first : first + 150]
    assert len(window) == 150, "dial tone started too late in the recording"
    runs: list[tuple[bool, int]] = []  # (tone?, length in 10 ms frames)
    for value in window:
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1] + 1)
        else:
            runs.append((value, 1))
    # A dropout is no stutter: on a loaded machine the card plays a late 20 ms frame or two
    # as silence, which would cut a burst in two.  Gaps this short are closed first; the
    # stutter's own gaps (100 ms) are twice as long.
    runs = closed_dropouts(runs, max_gap=DROPOUT_FRAMES)
    # A burst: 100 ms of tone, then 100 ms of silence.
    bursts = sum(
        1
        for (tone, n), (_, gap) in itertools.pairwise(runs)
        if tone and 7 <= n <= 13 and 7 <= gap <= 13
    )
    hz = dominant_hz(pcm[(first + 200) * 80 : (first + 300) * 80])
    assert hz == pytest.approx(425, abs=10)  # ITU dial tone (its steady part)
    return bursts


def test_leave_a_message_listen_to_it_and_the_stutter_dial_tone(
    box: Appliance, tmp_path: Path
) -> None:
    assert dial_tone_bursts(box, 2, tmp_path / "dial-before.wav") == 0
    box.sim(target="handset", number=2, action="on-hook")
    box.wait_log("port 2: HungUp")

    # Nobody answers 102: after the no-answer time the voicemail takes the call.
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    box.sim(target="handset", number=1, action="dial", digits="102")
    wait_status(box, 2, "ringing", True)
    box.wait_log("voicemail 102 takes the call", timeout=NO_ANSWER_S + 20)
    status = box.sim(target="handset", number=2, action="status")
    assert isinstance(status, dict) and not status["ringing"]
    # The greeting ("extension 1 0 2 is not available") and the beep, then it records.
    box.wait_log("recording a message for box 102", timeout=60)
    box.sim(target="handset", number=1, action="tone", freqs=[MESSAGE_HZ])
    time.sleep(3.0)
    box.sim(target="handset", number=1, action="stop-audio")
    box.sim(target="handset", number=1, action="on-hook")
    box.wait_log("stored in box 102", timeout=20)
    box.wait_log("voicemail box 102: 1 new (message waiting on)", timeout=20)
    box.wait_log("port 2: message waiting on sent", timeout=20)  # the on-hook FSK burst
    with VoicemailStore.open(box.data, recover=False) as store:
        (message,) = store.messages("102")
    assert message.state == "new" and message.caller_number == "101"
    assert 2500 <= message.duration_ms <= 20_000

    # Message waiting: handset 2's dial tone stutters now.
    assert dial_tone_bursts(box, 2, tmp_path / "dial-mwi.wav") >= 3

    # *98: handset 2's own box (no PIN set); 1 plays the new message.
    box.sim(target="handset", number=2, action="dial", digits="*98")
    box.wait_log("port 2: MailboxMenu started", timeout=20)
    time.sleep(2.0)  # "you have one new message" starts
    box.sim(target="handset", number=2, action="dial", digits="1")
    heard = record(box, 2, tmp_path / "message.wav", 12.0)
    best = min(
        (
            abs(dominant_hz(heard[i : i + 4000]) - MESSAGE_HZ)
            for i in range(0, len(heard) - 4000, 800)
        ),
    )
    assert best < 10, "the message's tone did not come back"
    box.wait_log("voicemail box 102: 0 new (message waiting off)", timeout=30)
    box.sim(target="handset", number=2, action="on-hook")
    box.wait_log("port 2: MailboxMenu ended", timeout=20)

    assert dial_tone_bursts(box, 2, tmp_path / "dial-after.wav") == 0
    box.sim(target="handset", number=2, action="on-hook")


def match(heard: np.ndarray, template: np.ndarray) -> float:
    """Peak normalised cross-correlation of ``template`` anywhere in ``heard`` (0..1)."""
    n = len(heard) + len(template)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(
        np.fft.rfft(heard, size) * np.conj(np.fft.rfft(template.astype(float), size)), size
    )[: len(heard) - len(template) + 1]
    # Energy of each window of ``heard`` as long as the template, for the normalisation.
    energy = np.convolve(heard**2, np.ones(len(template)), "valid")
    norm = np.sqrt(np.maximum(energy, 1e-9) * float(np.sum(template.astype(float) ** 2)))
    return float(np.max(np.abs(corr) / norm))


def heard_in(heard: np.ndarray, template: np.ndarray, chunk: int = 2000) -> float:
    """How surely ``template`` is in ``heard``: the median :func:`match` of its 250 ms
    pieces, each found on its own, so that a frame lost or slipped on a loaded machine
    spoils one piece, not the whole."""
    pieces = [template[i : i + chunk] for i in range(0, len(template) - chunk + 1, chunk)]
    return float(np.median([match(heard, p) for p in pieces]))


def test_a_busy_extension_greets_busy_and_no_answer_greets_unavailable(
    box: Appliance, tmp_path: Path
) -> None:
    prompts = PromptLibrary.for_data_dir(box.data)
    # The default unavailable greeting: "The person at extension" 1 0 2 "is not available".
    unavailable = prompts.sequence([vm.P_EXTENSION, *vm.say_digits("102"), vm.P_NOT_AVAILABLE])
    # Matched on their first thirds: the words that differ ("... is on the phone" and
    # "is not available"; both end "Please leave a message ...").
    busy = prompts.get(vm.P_BUSY).pcm
    busy = busy[: len(busy) // 3]
    not_available = prompts.get(vm.P_NOT_AVAILABLE).pcm
    not_available = not_available[: len(not_available) // 3]

    box.sim(target="handset", number=2, action="off-hook")  # 102 is busy
    box.wait_log("port 2: OffHook")
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook")
    seconds = 3 * len(busy) / 8000 + 8
    box.sim(
        target="handset", number=1, action="record", file=str(tmp_path / "b.wav"), seconds=seconds
    )
    box.sim(target="handset", number=1, action="dial", digits="102")
    box.wait_log("port 1: LeaveMessage started")
    heard = recorded(tmp_path / "b.wav", seconds)
    assert heard_in(heard, busy) > 0.9
    assert heard_in(heard, not_available) < 0.75
    box.sim(target="handset", number=1, action="on-hook")
    box.sim(target="handset", number=2, action="on-hook")
    box.wait_log("port 1: LeaveMessage ended")
    wait_status(box, 2, "off_hook", False)

    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook", count=2)
    seconds = NO_ANSWER_S + len(unavailable) / 8000 + 10
    box.sim(
        target="handset", number=1, action="record", file=str(tmp_path / "u.wav"), seconds=seconds
    )
    box.sim(target="handset", number=1, action="dial", digits="102")
    wait_status(box, 2, "ringing", True)
    box.wait_log("port 1: LeaveMessage started", count=2, timeout=NO_ANSWER_S + 20)
    heard = recorded(tmp_path / "u.wav", seconds)
    assert heard_in(heard, not_available) > 0.9
    assert heard_in(heard, busy) < 0.75
    box.sim(target="handset", number=1, action="on-hook")
    box.wait_log("port 1: LeaveMessage ended", count=2)

    # 102 records a busy greeting by phone (options, 3): a 500 Hz tone stands for speech.
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("port 2: OffHook", count=2)
    box.sim(target="handset", number=2, action="dial", digits="*98")
    box.wait_log("port 2: MailboxMenu started")
    time.sleep(2.0)  # the messages are loaded and the main menu plays: keys barge in
    box.sim(target="handset", number=2, action="dial", digits="03")
    box.wait_log("port 2: recording a busy-greeting for box 102", timeout=30)
    box.sim(target="handset", number=2, action="tone", freqs=[GREETING_HZ])
    time.sleep(2.0)
    box.sim(target="handset", number=2, action="stop-audio")
    time.sleep(0.5)  # a digit must rise out of a pause (firmware.dsp.dtmf)
    box.sim(target="handset", number=2, action="dial", digits="#")
    deadline = time.monotonic() + 20
    while not (box.data / "voicemail" / "102" / "busy-greeting.wav").exists():
        assert time.monotonic() < deadline, "no busy greeting stored"
        time.sleep(0.1)
    # 102 lifted (at dial tone, so no call waiting): busy, a caller hears the greeting.
    box.sim(target="handset", number=2, action="on-hook")
    box.wait_log("port 2: MailboxMenu ended")
    box.sim(target="handset", number=2, action="off-hook")
    box.wait_log("port 2: OffHook", count=3)
    box.sim(target="handset", number=1, action="off-hook")
    box.wait_log("port 1: OffHook", count=3)
    seconds = 5.0
    box.sim(
        target="handset", number=1, action="record", file=str(tmp_path / "g.wav"), seconds=seconds
    )
    box.sim(target="handset", number=1, action="dial", digits="102")
    heard = recorded(tmp_path / "g.wav", seconds)
    loud = [f for f in heard[: len(heard) // 160 * 160].reshape(-1, 160) if np.std(f) > 100]
    greeting = [f for f in loud if abs(dominant_hz(np.tile(f, 8)) - GREETING_HZ) < 60]
    assert len(greeting) >= 50  # a second of it at least (2 s were recorded)
    assert heard_in(heard, busy) < 0.75
    box.sim(target="handset", number=1, action="on-hook")
    box.sim(target="handset", number=2, action="on-hook")
