"""In-memory fakes of the scheduler's ports and clock, so release logic runs in milliseconds.

They keep the semantics the real adapters rely on: versioned ConfigMaps that answer 409 to a
stale write and 404 to a write of a deleted map, routes read back as written, replicas that
stay as scaled, and a clock whose sleeps advance time instead of waiting.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.adapters.alerts import AlertMessage, Severity
from components.adapters.bundle import Adapters
from components.adapters.cluster import ClusterError, Routes, StoredMap
from components.adapters.prometheus import MetricResult, MetricSamples
from components.adapters.records import RecordPhase, RecordStore, ReleaseRecord
from components.adapters.webhooks import WebhookResult
from components.analysis import WorkloadStatus
from components.errors import ReleaseInterrupted
from components.provider import rollout
from components.routing import TrafficState, primary_deployment
from components.spec import MetricQuery, ReleaseSpec, Webhook
from components.spec.configs import checksums
from components.spec.judge import SampleQueries, SampleWindow


def gate_inputs(
    canary: dict[str, Any], deployment: dict[str, Any], **inputs: Any
) -> dict[str, Any]:
    """A gate resource's inputs as the engine passes them to the provider: camelCase keys,
    secrets unwrapped, the options unset unless given in `inputs`."""
    return {
        "canary": canary,
        "deployment": deployment,
        "podTemplate": copy.deepcopy(deployment["spec"]["template"]),
        "metricTemplates": [],
        "alertProviders": [],
        "autoscaler": None,
        "kubeconfig": "apiVersion: v1\nkind: Config\n",
        "context": None,
        "deadlineSeconds": None,
        "interval": None,
        "retryFailed": False,
        **inputs,
    }


class FakeClock:
    """Time that moves only when something sleeps; `interrupt_at` simulates a stop request."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.time = start
        self.slept: list[float] = []
        self.interrupt_at: float | None = None

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float, *, interruptible: bool = True) -> None:
        self.slept.append(seconds)
        if (
            interruptible
            and self.interrupt_at is not None
            and self.time + seconds >= self.interrupt_at
        ):
            self.time = max(self.time, self.interrupt_at)
            raise ReleaseInterrupted("SIGINT")
        self.time += seconds


Fault = Callable[[str, str], None]
"""(verb, object) -> None, or raises ClusterError to fail that call."""


@dataclass
class FakeCluster:
    """The cluster of one release: routes, replicas, ready workloads and versioned ConfigMaps."""

    release: ReleaseSpec
    canary_weight: int = 0
    mirrored: bool = False
    replicas_of: dict[str, int] = field(default_factory=dict)
    maps: dict[str, tuple[dict[str, str], int]] = field(default_factory=dict)
    ready: bool = True
    fault: Fault | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    routes_written: list[TrafficState] = field(default_factory=list)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    uids: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.replicas_of.setdefault(self.release.primary, 2)
        self.replicas_of.setdefault(self.release.target, 0)

    @property
    def namespace(self) -> str:
        return self.release.namespace

    def _call(self, verb: str, name: str) -> None:
        self.calls.append((verb, name))
        if self.fault is not None:
            self.fault(verb, name)

    def set_routes(self, state: TrafficState) -> None:
        self._call("apply", "VirtualService")
        self.canary_weight, self.mirrored = state.canary_weight, state.mirror
        self.routes_written.append(state)

    def read_routes(self) -> Routes:
        self._call("get", "VirtualService")
        return Routes(100 - self.canary_weight, self.canary_weight, self.mirrored)

    def scale(self, name: str, replicas: int) -> None:
        self._call("scale", name)
        self.replicas_of[name] = replicas

    def replicas(self, name: str, *, missing_ok: bool = False) -> int:
        self._call("get", name)
        if name not in self.replicas_of:
            if missing_ok:
                return 0
            raise ClusterError("get", "Deployment", self.namespace, name, "not found", code=404)
        return self.replicas_of[name]

    def workload_status(self, name: str) -> WorkloadStatus:
        self._call("status", name)
        wanted = self.replicas_of.get(name, 0)
        available = wanted if self.ready else 0
        return WorkloadStatus(wanted, 1, 1, available, wanted, wanted)

    def pod_template(self, name: str) -> dict[str, Any]:
        """What a Deployment runs: the release's own template unless `templates` says else."""
        if name in self.templates:
            return copy.deepcopy(self.templates[name])
        if name not in self.replicas_of:
            raise ClusterError("get", "Deployment", self.namespace, name, "not found", code=404)
        template = self.release.deployment["spec"]["template"]
        if name == self.release.primary:
            configs = checksums(self.release.config_tracking.contents())
            return primary_deployment(self.release, template, None, configs)["spec"]["template"]
        return copy.deepcopy(dict(template))

    def uid_of(self, kind: str, name: str) -> str | None:
        return self.uids.get((kind, name))

    def set_pod_template(self, name: str, template: Mapping[str, Any]) -> None:
        self._call("patch", name)

    def read_config_map(self, name: str) -> StoredMap | None:
        self._call("get", name)
        if name not in self.maps:
            return None
        data, version = self.maps[name]
        return StoredMap(dict(data), str(version))

    def write_config_map(
        self, name: str, data: Mapping[str, str], version: str | None, labels: Mapping[str, str]
    ) -> str:
        self._call("write", name)
        current = self.maps.get(name)
        if version is None and current is not None:
            raise ClusterError("create", "ConfigMap", self.namespace, name, "exists", code=409)
        if version is not None and current is None:
            raise ClusterError("update", "ConfigMap", self.namespace, name, "gone", code=404)
        if current is not None and str(current[1]) != version:
            raise ClusterError("update", "ConfigMap", self.namespace, name, "stale", code=409)
        revision = (current[1] if current else 0) + 1
        self.maps[name] = (dict(data), revision)
        return str(revision)

    def delete_config_map(self, name: str) -> None:
        self._call("delete", name)
        self.maps.pop(name, None)

    def count_config_maps(self, labels: Mapping[str, str]) -> int:
        return len(self.maps)

    # -- for tests --------------------------------------------------------------------------

    @property
    def record_name(self) -> str:
        return f"{self.release.name}-canary-release"

    def record(self) -> ReleaseRecord | None:
        stored = self.maps.get(self.record_name)
        return ReleaseRecord.from_json(stored[0]["release.json"]) if stored else None

    def at_rest(self) -> bool:
        """All traffic on the primary and the canary at zero."""
        return self.canary_weight == 0 and self.replicas_of[self.release.target] == 0

    def phase(self) -> RecordPhase | None:
        record = self.record()
        return record.phase if record else None

    def put_record(self, record: ReleaseRecord) -> None:
        version = self.maps.get(self.record_name, ({}, 0))[1] + 1
        self.maps[self.record_name] = ({"release.json": record.to_json()}, version)


STEADY = (20.0, 21.0, 22.0, 23.0, 24.0, 25.0)
"""Judge samples that differ from sample to sample, the same on both sides by default."""


@dataclass
class FakeMetrics:
    """Every metric answers `value` (None: no data), or what `values` says for its name.

    Judge metrics answer `samples_of[name]` (canary, primary), else STEADY on both sides, or
    `sample_error` for all; every window and pair of queries asked for is recorded.
    """

    value: float | None = 100.0
    values: dict[str, float | None] = field(default_factory=dict)
    calls: int = 0
    samples_of: dict[str, tuple[Sequence[float], Sequence[float]]] = field(default_factory=dict)
    sample_error: str | None = None
    sampled: list[tuple[SampleQueries, SampleWindow]] = field(default_factory=list)

    def samples(self, name: str, queries: SampleQueries, window: SampleWindow) -> MetricSamples:
        self.sampled.append((queries, window))
        if self.sample_error is not None:
            return MetricSamples(name, (), (), self.sample_error)
        canary, primary = self.samples_of.get(name, (STEADY, STEADY))
        return MetricSamples(name, tuple(canary), tuple(primary))

    def evaluate(self, query: MetricQuery) -> MetricResult:
        self.calls += 1
        metric = query.metric
        value = self.values.get(metric.name, self.value)
        bounds = metric.bounds
        shown = bounds.describe() if bounds else "any value"
        reason = metric.failure(value)
        return MetricResult(metric.name, value, shown, reason is None, reason, query.query)


@dataclass(frozen=True)
class PostedEvent:
    hook: str
    phase: str
    severity: Severity
    message: str
    at: float


@dataclass
class FakeHooks:
    """Hooks pass unless their name is in `failing` (answered 500) or `unreachable` (no
    answer); every call and every event post is recorded."""

    failing: set[str] = field(default_factory=set)
    unreachable: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)
    events: list[PostedEvent] = field(default_factory=list)

    def call(self, hook: Webhook, phase: str) -> WebhookResult:
        self.calls.append((hook.name, phase))
        return self._result(hook)

    def event(
        self, hook: Webhook, phase: str, severity: Severity, message: str, at: float
    ) -> WebhookResult:
        self.events.append(PostedEvent(hook.name, phase, severity, message, at))
        return self._result(hook)

    def _result(self, hook: Webhook) -> WebhookResult:
        if hook.name in self.unreachable:
            return WebhookResult(hook.name, hook.hook_type, False, None, "ConnectError", 0.0, 1)
        passed = hook.name not in self.failing
        return WebhookResult(
            hook.name, hook.hook_type, passed, 200 if passed else 500,
            None if passed else "answered 500", 0.0, 1,
        )  # fmt: skip


@dataclass
class FakeAlerts:
    sent: list[AlertMessage] = field(default_factory=list)

    def notify(self, message: AlertMessage) -> list[str]:
        self.sent.append(message)
        return []


def fake_adapters(
    release: ReleaseSpec, clock: FakeClock, cluster: FakeCluster | None = None
) -> Adapters:
    cluster = cluster or FakeCluster(release)
    return Adapters(
        cluster=cluster,
        records=RecordStore(cluster, release.name, release.namespace, clock.now),
        metrics=FakeMetrics(),
        hooks=FakeHooks(),
        alerts=FakeAlerts(),
    )


def initial_state(props: Mapping[str, Any]) -> dict[str, Any]:
    """A Rollout's state after its first release promoted `props`' template."""
    return rollout.outputs(
        props,
        phase="Succeeded",
        promotion=rollout.INITIAL_PROMOTION,
        promoted=props["podTemplate"],
        promoted_configs=rollout.tracked_contents(props),
        history=[],
        rollout_id="first",
    )
