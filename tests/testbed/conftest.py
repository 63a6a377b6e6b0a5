"""Fixtures for the test-bed tests."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The project root holds the `components` package; pytest's console script does not add it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from components.rehearse.testbed import KubeEmulator


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        yield emulator


Eventually = Callable[..., None]


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def eventually() -> Eventually:
    """Wait for a condition the background simulation makes true (or fail)."""
    return _eventually
