"""Many releases on one thread (`scheduler.multiplex`), over in-memory adapters and one fake
clock: the earliest wake-up first, each release at its own pace, failures and stops.

The fake clock only moves when the multiplexer sleeps, so the time a run takes is the sum of
its sleeps: releases that ran side by side take as long as the longest, not their sum.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from components.adapters.prometheus import MetricResult
from components.adapters.records import RecordPhase
from components.errors import ReleaseFailed, ReleaseInterrupted
from components.scheduler import ReleaseReport, Scheduler, multiplex
from components.scheduler.multiplex import Finished, run_all
from components.spec import MetricQuery, ReleaseSpec, template_revision
from components.spec.timing import Timing
from tests.conftest import load_yaml
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, fake_adapters
from tests.provider.dynamic_server import renamed


def release_named(name: str) -> ReleaseSpec:
    canary, deployment = renamed(load_yaml("canary.yaml"), load_yaml("deployment.yaml"), name)
    canary["spec"]["analysis"]["webhooks"] = []
    return ReleaseSpec.parse(canary=canary, deployment=deployment)


@dataclass
class TimedMetrics(FakeMetrics):
    """Metrics that note when each check asked (a check asks once per metric)."""

    clock: FakeClock = field(default_factory=FakeClock)
    asked_at: list[float] = field(default_factory=list)

    def evaluate(self, query: MetricQuery) -> MetricResult:
        if not self.asked_at or self.asked_at[-1] != self.clock.now():
            self.asked_at.append(self.clock.now())
        return super().evaluate(query)


class Fleet:
    """Releases over fakes sharing one clock, as a wave shares its thread's."""

    def __init__(self, **intervals: str) -> None:
        self.clock = FakeClock()
        self.lines: list[str] = []
        self.clusters: dict[str, FakeCluster] = {}
        self.metrics: dict[str, TimedMetrics] = {}
        self.schedulers: dict[str, Scheduler] = {}
        self.checked_at: dict[str, list[float]] = {}
        for name, interval in intervals.items():
            release = release_named(name)
            cluster = self.clusters[name] = FakeCluster(release)
            self.checked_at[name] = []
            metrics = self.metrics[name] = TimedMetrics(
                clock=self.clock, asked_at=self.checked_at[name]
            )
            adapters = replace(fake_adapters(release, self.clock, cluster), metrics=metrics)
            self.schedulers[name] = Scheduler(
                release,
                adapters,
                revision=template_revision(release.deployment["spec"]["template"]),
                timing=Timing.of(release.spec.analysis, interval=interval),
                progress=self.lines.append,
                clock=self.clock,
            )

    def runs(self) -> dict[str, Generator[float, None, ReleaseReport]]:
        return {name: self.timed(name) for name in self.schedulers}

    def timed(self, name: str) -> Generator[float, None, ReleaseReport]:
        return self.schedulers[name].run()

    def at_rest(self, name: str) -> bool:
        return self.clusters[name].at_rest()

    def phase(self, name: str) -> RecordPhase | None:
        return self.clusters[name].phase()


def rolled_back(finished: Finished[ReleaseReport]) -> bool:
    return finished.error is not None or not (finished.value and finished.value.promoted)


def test_releases_run_side_by_side_each_at_its_own_interval() -> None:
    fleet = Fleet(cart="10s", catalog="15s", checkout="25s")
    started = fleet.clock.now()
    ended = run_all(fleet.runs(), fleet.clock)
    assert all(finished.value and finished.value.promoted for finished in ended.values())
    for name, interval in (("cart", 10.0), ("catalog", 15.0), ("checkout", 25.0)):
        offsets = [at - started for at in fleet.checked_at[name]]
        assert offsets == [interval * step for step in range(1, 6)], name
    # Five steps of the slowest, not the sum of the three: they shared the waits.
    assert fleet.clock.time - started == 5 * 25.0


def test_the_earliest_wake_up_runs_next() -> None:
    fleet = Fleet(slow="30s", fast="10s")
    run_all(fleet.runs(), fleet.clock)
    checks = sorted((at, name) for name, times in fleet.checked_at.items() for at in times)
    assert [name for _, name in checks[:4]] == ["fast", "fast", "fast", "slow"]
    assert [at for at, _ in checks] == sorted(at for at, _ in checks)


def test_one_failed_canary_leaves_the_others_to_their_own_verdicts() -> None:
    fleet = Fleet(cart="10s", catalog="10s", checkout="10s")
    fleet.metrics["catalog"].value = 50.0  # below request-success-rate's 99
    ended = run_all(fleet.runs(), fleet.clock, failed=rolled_back)
    outcomes = {name: finished.value.outcome for name, finished in ended.items() if finished.value}
    assert outcomes == {"cart": "promoted", "catalog": "rolled_back", "checkout": "promoted"}
    assert fleet.phase("catalog") is RecordPhase.FAILED and fleet.at_rest("catalog")
    assert fleet.phase("cart") is fleet.phase("checkout") is RecordPhase.PROMOTING


def test_roll_back_others_stops_every_release_still_running_naming_the_failed_one() -> None:
    fleet = Fleet(cart="12s", catalog="10s", checkout="30s")
    fleet.metrics["catalog"].value = 50.0
    ended = run_all(fleet.runs(), fleet.clock, roll_back_others=True, failed=rolled_back)
    catalog = ended["catalog"].value
    assert catalog is not None and catalog.outcome == "rolled_back"
    for name in ("cart", "checkout"):
        error = ended[name].error
        assert isinstance(error, ReleaseInterrupted), name
        assert "catalog did not promote" in str(error)
        assert fleet.at_rest(name) and fleet.phase(name) is RecordPhase.INTERRUPTED
    assert any(
        line.startswith("checkout: interrupted (catalog did not promote") for line in fleet.lines
    )


def test_roll_back_others_does_not_start_the_ones_after_a_release_that_failed_at_once() -> None:
    fleet = Fleet(cart="10s", checkout="10s")

    def known_failure() -> Generator[float, None, ReleaseReport]:
        raise ReleaseFailed("catalog: release of podinfo:6.3.2 already failed")
        yield 0.0  # a generator, as every release is

    runs: dict[str, Generator[float, None, ReleaseReport]] = {
        "cart": fleet.timed("cart"),
        "catalog": known_failure(),
        "checkout": fleet.timed("checkout"),
    }
    ended = run_all(runs, fleet.clock, roll_back_others=True)
    assert isinstance(ended["catalog"].error, ReleaseFailed)
    assert isinstance(ended["cart"].error, ReleaseInterrupted)
    assert fleet.at_rest("cart") and fleet.phase("cart") is RecordPhase.INTERRUPTED
    checkout = ended["checkout"].error
    assert isinstance(checkout, ReleaseInterrupted)
    assert str(checkout).startswith("not started: catalog did not promote")
    assert fleet.clusters["checkout"].calls == []  # never touched


@pytest.mark.parametrize("count", [3, 40])
def test_a_stop_request_stops_every_release_and_returns_its_traffic(count: int) -> None:
    names = {f"shop-{index}": f"{10 + index % 7}s" for index in range(count)}
    fleet = Fleet(**names)
    fleet.clock.interrupt_at = fleet.clock.time + 35.0  # mid-analysis for every one of them
    ended = run_all(fleet.runs(), fleet.clock)
    assert set(ended) == set(names)
    for name, finished in ended.items():
        assert isinstance(finished.error, ReleaseInterrupted), name
        assert fleet.at_rest(name), name
        record = fleet.clusters[name].record()
        assert record is not None and record.phase is RecordPhase.INTERRUPTED and record.settled
        weights = [state.canary_weight for state in fleet.clusters[name].routes_written]
        assert max(weights) > 0, name  # it had taken traffic before the stop


def test_a_release_not_run_by_a_stopped_process_is_never_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(multiplex, "stopping", lambda: "SIGINT")
    fleet = Fleet(cart="10s")
    ended = run_all(fleet.runs(), fleet.clock)
    error = ended["cart"].error
    assert isinstance(error, ReleaseInterrupted) and str(error) == "not started: SIGINT"
    assert fleet.clusters["cart"].calls == []


def test_what_each_release_returned_is_kept_by_name() -> None:
    def returns(value: Any, waits: list[float]) -> Generator[float, None, Any]:
        yield from waits
        return value

    clock = FakeClock()
    ended = run_all({"b": returns("B", [3.0, 3.0]), "a": returns("A", [1.0])}, clock)
    assert list(ended) == ["b", "a"]
    assert (ended["a"].value, ended["b"].value) == ("A", "B")
    assert clock.slept == [1.0, 2.0, 3.0]
