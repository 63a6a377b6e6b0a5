"""Every adapter of one release, built over clients shared with the process's other releases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..spec import HookType, ReleaseSpec, Webhook, checksum
from .alerts import Notifier
from .cluster import API_BACKOFF, Cluster
from .kube import Connections
from .ports import AlertsPort, ClusterPort, HooksPort, MetricsPort
from .prometheus import QUERY_BACKOFF, WATCH_BACKOFF, PrometheusClient
from .pushgateway import Pushgateway
from .records import RecordStore
from .retry import Backoff, RetryCounter
from .webhooks import WebhookCaller


@dataclass(frozen=True)
class Adapters:
    """The I/O a release needs; built per release, never pickled."""

    cluster: ClusterPort
    records: RecordStore
    metrics: MetricsPort
    hooks: HooksPort
    alerts: AlertsPort
    retries: RetryCounter = field(default_factory=RetryCounter)
    """Retries the adapters made since the scheduler last looked, for its progress lines."""
    pushgateway: Pushgateway | None = None
    """Where the release's metrics go, in Flagger's names; None: not pushed."""
    critical_metrics: MetricsPort | None = None
    """The critical watch's queries: the same Prometheus, retried for a few seconds only;
    None: the release is not watched between checks."""
    event_webhook: Webhook | None = None
    """Flagger's `-event-webhook`: gets the events of a canary without `type: event` hooks."""
    silent_receivers: set[str] = field(default_factory=set)
    """Event receivers (by URL) that gave no answer: they get no more events from any release
    sharing these clients, so a dead one costs a wave one post, not one per canary."""

    @classmethod
    def connect(
        cls,
        connections: Connections,
        release: ReleaseSpec,
        *,
        revision: str,
        now: Callable[[], float],
        cluster_backoff: Backoff = API_BACKOFF,
        pushgateway: str | None = None,
        event_webhook: str | None = None,
    ) -> Adapters:
        """The real adapters of one release; `connections` owns (and closes) every client."""
        retries = RetryCounter()
        cluster = Cluster(connections, release, backoff=cluster_backoff, retries=retries)
        endpoints = connections.endpoints(release.namespace)

        def prometheus(backoff: Backoff) -> PrometheusClient:
            return PrometheusClient(
                endpoints,
                release.spec.metrics_address,
                namespace=release.namespace,
                secrets=cluster.read_secret,
                backoff=backoff,
                retries=retries,
            )

        return cls(
            cluster=cluster,
            records=RecordStore(cluster, release.name, release.namespace, now),
            metrics=prometheus(QUERY_BACKOFF),
            hooks=WebhookCaller(
                endpoints,
                name=release.name,
                namespace=release.namespace,
                checksum=checksum(revision),
                retries=retries,
            ),
            alerts=Notifier(endpoints, release, secrets=cluster.read_secret),
            retries=retries,
            pushgateway=Pushgateway(endpoints.request, pushgateway) if pushgateway else None,
            critical_metrics=prometheus(WATCH_BACKOFF),
            event_webhook=(
                Webhook(name="events", url=event_webhook, type=HookType.EVENT)
                if event_webhook
                else None
            ),
            silent_receivers=connections.silent_receivers,
        )
