"""What the scheduler needs from the world, as protocols: one convention for every adapter.

Every adapter is bound to one release when it is built (its names, namespace and checksum),
so its methods take only what changes from call to call; time is never read here, the
scheduler's clock is passed in where a rule needs it. Tests drive the scheduler with in-memory
fakes of these protocols; the real ones are `Cluster`, `PrometheusClient`, `WebhookCaller` and
`Notifier`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..analysis import WorkloadStatus
from ..routing import TrafficState
from ..spec import MetricQuery, Webhook
from ..spec.judge import SampleQueries, SampleWindow
from .alerts import AlertMessage, Severity
from .cluster import Routes, StoredMap
from .prometheus import MetricResult, MetricSamples
from .webhooks import WebhookResult


class ConfigMaps(Protocol):
    """ConfigMaps of the release's namespace, with resourceVersion preconditions."""

    def read_config_map(self, name: str) -> StoredMap | None: ...

    def write_config_map(
        self, name: str, data: Mapping[str, str], version: str | None, labels: Mapping[str, str]
    ) -> str: ...

    def delete_config_map(self, name: str) -> None: ...

    def count_config_maps(self, labels: Mapping[str, str]) -> int:
        """How many ConfigMaps of the namespace carry `labels` (e.g. release records)."""
        ...


class ClusterPort(ConfigMaps, Protocol):
    """The release's routes and workloads."""

    @property
    def namespace(self) -> str: ...

    def set_routes(self, state: TrafficState) -> None: ...

    def read_routes(self) -> Routes: ...

    def scale(self, name: str, replicas: int) -> None: ...

    def replicas(self, name: str, *, missing_ok: bool = False) -> int: ...

    def workload_status(self, name: str) -> WorkloadStatus: ...

    def pod_template(self, name: str) -> dict[str, Any]: ...

    def uid_of(self, kind: str, name: str) -> str | None: ...

    def set_pod_template(self, name: str, template: Mapping[str, Any]) -> None: ...


class MetricsPort(Protocol):
    """One metric check, or one judge metric's samples over a window; never raises for a
    metrics-server problem (it fails the check)."""

    def evaluate(self, query: MetricQuery) -> MetricResult: ...

    def samples(self, name: str, queries: SampleQueries, window: SampleWindow) -> MetricSamples: ...


class HooksPort(Protocol):
    """Webhook calls with Flagger's payloads; never raise (the result says why one failed)."""

    def call(self, hook: Webhook, phase: str) -> WebhookResult: ...

    def event(
        self, hook: Webhook, phase: str, severity: Severity, message: str, at: float
    ) -> WebhookResult:
        """One event of the release, `at` seconds since the epoch."""
        ...


class AlertsPort(Protocol):
    """Notifications; returns one warning per failed delivery and never raises."""

    def notify(self, message: AlertMessage) -> list[str]: ...
