"""The cluster adapter against the API emulator, through a kubeconfig as a user would pass it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightkube
import pytest
import yaml
from aiohttp import web
from lightkube.generic_resource import create_namespaced_resource

from components.adapters.cluster import Cluster, ClusterError
from components.adapters.kube import Connections, KubeAccess
from components.adapters.records import RecordPhase, RecordStore, ReleaseConflict, ReleaseRecord
from components.adapters.retry import Backoff, RetryCounter
from components.analysis import Condition, WorkloadStatus
from components.rehearse.testbed import KubeApiEmulator, KubeEmulator
from components.routing import TrafficState, virtual_service
from components.spec import ReleaseSpec

pytestmark = pytest.mark.testbed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "podinfo"
NS = "default"
TOKEN = "testbed-token"
VS_PATH = f"/apis/networking.istio.io/v1/namespaces/{NS}/virtualservices/podinfo"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
RECORD_PATH = f"/api/v1/namespaces/{NS}/configmaps/podinfo-canary-release"
PULUMI_MANAGER = "pulumi-kubernetes-1a2b3c"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes


class RecordingApi(KubeApiEmulator):
    """The test bed's strict emulator, also keeping every request it received."""

    def __init__(self, token: str | None) -> None:
        super().__init__(token=token)
        self.seen: list[Seen] = []

    async def __call__(self, raw: web.BaseRequest) -> web.StreamResponse:
        content_type = raw.headers.get("Content-Type", "").split(";")[0]
        self.seen.append(
            Seen(raw.method, raw.path, dict(raw.query), content_type, await raw.read())
        )
        return await super().__call__(raw)

    def writes(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path and s.method in ("PATCH", "PUT", "POST")]


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    emulator = KubeEmulator(token=TOKEN)
    emulator.api = RecordingApi(token=TOKEN)
    with emulator:
        yield emulator


@pytest.fixture
def api(kube: KubeEmulator) -> RecordingApi:
    assert isinstance(kube.api, RecordingApi)
    return kube.api


def _release(canary_file: str = "canary.yaml") -> ReleaseSpec:
    return ReleaseSpec.parse(
        canary=yaml.safe_load((EXAMPLES / canary_file).read_text()),
        deployment=yaml.safe_load((EXAMPLES / "deployment.yaml").read_text()),
    )


@pytest.fixture
def release() -> ReleaseSpec:
    return _release()


@pytest.fixture
def kubeconfig(kube: KubeEmulator, tmp_path: Path) -> Path:
    return kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)


@pytest.fixture
def connections(kubeconfig: Path) -> Iterator[Connections]:
    with Connections(KubeAccess(kubeconfig=kubeconfig.read_text())) as opened:
        yield opened


@pytest.fixture
def cluster(connections: Connections, release: ReleaseSpec) -> Cluster:
    return Cluster(connections, release)


def store(cluster: Cluster, now: float = 1000.0) -> RecordStore:
    return RecordStore(cluster, "podinfo", NS, lambda: now)


def _declare_virtual_service(kube: KubeEmulator, release: ReleaseSpec) -> None:
    """As the component does through pulumi-kubernetes, with its own field manager."""
    kube.apply_object(virtual_service(release), field_manager=PULUMI_MANAGER)


def _deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    manifest = yaml.safe_load((EXAMPLES / "deployment.yaml").read_text())
    manifest["metadata"]["name"] = name
    manifest["spec"]["replicas"] = replicas
    return dict(manifest)


def _set_status(kube: KubeEmulator, name: str, **status: Any) -> None:
    response = kube.request(
        "PATCH",
        f"{DEPLOYMENTS}/{name}/status",
        content=json.dumps({"status": status}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    response.raise_for_status()


# -- routes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (TrafficState(), (100, 0, False)),
        (TrafficState(canary_weight=10), (90, 10, False)),
        (TrafficState(canary_weight=50), (50, 50, False)),
        (TrafficState(canary_weight=100), (0, 100, False)),
        (TrafficState(mirror=True), (100, 0, True)),
    ],
)
def test_routes_round_trip(
    kube: KubeEmulator,
    cluster: Cluster,
    release: ReleaseSpec,
    state: TrafficState,
    expected: tuple[int, int, bool],
) -> None:
    _declare_virtual_service(kube, release)
    cluster.set_routes(state)
    assert cluster.read_routes() == expected


def test_mirror_route_names_the_canary(
    kube: KubeEmulator, cluster: Cluster, release: ReleaseSpec
) -> None:
    _declare_virtual_service(kube, release)
    cluster.set_routes(TrafficState(mirror=True))
    stored = kube.get(VS_PATH)
    assert stored is not None
    assert stored["spec"]["http"][0]["mirror"] == {"host": "podinfo-canary"}
    cluster.set_routes(TrafficState(canary_weight=10))
    stored = kube.get(VS_PATH)
    assert stored is not None
    assert "mirror" not in stored["spec"]["http"][0]
    assert cluster.read_routes() == (90, 10, False)


def test_ab_routes_round_trip(kube: KubeEmulator, connections: Connections) -> None:
    release = _release("canary-ab-testing.yaml")
    _declare_virtual_service(kube, release)
    cluster = Cluster(connections, release)
    cluster.set_routes(TrafficState(canary_weight=100))
    assert cluster.read_routes() == (0, 100, False)
    stored = kube.get(VS_PATH)
    assert stored is not None
    tested, default = stored["spec"]["http"]
    assert tested["match"] == [{"headers": {"x-user-type": {"exact": "beta"}}}]
    assert default["route"] == [{"destination": {"host": "podinfo-primary"}, "weight": 0}]
    cluster.set_routes(TrafficState())
    assert cluster.read_routes() == (100, 0, False)


def test_tcp_routes_round_trip_through_spec_tcp(
    kube: KubeEmulator, api: RecordingApi, connections: Connections
) -> None:
    canary = yaml.safe_load((EXAMPLES / "canary.yaml").read_text())
    canary["spec"]["service"].update(appProtocol="TCP", match=[{"port": 9898}])
    release = ReleaseSpec.parse(
        canary=canary, deployment=yaml.safe_load((EXAMPLES / "deployment.yaml").read_text())
    )
    _declare_virtual_service(kube, release)
    cluster = Cluster(connections, release)
    cluster.set_routes(TrafficState(canary_weight=30))
    assert cluster.read_routes() == (70, 30, False)
    stored = kube.get(VS_PATH)
    assert stored is not None
    assert "http" not in stored["spec"]
    assert stored["spec"]["tcp"][0]["match"] == [{"port": 9898}]
    (applied, *_) = [
        s for s in api.writes(VS_PATH) if s.query.get("fieldManager") == "pulumi-canary"
    ]
    assert list(yaml.safe_load(applied.body)["spec"]) == ["tcp"]
    cluster.set_routes(TrafficState())
    assert cluster.read_routes() == (100, 0, False)


def test_set_routes_is_a_forced_apply_of_http_only(
    kube: KubeEmulator, api: RecordingApi, cluster: Cluster, release: ReleaseSpec
) -> None:
    _declare_virtual_service(kube, release)
    cluster.set_routes(TrafficState(canary_weight=20))

    (applied,) = [s for s in api.writes(VS_PATH) if s.query.get("fieldManager") == "pulumi-canary"]
    assert applied.method == "PATCH"
    assert applied.content_type == "application/apply-patch+yaml"
    assert applied.query == {"fieldManager": "pulumi-canary", "force": "true"}
    body = yaml.safe_load(applied.body)
    assert body == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"http": body["spec"]["http"]},
    }

    stored = kube.get(VS_PATH)
    assert stored is not None
    assert stored["spec"]["hosts"] == ["podinfo"]
    assert stored["spec"]["gateways"] == ["mesh"]
    owners = {entry["manager"]: entry for entry in stored["metadata"]["managedFields"]}
    assert owners["pulumi-canary"]["operation"] == "Apply"
    assert owners["pulumi-canary"]["fieldsV1"] == {"f:spec": {"f:http": {}}}
    assert "f:hosts" in owners[PULUMI_MANAGER]["fieldsV1"]["f:spec"]


def test_missing_virtual_service(api: RecordingApi, cluster: Cluster) -> None:
    assert cluster.read_routes() == (100, 0, False)
    with pytest.raises(ClusterError) as raised:
        cluster.set_routes(TrafficState(canary_weight=10))
    assert raised.value.code == 404
    assert "VirtualService default/podinfo" in str(raised.value)
    assert not api.writes(VS_PATH), "an apply would create a VirtualService without hosts"


def test_a_missing_resource_type_is_not_a_missing_object(cluster: Cluster) -> None:
    """Without Istio's CRDs the API answers 404 too, but that must not read as "at rest"."""
    gateway = create_namespaced_resource("gateway.example.io", "v1", "Gateway", "gateways")
    with pytest.raises(ClusterError, match="could not find the requested resource"):
        cluster._call(
            "get",
            "Gateway",
            "podinfo",
            lambda: cluster.client.get(gateway, "podinfo", namespace=NS),
            missing_ok=True,
        )


def test_kubeconfig_from_the_environment(
    kube: KubeEmulator, kubeconfig: Path, release: ReleaseSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    _declare_virtual_service(kube, release)
    with Connections(KubeAccess()) as connections:
        cluster = Cluster(connections, release)
        cluster.set_routes(TrafficState(canary_weight=30))
        assert cluster.read_routes() == (70, 30, False)


# -- workloads ------------------------------------------------------------------------------


def test_scale_is_a_merge_patch_of_replicas(
    kube: KubeEmulator, api: RecordingApi, cluster: Cluster
) -> None:
    kube.create(_deployment("podinfo"))
    cluster.scale("podinfo", 0)
    assert cluster.replicas("podinfo") == 0
    cluster.scale("podinfo", 3)
    assert cluster.replicas("podinfo") == 3

    first = api.writes(f"{DEPLOYMENTS}/podinfo")[0]
    assert first.content_type == "application/merge-patch+json"
    assert json.loads(first.body) == {"spec": {"replicas": 0}}
    assert first.query == {"fieldManager": "pulumi-canary"}


def test_scale_missing_deployment(cluster: Cluster) -> None:
    with pytest.raises(ClusterError) as raised:
        cluster.scale("nowhere", 1)
    assert raised.value.code == 404
    assert raised.value.verb == "patch"
    assert str(raised.value).startswith("patch Deployment default/nowhere: ")


def test_workload_status_reads_what_the_controller_reports(
    kube: KubeEmulator, cluster: Cluster
) -> None:
    kube.create(_deployment("podinfo", replicas=3))
    condition = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    _set_status(
        kube,
        "podinfo",
        observedGeneration=1,
        replicas=3,
        updatedReplicas=2,
        availableReplicas=1,
        conditions=[{**condition, "message": "timed out"}],
    )
    assert cluster.workload_status("podinfo") == WorkloadStatus(
        wanted=3,
        generation=1,
        observed_generation=1,
        available=1,
        updated=2,
        current=3,
        conditions=(Condition("Progressing", "False", "ProgressDeadlineExceeded", "timed out"),),
    )


def test_replicas_of_a_missing_deployment(cluster: Cluster) -> None:
    assert cluster.replicas("nowhere", missing_ok=True) == 0
    with pytest.raises(ClusterError) as raised:
        cluster.replicas("nowhere")
    assert raised.value.code == 404


def test_pod_template_round_trip(kube: KubeEmulator, cluster: Cluster) -> None:
    kube.create(_deployment("podinfo"))
    primary = _deployment("podinfo-primary")
    primary["spec"]["template"]["metadata"]["annotations"] = {"old": "yes"}
    primary["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    kube.create(primary)

    template = cluster.pod_template("podinfo")
    assert template["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.3.0"
    template["metadata"]["labels"] = {"app": "podinfo-primary"}
    template["spec"]["containers"][0]["image"] = "ghcr.io/stefanprodan/podinfo:6.3.1"
    cluster.set_pod_template("podinfo-primary", template)

    assert cluster.pod_template("podinfo-primary") == template


def test_set_pod_template_retries_after_a_concurrent_write(
    kube: KubeEmulator, api: RecordingApi, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube.create(_deployment("podinfo-primary"))
    template = cluster.pod_template("podinfo-primary")
    template["spec"]["containers"][0]["image"] = "ghcr.io/stefanprodan/podinfo:6.3.1"
    read = cluster._deployment
    raced: list[str] = []

    def read_then_race(name: str) -> Any:
        deployment = read(name)
        if not raced:  # another writer lands between this read and the patch
            raced.append(name)
            response = kube.request(
                "PATCH",
                f"{DEPLOYMENTS}/{name}",
                content=json.dumps({"spec": {"template": {"metadata": {"labels": {"x": "y"}}}}}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            response.raise_for_status()
        return deployment

    monkeypatch.setattr(cluster, "_deployment", read_then_race)
    cluster.set_pod_template("podinfo-primary", template)

    assert cluster.pod_template("podinfo-primary") == template
    ours = [
        json.loads(s.body)
        for s in api.writes(f"{DEPLOYMENTS}/podinfo-primary")
        if s.query.get("fieldManager") == "pulumi-canary"
    ]
    assert len(ours) == 2, "the stale patch is answered 409 and recomputed"
    assert ours[0]["metadata"]["resourceVersion"] != ours[1]["metadata"]["resourceVersion"]
    assert ours[1]["spec"]["template"]["metadata"]["labels"] == {"x": None}


# -- secrets --------------------------------------------------------------------------------


def _secret(name: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "monitoring"},
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
    }


def test_read_secret_decodes_data(kube: KubeEmulator, cluster: Cluster) -> None:
    kube.apply_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}})
    kube.create(_secret("prom-auth", {"username": b"admin", "password": b"s3cr\xc3\xa9t"}))
    assert cluster.read_secret("monitoring", "prom-auth") == {
        "username": "admin",
        "password": "s3cr\u00e9t",
    }


def test_secret_errors_name_the_secret_not_values(kube: KubeEmulator, cluster: Cluster) -> None:
    kube.apply_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}})
    with pytest.raises(ClusterError) as missing:
        cluster.read_secret("monitoring", "prom-auth")
    assert missing.value.code == 404
    assert "get Secret monitoring/prom-auth" in str(missing.value)

    kube.create(_secret("binary", {"key": b"\xff\xfesecret-bytes"}))
    with pytest.raises(ClusterError) as undecodable:
        cluster.read_secret("monitoring", "binary")
    text = str(undecodable.value)
    assert "Secret monitoring/binary" in text
    assert "'key'" in text
    assert "secret-bytes" not in text
    assert base64.b64encode(b"\xff\xfesecret-bytes").decode() not in text


# -- release records ------------------------------------------------------------------------


def test_record_lifecycle(kube: KubeEmulator, cluster: Cluster) -> None:
    records = store(cluster)
    assert records.load() is None

    first = records.save(ReleaseRecord("abc", RecordPhase.PROGRESSING, weight=10))
    assert first.heartbeat == 1000.0 and first.owner is not None
    assert store(cluster).load() == first

    stored = kube.get(RECORD_PATH)
    assert stored is not None
    assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "pulumi-canary"}
    assert json.loads(stored["data"]["release.json"])["weight"] == 10

    second = records.save(ReleaseRecord("abc", RecordPhase.PROGRESSING, weight=20))
    assert store(cluster).load() == second

    records.delete()
    assert store(cluster).load() is None
    records.delete()


def test_a_second_release_cannot_create_the_record(cluster: Cluster) -> None:
    store(cluster).save(ReleaseRecord("abc", RecordPhase.PROGRESSING))
    late = store(cluster)
    late._read = True  # as if it read before the other run created the record
    with pytest.raises(ReleaseConflict) as raised:
        late.save(ReleaseRecord("abc", RecordPhase.PROGRESSING))
    assert "another release of podinfo is running" in str(raised.value)
    assert "already exists" in str(raised.value)


def test_a_stale_resource_version_raises_release_conflict(cluster: Cluster) -> None:
    ours, theirs = store(cluster), store(cluster)
    ours.save(ReleaseRecord("abc", RecordPhase.PROGRESSING, weight=10))
    theirs.load()
    theirs.save(ReleaseRecord("abc", RecordPhase.PROGRESSING, weight=20))
    with pytest.raises(ReleaseConflict, match="changed since this run read it"):
        ours.save(ReleaseRecord("abc", RecordPhase.PROGRESSING, weight=30))
    record = store(cluster).load()
    assert record is not None and record.weight == 20


def test_a_deleted_record_is_a_lost_lock(cluster: Cluster) -> None:
    records = store(cluster)
    records.save(ReleaseRecord("abc", RecordPhase.PROGRESSING))
    store(cluster).delete()
    with pytest.raises(ReleaseConflict, match="was deleted"):
        records.save(ReleaseRecord("abc", RecordPhase.PROGRESSING))


def test_a_live_owner_keeps_the_release(cluster: Cluster) -> None:
    store(cluster, now=1000.0).save(ReleaseRecord("abc", RecordPhase.PROGRESSING))
    with pytest.raises(ReleaseConflict, match="heartbeat 20s ago"):
        store(cluster, now=1020.0).claim(stale_after=30.0)
    record = store(cluster, now=1031.0).claim(stale_after=30.0)
    assert record is not None and record.phase is RecordPhase.PROGRESSING


def test_a_corrupt_record_is_reported(kube: KubeEmulator, cluster: Cluster) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "podinfo-canary-release", "namespace": NS},
            "data": {"release.json": "[1, 2"},
        }
    )
    with pytest.raises(ClusterError, match=r"release\.json is not a record"):
        store(cluster).load()


# -- errors and lifecycle -------------------------------------------------------------------


def test_errors_never_carry_credentials(kube: KubeEmulator, tmp_path: Path) -> None:
    wrong = kube.write_kubeconfig(tmp_path / "wrong", token="wrong-token-value")
    with (
        Connections(KubeAccess(kubeconfig=wrong.read_text())) as connections,
        pytest.raises(ClusterError) as raised,
    ):
        Cluster(connections, _release()).read_config_map("podinfo-canary-release")
    error = raised.value
    assert error.code == 401
    assert error.__cause__ is None and error.__suppress_context__
    assert "wrong-token-value" not in str(error)
    assert "wrong-token-value" not in repr(vars(error))


def test_unreachable_api_server(tmp_path: Path, release: ReleaseSpec) -> None:
    with KubeEmulator(token=TOKEN) as kube:
        config = kube.write_kubeconfig(tmp_path / "gone").read_text()
    with (
        Connections(KubeAccess(kubeconfig=config, timeout_seconds=2)) as connections,
        pytest.raises(ClusterError, match="cannot reach the API server"),
    ):
        counter = RetryCounter()
        Cluster(connections, release, backoff=Backoff(budget=1.0), retries=counter).read_routes()
    assert counter.take() >= 1  # a refused connection is retried before giving up


def test_a_malformed_kubeconfig_is_reported_without_quoting_it() -> None:
    broken = "users:\n- name: admin\n  user:\n    client-key-data: LS0tS3CRET\n   token: [oops\n"
    with pytest.raises(lightkube.ConfigError) as raised:
        KubeAccess(kubeconfig=broken).config()
    assert str(raised.value) == "the kubeconfig given is not valid YAML"
    assert "S3CRET" not in repr(raised.value)


def test_a_kubeconfig_file_resolves_relative_paths_from_its_folder(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("not checked until a request")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "bed",
        "clusters": [
            {
                "name": "bed",
                "cluster": {"server": "https://127.0.0.1:1", "certificate-authority": "ca.crt"},
            }
        ],
        "contexts": [{"name": "bed", "context": {"cluster": "bed", "user": "me"}}],
        "users": [{"name": "me", "user": {"token": TOKEN}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    from_file = KubeAccess(kubeconfig_file=str(path)).config()
    assert from_file.abs_file("ca.crt") == tmp_path / "ca.crt"
    from_text = KubeAccess(kubeconfig=path.read_text()).config()
    with pytest.raises(lightkube.ConfigError, match="relative"):
        from_text.abs_file("ca.crt")


def test_a_malformed_kubeconfig_file_is_reported_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("users:\n- name: admin\n  user:\n    token: S3CRET\n   oops: [\n")
    with pytest.raises(lightkube.ConfigError) as raised:
        KubeAccess(kubeconfig_file=str(path)).config()
    assert str(raised.value) == f"kubeconfig {path} is not valid YAML"
    assert "S3CRET" not in repr(raised.value)


@pytest.mark.parametrize("document", ["just a string", "{}", "clusters: 5", "[1, 2]", ""])
def test_a_document_that_is_no_kubeconfig_is_a_config_error(tmp_path: Path, document: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(document)
    with pytest.raises(lightkube.ConfigError, match="the kubeconfig is not one"):
        KubeAccess(kubeconfig_file=str(path)).config()
