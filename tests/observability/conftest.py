"""One test bed for the observability tests that need it: starting one takes seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.rehearse.testbed import TestBed


@pytest.fixture(scope="package")
def bed() -> Iterator[TestBed]:
    with TestBed() as running:
        yield running
