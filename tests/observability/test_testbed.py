"""A push through the bed's in-cluster address reaches its Prometheus and the tutorial's queries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from components.adapters.endpoints import Endpoints
from components.adapters.kube import Connections, KubeAccess
from components.adapters.pushgateway import MetricCheck, MetricsState, Pushgateway, ReleaseMetrics
from components.analysis import Phase
from components.rehearse.testbed import TestBed
from components.spec import Strategy

pytestmark = pytest.mark.testbed


@pytest.fixture
def endpoints(bed: TestBed) -> Iterator[Endpoints]:
    """Endpoints as a release builds them: in-cluster hosts through the service proxy."""
    with Connections(KubeAccess(kubeconfig=bed.kubeconfig.read_text())) as connections:
        yield connections.endpoints("default")


def values(bed: TestBed, promql: str) -> dict[str, float]:
    """Each series of an instant query, keyed by its `workload` (or its name when it has none)."""
    result: list[Any] = bed.prometheus.query(promql)
    return {
        series["metric"].get("workload", series["metric"]["__name__"]): float(series["value"][1])
        for series in result
    }


def test_the_tutorials_queries_return_what_was_pushed_through_the_service_proxy(
    bed: TestBed, endpoints: Endpoints
) -> None:
    assert "service proxy" in endpoints.describe(TestBed.PUSHGATEWAY_ADDRESS)
    gateway = Pushgateway(endpoints.request, TestBed.PUSHGATEWAY_ADDRESS)
    state = MetricsState().after_tick(0.4).after_tick(1.5).after_tick(3.0)
    pushed = ReleaseMetrics(
        target="podinfo",
        namespace="default",
        strategy=Strategy.CANARY,
        phase=Phase.FAILED,
        canary_weight=0,
        primary_weight=100,
        state=state.after_outcome(Strategy.CANARY, succeeded=False),
        checks={"request-success-rate": MetricCheck(91.5, False, min=99)},
        failed_checks=5,
    )
    assert gateway.push(pushed) is None

    bed.prometheus.query_eventually('flagger_canary_status{name="podinfo"} == 2')  # scraped
    assert values(bed, 'flagger_canary_status{name="podinfo"}') == {"flagger_canary_status": 2}
    # Flagger's weight series has no `name`: the Pushgateway's grouping key adds it.
    assert values(bed, 'flagger_canary_weight{name="podinfo"}') == {
        "podinfo-primary": 100,
        "podinfo": 0,
    }
    # A histogram has no series of its bare name: the tutorial's query reads its parts.
    assert values(bed, 'flagger_canary_duration_seconds{name="podinfo"}') == {}
    count = 'flagger_canary_duration_seconds_count{name="podinfo"}'
    assert values(bed, count) == {"flagger_canary_duration_seconds_count": 3}
    bucket = 'flagger_canary_duration_seconds_bucket{name="podinfo",le="2.5"}'
    assert values(bed, bucket) == {"flagger_canary_duration_seconds_bucket": 2}
    failures = 'flagger_canary_failures_total{name="podinfo",deployment_strategy="canary"}'
    assert values(bed, failures) == {"flagger_canary_failures_total": 1}
    total = 'flagger_canary_total{namespace="default",job="pulumi-canary"}'
    assert values(bed, total) == {"flagger_canary_total": 1}


def test_a_pushgateway_down_behind_the_proxy_gives_one_warning(
    bed: TestBed, endpoints: Endpoints
) -> None:
    gateway = Pushgateway(endpoints.request, TestBed.PUSHGATEWAY_ADDRESS)
    snapshot = ReleaseMetrics("podinfo", "default", Strategy.CANARY, Phase.PROGRESSING, 10, 90)
    bed.pushgateway.stop()
    try:
        warning = gateway.push(snapshot)
    finally:
        bed.pushgateway.start()
    assert warning is not None
    assert warning.startswith(
        f"pushgateway at {TestBed.PUSHGATEWAY_ADDRESS}: not pushed (answered 503"
    )
    assert "testbed-token" not in warning
