"""The cluster operations of a release: routes, scaling, workload status, pod templates, secrets
and the ConfigMaps the release record lives in.

Everything goes through lightkube with the semantics a real API server has: server-side apply
for the routes the release owns, merge patches for replicas, resourceVersion preconditions for
read-modify-write, and 404s where absence is a normal answer.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
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
from ..routing import ISTIO_API_VERSION, TrafficState, route_weights, routes
from ..spec import ReleaseSpec
from .kube import Connections
from .retry import (
    TRANSIENT_STATUS,
    Backoff,
    RetryCounter,
    retry_after,
    retrying,
    transport_transient,
)

VirtualService = create_namespaced_resource(
    "networking.istio.io", "v1", "VirtualService", "virtualservices"
)
DestinationRule = create_namespaced_resource(
    "networking.istio.io", "v1", "DestinationRule", "destinationrules"
)
# The kinds whose uid `Cluster.uid_of` reads.
_BY_KIND: dict[str, Any] = {
    "Deployment": Deployment,
    "DestinationRule": DestinationRule,
    "VirtualService": VirtualService,
}

MANAGED_BY = "pulumi-canary"

# How long one API call keeps retrying transient failures.
API_BACKOFF = Backoff(budget=30.0)
UNREACHABLE_BACKOFF = Backoff(budget=3.0)
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
    """The cluster as one release sees it, over clients shared with other releases.

    Every call is retried while the API answers 429 or 5xx, times out or drops the connection
    (`retry.Backoff`), and counted in `retries`; a write whose answer was lost is confirmed by
    reading it back.
    """

    def __init__(
        self,
        connections: Connections,
        release: ReleaseSpec,
        *,
        field_manager: str = MANAGED_BY,
        backoff: Backoff = API_BACKOFF,
        retries: RetryCounter | None = None,
    ) -> None:
        self.connections = connections
        self.release = release
        self.field_manager = field_manager
        self.backoff = backoff
        self.retries = retries or RetryCounter()
        self._unreachable = False

    @property
    def client(self) -> lightkube.Client:
        return self.connections.kube

    @property
    def namespace(self) -> str:
        return self.release.namespace

    # -- routes -----------------------------------------------------------------------------

    def set_routes(self, state: TrafficState) -> None:
        """Applies the route list the release owns only (`spec.http`, or `spec.tcp` for a TCP
        service), so Pulumi's field manager keeps hosts, gateways, metadata.

        The VirtualService must exist: an apply would otherwise create one without hosts. The
        apply is idempotent, so a retry after a lost answer is safe.
        """
        name = self.release.service
        self._call(
            "get",
            "VirtualService",
            name,
            lambda: self.client.get(VirtualService, name, namespace=self.namespace),
        )
        body = {
            "apiVersion": ISTIO_API_VERSION,
            "kind": "VirtualService",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": routes(self.release, state),
        }
        self._call(
            "apply",
            "VirtualService",
            name,
            lambda: self.client.patch(
                VirtualService,
                name,
                body,
                namespace=self.namespace,
                patch_type=PatchType.APPLY,
                field_manager=self.field_manager,
                force=True,
            ),
        )

    def read_routes(self) -> Routes:
        """The live split; a missing VirtualService is at rest."""
        name = self.release.service
        service = self._call(
            "get",
            "VirtualService",
            name,
            lambda: self.client.get(VirtualService, name, namespace=self.namespace),
            missing_ok=True,
        )
        if service is None:
            return Routes(100, 0, False)
        return Routes(*route_weights(service.spec or {}, self.release))

    # -- workloads ----------------------------------------------------------------------------

    def scale(self, name: str, replicas: int) -> None:
        """A merge patch of `spec.replicas`, as Flagger scales canaries (idempotent)."""
        self._call(
            "patch",
            "Deployment",
            name,
            lambda: self.client.patch(
                Deployment,
                name,
                {"spec": {"replicas": replicas}},
                namespace=self.namespace,
                patch_type=PatchType.MERGE,
                field_manager=self.field_manager,
            ),
        )

    def replicas(self, name: str, *, missing_ok: bool = False) -> int:
        """`spec.replicas`; with `missing_ok`, 0 for a Deployment that does not exist."""
        deployment = self._call(
            "get",
            "Deployment",
            name,
            lambda: self.client.get(Deployment, name, namespace=self.namespace),
            missing_ok=missing_ok,
        )
        return 0 if deployment is None else _wanted_replicas(deployment)

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

    def uid_of(self, kind: str, name: str) -> str | None:
        """The uid of one of the release's objects (a Deployment, DestinationRule or
        VirtualService of its namespace); None when it does not exist. Uids are unique to a
        cluster: what proves the gate reaches the cluster the stack declared the release on."""
        resource = _BY_KIND[kind]
        found = self._call(
            "get",
            kind,
            name,
            lambda: self.client.get(resource, name, namespace=self.namespace),
            missing_ok=True,
        )
        return found.metadata.uid if found is not None and found.metadata else None

    def set_pod_template(self, name: str, template: Mapping[str, Any]) -> None:
        """Replaces `spec.template` by a merge patch computed against a fresh read.

        The patch nulls the keys the new template drops, which is only right against the
        version it was computed from: the resourceVersion precondition makes a concurrent
        write (or our own, whose answer was lost) answer 409, and the diff is then recomputed
        from a fresh read, which is empty when the template is already there.
        """

        def attempt() -> None:
            deployment = self._deployment(name)
            diff = _merge_diff(_template_of(deployment), dict(template))
            if not diff:
                return
            version = deployment.metadata.resourceVersion if deployment.metadata else None
            self._call(
                "patch",
                "Deployment",
                name,
                lambda: self.client.patch(
                    Deployment,
                    name,
                    {"metadata": {"resourceVersion": version}, "spec": {"template": diff}},
                    namespace=self.namespace,
                    patch_type=PatchType.MERGE,
                    field_manager=self.field_manager,
                ),
            )

        _retry_on_conflict(attempt)

    def _deployment(self, name: str) -> Deployment:
        deployment: Deployment = self._call(
            "get",
            "Deployment",
            name,
            lambda: self.client.get(Deployment, name, namespace=self.namespace),
        )
        return deployment

    # -- secrets ------------------------------------------------------------------------------

    def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        """The decoded `data` of a Secret; errors name the secret and key, never a value."""
        secret = self._call(
            "get",
            "Secret",
            name,
            lambda: self.client.get(Secret, name, namespace=namespace),
            namespace=namespace,
        )
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
        config_map = self._call(
            "get",
            "ConfigMap",
            name,
            lambda: self.client.get(ConfigMap, name, namespace=self.namespace),
            missing_ok=True,
        )
        if config_map is None:
            return None
        version = config_map.metadata.resourceVersion if config_map.metadata else None
        return StoredMap(dict(config_map.data or {}), version or "")

    def write_config_map(
        self, name: str, data: Mapping[str, str], version: str | None, labels: Mapping[str, str]
    ) -> str:
        """Creates the ConfigMap (`version` None) or replaces the version read, else 409/404.

        Returns the new resourceVersion, which the next write must pass. When an attempt's
        answer was lost and the retry is refused (409, or 404 on a create's retry), the
        ConfigMap is read back: holding exactly `data`, the lost write did land.
        """
        wanted = dict(data)
        uncertain = False

        def write() -> Any:
            nonlocal uncertain
            try:
                if version is None:
                    return self.client.create(
                        ConfigMap(
                            metadata=ObjectMeta(
                                name=name, namespace=self.namespace, labels=dict(labels)
                            ),
                            data=wanted,
                        ),
                        namespace=self.namespace,
                        field_manager=self.field_manager,
                    )
                return self.client.patch(
                    ConfigMap,
                    name,
                    {
                        "metadata": {"resourceVersion": version, "labels": dict(labels)},
                        "data": wanted,
                    },
                    namespace=self.namespace,
                    patch_type=PatchType.MERGE,
                    field_manager=self.field_manager,
                )
            except httpx.TransportError:
                uncertain = True
                raise

        verb = "create" if version is None else "update"
        try:
            saved = self._call(verb, "ConfigMap", name, write)
        except ClusterError as error:
            if uncertain and error.code == 409:
                stored = self.read_config_map(name)
                if stored is not None and stored.data == wanted:
                    return stored.version
            raise
        written = saved.metadata.resourceVersion if saved.metadata else None
        if not written:
            raise ClusterError(
                "update",
                "ConfigMap",
                self.namespace,
                name,
                "the API server sent no resourceVersion",
            )
        return str(written)

    def delete_config_map(self, name: str) -> None:
        self._call(
            "delete",
            "ConfigMap",
            name,
            lambda: self.client.delete(ConfigMap, name, namespace=self.namespace),
            missing_ok=True,
        )

    def count_config_maps(self, labels: Mapping[str, str]) -> int:
        selector = ",".join(f"{key}={value}" for key, value in labels.items())
        found = self._call(
            "list",
            "ConfigMap",
            selector,
            lambda: list(
                self.client.list(ConfigMap, namespace=self.namespace, labels=dict(labels))
            ),
        )
        return len(found)

    # -- calls and errors ---------------------------------------------------------------------

    def _call(
        self,
        verb: str,
        kind: str,
        name: str,
        request: Callable[[], Any],
        *,
        namespace: str | None = None,
        missing_ok: bool = False,
    ) -> Any:
        """Runs one API request with retries, as ClusterError on failure.

        `missing_ok` answers None for the 404 of a missing object, not for that of a missing
        resource type (Istio not installed), which names no object in its details.
        """
        where = namespace or self.namespace
        # Once the API server stayed out of reach for a whole budget, later calls (the
        # clean-up's among them) try briefly: their answer will not differ in the meantime.
        backoff = UNREACHABLE_BACKOFF if self._unreachable else self.backoff
        try:
            answer = retrying(request, _transient, backoff=backoff, counter=self.retries)
        except httpx.TransportError as error:
            self._unreachable = transport_transient(error)
            message = f"cannot reach the API server: {type(error).__name__}: {error}"
            raise ClusterError(verb, kind, where, name, message) from None
        except lightkube.ApiError as error:
            code = error.status.code
            details = error.status.details
            self._unreachable = False
            if missing_ok and code == 404 and details is not None and details.name == name:
                return None
            message = error.status.message or error.status.reason or "request failed"
            raise ClusterError(
                verb, kind, where, name, message, code=code, reason=error.status.reason
            ) from None
        except httpx.HTTPStatusError as error:
            code = error.response.status_code
            raise ClusterError(verb, kind, where, name, "request failed", code=code) from None
        except json.JSONDecodeError:
            raise ClusterError(
                verb, kind, where, name, "the API server's error answer was not JSON"
            ) from None
        self._unreachable = False
        return answer


def _transient(error: Exception) -> tuple[bool, float | None]:
    """Whether a failed API request may pass on a retry, and the wait the server asked for."""
    if isinstance(error, lightkube.ApiError):
        code = error.status.code
        return code in TRANSIENT_STATUS, retry_after(error.response)
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code in TRANSIENT_STATUS, retry_after(error.response)
    # Timeouts, refused and dropped connections; a non-JSON error page from a proxy in between.
    return transport_transient(error) or isinstance(error, json.JSONDecodeError), None


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
