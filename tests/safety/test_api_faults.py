"""Releases through a flaky API server: the gate's calls fail with 500, 409, 429 and Retry-After,
dropped connections, and answers later than the client waits; then faults aimed at each step of
the clean-up.

The gate's own adapters and scheduler run in this process against the test bed (a short client
timeout, so a late answer costs seconds, not tens of seconds). Each `up` is the sequence
`pulumi up` runs: the guard, the analysis (or a fail-fast of a known failure), Pulumi rolling the
primary, the finaliser. A step that fails is rerun once, as the next `pulumi up` would; then all
traffic must be on the primary, the canary at zero, the primary on the last verified template and
the record settled.
"""

from __future__ import annotations

import copy
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import patch

import pytest

from components.adapters.bundle import Adapters
from components.adapters.cluster import Cluster
from components.adapters.kube import Connections, KubeAccess
from components.adapters.records import Owner, RecordPhase, ReleaseRecord
from components.adapters.retry import Backoff
from components.errors import CanaryError
from components.rehearse import declare_at_rest
from components.rehearse.testbed import Fault, TestBed
from components.rehearse.testbed.faults import Fault as ApiFault
from components.rehearse.testbed.faults import FaultKind, FaultPlan, Request, Rule
from components.routing import primary_deployment
from components.scheduler import SYSTEM_CLOCK, Scheduler
from components.spec import ReleaseSpec, template_revision
from components.spec.timing import Timing
from tests.conftest import load_yaml
from tests.safety.requests import routed, scaled

pytestmark = [pytest.mark.testbed, pytest.mark.alone]

IMAGE = "ghcr.io/stefanprodan/podinfo"
NS = "default"
TIMEOUT = 2.0
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RANDOM_FAULTS = (
    ApiFault(FaultKind.STATUS, status=500),
    ApiFault(FaultKind.STATUS, status=409, methods=WRITES),
    ApiFault(FaultKind.STATUS, status=429, retry_after=1),
    ApiFault(FaultKind.DROP),
    ApiFault(FaultKind.LATE, delay=TIMEOUT + 0.5),
)


def spec_of(image: str, **analysis: Any) -> ReleaseSpec:
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"].update(stepWeight=25, threshold=1, **analysis)
    deployment = copy.deepcopy(load_yaml("deployment.yaml"))
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return ReleaseSpec.parse(canary=canary, deployment=deployment)


@dataclass
class Gate:
    """The gate's side of consecutive `pulumi up`s, over the bed's flaky API."""

    bed: TestBed
    lines: list[str] = field(default_factory=list)
    primary_image: str = f"{IMAGE}:6.3.0"

    def scheduler(self, release: ReleaseSpec, connections: Connections) -> Scheduler:
        revision = template_revision(release.deployment["spec"]["template"])
        adapters = Adapters.connect(
            connections,
            release,
            revision=revision,
            now=SYSTEM_CLOCK.now,
            cluster_backoff=Backoff(budget=8.0),
        )
        return Scheduler(
            release,
            adapters,
            revision=revision,
            timing=Timing.of(release.spec.analysis, interval="2s"),
            progress=self.lines.append,
            cleanup_seconds=10.0,
        )

    def up(self, release: ReleaseSpec) -> str:
        """One `pulumi up` of `release`'s template; its outcome, or the error that stopped it.

        Each runs as its own provider process would: its records name an owner process that
        is gone once the `up` ends, as the next `pulumi up` finds it.
        """
        access = KubeAccess(kubeconfig=self.bed.kubeconfig.read_text(), timeout_seconds=TIMEOUT)
        gone = subprocess.Popen(["true"])
        gone.wait()
        process = Owner(socket.gethostname(), gone.pid)
        try:
            with (
                patch.object(Owner, "this_process", lambda: process),
                Connections(access) as connections,
            ):
                scheduler = self.scheduler(release, connections)
                scheduler.settle("before the canary takes the new template")
                record = scheduler.io.records.load()
                if record is not None and record.failed_verdict(scheduler.revision):
                    scheduler.settle("before failing fast")
                    return "already failed"
                report = scheduler.analyse()
                if not report.promoted:
                    return "rolled back"
                promote(Cluster(connections, release), release)
                scheduler.finalise()
                self.primary_image = image_of(release)
                return "promoted"
        except CanaryError as error:
            return f"error: {error}"

    def problems(self, release: ReleaseSpec) -> list[str]:
        found = []
        kube = self.bed.kube
        service = kube.get(f"/apis/networking.istio.io/v1/namespaces/{NS}/virtualservices/podinfo")
        canary_weights = [
            destination.get("weight", 0)
            for route in ((service or {}).get("spec") or {}).get("http") or []
            for destination in route.get("route") or []
            if destination["destination"]["host"] == "podinfo-canary"
        ]
        if any(canary_weights):
            found.append(f"canary weight {canary_weights}")
        canary = kube.get(f"/apis/apps/v1/namespaces/{NS}/deployments/podinfo") or {}
        if canary["spec"].get("replicas") != 0:
            found.append(f"canary replicas {canary['spec'].get('replicas')}")
        primary = kube.get(f"/apis/apps/v1/namespaces/{NS}/deployments/podinfo-primary") or {}
        running = primary["spec"]["template"]["spec"]["containers"][0]["image"]
        if running != self.primary_image:
            found.append(f"primary runs {running}, not {self.primary_image}")
        stored = kube.get(f"/api/v1/namespaces/{NS}/configmaps/podinfo-canary-release") or {}
        record = ReleaseRecord.from_json(stored["data"]["release.json"])
        if not record.settled:
            found.append(f"record not settled: {record.phase} {record.reason}")
        return found


def promote(cluster: Cluster, release: ReleaseSpec) -> None:
    """What Pulumi does between the gate and the finaliser: the primary takes the template."""
    template = primary_deployment(release, release.deployment["spec"]["template"], None)
    cluster.set_pod_template(release.primary, template["spec"]["template"])


def image_of(release: ReleaseSpec) -> str:
    image: str = release.deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def declare(bed: TestBed, release: ReleaseSpec) -> None:
    """The canary Deployment takes the new template, as Pulumi applies it before the gate."""
    canary = copy.deepcopy(dict(release.deployment))
    canary["spec"]["replicas"] = 0  # declared at zero; the release owns it from then on
    bed.kube.apply_object(canary, field_manager="pulumi-kubernetes")


@pytest.fixture
def bed() -> Iterator[TestBed]:
    broken = {f"{IMAGE}:7.{n}.0-broken": Fault(error_rate=0.5) for n in range(10)}
    with TestBed(namespace=NS, faults=broken) as running:
        declare_at_rest(running, spec_of(f"{IMAGE}:6.3.0"))
        yield running


def release_with_one_rerun(gate: Gate, release: ReleaseSpec) -> tuple[str, str | None]:
    declare(gate.bed, release)
    first = gate.up(release)
    if not first.startswith("error"):
        return first, None
    return first, gate.up(release)


@pytest.mark.timeout(600)  # a hang guard
def test_releases_complete_or_roll_back_under_ten_percent_api_faults(bed: TestBed) -> None:
    plan = FaultPlan(share=0.1, random_faults=RANDOM_FAULTS, seed=7)
    bed.kube.api.faults = plan
    gate = Gate(bed)
    outcomes = []
    for image, healthy in (
        (f"{IMAGE}:7.1.0", True),
        (f"{IMAGE}:7.2.0-broken", False),
        (f"{IMAGE}:7.3.0", True),
    ):
        release = spec_of(image)
        first, rerun = release_with_one_rerun(gate, release)
        final = rerun or first
        wanted = "promoted" if healthy else ("rolled back", "already failed")
        ended = final == wanted if healthy else final in wanted
        outcomes.append((image, first, rerun, ended, gate.problems(release)))
    report = "\n".join(
        f"{image}: {first}" + (f"; rerun: {rerun}" if rerun else "") + f"; problems: {problems}"
        for image, first, rerun, _, problems in outcomes
    )
    injected = {kind: plan.injected(kind) for kind in FaultKind}
    print(f"faults injected: {injected}\n{report}")
    assert plan.injected() >= 10, injected
    assert all(ended and not problems for *_, ended, problems in outcomes), report


# The release's third route to the primary is its clean-up's: the first two start it from rest.
CLEAN_UP_ROUTE = 3


def targeted(
    matches: Callable[[Request], bool], fault: ApiFault, times: int, nth: int = 1
) -> FaultPlan:
    """`fault` on the nth request `matches` and the `times - 1` like it after."""
    return FaultPlan(rules=[Rule(matches, fault, nth=nth, times=times)])


def test_a_route_back_that_keeps_failing_never_scales_down_a_canary_with_traffic(
    bed: TestBed,
) -> None:
    """The rollback's route back answers 500 for longer than the clean-up lasts: the canary
    keeps its replicas (scaling it down would answer its traffic with 503s), the verdict
    stays Failed, and the next `up` finishes the clean-up without analysing again."""
    gate = Gate(bed)
    release = spec_of(f"{IMAGE}:7.4.0-broken")
    declare(bed, release)
    failing = ApiFault(FaultKind.STATUS, 500)
    bed.kube.api.faults = targeted(routed(0), failing, times=10_000, nth=CLEAN_UP_ROUTE)
    first = gate.up(release)
    assert first == "rolled back"
    assert any("could not route all traffic to the primary" in line for line in gate.lines)
    canary = bed.kube.get(f"/apis/apps/v1/namespaces/{NS}/deployments/podinfo") or {}
    assert canary["spec"]["replicas"] > 0
    stored = bed.kube.get(f"/api/v1/namespaces/{NS}/configmaps/podinfo-canary-release") or {}
    record = ReleaseRecord.from_json(stored["data"]["release.json"])
    assert (record.phase, record.settled) == (RecordPhase.FAILED, False)
    bed.kube.api.faults = FaultPlan()
    assert gate.up(release) == "already failed"
    assert gate.problems(release) == []


@pytest.mark.parametrize(
    ("matches", "nth", "fault", "times"),
    [
        (routed(0), CLEAN_UP_ROUTE, ApiFault(FaultKind.STATUS, 500), 2),
        (scaled(0), 1, ApiFault(FaultKind.STATUS, 503), 2),
        (scaled(0), 1, ApiFault(FaultKind.LATE, delay=TIMEOUT + 0.5), 1),
        (scaled(0), 1, ApiFault(FaultKind.DROP), 1),
    ],
    ids=["route-back-500", "scale-down-503", "scale-down-answer-lost", "scale-down-dropped"],
)
def test_each_clean_up_step_is_retried_until_it_holds(
    bed: TestBed, matches: Callable[[Request], bool], nth: int, fault: ApiFault, times: int
) -> None:
    gate = Gate(bed)
    for image in (f"{IMAGE}:7.5.0-broken", f"{IMAGE}:7.6.0"):  # a rollback, then a finaliser
        release = spec_of(image)
        declare(bed, release)
        plan = targeted(matches, fault, times, nth)
        bed.kube.api.faults = plan
        outcome = gate.up(release)
        assert plan.injected() == times, (image, outcome)
        assert outcome == ("rolled back" if "broken" in image else "promoted"), gate.lines
        assert gate.problems(release) == []
