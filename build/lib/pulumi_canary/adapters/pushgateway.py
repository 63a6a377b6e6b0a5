"""Flagger's Prometheus metrics for one release, pushed to a Prometheus Pushgateway.

Flagger is a controller that Prometheus scrapes. A release here runs inside `pulumi up` and
then exits, so its metrics are pushed instead, under one grouping key per canary
(`/metrics/job/<job>/namespace/<ns>/name/<target>`). Each push replaces the last one's
series, so a dashboard never sees two sets for one canary. The process keeps nothing between
releases, so the counter and histogram totals travel in `MetricsState`, which the release
record keeps on the cluster.

Names, labels and help texts are Flagger's (`pkg/metrics/recorder.go`). As there, the
`name` label is the target's name, not the Canary's. The `pulumi_canary_*` series are this
project's own: the signal for a stuck release and what the dashboards show about checks.

A push never breaks a release and never holds it up past its timeout. A failure becomes
one warning line that names the Pushgateway without credentials.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from importlib import metadata
from typing import Any
from urllib.parse import quote

import httpx
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..analysis import Phase
from ..spec import Strategy
from .webhooks import excerpt

JOB = "pulumi-canary"
MESH_PROVIDER = "istio"
# client_golang's DefBuckets, which Flagger's duration histogram uses.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

INFO = "flagger_info"
CANARY_TOTAL = "flagger_canary_total"
STATUS = "flagger_canary_status"
WEIGHT = "flagger_canary_weight"
METRIC_ANALYSIS = "flagger_canary_metric_analysis"
DURATION = "flagger_canary_duration_seconds"
SUCCESSES = "flagger_canary_successes_total"
FAILURES = "flagger_canary_failures_total"
DEADLINE = "pulumi_canary_release_deadline_timestamp_seconds"
THRESHOLD = "pulumi_canary_metric_threshold"
CHECK_PASSED = "pulumi_canary_metric_check_passed"
FAILED_CHECKS = "pulumi_canary_failed_checks"

# Flagger's deployment_strategy label values.
STRATEGY_LABELS = {
    Strategy.CANARY: "canary",
    Strategy.BLUEGREEN: "blue-green",
    Strategy.AB: "ab-testing",
}

_CANARY = ["name", "namespace"]

Requester = Callable[..., httpx.Response]
"""`Endpoints.request`: (method, url, **httpx options) -> response."""


def _package_version() -> str:
    try:
        return metadata.version("pulumi-canary")
    except metadata.PackageNotFoundError:  # run from a source checkout
        return "0+unknown"


VERSION = _package_version()


class AnalysisStatus(StrEnum):
    """Flagger's analysis_status label: `skipped` when `skipAnalysis` promoted at once."""

    COMPLETED = "completed"
    SKIPPED = "skipped"


def status_value(phase: Phase) -> int:
    """Flagger's `SetStatus`: 0 while Progressing, 2 when Failed, 1 for every other phase."""
    if phase is Phase.PROGRESSING:
        return 0
    if phase is Phase.FAILED:
        return 2
    return 1


Counts = Mapping[tuple[str, str], int]
"""Releases per (deployment_strategy, analysis_status), as Flagger labels them."""


@dataclass(frozen=True)
class MetricsState:
    """The cumulative series, carried from one release's process to the next as JSON.

    `buckets` are cumulative like Prometheus's `le` buckets, one per `DURATION_BUCKETS`
    bound; `count` is the `+Inf` bucket.
    """

    successes: Counts = field(default_factory=dict)
    failures: Counts = field(default_factory=dict)
    buckets: tuple[int, ...] = (0,) * len(DURATION_BUCKETS)
    duration_sum: float = 0.0
    duration_count: int = 0

    def after_tick(self, seconds: float) -> MetricsState:
        """One more analysis tick, as Flagger observes the time one tick took."""
        buckets = tuple(
            count + (seconds <= bound)
            for count, bound in zip(self.buckets, DURATION_BUCKETS, strict=True)
        )
        return replace(
            self,
            buckets=buckets,
            duration_sum=self.duration_sum + seconds,
            duration_count=self.duration_count + 1,
        )

    def after_outcome(
        self,
        strategy: Strategy,
        succeeded: bool,
        analysis: AnalysisStatus = AnalysisStatus.COMPLETED,
    ) -> MetricsState:
        """One more promoted (succeeded) or rolled-back release."""
        key = (STRATEGY_LABELS[strategy], str(analysis))
        counts = self.successes if succeeded else self.failures
        bumped = {**counts, key: counts.get(key, 0) + 1}
        return replace(self, successes=bumped) if succeeded else replace(self, failures=bumped)

    def to_json(self) -> dict[str, Any]:
        return {
            "successes": _counts_to_json(self.successes),
            "failures": _counts_to_json(self.failures),
            "duration": {
                "buckets": {
                    f"{bound:g}": count
                    for bound, count in zip(DURATION_BUCKETS, self.buckets, strict=True)
                },
                "sum": self.duration_sum,
                "count": self.duration_count,
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> MetricsState:
        """Whatever a record holds: a missing or malformed part counts as zero, so a damaged
        record restarts the totals (Prometheus reads that as a counter reset) instead of
        breaking a release."""
        data = data if isinstance(data, dict) else {}
        duration = _dict(data.get("duration"))
        stored = {_bound(key): value for key, value in _dict(duration.get("buckets")).items()}
        return cls(
            successes=_counts_from_json(data.get("successes")),
            failures=_counts_from_json(data.get("failures")),
            buckets=tuple(_count(stored.get(bound)) for bound in DURATION_BUCKETS),
            duration_sum=_number(duration.get("sum")),
            duration_count=_count(duration.get("count")),
        )


@dataclass(frozen=True)
class MetricCheck:
    """One metric at the last check: its value (None when the query found none), its bounds
    and whether it passed."""

    value: float | None
    passed: bool
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class ReleaseMetrics:
    """What one push shows about one release.

    `checks` are keyed by metric name. `deadline` is the Unix time by which the analysis must
    end, given while the release is in flight and None once it has ended: a series left with
    a deadline in the past means the process stopped pushing mid-release.
    `canaries_in_namespace` is `flagger_canary_total`, counted by the caller.
    """

    target: str
    namespace: str
    strategy: Strategy
    phase: Phase
    canary_weight: int
    primary_weight: int
    state: MetricsState = field(default_factory=MetricsState)
    checks: Mapping[str, MetricCheck] = field(default_factory=dict)
    failed_checks: int = 0
    deadline: float | None = None
    canaries_in_namespace: int = 1

    @property
    def primary(self) -> str:
        return f"{self.target}-primary"


@dataclass(frozen=True)
class Group:
    """One Pushgateway group: the grouping key, and the text-format body that replaces it."""

    key: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path(self) -> str:
        return _path(self.key)


class ReleaseCollector(Collector):
    """The series of one canary's group, each labelled as Flagger labels it."""

    def __init__(self, metrics: ReleaseMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        metrics = self.metrics
        canary = [metrics.target, metrics.namespace]  # Flagger's `name` is the target's name
        status = GaugeMetricFamily(STATUS, "Last canary analysis result", labels=_CANARY)
        status.add_metric(canary, status_value(metrics.phase))
        weight = GaugeMetricFamily(
            WEIGHT,
            "The virtual service destination weight current value",
            labels=["workload", "namespace"],
        )
        weight.add_metric([metrics.primary, metrics.namespace], metrics.primary_weight)
        weight.add_metric([metrics.target, metrics.namespace], metrics.canary_weight)
        failed = GaugeMetricFamily(
            FAILED_CHECKS, "Failed checks of the current release", labels=_CANARY
        )
        failed.add_metric(canary, metrics.failed_checks)
        yield from (status, weight, failed, *self._checks(canary), self._duration(canary))
        yield from self._outcomes(canary)
        if metrics.deadline is not None:
            deadline = GaugeMetricFamily(
                DEADLINE, "Unix time by which the release in progress must end", labels=_CANARY
            )
            deadline.add_metric(canary, metrics.deadline)
            yield deadline

    def _checks(self, canary: list[str]) -> Iterable[Metric]:
        labels = [*_CANARY, "metric"]
        analysis = GaugeMetricFamily(
            METRIC_ANALYSIS, "Last canary analysis result per metric", labels=labels
        )
        passed = GaugeMetricFamily(
            CHECK_PASSED, "Whether each metric passed its last check (1) or not (0)", labels=labels
        )
        threshold = GaugeMetricFamily(
            THRESHOLD, "The bounds each metric must keep", labels=[*labels, "bound"]
        )
        for name, check in sorted(self.metrics.checks.items()):
            if check.value is not None:
                analysis.add_metric([*canary, name], check.value)
            passed.add_metric([*canary, name], float(check.passed))
            for bound, limit in (("min", check.min), ("max", check.max)):
                if limit is not None:
                    threshold.add_metric([*canary, name, bound], limit)
        return [family for family in (analysis, passed, threshold) if family.samples]

    def _duration(self, canary: list[str]) -> Metric:
        state = self.metrics.state
        duration = HistogramMetricFamily(
            DURATION, "Seconds spent performing canary analysis.", labels=_CANARY
        )
        buckets = [
            (f"{bound:g}", float(count))
            for bound, count in zip(DURATION_BUCKETS, state.buckets, strict=True)
        ]
        buckets.append(("+Inf", float(state.duration_count)))
        duration.add_metric(canary, buckets, state.duration_sum)
        return duration

    def _outcomes(self, canary: list[str]) -> Iterable[Metric]:
        """Both counters, with a zero for this release's own strategy until it has counted:
        `increase()` then sees the first outcome, which a series born at 1 would hide."""
        labels = [*_CANARY, "deployment_strategy", "analysis_status"]
        own = (STRATEGY_LABELS[self.metrics.strategy], str(AnalysisStatus.COMPLETED))
        for name, documentation, counts in (
            (SUCCESSES, "Total number of canary successes", self.metrics.state.successes),
            (FAILURES, "Total number of canary failures", self.metrics.state.failures),
        ):
            family = CounterMetricFamily(name, documentation, labels=labels)
            for key, count in sorted({own: 0, **counts}.items()):
                family.add_metric([*canary, *key], count)
            yield family


class NamespaceCollector(Collector):
    """The namespace's group: how many canaries it has, and which controller pushes."""

    def __init__(self, namespace: str, canaries: int) -> None:
        self.namespace = namespace
        self.canaries = canaries

    def collect(self) -> Iterable[Metric]:
        total = GaugeMetricFamily(
            CANARY_TOTAL, "Total number of canary object", labels=["namespace"]
        )
        total.add_metric([self.namespace], self.canaries)
        info = GaugeMetricFamily(
            INFO,
            "Flagger version and mesh provider information",
            labels=["version", "mesh_provider"],
        )
        info.add_metric([VERSION, MESH_PROVIDER], 1)
        return [total, info]


def encode(metrics: ReleaseMetrics, job: str = JOB) -> list[Group]:
    """The groups one push replaces: the canary's own, then its namespace's."""
    namespace = (("job", job), ("namespace", metrics.namespace))
    return [
        Group((*namespace, ("name", metrics.target)), generate_latest(ReleaseCollector(metrics))),
        Group(
            namespace,
            generate_latest(NamespaceCollector(metrics.namespace, metrics.canaries_in_namespace)),
        ),
    ]


class Pushgateway:
    """PUTs a release's groups through `request` (`Endpoints.request`, so an in-cluster
    address such as `http://prometheus-pushgateway.monitoring:9091` goes through the API
    server's service proxy).

    `timeout` bounds the whole push, all groups together; httpx applies what is left of it
    to each phase of each request.
    """

    def __init__(
        self, request: Requester, address: str, *, job: str = JOB, timeout: float = 2.0
    ) -> None:
        self._request = request
        self.address = address.rstrip("/")
        self.job = job
        self.timeout = timeout

    def push(self, metrics: ReleaseMetrics) -> str | None:
        """None when pushed, else the warning; never raises."""
        deadline = time.monotonic() + self.timeout
        for group in encode(metrics, self.job):
            problem = self._send("PUT", group.path, deadline, content=group.body)
            if problem is not None:
                return f"{self._describe()}: not pushed ({problem})"
        return None

    def forget(self, target: str, namespace: str) -> str | None:
        """Deletes a canary's group once the canary is gone, so its last status (and any alert
        on it) does not linger; None when deleted, else the warning."""
        key = (("job", self.job), ("namespace", namespace), ("name", target))
        problem = self._send("DELETE", _path(key), time.monotonic() + self.timeout)
        return None if problem is None else f"{self._describe()}: not deleted ({problem})"

    def _send(self, method: str, path: str, deadline: float, **options: Any) -> str | None:
        """Why the request failed, worded to be safe to show; None when it succeeded."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"timed out after {self.timeout:g}s"
        headers = {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4} if method == "PUT" else {}
        try:
            response = self._request(
                method,
                self.address + path,
                headers=headers,
                timeout=httpx.Timeout(remaining),
                **options,
            )
        except httpx.TimeoutException:
            return f"timed out after {self.timeout:g}s"
        except Exception as error:  # only the type: an error's text may quote the URL
            return type(error).__name__
        if not response.is_success:
            return f"answered {response.status_code}: {excerpt(response.text) or '(empty body)'}"
        return None

    def _describe(self) -> str:
        """The address without any user:password part."""
        shown = httpx.URL(self.address).copy_with(username=None, password=None)
        return f"pushgateway at {shown}"


def _path(key: tuple[tuple[str, str], ...]) -> str:
    return "/metrics/" + "/".join(f"{name}/{quote(value, safe='')}" for name, value in key)


def _counts_to_json(counts: Counts) -> dict[str, dict[str, int]]:
    nested: dict[str, dict[str, int]] = {}
    for (strategy, analysis), count in sorted(counts.items()):
        nested.setdefault(strategy, {})[analysis] = count
    return nested


def _counts_from_json(data: Any) -> dict[tuple[str, str], int]:
    return {
        (str(strategy), str(analysis)): _count(count)
        for strategy, statuses in _dict(data).items()
        for analysis, count in _dict(statuses).items()
    }


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return max(float(value), 0.0)


def _count(value: Any) -> int:
    return int(_number(value))


def _bound(key: Any) -> float | None:
    try:
        return float(key)
    except (TypeError, ValueError):
        return None
