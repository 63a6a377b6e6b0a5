"""The API emulator behaves like an apiserver for what lightkube relies on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from lightkube import ApiError, Client, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace
from lightkube.types import PatchType

from components.rehearse.testbed import KubeEmulator
from components.rehearse.testbed._loop import ThreadedApp

pytestmark = pytest.mark.testbed

VirtualService = create_namespaced_resource(
    "networking.istio.io", "v1", "VirtualService", "virtualservices"
)
MetricTemplate = create_namespaced_resource(
    "flagger.app", "v1beta1", "MetricTemplate", "metrictemplates"
)


@pytest.fixture
def client(kube: KubeEmulator, tmp_path: Path) -> Client:
    return Client(config=KubeConfig.from_file(kube.write_kubeconfig(tmp_path / "config")))


def _vs(name: str = "podinfo", hosts: list[str] | None = None) -> object:
    return VirtualService(metadata=ObjectMeta(name=name), spec={"hosts": hosts or ["podinfo"]})


def _deployment(name: str = "podinfo", image: str = "podinfo:1") -> Deployment:
    labels = {"app": name}
    return Deployment(
        metadata=ObjectMeta(name=name),
        spec=DeploymentSpec(
            replicas=2,
            selector=LabelSelector(matchLabels=labels),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=labels),
                spec=PodSpec(containers=[Container(name="app", image=image)]),
            ),
        ),
    )


def test_create_get_list_and_metadata(client: Client, kube: KubeEmulator) -> None:
    created = client.create(_vs())
    assert created.metadata.uid and created.metadata.creationTimestamp
    assert created.metadata.generation == 1
    fetched = client.get(VirtualService, "podinfo")
    assert fetched.metadata.resourceVersion == created.metadata.resourceVersion
    assert [v.metadata.name for v in client.list(VirtualService)] == ["podinfo"]
    raw = kube.request("POST", "/apis/flagger.app/v1beta1/namespaces/default/metrictemplates",
                       json={"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
                             "metadata": {"name": "errors"}, "spec": {}})  # fmt: skip
    assert raw.status_code == 201
    assert client.get(MetricTemplate, "errors").metadata.name == "errors"


def test_duplicate_create_and_missing_objects(client: Client, kube: KubeEmulator) -> None:
    client.create(_vs())
    with pytest.raises(ApiError) as duplicate:
        client.create(_vs())
    assert (duplicate.value.status.code, duplicate.value.status.reason) == (409, "AlreadyExists")
    with pytest.raises(ApiError) as missing:
        client.get(VirtualService, "absent")
    assert (missing.value.status.code, missing.value.status.reason) == (404, "NotFound")
    unknown_kind = kube.request("GET", "/apis/example.io/v1/namespaces/default/widgets/x")
    assert unknown_kind.status_code == 404
    assert unknown_kind.json()["kind"] == "Status"
    with pytest.raises(ApiError) as no_namespace:
        client.create(ConfigMap(metadata=ObjectMeta(name="c", namespace="nowhere")))
    assert no_namespace.value.status.code == 404


def test_stale_resource_version_conflicts(client: Client) -> None:
    stale = client.create(_vs())
    client.patch(
        VirtualService, "podinfo", {"spec": {"gateways": ["mesh"]}}, patch_type=PatchType.MERGE
    )
    stale.spec["hosts"] = ["other"]
    with pytest.raises(ApiError) as conflict:
        client.replace(stale)
    assert (conflict.value.status.code, conflict.value.status.reason) == (409, "Conflict")
    fresh = client.get(VirtualService, "podinfo")
    fresh.spec["hosts"] = ["other"]
    replaced = client.replace(fresh)
    assert replaced.spec["hosts"] == ["other"]
    assert int(replaced.metadata.resourceVersion) > int(fresh.metadata.resourceVersion)


def test_patch_types(client: Client) -> None:
    client.create(_vs(hosts=["a", "b"]))
    merged = client.patch(
        VirtualService, "podinfo", {"spec": {"hosts": ["c"], "gateways": ["mesh"]}},
        patch_type=PatchType.MERGE,
    )  # fmt: skip
    assert merged.spec == {"hosts": ["c"], "gateways": ["mesh"]}
    assert merged.metadata.generation == 2
    patched = client.patch(
        VirtualService, "podinfo",
        [{"op": "add", "path": "/spec/hosts/-", "value": "d"},
         {"op": "remove", "path": "/spec/gateways"}],
        patch_type=PatchType.JSON,
    )  # fmt: skip
    assert patched.spec == {"hosts": ["c", "d"]}
    with pytest.raises(ApiError) as failed_test:
        client.patch(
            VirtualService, "podinfo", [{"op": "test", "path": "/spec/hosts/0", "value": "x"}],
            patch_type=PatchType.JSON,
        )  # fmt: skip
    assert failed_test.value.status.code == 422
    with pytest.raises(ApiError) as strategic:  # as on a real apiserver, for custom resources
        client.patch(VirtualService, "podinfo", {"spec": {}}, patch_type=PatchType.STRATEGIC)
    assert strategic.value.status.code == 415


def test_strategic_merge_merges_containers_by_name(client: Client) -> None:
    client.create(_deployment())
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "podinfo:2"}]}}}
    }
    patched = client.patch(Deployment, "podinfo", patch, patch_type=PatchType.STRATEGIC)
    containers = patched.spec.template.spec.containers
    assert [(c.name, c.image) for c in containers] == [("app", "podinfo:2")]


def test_server_side_apply_field_managers(client: Client) -> None:
    created = client.apply(_vs(hosts=["podinfo"]), field_manager="release")
    assert created.metadata.generation == 1
    assert [m.manager for m in created.metadata.managedFields] == ["release"]
    with pytest.raises(ApiError) as conflict:
        client.apply(_vs(hosts=["hijack"]), field_manager="intruder")
    assert conflict.value.status.code == 409
    assert "release" in conflict.value.status.message
    same_value = client.apply(_vs(hosts=["podinfo"]), field_manager="intruder")
    assert {m.manager for m in same_value.metadata.managedFields} == {"release", "intruder"}
    forced = client.apply(_vs(hosts=["hijack"]), field_manager="intruder", force=True)
    assert forced.spec["hosts"] == ["hijack"]
    assert [m.manager for m in forced.metadata.managedFields] == ["intruder"]


def test_apply_drops_fields_the_manager_stopped_applying(client: Client) -> None:
    client.apply(
        VirtualService(
            metadata=ObjectMeta(name="podinfo"), spec={"hosts": ["a"], "gateways": ["g"]}
        ),
        field_manager="release",
    )
    again = client.apply(_vs(hosts=["a"]), field_manager="release")
    assert again.spec == {"hosts": ["a"]}


def test_status_only_through_the_subresource(client: Client) -> None:
    client.create(_deployment())
    body = {"spec": {"replicas": 3}, "status": {"readyReplicas": 3}}
    main = client.patch(Deployment, "podinfo", body, patch_type=PatchType.MERGE)
    assert main.status is None or main.status.readyReplicas is None
    assert main.spec.replicas == 3
    status = client.patch(
        Deployment.Status, "podinfo", {"status": {"readyReplicas": 3}}, patch_type=PatchType.MERGE
    )
    assert status.status.readyReplicas == 3
    assert status.metadata.generation == main.metadata.generation


def test_namespaces_and_delete(client: Client) -> None:
    client.create(Namespace(metadata=ObjectMeta(name="istio-system")))
    names = {n.metadata.name for n in client.list(Namespace)}
    assert {"default", "istio-system"} <= names
    client.create(_vs())
    client.delete(VirtualService, "podinfo")
    with pytest.raises(ApiError) as gone:
        client.get(VirtualService, "podinfo")
    assert gone.value.status.code == 404


def test_token_is_required(kube: KubeEmulator, tmp_path: Path) -> None:
    bad = kube.write_kubeconfig(tmp_path / "bad", token="wrong")
    with pytest.raises(ApiError) as denied:
        Client(config=KubeConfig.from_file(bad)).get(Namespace, "default")
    assert denied.value.status.code == 401


@pytest.fixture
def upstream() -> Iterator[ThreadedApp]:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "body": await request.text(),
                "header": request.headers.get("X-Probe"),
            },
            status=218,
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = ThreadedApp(app, "upstream")
    server.start()
    yield server
    server.stop()


def test_service_proxy_forwards(kube: KubeEmulator, upstream: ThreadedApp) -> None:
    kube.register_service_proxy("istio-system", "prometheus", 9090, upstream.url)
    base = "/api/v1/namespaces/istio-system/services"
    for name in ("prometheus:9090", "http:prometheus:9090"):
        response = kube.request(
            "POST", f"{base}/{name}/proxy/api/v1/query", params={"query": "up"},
            content=b"payload", headers={"X-Probe": "yes"},
        )  # fmt: skip
        assert response.status_code == 218
        assert response.json() == {
            "method": "POST", "path": "/api/v1/query", "query": {"query": "up"},
            "body": "payload", "header": "yes",
        }  # fmt: skip
    assert kube.request("GET", f"{base}/unknown:80/proxy/").status_code == 503


def test_service_proxy_without_port_means_80(kube: KubeEmulator, upstream: ThreadedApp) -> None:
    kube.register_service_proxy("default", "flagger-loadtester", 80, upstream.url)
    response = kube.request("GET", "/api/v1/namespaces/default/services/flagger-loadtester/proxy/x")
    assert response.json()["path"] == "/x"


def test_proxy_to_a_dead_upstream_is_503(kube: KubeEmulator, upstream: ThreadedApp) -> None:
    kube.register_service_proxy("default", "gone", 80, upstream.url)
    upstream.stop()
    response = kube.request("GET", "/api/v1/namespaces/default/services/gone:80/proxy/")
    assert response.status_code == 503
    assert isinstance(response.json()["message"], str)
    assert response.status_code == httpx.codes.SERVICE_UNAVAILABLE
