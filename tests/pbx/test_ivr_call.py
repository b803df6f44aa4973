"""An IVR call end to end in 20 ms frames: espeak-ng prompts out, DTMF in.

The shell here is what call control does with an IvrSession: it plays PlayPrompts from a
PromptLibrary frame by frame, runs the caller's audio through the DTMF receiver, hands
keys and the end of each prompt to the session, and fires its timers.
"""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest

from firmware.dsp.dtmf import DtmfDetector, DtmfStart, generate_dtmf
from firmware.dsp.pcm import FRAME_MS, FRAME_SAMPLES, Pcm
from firmware.pbx.ivr import HangUp, IvrPlan, IvrSession, PlayPrompts, StopPrompt, Transfer
from firmware.prompts.build import build
from firmware.prompts.library import PromptLibrary, Source
from firmware.store.ivrconfig import GoExtension
from tests.pbx.ivr_fixtures import office_config

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
OPEN = dt.datetime(2026, 6, 10, 8, 0, tzinfo=dt.UTC)
NAMES = ["welcome", "enter-extension-or-wait", "please-hold", "invalid", "goodbye", "timeout"]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> PromptLibrary:
    out = tmp_path_factory.mktemp("prompts")
    build(out, ["de"], names=NAMES)
    return PromptLibrary(out, out / "custom")


class Shell:
    """One call's media loop around an IvrSession."""

    def __init__(self, session: IvrSession, library: PromptLibrary) -> None:
        self.session = session
        self.library = library
        self.detector = DtmfDetector()
        self.now = 0
        self.playing: tuple[int, Pcm, int] | None = None  # play_id, audio, position
        self.sent = 0  # samples of prompt audio sent to the caller
        self.log: list[object] = []

    def apply(self, commands: list[object]) -> None:
        for c in commands:
            self.log.append(c)
            if isinstance(c, PlayPrompts):
                for name in c.names:  # every prompt of this call was built
                    assert self.library.get(name, c.language).source is Source.GENERATED
                self.playing = (c.play_id, self.library.sequence(c.names, c.language), 0)
            elif isinstance(c, StopPrompt):
                assert self.playing is not None and self.playing[0] == c.play_id
                self.playing = None

    def frame(self, caller: Pcm) -> None:
        self.now += FRAME_MS
        if self.playing is not None:
            play_id, audio, pos = self.playing
            self.sent += min(FRAME_SAMPLES, audio.size - pos)
            pos += FRAME_SAMPLES
            self.playing = (play_id, audio, pos)
            if pos >= audio.size:
                self.playing = None
                self.apply(list(self.session.prompt_finished(play_id, self.now)))
        for event in self.detector.feed(caller):
            if isinstance(event, DtmfStart):
                self.apply(list(self.session.digit(event.digit, self.now)))
        deadline = self.session.next_deadline()
        if deadline is not None and self.now >= deadline:
            self.apply(list(self.session.handle_timer(self.now)))


def run_call(library: PromptLibrary, caller: Pcm, seconds: float) -> Shell:
    session = IvrPlan.from_config(office_config()).session()
    shell = Shell(session, library)
    shell.apply(list(session.start(0, OPEN)))
    total = int(seconds * 1000 / FRAME_MS)
    audio = np.zeros(total * FRAME_SAMPLES, np.int16)
    audio[: caller.size] = caller[: audio.size]
    for i in range(total):
        if session.done:
            break
        shell.frame(audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
    return shell


def at(ms: int, digits: str) -> Pcm:
    return np.concatenate([np.zeros(ms * 8, np.int16), generate_dtmf(digits, on_ms=80)])


def test_a_caller_barges_in_with_1_then_chooses_sales(library: PromptLibrary) -> None:
    welcome = library.sequence(["welcome", "enter-extension-or-wait"], "de").size
    # Key 1 after 0.6 s of the welcome, then 1 again 2 s later, after "Bitte warten Sie."
    caller = np.concatenate([at(600, "1"), at(2000, "1")])
    shell = run_call(library, caller, 20)
    assert shell.session.outcome == Transfer(GoExtension("202"), "sales", "1")
    stops = [c for c in shell.log if isinstance(c, StopPrompt)]
    assert stops[0] == StopPrompt(1)  # the welcome was cut short by the first key
    assert shell.sent < welcome + library.get("please-hold", "de").pcm.size


def test_a_caller_who_dials_an_extension_directly(library: PromptLibrary) -> None:
    shell = run_call(library, at(300, "203"), 20)
    assert shell.session.outcome == Transfer(GoExtension("203"), "main", "203")


def test_a_silent_caller_goes_to_reception_after_the_retries(library: PromptLibrary) -> None:
    shell = run_call(library, np.zeros(0, np.int16), 120)
    assert shell.session.outcome == Transfer(GoExtension("201"), "main", "")
    plays = [c.names for c in shell.log if isinstance(c, PlayPrompts)]
    assert plays[1][0] == "timeout" and plays[2][0] == "timeout" and len(plays) == 3


def test_hash_says_goodbye_and_hangs_up(library: PromptLibrary) -> None:
    shell = run_call(library, at(200, "#"), 30)
    assert shell.session.outcome == HangUp("goodbye")
    assert [c.names for c in shell.log if isinstance(c, PlayPrompts)][-1] == ("goodbye",)
