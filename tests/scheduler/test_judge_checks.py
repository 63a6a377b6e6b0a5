"""The statistical judge in the scheduler's metrics checks, over fakes: a Fail counts as a
failed check with the judge's reason, a Marginal score follows `onMarginal`, missing samples
follow the NaN strategy, and the score reaches the lines, the report, alerts, record and push.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from components.adapters.pushgateway import Pushgateway
from components.adapters.records import CheckValue
from components.scheduler.report import JudgeEntry
from components.spec import ReleaseSpec
from tests.conftest import load_yaml
from tests.fakes import STEADY, FakeAlerts
from tests.scheduler.test_scheduler import Bench

LATENCY = (
    "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
    'destination_workload="{{ target }}"}[{{ interval }}])) by (le))'
)
ERRORS = (
    'sum(rate(istio_requests_total{destination_workload="{{ target }}", '
    'response_code=~"5.*"}[{{ interval }}]))'
)
SLOWER = tuple(value * 1.4 for value in STEADY)
REASON = "request-duration: High, canary/primary mean ratio 1.4, 98% interval [4.4, 13.6] ms"


def duration(**fields: Any) -> dict[str, Any]:
    metric = {"name": "request-duration", "query": LATENCY, "unit": "ms", "direction": "increase"}
    return metric | fields


def errors() -> dict[str, Any]:
    return {"name": "error-rate", "query": ERRORS, "nanStrategy": "replace"}


def judged(
    metrics: Sequence[dict[str, Any]] | None = None, *, threshold: int = 2, **spec: Any
) -> ReleaseSpec:
    """The tutorial with a judge of the p99 and the 5xx rate; pass 95, marginal 75 unless
    `spec` says otherwise."""
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"]["threshold"] = threshold
    document = {
        "apiVersion": "canary.pulumi.com/v1alpha1",
        "kind": "Judge",
        "spec": {
            "thresholds": {"pass": 95, "marginal": 75},
            "metrics": list(metrics or [duration(), errors()]),
            **spec,
        },
    }
    return ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"), judge=document)


def alerts(bench: Bench) -> list[str]:
    assert isinstance(bench.adapters.alerts, FakeAlerts)
    return [message.text for message in bench.adapters.alerts.sent]


def test_a_failing_judge_counts_a_failed_check_with_its_reason() -> None:
    bench = Bench(judged())
    bench.metrics.samples_of["request-duration"] = (SLOWER, STEADY)

    report = bench.scheduler.analyse()

    assert report.outcome == "rolled_back"
    assert report.failed_checks == 2
    assert report.reason == (
        "failed checks threshold reached 2: metrics: "
        f"judge score 50 (Fail; pass 95, marginal 75): {REASON}"
    )
    assert (
        "podinfo: 10% success-rate 100 >=99, duration 100 <=500ms, "
        "judge 50 (FAIL: request-duration High x1.4): FAIL 1/2"
    ) in bench.lines
    assert report.checks[0].judge == JudgeEntry(
        score=50.0,
        verdict="Fail",
        passed=False,
        pending=False,
        classifications={"request-duration": "High", "error-rate": "Pass"},
        reason=f"judge score 50 (Fail; pass 95, marginal 75): {REASON}",
    )
    assert report.to_json()["checks"][0]["judge"]["score"] == 50.0
    assert any(
        text.startswith("Halt advancement (1/2") and REASON in text for text in alerts(bench)
    )
    assert any(
        text.startswith("Canary failed, rolling back") and REASON in text for text in alerts(bench)
    )
    assert bench.record().last_check["judge"] == CheckValue(50.0, ">= 95", False)


def test_thresholds_and_the_judge_are_both_named_when_both_fail() -> None:
    bench = Bench(judged(threshold=1))
    bench.metrics.values["request-success-rate"] = 50.0
    bench.metrics.samples_of["request-duration"] = (SLOWER, STEADY)
    report = bench.scheduler.analyse()
    assert report.reason is not None
    assert "request-success-rate 50 < 99; judge score 50 (Fail" in report.reason


def test_a_passing_judge_lets_the_release_promote() -> None:
    bench = Bench(judged())
    report = bench.scheduler.analyse()
    assert report.outcome == "promoted"
    assert [check.judge.score if check.judge else None for check in report.checks] == [100.0] * 5
    assert (
        bench.lines.count(
            "podinfo: 50% success-rate 100 >=99, duration 100 <=500ms, judge 100 (pass): "
            "pass, promoting"
        )
        == 1
    )


def test_the_score_is_pushed_as_the_metric_judge() -> None:
    bench = Bench(judged(threshold=1))
    bench.metrics.samples_of["request-duration"] = (SLOWER, STEADY)
    bodies: list[str] = []

    def request(method: str, url: str, **options: Any) -> httpx.Response:
        bodies.append(options.get("content", b"").decode())
        return httpx.Response(200)

    object.__setattr__(bench.adapters, "pushgateway", Pushgateway(request, "http://pushgateway"))
    bench.scheduler.analyse()

    judge = 'metric="judge",name="podinfo",namespace="default"'
    last = next(body for body in reversed(bodies) if "flagger_canary_metric_analysis" in body)
    assert f"flagger_canary_metric_analysis{{{judge}}} 50.0" in last
    assert f"pulumi_canary_metric_check_passed{{{judge}}} 0.0" in last
    assert f'pulumi_canary_metric_threshold{{bound="min",{judge}}} 95.0' in last


def test_each_check_samples_the_interval_since_the_last_one_at_the_judges_step() -> None:
    bench = Bench(judged(step="5s"))
    bench.scheduler.analyse()
    (canary, primary), window = bench.metrics.sampled[0]
    assert 'destination_workload="podinfo"' in canary and "[5s]" in canary
    assert 'destination_workload="podinfo-primary"' in primary and "[5s]" in primary
    assert (window.step, window.count) == (5.0, 12)  # the tutorial's 1m interval
    ends = [window.end for _, window in bench.metrics.sampled[::2]]
    assert [later - earlier for earlier, later in itertools.pairwise(ends)] == [60.0] * 4


@pytest.mark.parametrize(
    ("policy", "outcome", "failed_checks", "reason", "line"),
    [
        (
            "hold",
            "rolled_back",
            0,
            "release deadline exceeded while metrics held: judge score 50 (Marginal",
            "judge 50 (hold: request-duration High x1.4): hold",
        ),
        (
            "fail",
            "rolled_back",
            2,
            "failed checks threshold reached 2: metrics: judge score 50 (Marginal",
            "judge 50 (FAIL: request-duration High x1.4): FAIL 2/2",
        ),
        (
            "pass",
            "promoted",
            0,
            None,
            "judge 50 (pass, marginal: request-duration High x1.4): pass, promoting",
        ),
    ],
)
def test_a_marginal_score_follows_on_marginal(
    policy: str, outcome: str, failed_checks: int, reason: str | None, line: str
) -> None:
    release = judged(thresholds={"pass": 95, "marginal": 40}, onMarginal=policy)
    bench = Bench(release, deadline_seconds=400)
    bench.metrics.samples_of["request-duration"] = (SLOWER, STEADY)

    report = bench.scheduler.analyse()

    assert report.outcome == outcome
    assert report.failed_checks == failed_checks
    if reason is None:
        assert report.reason is None
    else:
        assert report.reason is not None and report.reason.startswith(reason)
        assert REASON in report.reason
    assert any(text.endswith(line) for text in bench.lines)
    if policy == "hold":  # held at the first step, one interval apart, without failing
        assert report.canary_weights == [10]
        assert set(bench.clock.slept) == {60.0}
        assert all(entry.judge and entry.judge.pending for entry in report.checks)
        assert any(
            text.startswith("Waiting: metrics held: judge score 50") for text in alerts(bench)
        )


NAN = math.nan


@pytest.mark.parametrize(
    ("metric", "canary", "outcome", "reason"),
    [
        (
            duration(),
            (NAN,) * 6,
            "rolled_back",
            "judge score 0 (Fail; pass 95, marginal 75): 1 of 1 metrics have no data",
        ),
        (
            duration(mustHaveData=True),
            (),
            "rolled_back",
            "judge score 0 (Fail; pass 95, marginal 75): "
            "request-duration: NodataFail, no canary samples",
        ),
        (duration(nanStrategy="replace"), (NAN,) * 6, "promoted", None),  # 0s, lower: no increase
        (duration(), (NAN, 20.0, 21.0, NAN, 23.0, 24.0, 25.0), "promoted", None),  # gaps dropped
    ],
    ids=["remove", "remove-must-have-data", "replace", "remove-gaps"],
)
def test_missing_canary_samples_follow_the_nan_strategy(
    metric: dict[str, Any], canary: tuple[float, ...], outcome: str, reason: str | None
) -> None:
    bench = Bench(judged([metric], threshold=1))
    bench.metrics.samples_of["request-duration"] = (canary, STEADY)
    report = bench.scheduler.analyse()
    assert report.outcome == outcome
    if reason is not None:
        assert report.reason == f"failed checks threshold reached 1: metrics: {reason}"


def test_a_metrics_server_problem_fails_the_judge_with_the_servers_reason() -> None:
    bench = Bench(judged(threshold=1))
    problem = "prometheus at http://prometheus.istio-system:9090: answered 503: busy"
    bench.metrics.sample_error = problem
    report = bench.scheduler.analyse()
    assert report.outcome == "rolled_back"
    assert report.reason == (
        "failed checks threshold reached 1: metrics: judge has no samples: "
        f"request-duration: {problem}; error-rate: {problem}"
    )
    assert any(
        f"judge no samples (FAIL: request-duration: {problem}" in line for line in bench.lines
    )
    assert bench.record().last_check["judge"] == CheckValue(None, ">= 95", False)
