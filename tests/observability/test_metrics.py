"""The encoder read back with prometheus_client's own parser, and the state carried as JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from components.adapters.pushgateway import (
    DURATION_BUCKETS,
    AnalysisStatus,
    MetricCheck,
    MetricsState,
    ReleaseMetrics,
    encode,
    status_value,
)
from components.analysis import Phase
from components.spec import Strategy

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def snapshot(**changes: Any) -> ReleaseMetrics:
    fields: dict[str, Any] = {
        "target": "podinfo",
        "namespace": "test",
        "strategy": Strategy.CANARY,
        "phase": Phase.PROGRESSING,
        "canary_weight": 20,
        "primary_weight": 80,
        "checks": {
            "request-success-rate": MetricCheck(99.5, True, min=99),
            "request-duration": MetricCheck(None, False, max=500),
        },
        "failed_checks": 1,
        "deadline": 1_800_000_000.0,
        "canaries_in_namespace": 3,
    }
    return ReleaseMetrics(**(fields | changes))


def parsed(body: bytes) -> tuple[dict[str, str], Samples]:
    """(family name -> type, (sample name, labels) -> value)."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return types, samples


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


CANARY = {"name": "podinfo", "namespace": "test"}


def test_the_canary_group_has_flaggers_names_labels_and_types() -> None:
    release, _ = encode(snapshot())
    assert release.path == "/metrics/job/pulumi-canary/namespace/test/name/podinfo"
    types, samples = parsed(release.body)
    assert types == {
        "flagger_canary_status": "gauge",
        "flagger_canary_weight": "gauge",
        "flagger_canary_metric_analysis": "gauge",
        "flagger_canary_duration_seconds": "histogram",
        "flagger_canary_successes": "counter",
        "flagger_canary_failures": "counter",
        "pulumi_canary_metric_check_passed": "gauge",
        "pulumi_canary_metric_threshold": "gauge",
        "pulumi_canary_failed_checks": "gauge",
        "pulumi_canary_release_deadline_timestamp_seconds": "gauge",
    }
    assert samples[("flagger_canary_status", labels(**CANARY))] == 0
    weight = "flagger_canary_weight"
    assert samples[(weight, labels(workload="podinfo-primary", namespace="test"))] == 80
    assert samples[(weight, labels(workload="podinfo", namespace="test"))] == 20
    analysis = "flagger_canary_metric_analysis"
    assert samples[(analysis, labels(**CANARY, metric="request-success-rate"))] == 99.5
    assert (analysis, labels(**CANARY, metric="request-duration")) not in samples  # no data
    passed = "pulumi_canary_metric_check_passed"
    assert samples[(passed, labels(**CANARY, metric="request-success-rate"))] == 1
    assert samples[(passed, labels(**CANARY, metric="request-duration"))] == 0
    threshold = "pulumi_canary_metric_threshold"
    assert samples[(threshold, labels(**CANARY, metric="request-success-rate", bound="min"))] == 99
    assert samples[(threshold, labels(**CANARY, metric="request-duration", bound="max"))] == 500
    assert samples[("pulumi_canary_failed_checks", labels(**CANARY))] == 1
    deadline = "pulumi_canary_release_deadline_timestamp_seconds"
    assert samples[(deadline, labels(**CANARY))] == 1_800_000_000


def test_the_namespace_group_counts_canaries_and_names_the_controller() -> None:
    _, namespace = encode(snapshot(), job="releases")
    assert namespace.path == "/metrics/job/releases/namespace/test"
    types, samples = parsed(namespace.body)
    assert types == {"flagger_canary_total": "gauge", "flagger_info": "gauge"}
    assert samples[("flagger_canary_total", labels(namespace="test"))] == 3
    (info,) = [dict(key[1]) for key in samples if key[0] == "flagger_info"]
    assert info["mesh_provider"] == "istio" and info["version"]


@pytest.mark.parametrize(
    ("phase", "value"),
    [
        (Phase.PROGRESSING, 0),
        (Phase.FAILED, 2),
        (Phase.SUCCEEDED, 1),
        (Phase.WAITING, 1),
        (Phase.WAITING_PROMOTION, 1),
        (Phase.PROMOTING, 1),
    ],
)
def test_status_follows_flaggers_mapping(phase: Phase, value: int) -> None:
    assert status_value(phase) == value
    _, samples = parsed(encode(snapshot(phase=phase))[0].body)
    assert samples[("flagger_canary_status", labels(**CANARY))] == value


def test_an_ended_release_has_no_deadline_series() -> None:
    _, samples = parsed(encode(snapshot(phase=Phase.SUCCEEDED, deadline=None))[0].body)
    assert not [key for key in samples if key[0].startswith("pulumi_canary_release_deadline")]


def test_histogram_buckets_are_flaggers_and_cumulative() -> None:
    state = MetricsState().after_tick(0.3).after_tick(3.0).after_tick(60.0)
    _, samples = parsed(encode(snapshot(state=state))[0].body)
    buckets = {
        dict(key[1])["le"]: value
        for key, value in samples.items()
        if key[0] == "flagger_canary_duration_seconds_bucket"
    }
    assert [float(le) for le in buckets if le != "+Inf"] == list(DURATION_BUCKETS)
    assert buckets["0.25"] == 0 and buckets["0.5"] == 1 and buckets["5"] == 2
    assert buckets["10"] == 2 and buckets["+Inf"] == 3
    assert samples[("flagger_canary_duration_seconds_count", labels(**CANARY))] == 3
    assert samples[("flagger_canary_duration_seconds_sum", labels(**CANARY))] == 63.3


def test_counters_start_at_zero_for_the_releases_own_strategy() -> None:
    _, samples = parsed(encode(snapshot(strategy=Strategy.BLUEGREEN))[0].body)
    own = labels(**CANARY, deployment_strategy="blue-green", analysis_status="completed")
    assert samples[("flagger_canary_successes_total", own)] == 0
    assert samples[("flagger_canary_failures_total", own)] == 0


def test_outcomes_count_per_strategy_and_analysis_status() -> None:
    state = (
        MetricsState()
        .after_outcome(Strategy.CANARY, succeeded=True)
        .after_outcome(Strategy.AB, succeeded=False)
        .after_outcome(Strategy.CANARY, succeeded=True, analysis=AnalysisStatus.SKIPPED)
        .after_outcome(Strategy.CANARY, succeeded=True)
    )
    _, samples = parsed(encode(snapshot(state=state))[0].body)

    def count(series: str, strategy: str, analysis: str) -> float:
        key = labels(**CANARY, deployment_strategy=strategy, analysis_status=analysis)
        return samples[(series, key)]

    assert count("flagger_canary_successes_total", "canary", "completed") == 2
    assert count("flagger_canary_successes_total", "canary", "skipped") == 1
    assert count("flagger_canary_failures_total", "ab-testing", "completed") == 1
    assert count("flagger_canary_failures_total", "canary", "completed") == 0


def test_state_carries_counters_and_histogram_across_processes() -> None:
    """Each 'process' starts from the record's JSON, as a release run by `pulumi up` does."""
    first = MetricsState().after_tick(0.2).after_tick(0.4)
    first = first.after_outcome(Strategy.CANARY, succeeded=True)
    stored = json.dumps(first.to_json())  # what the release record keeps on the cluster

    second = MetricsState.from_json(json.loads(stored)).after_tick(7.0)
    second = second.after_outcome(Strategy.CANARY, succeeded=False)
    _, samples = parsed(encode(snapshot(state=second))[0].body)
    own = labels(**CANARY, deployment_strategy="canary", analysis_status="completed")
    assert samples[("flagger_canary_successes_total", own)] == 1
    assert samples[("flagger_canary_failures_total", own)] == 1
    assert samples[("flagger_canary_duration_seconds_count", labels(**CANARY))] == 3
    assert samples[("flagger_canary_duration_seconds_sum", labels(**CANARY))] == pytest.approx(7.6)
    bucket = labels(**CANARY, le="0.5")
    assert samples[("flagger_canary_duration_seconds_bucket", bucket)] == 2
    assert MetricsState.from_json(json.loads(json.dumps(second.to_json()))) == second


@pytest.mark.parametrize(
    "stored",
    [
        None,
        {},
        "garbage",
        {"successes": {"canary": {"completed": "many"}}, "duration": {"sum": "NaN"}},
        {"duration": {"buckets": {"fast": 3, "0.5": -2}, "count": None}},
    ],
)
def test_missing_or_malformed_state_counts_as_zero(stored: Any) -> None:
    state = MetricsState.from_json(stored)
    assert state.duration_count == 0 and state.duration_sum == 0
    assert set(state.buckets) == {0}
    assert all(count == 0 for count in state.successes.values())


def test_state_from_an_older_record_keeps_what_it_has() -> None:
    state = MetricsState.from_json({"failures": {"canary": {"completed": 4}}})
    assert state.failures == {("canary", "completed"): 4}
    assert state.after_tick(1.0).duration_count == 1
