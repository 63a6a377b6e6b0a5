"""Reads one release's snapshot from the cluster, through the adapters a release itself uses.

Only reads: the release record, the VirtualService and the two Deployments, so it can watch a
`pulumi up` that runs on another machine without getting in its way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ..adapters.cluster import Cluster, ClusterError
from ..adapters.kube import Connections
from ..adapters.records import RecordStore, ReleaseRecord
from ..analysis import images_of, plan
from ..spec import ReleaseSpec
from ..spec.timing import Timing
from .view import Snapshot, Workload


class Source:
    """One release's snapshots. `release` is the user's spec, or None: the objects are then
    found by Flagger's default names (see `named_after`) and the plan is unknown."""

    def __init__(
        self,
        connections: Connections,
        name: str,
        namespace: str,
        release: ReleaseSpec | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.release = release
        self.names = release or named_after(name, namespace)
        self.cluster = Cluster(connections, self.names)
        self.records = RecordStore(self.cluster, name, namespace, clock)
        self.clock = clock

    def read(self) -> Snapshot:
        """The release now; ClusterError when the cluster does not answer."""
        record = self.records.load()
        routes = self.cluster.read_routes()
        analysis = self.names.spec.analysis
        canary = self._workload(self.names.target, analysis.canary_ready_threshold)
        primary = self._workload(self.names.primary, analysis.primary_ready_threshold)
        read_at = self.clock()
        timing = self._timing(record)
        stale_after = timing.stale_after_seconds if timing else None
        return Snapshot(
            name=self.name,
            namespace=self.namespace,
            read_at=read_at,
            record=record,
            routes=routes,
            canary=canary,
            primary=primary,
            plan=plan(self.release.spec, timing) if self.release and timing else None,
            stale_after=stale_after,
            abandoned=record is not None
            and record.abandoned(read_at, math.inf if stale_after is None else stale_after),
        )

    def _timing(self, record: ReleaseRecord | None) -> Timing | None:
        """The run's own interval when the record holds it (the gate may override the spec's),
        else the spec's."""
        if record is not None and record.interval_seconds:
            return Timing(record.interval_seconds)
        if self.release is not None:
            return Timing.of(self.release.spec.analysis)
        return None

    def _workload(self, name: str, ready_percent: int) -> Workload:
        try:
            status = self.cluster.workload_status(name)
            images = images_of(self.cluster.pod_template(name))
        except ClusterError as error:
            if error.code != 404:
                raise
            return Workload(name, None)
        return Workload(name, status, images, ready_percent)


def named_after(name: str, namespace: str) -> ReleaseSpec:
    """A stand-in spec with the names Flagger gives the objects of a Canary `name` whose target
    Deployment and Service are also `name` (its default): enough for `Cluster` to find the
    VirtualService `name` and the Deployments `name` and `name-primary`. Its analysis is
    Flagger's defaults, not the release's: nothing here reads it but the ready thresholds."""
    labels = {"app": name}
    return ReleaseSpec.parse(
        canary={
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "targetRef": {"kind": "Deployment", "name": name},
                "service": {"port": 80},
                "analysis": {},
                "skipAnalysis": True,
            },
        },
        deployment={
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": name, "image": name}]},
                },
            },
        },
    )
