"""Installer memory does not grow with the bundle (issue 7 figures; bench has the RSS)."""

from __future__ import annotations

import tracemalloc

import pytest

from tests.update.helpers import Sim, payload_bytes

MIB = 1024 * 1024


def peak_of_install(sim: Sim, size: int, compression: str, sv: int) -> int:
    path = sim.bundle(payload_bytes(size, sv), compression=compression, security_version=sv)
    sim.payloads.clear()  # keep the test's own copy out of the measurement
    tracemalloc.start()
    try:
        sim.install(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_peak_memory_is_flat_in_bundle_size(sim: Sim, compression: str) -> None:
    small = peak_of_install(sim, 4 * MIB, compression, 2)
    large = peak_of_install(sim, 24 * MIB, compression, 3)
    assert large < 8 * MIB, large
    assert large < small + 2 * MIB, (small, large)
