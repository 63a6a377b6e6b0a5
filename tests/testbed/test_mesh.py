"""The mesh simulator routes like Envoy and marks Deployments ready like the kubelet.

And real PromQL over its Istio metrics, reached through the API's service proxy.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from components.rehearse.testbed import (
    LOAD_TEST,
    Fault,
    KubeEmulator,
    LoadTester,
    MeshSimulator,
    PrometheusServer,
    RequestClass,
    TestBed,
)

pytestmark = pytest.mark.testbed

BETA = RequestClass(name="beta", headers={"x-user-type": "beta"}, share=0.1)
OTHERS = RequestClass(name="others", share=0.9)


def _deployment(name: str, app: str, image: str, deadline: int = 600) -> dict[str, Any]:
    labels = {"app": app}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": deadline,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def _service(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": app}, "ports": [{"port": 9898}]},
    }


def _virtual_service(http: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": "default"},
        "spec": {"hosts": ["podinfo", "app.example.com"], "http": http},
    }


def _route(primary: int, canary: int) -> list[dict[str, Any]]:
    return [
        {"destination": {"host": "podinfo-primary"}, "weight": primary},
        {"destination": {"host": "podinfo-canary.default.svc.cluster.local"}, "weight": canary},
    ]


@pytest.fixture
def podinfo(kube: KubeEmulator) -> KubeEmulator:
    """Flagger's objects for a canary: primary and canary workloads and services."""
    kube.create(_deployment("podinfo-primary", "podinfo-primary", "podinfo:1"))
    kube.create(_deployment("podinfo", "podinfo", "podinfo:2"))
    kube.create(_service("podinfo", "podinfo-primary"))
    kube.create(_service("podinfo-primary", "podinfo-primary"))
    kube.create(_service("podinfo-canary", "podinfo"))
    return kube


@pytest.fixture
def mesh(podinfo: KubeEmulator) -> Iterator[MeshSimulator]:
    simulator = MeshSimulator(
        podinfo.url, token=podinfo.token, request_mix=[BETA, OTHERS], crashloop_images={"bad:1"},
        seed=7,
    )  # fmt: skip
    with simulator:
        yield simulator


def _ready(kube: KubeEmulator, name: str) -> bool:
    obj = kube.get(f"/apis/apps/v1/namespaces/default/deployments/{name}") or {}
    return (obj.get("status") or {}).get("readyReplicas") == 2


def test_kubelet_marks_deployments_ready(
    podinfo: KubeEmulator, mesh: MeshSimulator, eventually: Callable[..., None]
) -> None:
    eventually(lambda: _ready(podinfo, "podinfo"))
    status = (podinfo.get("/apis/apps/v1/namespaces/default/deployments/podinfo") or {})["status"]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    assert status["observedGeneration"] == 1 and status["updatedReplicas"] == 2


def test_crashlooping_image_never_ready(
    podinfo: KubeEmulator, mesh: MeshSimulator, eventually: Callable[..., None]
) -> None:
    podinfo.create(_deployment("broken", "broken", "bad:1", deadline=1))

    def deadline_exceeded() -> bool:
        obj = podinfo.get("/apis/apps/v1/namespaces/default/deployments/broken") or {}
        conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
        progressing = conditions.get("Progressing", {})
        return progressing.get("reason") == "ProgressDeadlineExceeded"

    eventually(deadline_exceeded, timeout=5)
    status = (podinfo.get("/apis/apps/v1/namespaces/default/deployments/broken") or {})["status"]
    assert status["readyReplicas"] == 0
    assert {c["type"]: c["status"] for c in status["conditions"]}["Available"] == "False"


def test_weights_split_traffic(
    podinfo: KubeEmulator, mesh: MeshSimulator, eventually: Callable[..., None]
) -> None:
    podinfo.create(_virtual_service([{"route": _route(80, 20)}]))
    eventually(lambda: mesh.routed("podinfo-primary") + mesh.routed("podinfo") > 3000)
    primary, canary = mesh.routed("podinfo-primary"), mesh.routed("podinfo")
    assert canary / (primary + canary) == pytest.approx(0.2, abs=0.03)


def test_header_match_reaches_canary_only(
    podinfo: KubeEmulator, mesh: MeshSimulator, eventually: Callable[..., None]
) -> None:
    podinfo.create(
        _virtual_service(
            [
                {
                    "match": [{"headers": {"x-user-type": {"exact": "beta"}}}],
                    "route": _route(0, 100),
                },
                {"route": [{"destination": {"host": "podinfo-primary"}}]},
            ]
        )
    )
    eventually(lambda: mesh.routed("podinfo", "beta") > 200)
    assert mesh.routed("podinfo", "others") == 0
    assert mesh.routed("podinfo-primary", "beta") == 0
    assert mesh.routed("podinfo-primary", "others") > mesh.routed("podinfo", "beta")


def test_mirroring_copies_to_the_canary(
    podinfo: KubeEmulator, mesh: MeshSimulator, eventually: Callable[..., None]
) -> None:
    route = {
        "route": _route(100, 0),
        "mirror": {"host": "podinfo-canary"},
        "mirrorPercentage": {"value": 50.0},
    }
    podinfo.create(_virtual_service([route]))
    eventually(lambda: mesh.mirrored("podinfo") > 1000)
    assert mesh.routed("podinfo") == 0
    assert mesh.mirrored("podinfo") / mesh.routed("podinfo-primary") == pytest.approx(0.5, abs=0.05)


def test_unready_destination_gets_no_traffic(
    podinfo: KubeEmulator, mesh: MeshSimulator, eventually: Callable[..., None]
) -> None:
    podinfo.create(_deployment("podinfo-b", "podinfo-b", "bad:1"))
    podinfo.create(_service("podinfo-b", "podinfo-b"))
    route = [
        {"destination": {"host": "podinfo-primary"}, "weight": 50},
        {"destination": {"host": "podinfo-b"}, "weight": 50},
    ]
    podinfo.create(_virtual_service([{"route": route}]))
    eventually(lambda: mesh.unrouted("podinfo-b") > 500)
    assert mesh.routed("podinfo-b") == 0


SUCCESS_RATE = """
sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="default",
  destination_workload=~"podinfo",response_code!~"5.*"}[2s]))
/ sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="default",
  destination_workload=~"podinfo"}[2s])) * 100
"""
DURATION = """
histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{
  reporter="destination",destination_workload_namespace="default",
  destination_workload=~"podinfo"}[2s])) by (le))
"""
PROXY = "/api/v1/namespaces/istio-system/services/prometheus:9090/proxy/api/v1/query"


@pytest.fixture(scope="module")
def bed() -> Iterator[TestBed]:
    faults = {"podinfo:2": Fault(error_rate=0.05, latency_ms=400)}
    with TestBed(faults=faults) as testbed:
        kube = testbed.kube
        kube.create(_deployment("podinfo-primary", "podinfo-primary", "podinfo:1"))
        kube.create(_deployment("podinfo", "podinfo", "podinfo:2"))
        kube.create(_service("podinfo", "podinfo-primary"))
        kube.create(_service("podinfo-primary", "podinfo-primary"))
        kube.create(_service("podinfo-canary", "podinfo"))
        kube.create(_virtual_service([{"route": _route(50, 50)}]))
        yield testbed


def _query(bed: TestBed, promql: str) -> float:
    query = re.sub(r"\s+", " ", promql).strip()
    response = bed.kube.request("GET", PROXY, params={"query": query})
    response.raise_for_status()
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else math.nan


def test_success_rate_and_latency_through_the_proxy(
    bed: TestBed, eventually: Callable[..., None]
) -> None:
    # rate() is only exact once every series has samples across the whole window.
    filled = 'min(count_over_time(istio_requests_total{destination_workload="podinfo"}[2s]))'
    eventually(lambda: _query(bed, filled) >= 4, timeout=20)
    assert _query(bed, SUCCESS_RATE) == pytest.approx(95.0, abs=2.0)
    # p99 of the samples is 400 ms; Prometheus interpolates inside the (250, 500] bucket.
    assert 250 < _query(bed, DURATION) <= 500


def test_fault_changes_at_runtime(bed: TestBed, eventually: Callable[..., None]) -> None:
    bed.mesh.set_fault("podinfo", Fault(error_rate=0.0, latency_ms=10))
    eventually(lambda: _query(bed, SUCCESS_RATE) > 99.9, timeout=10)


def test_kubeconfig_points_at_the_emulator(bed: TestBed) -> None:
    text = bed.kubeconfig.read_text()
    assert bed.kube.url in text and "testbed-token" in text
    loadtester = "/api/v1/namespaces/default/services/flagger-loadtester:80/proxy/gate/approve"
    assert bed.kube.request("POST", loadtester).status_code == 200


def test_prometheus_down_is_visible(bed: TestBed) -> None:
    bed.prometheus.stop()
    try:
        assert bed.kube.request("GET", PROXY, params={"query": "vector(1)"}).status_code == 503
    finally:
        bed.prometheus.start()
    assert bed.prometheus.query("vector(1)")[0]["value"][1] == "1"


def test_missing_binary_is_explained() -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install -y prometheus"):
        PrometheusServer([], binary="/nonexistent/prometheus")


def test_a_hey_load_test_sends_its_rate_to_the_canary(
    podinfo: KubeEmulator, mesh: MeshSimulator, eventually: Callable[..., None]
) -> None:
    """The loadtester stand-in turns `hey -q 10 -c 2` into 20 requests a second in the mesh,
    to the Service it names, while the apex keeps its own traffic on the primary."""
    podinfo.create(_virtual_service([{"route": _route(100, 0)}]))
    eventually(lambda: _ready(podinfo, "podinfo"))
    with LoadTester(traffic=mesh.add_source) as tester:
        command = "hey -z 1m -q 10 -c 2 http://podinfo-canary.default:9898/"
        hook = {"name": "podinfo", "namespace": "default", "metadata": {"cmd": command}}
        started = time.monotonic()
        assert httpx.post(tester.url + "/", json=hook, timeout=5).status_code == 202
        time.sleep(2.0)
        seconds = time.monotonic() - started
    load = mesh.routed("podinfo", LOAD_TEST.name)
    assert load >= 20 * seconds * 0.6  # the rate asked for, less the start-up and the noise
    assert load <= 20 * seconds * 1.5
    assert mesh.routed("podinfo-primary", LOAD_TEST.name) == 0
    assert mesh.routed("podinfo", "others") == 0  # the apex routes 100% to the primary
    assert [source.host for source in mesh.active_sources()] == ["podinfo-canary.default"]
