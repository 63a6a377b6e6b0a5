"""The step generator stand-in stalls where the engine's does, over the real dynamic server.

Four Updates of `HoldingProvider` hold the server's four threads, as four Rollouts do for their
analyses; then a finaliser (a dynamic resource) and a Kubernetes object (another provider's)
register together, in that order. The finaliser's Check must wait for a free thread, and the
Kubernetes object must wait for that Check, though nothing connects the two: the generator
calls Check inline. What the server ran when is read from its output, in the order it wrote
it, and what the engine did from the trace's order of events: no clock is compared.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from tests.e2e.holding import HoldingProvider
from tests.e2e.steps import Dynamic, Other, Registration, StepGenerator, Trace
from tests.provider.dynamic_server import DynamicServer, urn

HOLDING = serialize_provider(HoldingProvider())
HELD = [f"release-{index}" for index in range(1, 5)]  # as many as the server has threads
FINALISER, PRIMARY, BARRIER = "finaliser", "primary", "all-four-holding"


def holding(name: str) -> str:
    return urn(name, "Holding")


def other_urn(name: str) -> str:
    return f"urn:pulumi:dev::canary::kubernetes:apps/v1:Deployment::{name}"


@pytest.fixture
def server() -> Iterator[DynamicServer]:
    with DynamicServer() as running:
        running.configure()
        yield running


def program(server: DynamicServer, holds: Path, *, first: bool) -> list[Registration]:
    """The four held resources, then the finaliser and the primary registered together once
    all four Updates hold their threads (a barrier standing for what they depend on). The
    `first` up creates everything, and nothing holds."""

    def inputs(name: str) -> Any:
        return lambda _: {"__provider": HOLDING, "name": name, "release": str(holds / name)}

    def barrier(_: Any) -> dict[str, Any]:
        if not first:
            for name in HELD:
                server.wait_for_line(rf"^{name}: holding", timeout=30)
        return {}

    return [
        *(Dynamic(holding(name), inputs(name)) for name in HELD),
        Other(other_urn(BARRIER), barrier),
        Dynamic(holding(FINALISER), inputs(FINALISER), after=(other_urn(BARRIER),)),
        Other(other_urn(PRIMARY), lambda _: {}, after=(other_urn(BARRIER),)),
    ]


@dataclass(frozen=True)
class HeldUp:
    """A second `up` under way, its four Updates held; `since`: the server's output from it."""

    trace: Trace
    since: int

    def line(self, server: DynamicServer, text: str) -> int:
        """Where the server wrote `text` in this `up`."""
        return server.wait_for_line(rf"^{text}$", since=self.since, timeout=30).index


@contextlib.contextmanager
def four_held_updates(inline_checks: bool, server: DynamicServer, holds: Path) -> Iterator[HeldUp]:
    """The first `up` creates everything; the second runs while the block does, its Updates
    held until the block releases them. Whatever the block did, all are released after it,
    and the second `up` has ended."""
    generator = StepGenerator(server, inline_checks=inline_checks)
    created = generator.up(program(server, holds, first=True))
    assert not created.errors, created.errors
    up = HeldUp(Trace(), server.mark())
    with ThreadPoolExecutor(max_workers=1) as engine:
        second = engine.submit(generator.up, program(server, holds, first=False), up.trace)
        try:
            yield up
        finally:
            release(holds, [*HELD, FINALISER])
            second.result(timeout=60)
    assert not up.trace.errors, up.trace.errors


def release(holds: Path, names: list[str]) -> None:
    for name in names:
        (holds / name).touch()


def test_a_check_behind_four_held_updates_stalls_every_later_registration(
    server: DynamicServer, tmp_path: Path
) -> None:
    with four_held_updates(True, server, tmp_path) as up:
        trace = up.trace
        trace.wait_for(holding(FINALISER), "check")
        trace.wait_for(other_urn(PRIMARY), "registered")
        release(tmp_path, [HELD[0], FINALISER])  # one thread frees up
        trace.wait_for(other_urn(PRIMARY), "done")

    # The finaliser's Check ran on the server only once the first Update returned...
    assert up.line(server, f"{FINALISER}: checked") > up.line(server, f"{HELD[0]}: update returns")
    # ...while the other three still held theirs.
    for name in HELD[1:]:
        assert trace.index(holding(name), "done") > trace.index(holding(FINALISER), "checked")
    # The primary was registered before any Update returned, and its step waited for that
    # Check, which has nothing to do with it.
    assert trace.index(other_urn(PRIMARY), "registered") < trace.index(holding(HELD[0]), "done")
    assert trace.index(holding(FINALISER), "checked") < trace.index(other_urn(PRIMARY), "step")


def test_without_the_inline_check_only_the_dynamic_resource_waits(
    server: DynamicServer, tmp_path: Path
) -> None:
    """The comparison the benchmark runs: Check handed to the executor with the step."""
    with four_held_updates(False, server, tmp_path) as up:
        trace = up.trace
        trace.wait_for(other_urn(PRIMARY), "done")  # while all four hold
    assert trace.index(other_urn(PRIMARY), "done") < min(
        trace.index(holding(name), "done") for name in HELD
    )
    # The finaliser's Check still needs one of the server's threads.
    assert up.line(server, f"{FINALISER}: checked") > min(
        up.line(server, f"{name}: update returns") for name in HELD
    )
