"""SIP final responses -> Q.850 cause and tone (RFC 3398 s8.2.6.1, RFC 3261 s21)."""

from __future__ import annotations

import pytest

from firmware.pbx.sipstatus import BUSY_CODES, RFC3398_CAUSES, Tone, equivalent, failure


def test_only_busy_and_decline_give_busy_tone() -> None:
    for code in RFC3398_CAUSES:
        assert failure(code).tone is (Tone.BUSY if code in BUSY_CODES else Tone.CONGESTION)
    assert BUSY_CODES == {486, 600, 603}


@pytest.mark.parametrize(
    ("code", "cause"),
    [(404, 1), (480, 18), (484, 28), (486, 17), (408, 102), (503, 41), (600, 17), (603, 21)],
)
def test_rfc3398_causes(code: int, cause: int) -> None:
    found = failure(code).cause
    assert found is not None and found.cause == cause


@pytest.mark.parametrize(
    ("code", "same_as"), [(404, 404), (499, 400), (422, 400), (580, 500), (607, 600), (302, 300)]
)
def test_unknown_codes_count_as_their_class_x00(code: int, same_as: int) -> None:
    assert equivalent(code) == same_as


def test_codes_rfc3398_leaves_unmapped_have_no_cause() -> None:
    for code in (487, 488, 606):
        assert failure(code).cause is None
        assert failure(code).tone is Tone.CONGESTION


def test_description_names_code_reason_and_cause() -> None:
    assert failure(486, "Busy Here").describe() == "486 Busy Here (Q.850 17 user busy)"
    assert failure(487).describe() == "487"


@pytest.mark.parametrize("code", [0, 99, 700, True, "486", 486.0])
def test_impossible_codes_are_refused(code: object) -> None:
    with pytest.raises(ValueError, match="status code"):
        failure(code)  # type: ignore[arg-type]
