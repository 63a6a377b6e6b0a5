"""A release that an API error stops half-way, on the test bed: traffic goes back to the
primary, and the record lets the next run start over instead of failing fast (the error was
not the canary's)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from components.adapters.bundle import Adapters
from components.adapters.cluster import Cluster, ClusterError
from components.adapters.kube import Connections, KubeAccess
from components.adapters.records import RecordPhase
from components.analysis import WorkloadStatus
from components.rehearse import declare_at_rest
from components.rehearse.testbed import TestBed
from components.scheduler import SYSTEM_CLOCK, Scheduler
from components.spec import ReleaseSpec, template_revision
from components.spec.timing import Timing
from tests.conftest import load_yaml

pytestmark = pytest.mark.testbed


class FailingStatus(Cluster):
    """The API server times out on the canary's status once the release is under way."""

    def __init__(self, *args: Any, failing_from_call: int) -> None:
        super().__init__(*args)
        self.calls = 0
        self.failing_from_call = failing_from_call

    def workload_status(self, name: str) -> WorkloadStatus:
        self.calls += 1
        if self.calls >= self.failing_from_call:
            raise ClusterError(
                "get", "Deployment", "default", "podinfo", "etcdserver: request timed out", code=500
            )
        return super().workload_status(name)


@pytest.fixture
def bed() -> Iterator[TestBed]:
    with TestBed() as running:
        yield running


def test_an_api_error_mid_analysis_returns_traffic_to_the_primary(bed: TestBed) -> None:
    release = ReleaseSpec.parse(
        canary=load_yaml("canary.yaml"), deployment=load_yaml("deployment.yaml")
    )
    declare_at_rest(bed, release)
    revision = template_revision(release.deployment["spec"]["template"])
    with Connections(KubeAccess(kubeconfig=bed.kubeconfig.read_text())) as connections:
        adapters = Adapters.connect(connections, release, revision=revision, now=SYSTEM_CLOCK.now)
        failing = FailingStatus(connections, release, failing_from_call=3)
        lines: list[str] = []
        scheduler = Scheduler(
            release,
            dataclasses.replace(adapters, cluster=failing),
            revision=revision,
            timing=Timing.of(release.spec.analysis, interval="2s"),
            progress=lines.append,
        )
        with pytest.raises(ClusterError, match="request timed out"):
            scheduler.analyse()
        assert "podinfo: Advance canary weight 10" in lines  # the canary had traffic
        assert failing.read_routes().canary == 0
        assert failing.replicas("podinfo") == 0
        record = adapters.records.load()
        assert record is not None
        assert record.phase is RecordPhase.INTERRUPTED
        assert record.settled
        assert "stopped by an error: get Deployment default/podinfo" in (record.reason or "")
