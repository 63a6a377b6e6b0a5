"""The scheduler's own paths (the lock, clean-ups, interruptions, holds) over in-memory adapters.

No Prometheus and no emulator: the fakes keep the API server's semantics that the scheduler
relies on, and a fake clock makes a whole release take milliseconds.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.adapters.cluster import ClusterError
from components.adapters.records import Owner, RecordPhase, ReleaseConflict, ReleaseRecord
from components.errors import ReleaseInterrupted
from components.scheduler import Scheduler
from components.spec import ReleaseSpec, template_revision
from components.spec.timing import Timing
from tests.conftest import load_yaml
from tests.fakes import FakeClock, FakeCluster, FakeHooks, FakeMetrics, fake_adapters

INTERVAL = 60.0


def tutorial(**analysis: Any) -> ReleaseSpec:
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"].update(analysis)
    return ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))


class Bench:
    """One release over fakes; `lines` is what `pulumi up` would print."""

    def __init__(self, release: ReleaseSpec | None = None, **timing: Any) -> None:
        self.release = release or tutorial()
        self.clock = FakeClock()
        self.cluster = FakeCluster(self.release)
        self.adapters = fake_adapters(self.release, self.clock, self.cluster)
        self.lines: list[str] = []
        self.revision = template_revision(self.release.deployment["spec"]["template"])
        self.scheduler = Scheduler(
            self.release,
            self.adapters,
            revision=self.revision,
            timing=Timing.of(self.release.spec.analysis, **timing),
            progress=self.lines.append,
            clock=self.clock,
        )

    @property
    def metrics(self) -> FakeMetrics:
        assert isinstance(self.adapters.metrics, FakeMetrics)
        return self.adapters.metrics

    @property
    def hooks(self) -> FakeHooks:
        assert isinstance(self.adapters.hooks, FakeHooks)
        return self.adapters.hooks

    def record(self) -> ReleaseRecord:
        record = self.cluster.record()
        assert record is not None
        return record

    def at_rest(self) -> bool:
        return self.cluster.canary_weight == 0 and self.cluster.replicas_of["podinfo"] == 0


def test_a_healthy_release_steps_one_interval_apart_and_ends_promoting() -> None:
    bench = Bench()
    report = bench.scheduler.analyse()
    assert report.outcome == "promoted"
    assert report.canary_weights == [10, 20, 30, 40, 50]
    assert bench.clock.slept == [INTERVAL] * 5
    assert bench.cluster.canary_weight == 50  # the finaliser routes back once the primary rolled
    record = bench.record()
    assert (record.phase, record.weight, record.settled) == (RecordPhase.PROMOTING, 50, False)


def test_the_run_is_a_generator_of_waits() -> None:
    bench = Bench(interval="10s")
    waits = bench.scheduler.run()
    assert [next(waits) for _ in range(3)] == [10.0, 10.0, 10.0]


def test_the_record_names_a_weight_only_once_the_cluster_has_it() -> None:
    """Every save of a weight comes after the route write that put it there."""
    bench = Bench()
    saved: list[tuple[int, int]] = []  # (routes written so far, weight the record claims)
    write = bench.cluster.write_config_map

    def spy(*args: Any, **kwargs: Any) -> str:
        version = write(*args, **kwargs)
        saved.append((len(bench.cluster.routes_written), bench.record().weight))
        return version

    bench.cluster.write_config_map = spy  # type: ignore[method-assign]
    bench.scheduler.analyse()
    for writes, weight in saved:
        written = [state.canary_weight for state in bench.cluster.routes_written[:writes]]
        assert weight == (written[-1] if written else 0)


def test_a_failed_analysis_routes_back_before_it_scales_down() -> None:
    bench = Bench(tutorial(threshold=2))
    bench.metrics.values["request-success-rate"] = 50.0
    report = bench.scheduler.analyse()
    assert report.outcome == "rolled_back"
    assert bench.at_rest()
    last_route = max(i for i, call in enumerate(bench.cluster.calls) if call[0] == "apply")
    scale_down = max(
        i for i, call in enumerate(bench.cluster.calls) if call == ("scale", "podinfo")
    )
    assert last_route < scale_down
    record = bench.record()
    assert (record.phase, record.weight, record.settled) == (RecordPhase.FAILED, 0, True)


def test_a_live_owner_stops_the_run_before_it_moves_anything() -> None:
    bench = Bench()
    other = ReleaseRecord(
        "0123", RecordPhase.PROGRESSING, weight=20, heartbeat=bench.clock.now() - 5,
        owner=Owner("another-host", 1),
    )  # fmt: skip
    bench.cluster.put_record(other)
    bench.cluster.canary_weight = 20
    with pytest.raises(ReleaseConflict, match="another release of podinfo is running"):
        bench.scheduler.analyse()
    assert bench.cluster.routes_written == []
    assert bench.record() == other


def test_a_stale_owner_is_taken_over_from_primary_100() -> None:
    bench = Bench()
    bench.cluster.put_record(
        ReleaseRecord(
            "0123", RecordPhase.PROGRESSING, weight=30, heartbeat=bench.clock.now() - 600,
            owner=Owner("another-host", 1),
        )
    )  # fmt: skip
    bench.cluster.canary_weight = 30
    assert bench.scheduler.analyse().outcome == "promoted"
    assert bench.cluster.routes_written[0].canary_weight == 0
    assert "an interrupted release was found at canary weight 30" in bench.lines[0]


def test_a_lost_lock_mid_release_stops_without_moving_traffic() -> None:
    bench = Bench()
    waits = bench.scheduler.run()
    next(waits)
    next(waits)  # at weight 20, between checks
    record = bench.record()
    bench.cluster.put_record(record)  # another writer bumps the version
    routes_before = list(bench.cluster.routes_written)
    with pytest.raises(ReleaseConflict, match="changed since this run read it"):
        next(waits)
    assert bench.cluster.routes_written == routes_before
    assert bench.cluster.canary_weight == 20


def test_an_api_error_returns_traffic_to_rest_and_marks_the_release_interrupted() -> None:
    bench = Bench()
    calls = 0

    def status_fails_late(verb: str, name: str) -> None:
        nonlocal calls
        if verb == "status":
            calls += 1
            if calls >= 3:
                raise ClusterError("get", "Deployment", "default", name, "timed out", code=500)

    bench.cluster.fault = status_fails_late
    with pytest.raises(ClusterError, match="timed out"):
        bench.scheduler.analyse()
    assert bench.at_rest()
    record = bench.record()
    assert (record.phase, record.settled) == (RecordPhase.INTERRUPTED, True)
    assert "stopped by an error" in (record.reason or "")


def test_a_verdict_survives_a_clean_up_that_cannot_finish() -> None:
    """The canary failed; then the API refuses every scale-down. The record stays Failed (the
    next run must not analyse the bad canary again) and says the clean-up is not settled."""
    bench = Bench(tutorial(threshold=1))
    bench.metrics.values["request-success-rate"] = 10.0

    def scale_down_fails(verb: str, name: str) -> None:
        failed = bench.cluster.record() is not None and bench.record().phase is RecordPhase.FAILED
        if verb == "scale" and name == "podinfo" and failed:
            raise ClusterError("patch", "Deployment", "default", name, "unavailable", code=503)

    bench.cluster.fault = scale_down_fails
    report = bench.scheduler.analyse()
    assert report.outcome == "rolled_back"
    assert "could not scale Deployment/podinfo.default to zero" in (report.cleanup or "")
    record = bench.record()
    assert (record.phase, record.settled, record.weight) == (RecordPhase.FAILED, False, 0)
    assert bench.cluster.canary_weight == 0
    assert any("left: canary weight 0, 2 canary replicas" in line for line in bench.lines)


def test_a_record_that_cannot_say_the_route_back_still_gets_the_canary_scaled_down() -> None:
    """The route back held, then the record's writes fail: the canary has no traffic, so it is
    scaled to zero anyway (it would run for nothing until the next run), and the verdict
    stays for the next run to read."""
    bench = Bench(tutorial(threshold=1))
    bench.metrics.values["request-success-rate"] = 10.0
    failures = 0

    def record_write_fails_after_the_route_back(verb: str, name: str) -> None:
        nonlocal failures
        failed = bench.cluster.record() is not None and bench.record().phase is RecordPhase.FAILED
        routed_back = bench.cluster.canary_weight == 0 and bench.cluster.replicas_of["podinfo"]
        if verb == "write" and failed and routed_back:
            failures += 1
            raise ClusterError("update", "ConfigMap", "default", name, "unavailable", code=500)

    bench.cluster.fault = record_write_fails_after_the_route_back
    with pytest.raises(ClusterError, match="unavailable"):
        bench.scheduler.analyse()
    assert failures >= 1
    assert bench.at_rest()
    assert bench.record().phase is RecordPhase.FAILED


def test_an_interruption_between_checks_aborts_to_rest_at_once() -> None:
    bench = Bench()
    bench.clock.interrupt_at = bench.clock.now() + 2.5 * INTERVAL
    with pytest.raises(ReleaseInterrupted):
        bench.scheduler.analyse()
    assert bench.at_rest()
    record = bench.record()
    assert (record.phase, record.settled) == (RecordPhase.INTERRUPTED, True)
    assert bench.lines[-1] == (
        "podinfo: interrupted (SIGINT): all traffic is on the primary; "
        "the next pulumi up starts the release over"
    )
    assert bench.clock.now() == bench.clock.interrupt_at  # no further interval slept


def test_settle_does_nothing_when_the_release_is_at_rest() -> None:
    bench = Bench()
    bench.cluster.put_record(ReleaseRecord(bench.revision, RecordPhase.SUCCEEDED, settled=True))
    assert bench.scheduler.settle("before the canary takes the new template") is False
    assert bench.cluster.routes_written == [] and bench.lines == []


def test_settle_returns_what_a_killed_run_left_and_keeps_a_verdict() -> None:
    bench = Bench()
    bench.cluster.put_record(
        ReleaseRecord(bench.revision, RecordPhase.FAILED, weight=10, reason="errors")
    )
    bench.cluster.canary_weight, bench.cluster.replicas_of["podinfo"] = 10, 2
    assert bench.scheduler.settle("before failing fast") is True
    assert bench.at_rest()
    record = bench.record()
    assert (record.phase, record.reason, record.settled) == (RecordPhase.FAILED, "errors", True)
    assert bench.lines[0].startswith("podinfo: found canary weight 10 and 2 canary replicas")


def test_settle_scales_down_a_canary_left_with_replicas_but_no_traffic() -> None:
    bench = Bench()
    bench.cluster.replicas_of["podinfo"] = 2
    assert bench.scheduler.settle("before the canary takes the new template") is True
    assert bench.at_rest()
    assert bench.record().phase is RecordPhase.INTERRUPTED


def test_gate_hooks_stop_at_the_first_failure() -> None:
    hooks = [
        {"name": f"h{index}", "type": "pre-rollout", "url": f"http://t/{index}"}
        for index in range(3)
    ]
    bench = Bench(tutorial(threshold=1, webhooks=hooks))
    bench.hooks.failing = {"h1"}
    report = bench.scheduler.analyse()
    assert report.outcome == "rolled_back"
    assert "pre-rollout hooks: h1: answered 500" in (report.reason or "")
    assert [name for name, _ in bench.hooks.calls if name.startswith("h")] == ["h0", "h1"]


def test_an_unready_canary_rolls_back_after_the_progress_deadline_on_the_schedulers_clock() -> None:
    bench = Bench()
    bench.cluster.ready = False
    report = bench.scheduler.analyse()
    assert report.outcome == "rolled_back"
    assert "progress deadline exceeded: 0/2 ready after 600s" in (report.reason or "")
    assert sum(bench.clock.slept) > 600  # waited on the fake clock, in 5 s polls


def test_sticky_runs_deal_their_own_cookie_and_expire_the_last_one() -> None:
    sticky = tutorial(threshold=1, sessionAffinity={"cookieName": "flagger-cookie"})
    first = Bench(sticky)
    first.metrics.values["request-success-rate"] = 10.0  # rolls back after one check
    first.scheduler.analyse()
    weighted = [s for s in first.cluster.routes_written if s.canary_weight]
    cookie = weighted[0].cookie
    assert cookie and all(s.cookie == cookie for s in weighted)
    assert all(s.interval_seconds == INTERVAL for s in weighted)
    assert first.cluster.routes_written[-1].previous_cookie == cookie
    assert first.record().cookie == cookie

    again = Bench(sticky)  # e.g. retryFailed: same template, a new run
    again.cluster = first.cluster
    again.adapters = fake_adapters(again.release, again.clock, first.cluster)
    again.scheduler = Scheduler(
        again.release,
        again.adapters,
        revision=again.revision,
        timing=Timing.of(again.release.spec.analysis),
        progress=again.lines.append,
        clock=again.clock,
    )
    written = len(first.cluster.routes_written)
    again.scheduler.analyse()
    second = first.cluster.routes_written[written:]
    assert second[0].canary_weight == 0 and second[0].previous_cookie == cookie
    assert {s.cookie for s in second if s.canary_weight} - {None} != {cookie}


def test_the_record_tells_the_status_view_what_happened() -> None:
    bench = Bench()
    bench.scheduler.analyse()
    record = bench.record()
    assert record.threshold == 5 and record.interval_seconds == INTERVAL
    assert record.deadline == pytest.approx(1_000_000.0 + bench.scheduler.plan.deadline_seconds)
    assert set(record.last_check) == {"request-success-rate", "request-duration"}
    assert record.last_check["request-success-rate"].passed
    texts = [entry.text for entry in record.history]
    assert "Advance canary weight 50" in texts
    assert texts[-1] == "Copying the canary to the primary: analysis passed"


def test_retried_calls_are_counted_in_the_check_line() -> None:
    bench = Bench()

    def flaky(verb: str, name: str) -> None:
        if verb == "status":
            bench.adapters.retries.add()  # as the retrying cluster adapter counts a retry

    bench.cluster.fault = flaky
    bench.scheduler.analyse()
    checks = [line for line in bench.lines if "success-rate" in line]
    assert checks and all(line.endswith(" retried)") for line in checks)


def test_check_lines_fit_80_columns_and_say_where_what_and_how_long() -> None:
    """`pulumi up` shows one line at a time, cut to the terminal: each must stand alone."""
    bench = Bench()
    bench.scheduler.analyse()
    checks = [line for line in bench.lines if "success-rate" in line]
    assert checks == [
        f"podinfo: {weight}% success-rate 100 >=99, duration 100 <=500ms: pass, {left}"
        for weight, left in ((10, "4m to go"), (20, "3m to go"), (30, "2m to go"))
    ] + [
        "podinfo: 40% success-rate 100 >=99, duration 100 <=500ms: pass, 1m to go",
        "podinfo: 50% success-rate 100 >=99, duration 100 <=500ms: pass, promoting",
    ]
    assert all(len(line) <= 80 for line in bench.lines)


def test_a_failing_check_line_counts_towards_the_threshold() -> None:
    bench = Bench()
    bench.metrics.values["request-success-rate"] = 45.9589
    bench.scheduler.analyse()
    checks = [line for line in bench.lines if "% success-rate" in line]
    assert checks[0] == "podinfo: 10% success-rate 45.96 >=99, duration 100 <=500ms: FAIL 1/5"
    assert checks[-1].endswith(": FAIL 5/5")
    halts = [line for line in bench.lines if "Halt" in line]
    assert halts[0] == "podinfo: Halt advancement (1/5): metrics: request-success-rate 45.96 < 99"
    assert all(len(line) <= 80 for line in checks + halts)


def test_iterations_are_counted_in_the_check_lines_of_ab_and_blue_green() -> None:
    bench = Bench(
        tutorial(
            iterations=3,
            stepWeight=None,
            maxWeight=None,
            match=[{"headers": {"x": {"exact": "1"}}}],
        )
    )
    bench.scheduler.analyse()
    checks = [line for line in bench.lines if "success-rate" in line]
    assert [line.split(":")[1].split(" success")[0].strip() for line in checks] == [
        "check 1/3",
        "check 2/3",
        "check 3/3",
    ]


def test_the_checks_line_carries_each_steps_verdicts_and_the_failing_values() -> None:
    """What the failure message ends with: what a user reads last in `pulumi up`."""
    bench = Bench()
    values = iter([100.0, 100.0, 51.2, 48.0, 100.0, 12.0])  # one per tick

    def success_rate(verb: str, name: str) -> None:
        if verb == "status":
            bench.metrics.values["request-success-rate"] = next(values, 12.0)

    bench.cluster.fault = success_rate
    report = bench.scheduler.analyse()
    assert report.checks_line() == (
        "10% pass, 20% FAIL (2) request-success-rate 51.2/48, 20% pass, "
        "30% FAIL (3) request-success-rate 12/12/12"
    )


# -- what a release says and reports ------------------------------------------------------------


def test_each_hook_call_is_one_short_line_and_one_report_entry() -> None:
    bench = Bench(tutorial(stepWeight=25))
    report = bench.scheduler.analyse()
    calls = [line for line in bench.lines if " -> 200 in " in line]
    assert calls == ["podinfo: load-test (rollout) -> 200 in 0 ms"] * 2
    assert [(call.name, call.type, call.status, call.passed) for call in report.webhooks] == [
        ("load-test", "rollout", 200, True)
    ] * 2
    assert [call.since_start_s for call in report.webhooks] == [INTERVAL, 2 * INTERVAL]


def test_a_failed_hook_line_carries_its_reason_within_80_columns() -> None:
    bench = Bench(tutorial(threshold=1))
    bench.hooks.failing.add("load-test")
    report = bench.scheduler.analyse()
    assert report.outcome == "rolled_back"
    assert "podinfo: load-test (rollout) -> 500 in 0 ms: answered 500" in bench.lines
    assert all(len(line) <= 80 for line in bench.lines if " (rollout) -> " in line)


def test_the_report_times_each_check_and_decision_with_bounds_and_steps() -> None:
    bench = Bench()
    report = bench.scheduler.analyse()
    assert report.started_at == 1_000_000.0
    assert [check.step for check in report.checks] == [1, 2, 3, 4, 5]
    assert [check.since_start_s for check in report.checks] == [INTERVAL * n for n in range(1, 6)]
    assert [check.routing for check in report.checks][:2] == ["weight 10%", "weight 20%"]
    duration = report.checks[0].metrics["request-duration"]
    assert (duration.min, duration.max, duration.passed) == (None, 500, True)
    decisions = [(d.severity, d.message, d.weight) for d in report.decisions]
    assert decisions[0] == (
        "info",
        "New revision detected, starting canary 10% -> 50% in 5 steps every 1m",
        0,
    )
    assert decisions[1] == ("info", "Advance canary weight 10", 10)
    assert decisions[-1] == ("info", "Copying the canary to the primary: analysis passed", 50)
    assert (report.steps_run, report.duration_s) == (5, 5 * INTERVAL)
    assert report.plan is not None and report.plan.threshold == 5
    assert report.to_json()["checks"][0]["metrics"]["request-success-rate"]["min"] == 99


def test_a_rollback_reports_its_warnings_and_error() -> None:
    bench = Bench(tutorial(threshold=2))
    bench.metrics.value = 90.0
    report = bench.scheduler.analyse()
    severities = [decision.severity for decision in report.decisions]
    assert severities[-2:] == ["warn", "error"]
    assert report.decisions[-1].phase == "Failed" and report.decisions[-1].weight == 0
    assert [check.passed for check in report.checks] == [False, False]


def ab_release(iterations: int = 2) -> ReleaseSpec:
    canary = copy.deepcopy(load_yaml("canary-ab-testing.yaml"))
    canary["spec"]["analysis"]["iterations"] = iterations
    return ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))


def test_ab_lines_say_what_is_routed_instead_of_a_weight() -> None:
    bench = Bench(ab_release())
    report = bench.scheduler.analyse()
    assert report.promoted and report.steps_run == 2
    assert (
        "podinfo: Advance iteration 1/2: matched traffic (x-user-type: beta) -> canary"
        in bench.lines
    )
    checks = [line for line in bench.lines if ": pass" in line]
    assert checks[0].startswith("podinfo: check 1/2 success-rate ")
    assert not any("weight 100%" in line for line in bench.lines)
    assert [check.step for check in report.checks] == [1, 2]


def test_bluegreen_lines_say_the_primary_serves_all() -> None:
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    analysis = canary["spec"]["analysis"]
    del analysis["stepWeight"], analysis["maxWeight"]
    analysis["iterations"] = 2
    bench = Bench(ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml")))
    bench.scheduler.analyse()
    assert (
        "podinfo: Advance iteration 1/2: primary serves all, canary tested directly" in bench.lines
    )
    assert not any("weight 0%" in line for line in bench.lines)
