"""Fixtures shared by the adapter tests: a recording stub server and direct endpoints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from http_stub import Stub, serving

from components.adapters.endpoints import Endpoints, HttpClients


@pytest.fixture
def stub() -> Iterator[Stub]:
    with serving() as running:
        yield running


@pytest.fixture
def tls_stub() -> Iterator[Stub]:
    with serving(tls=True) as running:
        yield running


@pytest.fixture
def endpoints() -> Iterator[Endpoints]:
    with HttpClients() as clients:
        yield Endpoints(clients)
