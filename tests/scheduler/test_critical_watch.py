"""The critical watch in the scheduler, over fakes: queries between checks at the scrape
cadence, a breach that rolls back at once, and no false alarm on no data or a brief error."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from components.adapters.prometheus import MetricResult
from components.errors import ReleaseInterrupted
from components.scheduler import ReleaseReport, Scheduler
from components.spec import MetricQuery, ReleaseSpec, template_revision
from components.spec.critical import Critical
from components.spec.timing import Timing
from tests.conftest import load_yaml
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, fake_adapters

INTERVAL = 60.0
SCRAPE = 15.0
THRESHOLD = 5  # the tutorial's
HEALTHY = 99.9

Values = Callable[[float], float | None]
"""Seconds since the canary's first weighted step -> the value the watch reads (None: none)."""


@dataclass
class WatchedPrometheus:
    """The watch's Prometheus: answers `values(t)` and records when it was asked what."""

    clock: FakeClock
    values: Values
    since: float | None = None
    asked: list[tuple[float, str]] = field(default_factory=list)
    unreachable: Callable[[float], bool] = lambda _t: False

    def evaluate(self, query: MetricQuery) -> MetricResult:
        assert self.since is not None, "asked before the canary took traffic"
        at = self.clock.now() - self.since
        self.asked.append((at, query.metric.name))
        if self.unreachable(at):
            reason = "prometheus at http://prometheus.istio-system:9090: ConnectError"
            return MetricResult(query.metric.name, None, "", False, reason, query.query)
        value = self.values(at)
        reason = None if value is not None else "no values found"
        return MetricResult(query.metric.name, value, "", value is not None, reason, query.query)


class Watched:
    """One release over fakes whose watch reads `values`; the checks' metrics stay healthy."""

    def __init__(self, values: Values, critical: str | None = None, **analysis: Any) -> None:
        canary = copy.deepcopy(load_yaml("canary.yaml"))
        canary["spec"]["analysis"].update(analysis)
        self.release = ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))
        self.clock = FakeClock()
        self.cluster = FakeCluster(self.release)
        self.prometheus = WatchedPrometheus(self.clock, values)
        adapters = fake_adapters(self.release, self.clock, self.cluster)
        self.adapters = replace(adapters, critical_metrics=self.prometheus)
        self.lines: list[str] = []
        self.scheduler = Scheduler(
            self.release,
            self.adapters,
            revision=template_revision(self.release.deployment["spec"]["template"]),
            timing=Timing.of(self.release.spec.analysis),
            progress=self.lines.append,
            clock=self.clock,
            critical=Critical.of(self.release, critical=critical, scrape_interval="15s"),
        )
        set_routes = self.cluster.set_routes

        def routed(state: Any) -> None:  # the watch's time starts with the first weighted step
            set_routes(state)
            if state.canary_weight and self.prometheus.since is None:
                self.prometheus.since = self.clock.now()

        self.cluster.set_routes = routed  # type: ignore[method-assign]

    @property
    def checks(self) -> FakeMetrics:
        assert isinstance(self.adapters.metrics, FakeMetrics)
        return self.adapters.metrics

    def analyse(self) -> ReleaseReport:
        return self.scheduler.analyse()

    def rolled_back_at(self) -> float:
        """When all traffic went back to the primary, in seconds since the first weighted step."""
        assert self.prometheus.since is not None
        return self.clock.now() - self.prometheus.since


def healthy(_at: float) -> float | None:
    return HEALTHY


def test_between_checks_each_condition_is_queried_once_a_scrape() -> None:
    watched = Watched(healthy, critical="request-success-rate < 50, request-duration > 2000")
    report = watched.analyse()
    assert report.outcome == "promoted"
    # The intervals are sliced into scrapes and end where they did: the checks keep their time.
    assert watched.clock.slept == [SCRAPE] * 4 * 5
    times = [at for at, name in watched.prometheus.asked if name == "request-success-rate"]
    assert times == [SCRAPE * n for n in range(1, 4 * 5 + 1)]
    durations = [at for at, name in watched.prometheus.asked if name == "request-duration"]
    assert durations == times
    assert watched.checks.calls == 5 * 2  # the checks themselves are unchanged
    assert (
        "podinfo: watching request-success-rate < 50, request-duration > 2000 every 15s: a "
        "breach rolls back at once" in watched.lines
    )


def test_a_breach_rolls_back_at_the_next_scrape_without_waiting_for_failed_checks() -> None:
    turned_bad = INTERVAL + 20.0  # in the middle of the second step

    def turns_bad(at: float) -> float | None:
        return HEALTHY if at < turned_bad else 41.5

    watched = Watched(turns_bad)
    report = watched.analyse()
    assert report.outcome == "rolled_back"
    assert report.reason == (
        "critical condition request-success-rate < 50 breached: request-success-rate is 41.5"
    )
    assert report.failed_checks == 0 < THRESHOLD
    assert turned_bad < watched.rolled_back_at() <= turned_bad + SCRAPE
    assert (watched.cluster.canary_weight, watched.cluster.replicas_of["podinfo"]) == (0, 0)
    record = watched.cluster.record()
    assert record is not None and record.phase.value == "Failed" and record.settled
    assert any(
        line.startswith("podinfo: Canary failed, rolling back: critical condition")
        for line in watched.lines
    )


def test_no_data_at_the_first_scrapes_of_a_step_is_no_alarm() -> None:
    def late_data(at: float) -> float | None:
        return None if at % INTERVAL <= SCRAPE else HEALTHY

    watched = Watched(late_data)
    report = watched.analyse()
    assert (report.outcome, report.failed_checks) == ("promoted", 0)


def test_a_prometheus_briefly_unreachable_is_no_alarm() -> None:
    watched = Watched(lambda _at: 10.0)  # would breach, were it heard
    watched.prometheus.unreachable = lambda at: INTERVAL < at < 3 * INTERVAL
    watched.prometheus.values = lambda at: None if at < INTERVAL else HEALTHY
    report = watched.analyse()
    assert (report.outcome, report.failed_checks) == ("promoted", 0)
    assert any(watched.prometheus.unreachable(at) for at, _ in watched.prometheus.asked)


def test_a_prometheus_that_stays_silent_fails_through_the_normal_checks() -> None:
    watched = Watched(lambda _at: None)
    watched.checks.value = None
    report = watched.analyse()
    assert report.outcome == "rolled_back"
    assert report.failed_checks == THRESHOLD
    assert (report.reason or "").startswith("failed checks threshold reached 5")
    assert "critical" not in (report.reason or "")


def test_off_waits_whole_intervals_and_asks_nothing() -> None:
    watched = Watched(healthy, critical="off")
    assert watched.analyse().outcome == "promoted"
    assert watched.clock.slept == [INTERVAL] * 5
    assert watched.prometheus.asked == []
    assert not any("watching" in line for line in watched.lines)


def test_a_scrape_slower_than_the_interval_is_watched_once_an_interval() -> None:
    watched = Watched(healthy, interval="10s")
    assert watched.analyse().outcome == "promoted"
    assert watched.clock.slept == [10.0] * 5
    assert [at for at, _ in watched.prometheus.asked] == [10.0 * n for n in range(1, 6)]


def test_an_interruption_in_the_middle_of_a_watch_returns_traffic_to_rest() -> None:
    watched = Watched(healthy)
    watched.clock.interrupt_at = watched.clock.now() + 1.5 * INTERVAL
    with pytest.raises(ReleaseInterrupted):
        watched.analyse()
    assert (watched.cluster.canary_weight, watched.cluster.replicas_of["podinfo"]) == (0, 0)
    assert watched.clock.now() == watched.clock.interrupt_at
