"""Fixtures of the line-card contract suite.

By default the suite runs against the simulator (in ``make test``).  Against a real card:
``ponte hwtest --linecard /dev/ttyS1`` (or ``pytest hwtests --linecard URL``), with a
technician at the bench answering the prompts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hwtests.rig import CardUnderTest, LoopThread, ManualRig, Rig, SimRig


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ponte line card")
    group.addoption(
        "--linecard",
        default=None,
        metavar="URL",
        help="test a real line card at this serial URL (default: the simulator)",
    )


@pytest.fixture(scope="module")
def loops() -> Iterator[LoopThread]:
    loops = LoopThread()
    yield loops
    loops.close()


@pytest.fixture(scope="module")
def rig(request: pytest.FixtureRequest, loops: LoopThread) -> Iterator[Rig]:
    url = request.config.getoption("--linecard")
    rig: Rig = SimRig(loops) if url is None else ManualRig(url)
    yield rig
    rig.close()


@pytest.fixture
def card(request: pytest.FixtureRequest, loops: LoopThread, rig: Rig) -> Iterator[CardUnderTest]:
    url = request.config.getoption("--linecard") or rig.url
    card = CardUnderTest(url, loops)
    card.open()
    yield card
    card.close()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Measured values a test wants in the technician's report."""
    found: dict[str, str] = {}
    yield found
    for name, value in found.items():
        request.node.user_properties.append((name, value))
