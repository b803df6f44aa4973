from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from image import keys
from tests.update.helpers import Sim


@pytest.fixture(scope="session")
def signing_keys() -> list[Ed25519PrivateKey]:
    return [keys.generate() for _ in range(5)]


@pytest.fixture
def sim(tmp_path: Path, signing_keys: list[Ed25519PrivateKey]) -> Sim:
    return Sim.create(tmp_path / "dev", signing_keys[:1])
