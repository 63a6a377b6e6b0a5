"""A release that an error stops half-way: traffic goes back to the primary, and the record
lets the next run start over instead of failing fast (the error was not the canary's)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from components.adapters.cluster import Cluster, ClusterError, Readiness
from components.adapters.kube import KubeAccess
from components.rehearse import declare_at_rest
from components.rehearse.testbed import TestBed
from components.scheduler import Adapters, Scheduler
from components.spec import ReleaseSpec, template_revision
from tests.conftest import load_yaml

pytestmark = pytest.mark.testbed


class FailingReadiness(Cluster):
    """The API server times out on the canary's readiness once the release is under way."""

    def __init__(self, *args: Any, failing_from_call: int) -> None:
        super().__init__(*args)
        self.calls = 0
        self.failing_from_call = failing_from_call

    def readiness(self, *args: Any, **kwargs: Any) -> Readiness:
        self.calls += 1
        if self.calls >= self.failing_from_call:
            raise ClusterError(
                "get", "Deployment", "default", "podinfo", "etcdserver: request timed out", code=500
            )
        return super().readiness(*args, **kwargs)


@pytest.fixture
def bed() -> Iterator[TestBed]:
    with TestBed() as running:
        yield running


def test_an_api_error_mid_analysis_returns_traffic_to_the_primary(bed: TestBed) -> None:
    release = ReleaseSpec.parse(
        canary=load_yaml("canary.yaml"), deployment=load_yaml("deployment.yaml")
    )
    declare_at_rest(bed, release)
    access = KubeAccess(kubeconfig=bed.kubeconfig.read_text())
    with Adapters.connect(access, release) as adapters:
        failing = FailingReadiness(access, release, failing_from_call=3)
        lines: list[str] = []
        scheduler = Scheduler(
            release,
            dataclasses.replace(adapters, cluster=failing),
            revision=template_revision(release.deployment["spec"]["template"]),
            interval="2s",
            progress=lines.append,
        )
        with pytest.raises(ClusterError, match="request timed out"):
            scheduler.analyse()
        assert "podinfo: Advance canary weight 10" in lines  # the canary had traffic
        assert failing.read_routes()[1] == 0
        assert failing.replicas("podinfo") == 0
        record, _ = failing.load_record()
        assert record is not None
        assert record["phase"] == "Failed"
        assert record["retryable"] is True
        assert "stopped by an error: get Deployment default/podinfo" in record["reason"]
        failing.close()
