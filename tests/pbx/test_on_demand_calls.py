"""On-demand recording in call control: the toggle code dialled during a call, or after a
hook flash, through the real FXS line machines (tests/pbx/sipbox.py)."""

from __future__ import annotations

import dataclasses

from firmware.pbx.apps import HushLine, RecordCall, StopRecording
from firmware.pbx.calls import CallCommand, Join, SendDtmf, Split
from firmware.pbx.recording import FEATURE_DIGIT_TIMEOUT_MS
from firmware.store.schema import Config, RecordingPolicy
from tests.pbx.sipbox import Box, sip_config
from tests.pbx.test_features import call, flash, talking


def config(policy: RecordingPolicy = "on_demand", code: str = "*1") -> Config:
    base = sip_config(fxs=3)
    extensions = tuple(
        dataclasses.replace(e, recording=policy) if e.number == "102" else e
        for e in base.extensions
    )
    codes = dataclasses.replace(base.features.codes, record_toggle=code)
    return dataclasses.replace(
        base,
        extensions=extensions,
        features=dataclasses.replace(base.features, codes=codes),
    )


def since(box: Box, mark: int) -> list[CallCommand]:
    return box.sent[mark:]


def test_either_party_toggles_with_the_code_and_its_digits_are_held_back() -> None:
    box = Box(config())
    call(box, 1, "102", answer=2)
    assert talking(box, 1, 2)
    assert not any(isinstance(c, RecordCall) for c in box.sent)  # on demand: not yet
    # Each party's media loop hushes it by itself the moment it hears a '*'.
    assert {HushLine(1, False, "*"), HushLine(2, False, "*")} <= set(box.sent)
    mark = len(box.sent)
    box.dial(1, "*1")
    assert since(box, mark) == [
        HushLine(1, True, "*"),
        HushLine(1, False, "*"),
        RecordCall(1, "101", "102", "on_demand", beep=True),
    ]
    mark = len(box.sent)
    box.dial(2, "*1")  # the callee stops it; the file is the caller port's
    assert since(box, mark) == [HushLine(2, True, "*"), HushLine(2, False, "*"), StopRecording(1)]


def test_digits_that_are_not_the_code_reach_the_other_party_late() -> None:
    box = Box(config(code="*12"))
    call(box, 1, "102", answer=2)
    mark = len(box.sent)
    box.dial(2, "*5")
    assert since(box, mark) == [HushLine(2, True, "*"), HushLine(2, False, "*"), SendDtmf(1, "*5")]
    mark = len(box.sent)
    box.dial(2, "*")
    box.advance(FEATURE_DIGIT_TIMEOUT_MS)
    assert since(box, mark) == [HushLine(2, True, "*"), HushLine(2, False, "*"), SendDtmf(1, "*")]
    assert talking(box, 1, 2)


def test_flash_then_the_code_toggles_and_returns_to_the_call() -> None:
    box = Box(config())
    call(box, 1, "102", answer=2)
    flash(box, 1)  # hold 102, recall dial tone
    assert not talking(box, 1, 2)
    mark = len(box.sent)
    box.dial(1, "*1")
    assert talking(box, 1, 2)
    after = since(box, mark)
    assert Join(1, 2) in after
    assert after[-1] == RecordCall(1, "101", "102", "on_demand", beep=True)
    # Held again, the split ends the file; taken back, recording goes on in a new one.
    flash(box, 1)
    box.dial(1, "103")
    assert Split(1, 2) in box.sent
    flash(box, 1)  # 103 rings: the flash drops the consultation, back to 102
    assert talking(box, 1, 2)
    assert box.sent[-1] == RecordCall(1, "101", "102", "on_demand")
    mark = len(box.sent)
    flash(box, 1)
    box.dial(1, "*1")  # flash and the code again: stopped
    assert talking(box, 1, 2) and since(box, mark)[-1] == StopRecording(1)


def test_never_and_always_calls_ignore_the_code() -> None:
    for policy in ("never", "always"):
        box = Box(config(policy))
        call(box, 1, "102", answer=2)
        mark = len(box.sent)
        box.dial(1, "*1")
        assert not any(isinstance(c, HushLine | StopRecording) for c in since(box, mark))
        assert (RecordCall(1, "101", "102") in box.sent) is (policy == "always")
