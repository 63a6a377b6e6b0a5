"""`pulumi up` of the example stack, run after run, on the test bed.

The program is the project's own `__main__.py`; the engine stand-in (tests/e2e/engine.py) applies
its Kubernetes objects to the API emulator and runs the gate's providers for real, so each
release is analysed against the real Prometheus scraping the simulated mesh.
"""

from __future__ import annotations

import copy
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import pytest
import yaml

from components.adapters.cluster import Cluster
from components.adapters.kube import Connections, KubeAccess
from components.adapters.records import Owner, RecordPhase, RecordStore, ReleaseRecord
from components.provider.rollout import has_unknown
from components.rehearse.testbed import Fault, TestBed
from components.routing import TrafficState, virtual_service
from components.spec import ReleaseSpec
from tests.e2e.engine import Engine, EngineError, owners

pytestmark = pytest.mark.testbed

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "__main__.py"
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
IMAGE = "ghcr.io/stefanprodan/podinfo"
BAD_IMAGE = f"{IMAGE}:6.3.2-broken"
NS = "default"
VS_PATH = f"/apis/networking.istio.io/v1/namespaces/{NS}/virtualservices/podinfo"
RECORD_PATH = f"/api/v1/namespaces/{NS}/configmaps/podinfo-canary-release"


def deployment_path(name: str) -> str:
    return f"/apis/apps/v1/namespaces/{NS}/deployments/{name}"


@pytest.fixture(scope="module")
def bed() -> Iterator[TestBed]:
    # 30% errors: under the analysis' 99% and over the critical watch's 50%, so the release
    # fails through the threshold, as these tests expect.
    with TestBed(namespace=NS, faults={BAD_IMAGE: Fault(error_rate=0.3)}) as running:
        yield running


@pytest.fixture(scope="module")
def engine(bed: TestBed) -> Engine:
    return Engine(bed.kube, PROJECT)


def settings(bed: TestBed, image: str, **config: str) -> dict[str, str]:
    return {"image": image, "interval": "2s", "kubeconfig": bed.kubeconfig.read_text(), **config}


def up(engine: Engine, bed: TestBed, image: str, **config: str) -> Any:
    return engine.up(PROGRAM, settings(bed, image, **config), secrets=("kubeconfig",))


def preview(engine: Engine, bed: TestBed, image: str, **config: str) -> Any:
    return engine.preview(PROGRAM, settings(bed, image, **config), secrets=("kubeconfig",))


def image_of(bed: TestBed, name: str) -> str:
    deployment = bed.kube.get(deployment_path(name))
    assert deployment is not None
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def replicas_of(bed: TestBed, name: str) -> int:
    deployment = bed.kube.get(deployment_path(name))
    assert deployment is not None
    replicas: int = deployment["spec"]["replicas"]
    return replicas


def weights(bed: TestBed) -> dict[str, int]:
    service = bed.kube.get(VS_PATH)
    assert service is not None
    (route,) = service["spec"]["http"]
    return {d["destination"]["host"]: d["weight"] for d in route["route"]}


def record(bed: TestBed) -> dict[str, Any]:
    config_map = bed.kube.get(RECORD_PATH)
    assert config_map is not None
    loaded: dict[str, Any] = yaml.safe_load(next(iter(config_map["data"].values())))
    return loaded


AT_REST = {"podinfo-primary": 100, "podinfo-canary": 0}
# The progress line of a metric check at the first step.
FIRST_CHECK = "podinfo: 10% success-rate"


# The runs share one bed and one engine state, in order, like consecutive `pulumi up`s.


def test_1_first_up_creates_everything_and_promotes_without_analysis(
    engine: Engine, bed: TestBed
) -> None:
    run = up(engine, bed, f"{IMAGE}:6.3.0")
    assert "podinfo: first release of ghcr.io/stefanprodan/podinfo:6.3.0" in run.output
    assert image_of(bed, "podinfo-primary") == f"{IMAGE}:6.3.0"
    assert replicas_of(bed, "podinfo-primary") == 2
    assert replicas_of(bed, "podinfo") == 0
    assert weights(bed) == AT_REST
    assert record(bed)["phase"] == "Succeeded"
    assert FIRST_CHECK not in run.output


def test_2_a_healthy_image_is_analysed_and_promoted(engine: Engine, bed: TestBed) -> None:
    run = up(engine, bed, f"{IMAGE}:6.3.1")
    # The change review, then one progress line per step with values against thresholds.
    assert f"podinfo: {IMAGE}:6.3.0 -> 6.3.1; canary 10% -> 50% in 5 steps every 2s" in run.output
    checks = [line for line in run.output.splitlines() if "% success-rate " in line]
    assert [line.split()[1] for line in checks] == ["10%", "20%", "30%", "40%", "50%"]
    assert all(">=99, duration " in line and "<=500ms: pass, " in line for line in checks)
    assert checks[0].endswith("pass, 8s to go") and checks[-1].endswith("pass, promoting")
    # Each step's lines fit an 80-column terminal, where `pulumi up` shows one at a time.
    first = next(i for i, line in enumerate(run.output.splitlines()) if "New revision" in line)
    assert all(len(line) <= 80 for line in run.output.splitlines()[first:])
    assert image_of(bed, "podinfo-primary") == f"{IMAGE}:6.3.1"
    assert weights(bed) == AT_REST
    assert replicas_of(bed, "podinfo") == 0
    assert record(bed)["phase"] == "Succeeded"
    # The release, not Pulumi, owns what it changed: the routes and the canary's replicas.
    service = bed.kube.get(VS_PATH)
    canary = bed.kube.get(deployment_path("podinfo"))
    assert service is not None and canary is not None
    assert owners(service, ["spec", "http"]) == {"pulumi-canary"}
    assert owners(canary, ["spec", "replicas"]) == {"pulumi-canary"}
    (pulumi_manager,) = owners(service, ["spec", "hosts"])
    assert pulumi_manager.startswith("pulumi-kubernetes-")


def cluster_snapshot(bed: TestBed) -> dict[str, Any]:
    """Every object's spec, labels and data: what a preview must leave as it was."""
    kinds = [
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "ConfigMap"),
        ("networking.istio.io/v1", "DestinationRule"),
        ("networking.istio.io/v1", "VirtualService"),
    ]
    return {
        f"{kind}/{item['metadata']['name']}": (
            item.get("spec"),
            item.get("data"),
            item["metadata"].get("labels"),
            item["metadata"].get("annotations"),
        )
        for api_version, kind in kinds
        for item in bed.kube.list(api_version, kind, NS)
    }


def planned(run: Any, name: str) -> str:
    (urn,) = [urn for urn in run.planned if urn.endswith(f"::{name}")]
    return str(run.planned[urn])


def inputs_of(run: Any, name: str) -> dict[str, Any]:
    (urn,) = [urn for urn in run.inputs if urn.endswith(f"::{name}")]
    return dict(run.inputs[urn])


def test_2b_a_preview_of_a_new_image_shows_the_release_to_come_and_touches_nothing(
    engine: Engine, bed: TestBed
) -> None:
    before, state = cluster_snapshot(bed), copy.deepcopy(engine.state)
    run = preview(engine, bed, f"{IMAGE}:6.3.5")
    assert f"podinfo: {IMAGE}:6.3.1 -> 6.3.5; canary 10% -> 50% in 5 steps every 2s" in run.output
    assert planned(run, "podinfo-rollout") == "update"
    assert planned(run, "podinfo-canary") == "update"
    # The primary waits on the analysis: "may change", never the new image as if it passed.
    assert planned(run, "podinfo-primary") == "update"
    assert has_unknown(inputs_of(run, "podinfo-primary")["spec"])
    assert "6.3.5" not in repr(inputs_of(run, "podinfo-primary"))
    # The plan is known at preview (an input computed by the component, not an output).
    assert inputs_of(run, "podinfo-rollout")["plan"] == "canary 10% -> 50% in 5 steps every 2s"
    assert cluster_snapshot(bed) == before
    assert engine.state == state
    assert FIRST_CHECK not in run.output


def test_2c_a_preview_with_nothing_to_release_shows_nothing_changing(
    engine: Engine, bed: TestBed
) -> None:
    """The same image, and options a release reads only when it runs (the interval)."""
    for change in ({}, {"interval": "3s"}):
        run = preview(engine, bed, f"{IMAGE}:6.3.1", **change)
        gate = ("podinfo-guard", "podinfo-rollout", "podinfo-finaliser")
        assert {name: planned(run, name) for name in gate} == dict.fromkeys(gate, "same")
        assert planned(run, "podinfo-primary") == "same"
        (container,) = inputs_of(run, "podinfo-primary")["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{IMAGE}:6.3.1"
        assert " -> " not in run.output


def test_3_a_bad_image_fails_the_up_and_leaves_the_primary(engine: Engine, bed: TestBed) -> None:
    with pytest.raises(EngineError) as raised:
        up(engine, bed, BAD_IMAGE)
    message = str(raised.value)
    assert "rolled back, the primary is unchanged" in message
    assert "request-success-rate" in message
    assert "failed checks threshold reached 5" in message
    assert "(5 failed checks)" in message
    assert image_of(bed, "podinfo-primary") == f"{IMAGE}:6.3.1"
    assert weights(bed) == AT_REST
    assert replicas_of(bed, "podinfo") == 0
    assert record(bed)["phase"] == "Failed"


def test_4_the_same_bad_image_fails_fast_with_the_recorded_reason(
    engine: Engine, bed: TestBed
) -> None:
    with pytest.raises(EngineError) as raised:
        up(engine, bed, BAD_IMAGE)
    message = str(raised.value)
    assert "already failed: failed checks threshold reached 5" in message
    assert "set retryFailed" in message
    run = raised.value.run
    assert run is not None and FIRST_CHECK not in run.output
    assert image_of(bed, "podinfo-primary") == f"{IMAGE}:6.3.1"


def test_5_an_up_with_nothing_changed_changes_nothing(engine: Engine, bed: TestBed) -> None:
    """Back to the promoted image: the gate has no diff, and Pulumi's applies do not conflict
    with the fields the releases wrote (routes, canary replicas) nor reset them."""
    run = up(engine, bed, f"{IMAGE}:6.3.1")
    assert not [urn for urn in run.updated if "Rollout" in urn]
    assert FIRST_CHECK not in run.output
    assert image_of(bed, "podinfo") == f"{IMAGE}:6.3.1"
    assert weights(bed) == AT_REST
    again = up(engine, bed, f"{IMAGE}:6.3.1")
    assert not [urn for urn in again.updated if "dynamic" in urn]


def test_6_ups_during_a_release_do_not_fight_over_routes_or_replicas(
    engine: Engine, bed: TestBed
) -> None:
    """A release left mid-way (canary at 30%, scaled up) and an `up` that changes nothing:
    server-side apply must neither conflict on nor reset the release's fields."""
    release = ReleaseSpec.parse(
        canary=yaml.safe_load((ROOT / "examples/podinfo/canary.yaml").read_text()),
        deployment=yaml.safe_load((ROOT / "examples/podinfo/deployment.yaml").read_text()),
    )
    with Connections(KubeAccess(kubeconfig=bed.kubeconfig.read_text())) as connections:
        cluster = Cluster(connections, release)
        cluster.set_routes(TrafficState(canary_weight=30))
        cluster.scale("podinfo", 2)
        up(engine, bed, f"{IMAGE}:6.3.1")
        assert weights(bed) == {"podinfo-primary": 70, "podinfo-canary": 30}
        assert replicas_of(bed, "podinfo") == 2
        cluster.set_routes(TrafficState())
        cluster.scale("podinfo", 0)


def test_7_without_ignore_changes_the_same_up_would_conflict(bed: TestBed) -> None:
    """The control for the test above: the emulator enforces server-side apply conflicts, so
    declaring `spec.http` without `ignore_changes` would fail the `up` mid-release."""
    release = ReleaseSpec.parse(
        canary=yaml.safe_load((ROOT / "examples/podinfo/canary.yaml").read_text()),
        deployment=yaml.safe_load((ROOT / "examples/podinfo/deployment.yaml").read_text()),
    )
    service = bed.kube.get(VS_PATH)
    assert service is not None
    (pulumi_manager,) = owners(service, ["spec", "hosts"])
    declared = virtual_service(release)
    with Connections(KubeAccess(kubeconfig=bed.kubeconfig.read_text())) as connections:
        cluster = Cluster(connections, release)
        cluster.set_routes(TrafficState(canary_weight=30))
        try:
            with pytest.raises(httpx.HTTPStatusError) as raised:
                bed.kube.apply_object(declared, field_manager=pulumi_manager, force=False)
            assert raised.value.response.status_code == 409
        finally:
            cluster.set_routes(TrafficState())


def test_8_a_new_release_first_takes_back_what_an_interrupted_one_left(
    engine: Engine, bed: TestBed
) -> None:
    """A killed `pulumi up` left the canary at 30% with a record owned by a dead process. The
    next `up` of a new image must not let that image serve the 30% unverified: the guard routes
    everything to the primary before the canary Deployment changes, then the release runs."""
    release = ReleaseSpec.parse(
        canary=yaml.safe_load((ROOT / "examples/podinfo/canary.yaml").read_text()),
        deployment=yaml.safe_load((ROOT / "examples/podinfo/deployment.yaml").read_text()),
    )
    dead = subprocess.Popen(["true"])
    dead.wait()
    with Connections(KubeAccess(kubeconfig=bed.kubeconfig.read_text())) as connections:
        cluster = Cluster(connections, release)
        cluster.set_routes(TrafficState(canary_weight=30))
        cluster.scale("podinfo", 2)
        interrupted = ReleaseRecord("0123456789abcdef", RecordPhase.PROGRESSING, weight=30)
        records = RecordStore(cluster, release.name, release.namespace, time.time)
        records.load()
        with patch.object(Owner, "this_process", lambda: Owner(socket.gethostname(), dead.pid)):
            records.save(interrupted)
    run = up(engine, bed, f"{IMAGE}:6.3.4")
    guard = run.registered.index(next(u for u in run.registered if u.endswith("::podinfo-guard")))
    canary = run.registered.index(next(u for u in run.registered if u.endswith("::podinfo-canary")))
    assert guard < canary
    lines = run.output.splitlines()
    cleared = lines.index(
        "podinfo: all traffic on the primary and the canary at zero "
        "before the canary takes the new template"
    )
    found = lines[cleared - 1]
    assert found.startswith("podinfo: found canary weight 30 and 2 canary replicas")
    assert f"(record: Progressing at weight 30, owner pid {dead.pid} on " in found
    first_step = next(i for i, line in enumerate(lines) if "Advance canary weight 10" in line)
    assert cleared < first_step
    assert image_of(bed, "podinfo-primary") == f"{IMAGE}:6.3.4"
    assert weights(bed) == AT_REST
    assert record(bed)["phase"] == "Succeeded"


def test_9_after_a_first_ctrl_c_the_next_up_applies_and_finalises_the_promotion(
    engine: Engine, bed: TestBed
) -> None:
    """A first Ctrl-C lets the release in flight finish and starts no new step: the primary
    and the finaliser are skipped, and the canary keeps the traffic of the last step, which
    passed. The next `up` analyses nothing: it rolls the primary and finalises."""
    engine.cancel_after = "::podinfo-rollout"
    try:
        with pytest.raises(EngineError, match="update canceled"):
            up(engine, bed, f"{IMAGE}:6.3.6")
    finally:
        engine.cancel_after = None
    assert image_of(bed, "podinfo-primary") == f"{IMAGE}:6.3.4"
    assert weights(bed) == {"podinfo-primary": 50, "podinfo-canary": 50}
    assert record(bed)["phase"] == "Promoting"
    run = up(engine, bed, f"{IMAGE}:6.3.6")
    assert FIRST_CHECK not in run.output
    assert "finalised" in run.output
    assert image_of(bed, "podinfo-primary") == f"{IMAGE}:6.3.6"
    assert weights(bed) == AT_REST
    assert replicas_of(bed, "podinfo") == 0
    assert record(bed)["phase"] == "Succeeded"
