"""The cluster operations of a release: routes, scaling, workload status, pod templates, secrets
and the ConfigMaps the release record lives in.

Everything goes through lightkube with the semantics a real API server has: server-side apply
for the routes the release owns, merge patches for replicas, resourceVersion preconditions for
read-modify-write, and 404s where absence is a normal answer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

import httpx
import lightkube
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.apps_v1 import DeploymentStatus
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret
from lightkube.types import PatchType

from ..analysis import Condition, WorkloadStatus
from ..errors import TemporaryError
from ..routing import ISTIO_API_VERSION, TrafficState, http_routes, route_weights
from ..spec import ReleaseSpec
from .kube import Connections

VirtualService = create_namespaced_resource(
    "networking.istio.io", "v1", "VirtualService", "virtualservices"
)

MANAGED_BY = "pulumi-canary"

# A read-modify-write that keeps losing to other writers is a controller fight, not bad luck.
_CONFLICT_RETRIES = 5

T = TypeVar("T")


class ClusterError(TemporaryError):
    """A failed API call, named by verb, kind and object, with the API server's own message.

    Holds plain strings only: the lightkube error it replaces carries the HTTP request, whose
    headers hold the credentials. Temporary: an API failure says nothing about the canary.
    """

    def __init__(
        self,
        verb: str,
        kind: str,
        namespace: str,
        name: str,
        message: str,
        *,
        code: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.verb, self.kind, self.namespace, self.name = verb, kind, namespace, name
        self.message, self.code, self.reason = message, code, reason

    def __str__(self) -> str:
        status = " ".join(str(part) for part in (self.code, self.reason) if part)
        suffix = f" ({status})" if status else ""
        return f"{self.verb} {self.kind} {self.namespace}/{self.name}: {self.message}{suffix}"


class Routes(NamedTuple):
    """The split a VirtualService holds, read back as Flagger's GetRoutes reads it."""

    primary: int
    canary: int
    mirrored: bool

    @property
    def at_rest(self) -> bool:
        return self.canary == 0 and not self.mirrored


class StoredMap(NamedTuple):
    """A ConfigMap's data and the resourceVersion it was read at (the lock of a record)."""

    data: dict[str, str]
    version: str


class Cluster:
    """The cluster as one release sees it, over clients shared with other releases."""

    def __init__(
        self, connections: Connections, release: ReleaseSpec, field_manager: str = MANAGED_BY
    ) -> None:
        self.connections = connections
        self.release = release
        self.field_manager = field_manager

    @property
    def client(self) -> lightkube.Client:
        return self.connections.kube

    @property
    def namespace(self) -> str:
        return self.release.namespace

    # -- routes -----------------------------------------------------------------------------

    def set_routes(self, state: TrafficState) -> None:
        """Applies `spec.http` only, so Pulumi's field manager keeps hosts, gateways, metadata.

        The VirtualService must exist: an apply would otherwise create one without hosts.
        """
        name = self.release.service
        with self._api("get", "VirtualService", name):
            self.client.get(VirtualService, name, namespace=self.namespace)
        body = {
            "apiVersion": ISTIO_API_VERSION,
            "kind": "VirtualService",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"http": http_routes(self.release, state)},
        }
        with self._api("apply", "VirtualService", name):
            self.client.patch(
                VirtualService,
                name,
                body,
                namespace=self.namespace,
                patch_type=PatchType.APPLY,
                field_manager=self.field_manager,
                force=True,
            )

    def read_routes(self) -> Routes:
        """The live split; a missing VirtualService is at rest."""
        service = None
        with self._api("get", "VirtualService", self.release.service, missing_ok=True):
            service = self.client.get(
                VirtualService, self.release.service, namespace=self.namespace
            )
        if service is None:
            return Routes(100, 0, False)
        return Routes(*route_weights((service.spec or {}).get("http") or [], self.release))

    # -- workloads ----------------------------------------------------------------------------

    def scale(self, name: str, replicas: int) -> None:
        """A merge patch of `spec.replicas`, as Flagger scales canaries."""
        with self._api("patch", "Deployment", name):
            self.client.patch(
                Deployment,
                name,
                {"spec": {"replicas": replicas}},
                namespace=self.namespace,
                patch_type=PatchType.MERGE,
                field_manager=self.field_manager,
            )

    def replicas(self, name: str, *, missing_ok: bool = False) -> int:
        """`spec.replicas`; with `missing_ok`, 0 for a Deployment that does not exist."""
        if missing_ok:
            deployment = None
            with self._api("get", "Deployment", name, missing_ok=True):
                deployment = self.client.get(Deployment, name, namespace=self.namespace)
            return 0 if deployment is None else _wanted_replicas(deployment)
        return _wanted_replicas(self._deployment(name))

    def workload_status(self, name: str) -> WorkloadStatus:
        """What the deployment controller reports; `analysis.readiness` judges it."""
        deployment = self._deployment(name)
        status = deployment.status or DeploymentStatus()
        return WorkloadStatus(
            wanted=_wanted_replicas(deployment),
            generation=(deployment.metadata.generation if deployment.metadata else None) or 0,
            observed_generation=status.observedGeneration or 0,
            available=status.availableReplicas or 0,
            updated=status.updatedReplicas or 0,
            current=status.replicas or 0,
            conditions=tuple(
                Condition(c.type or "", c.status or "", c.reason or "", c.message or "")
                for c in status.conditions or []
            ),
        )

    def pod_template(self, name: str) -> dict[str, Any]:
        """`spec.template` as the API server holds it, for promotion to the primary."""
        return _template_of(self._deployment(name))

    def set_pod_template(self, name: str, template: Mapping[str, Any]) -> None:
        """Replaces `spec.template` by a merge patch computed against a fresh read.

        The patch nulls the keys the new template drops, which is only right against the
        version it was computed from: the resourceVersion precondition makes a concurrent
        write answer 409, and the diff is then recomputed.
        """

        def attempt() -> None:
            deployment = self._deployment(name)
            diff = _merge_diff(_template_of(deployment), dict(template))
            if not diff:
                return
            version = deployment.metadata.resourceVersion if deployment.metadata else None
            with self._api("patch", "Deployment", name):
                self.client.patch(
                    Deployment,
                    name,
                    {"metadata": {"resourceVersion": version}, "spec": {"template": diff}},
                    namespace=self.namespace,
                    patch_type=PatchType.MERGE,
                    field_manager=self.field_manager,
                )

        _retry_on_conflict(attempt)

    def _deployment(self, name: str) -> Deployment:
        with self._api("get", "Deployment", name):
            return self.client.get(Deployment, name, namespace=self.namespace)

    # -- secrets ------------------------------------------------------------------------------

    def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        """The decoded `data` of a Secret; errors name the secret and key, never a value."""
        with self._api("get", "Secret", name, namespace=namespace):
            secret = self.client.get(Secret, name, namespace=namespace)
        decoded: dict[str, str] = {}
        for key, value in (secret.data or {}).items():
            try:
                decoded[key] = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise ClusterError(
                    "decode", "Secret", namespace, name, f"key {key!r} is not base64 UTF-8 text"
                ) from None
        return decoded

    # -- config maps (the release record) -----------------------------------------------------

    def read_config_map(self, name: str) -> StoredMap | None:
        config_map = None
        with self._api("get", "ConfigMap", name, missing_ok=True):
            config_map = self.client.get(ConfigMap, name, namespace=self.namespace)
        if config_map is None:
            return None
        version = config_map.metadata.resourceVersion if config_map.metadata else None
        return StoredMap(dict(config_map.data or {}), version or "")

    def write_config_map(
        self, name: str, data: Mapping[str, str], version: str | None, labels: Mapping[str, str]
    ) -> str:
        """Creates the ConfigMap (`version` None) or replaces the version read, else 409/404.

        Returns the new resourceVersion, which the next write must pass.
        """
        if version is None:
            with self._api("create", "ConfigMap", name):
                saved = self.client.create(
                    ConfigMap(
                        metadata=ObjectMeta(
                            name=name, namespace=self.namespace, labels=dict(labels)
                        ),
                        data=dict(data),
                    ),
                    namespace=self.namespace,
                    field_manager=self.field_manager,
                )
        else:
            with self._api("update", "ConfigMap", name):
                saved = self.client.patch(
                    ConfigMap,
                    name,
                    {
                        "metadata": {"resourceVersion": version, "labels": dict(labels)},
                        "data": dict(data),
                    },
                    namespace=self.namespace,
                    patch_type=PatchType.MERGE,
                    field_manager=self.field_manager,
                )
        written = saved.metadata.resourceVersion if saved.metadata else None
        if not written:
            raise ClusterError(
                "update",
                "ConfigMap",
                self.namespace,
                name,
                "the API server sent no resourceVersion",
            )
        return written

    def delete_config_map(self, name: str) -> None:
        with self._api("delete", "ConfigMap", name, missing_ok=True):
            self.client.delete(ConfigMap, name, namespace=self.namespace)

    # -- errors -------------------------------------------------------------------------------

    @contextmanager
    def _api(
        self,
        verb: str,
        kind: str,
        name: str,
        *,
        namespace: str | None = None,
        missing_ok: bool = False,
    ) -> Iterator[None]:
        """Turns lightkube and transport errors into ClusterError.

        `missing_ok` swallows the 404 of a missing object, not that of a missing resource type
        (Istio not installed), which names no object in its details.
        """
        where = namespace or self.namespace
        try:
            yield
        except lightkube.ApiError as error:
            code = error.status.code
            details = error.status.details
            if missing_ok and code == 404 and details is not None and details.name == name:
                return
            message = error.status.message or error.status.reason or "request failed"
            raise ClusterError(
                verb, kind, where, name, message, code=code, reason=error.status.reason
            ) from None
        except httpx.HTTPStatusError as error:
            code = error.response.status_code
            raise ClusterError(verb, kind, where, name, "request failed", code=code) from None
        except httpx.TransportError as error:
            message = f"cannot reach the API server: {type(error).__name__}: {error}"
            raise ClusterError(verb, kind, where, name, message) from None


def _retry_on_conflict(attempt: Callable[[], T]) -> T:
    for _ in range(_CONFLICT_RETRIES - 1):
        try:
            return attempt()
        except ClusterError as error:
            if error.code != 409:
                raise
    return attempt()


def _wanted_replicas(deployment: Deployment) -> int:
    """`spec.replicas`, which the API server defaults to 1."""
    replicas = deployment.spec.replicas if deployment.spec else None
    return 1 if replicas is None else replicas


def _template_of(deployment: Deployment) -> dict[str, Any]:
    """The pod template as the API server sent it.

    lightkube keeps the parts nobody read as raw JSON, unknown fields included, so fields of a
    cluster newer than lightkube's models survive the copy.
    """
    if deployment.spec is None:
        return {}
    template: dict[str, Any] = deployment.spec.template.to_dict()  # type: ignore[no-untyped-call]
    return template


def _merge_diff(current: Any, wanted: Any) -> Any:
    """The JSON merge patch (RFC 7386) turning `current` into `wanted`; lists are replaced."""
    if not isinstance(current, dict) or not isinstance(wanted, dict):
        return wanted
    diff: dict[str, Any] = {key: None for key in current if key not in wanted}
    for key, value in wanted.items():
        if key not in current:
            diff[key] = value
        elif current[key] != value:
            diff[key] = _merge_diff(current[key], value)
    return diff
