"""The cluster operations of a release: routes, scaling, readiness, pod templates, records.

Everything goes through lightkube with the semantics a real API server has: server-side apply
for the routes the gate owns, merge patches for replicas, resourceVersion preconditions for
read-modify-write and for the release record, and 404s where absence is a normal answer.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import httpx
import lightkube
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.apps_v1 import DeploymentStatus
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret
from lightkube.types import PatchType

from ..routing import ISTIO_API_VERSION, TrafficState, route_weights, routes
from ..spec import ReleaseSpec
from .kube import KubeAccess

VirtualService = create_namespaced_resource(
    "networking.istio.io", "v1", "VirtualService", "virtualservices"
)

MANAGED_BY = "pulumi-canary"
RECORD_KEY = "release.json"

# A read-modify-write that keeps losing to other writers is a controller fight, not bad luck.
_CONFLICT_RETRIES = 5

T = TypeVar("T")


class ClusterError(Exception):
    """A failed API call, named by verb, kind and object, with the API server's own message.

    Holds plain strings only: the lightkube error it replaces carries the HTTP request, whose
    headers hold the credentials.
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


class ReleaseConflict(ClusterError):  # noqa: N818 (the name the engine catches)
    """Another `pulumi up` holds the release record: this run must not drive the canary."""


class ReadinessState(enum.Enum):
    READY = "ready"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True)
class Readiness:
    """Whether a Deployment can serve; `message` says what it waits for, or why it failed."""

    state: ReadinessState
    message: str = ""

    @property
    def ready(self) -> bool:
        return self.state is ReadinessState.READY

    @property
    def failed(self) -> bool:
        return self.state is ReadinessState.FAILED


class Cluster:
    """The cluster as one release sees it.

    Holds plain data until first used and drops its client when pickled, because it may be
    built inside a Pulumi dynamic provider method that is serialized by value.
    """

    def __init__(
        self, access: KubeAccess, release: ReleaseSpec, field_manager: str = MANAGED_BY
    ) -> None:
        self.access = access
        self.release = release
        self.field_manager = field_manager
        self._client: lightkube.Client | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> lightkube.Client:
        if self._client is None:
            self._client = self.access.client()
        return self._client

    @property
    def namespace(self) -> str:
        return self.release.namespace

    @property
    def record_name(self) -> str:
        return f"{self.release.name}-canary-release"

    # -- routes -----------------------------------------------------------------------------

    def set_routes(self, state: TrafficState) -> None:
        """Applies the route list the release owns only (`spec.http`, or `spec.tcp` for a TCP
        service), so Pulumi's field manager keeps hosts, gateways, metadata.

        The VirtualService must exist: an apply would otherwise create one without hosts.
        """
        name = self.release.service
        with self._api("get", "VirtualService", name):
            self.client.get(VirtualService, name, namespace=self.namespace)
        body = {
            "apiVersion": ISTIO_API_VERSION,
            "kind": "VirtualService",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": routes(self.release, state),
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

    def read_routes(self) -> tuple[int, int, bool]:
        """(primary weight, canary weight, mirrored); a missing VirtualService is at rest."""
        service = None
        with self._api("get", "VirtualService", self.release.service, missing_ok=True):
            service = self.client.get(
                VirtualService, self.release.service, namespace=self.namespace
            )
        if service is None:
            return 100, 0, False
        return route_weights(service.spec or {}, self.release)

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

    def replicas(self, name: str) -> int:
        return _wanted_replicas(self._deployment(name))

    def readiness(
        self,
        name: str,
        threshold_percent: int,
        deadline_seconds: float,
        since: float,
        *,
        now: float | None = None,
    ) -> Readiness:
        """Flagger's readiness rule; `since` starts the progress deadline.

        Both `since` and `now` are epoch seconds; a caller with its own clock passes `now`.

        A Deployment scaled to zero never counts as ready: a canary must be able to serve.
        """
        deployment = self._deployment(name)
        wanted = _wanted_replicas(deployment)
        generation = (deployment.metadata.generation if deployment.metadata else None) or 0
        status = deployment.status or DeploymentStatus()
        observed = status.observedGeneration or 0
        available = status.availableReplicas or 0
        updated = status.updatedReplicas or 0
        current = status.replicas or 0
        counted = f"{available} of {wanted} replicas ready"
        if observed >= generation:
            for condition in status.conditions or []:
                if (
                    condition.type == "Progressing"
                    and condition.reason == "ProgressDeadlineExceeded"
                ):
                    return Readiness(
                        ReadinessState.FAILED,
                        f"progress deadline exceeded: {counted} "
                        f"(Progressing={condition.status} reason={condition.reason}: "
                        f"{condition.message})",
                    )
        if observed < generation:
            waiting = f"{counted}; generation {generation} not yet observed by the controller"
        elif wanted == 0:
            waiting = "scaled to 0 replicas"
        elif updated < wanted:
            waiting = f"{counted}; {updated} of {wanted} replicas updated"
        elif current > updated:
            waiting = f"{counted}; {current - updated} old replicas pending termination"
        elif available * 100 < wanted * threshold_percent:
            waiting = f"{counted} (needs {threshold_percent}%)"
        else:
            return Readiness(ReadinessState.READY, counted)
        if (time.time() if now is None else now) - since > deadline_seconds:
            return Readiness(
                ReadinessState.FAILED,
                f"progress deadline exceeded: {counted} after {deadline_seconds:g}s ({waiting})",
            )
        return Readiness(ReadinessState.PENDING, waiting)

    def pod_template(self, name: str) -> dict[str, Any]:
        """`spec.template` as the API server holds it, for promotion to the primary."""
        return _template_of(self._deployment(name))

    def set_pod_template(self, name: str, template: dict[str, Any]) -> None:
        """Replaces `spec.template` by a merge patch computed against a fresh read.

        The patch nulls the keys the new template drops, which is only right against the
        version it was computed from: the resourceVersion precondition makes a concurrent
        write answer 409, and the diff is then recomputed.
        """

        def attempt() -> None:
            deployment = self._deployment(name)
            diff = _merge_diff(_template_of(deployment), template)
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

    # -- release record -----------------------------------------------------------------------

    def load_record(self) -> tuple[dict[str, Any] | None, str | None]:
        """The persisted progress of a release and its resourceVersion, or (None, None)."""
        name = self.record_name
        config_map = None
        with self._api("get", "ConfigMap", name, missing_ok=True):
            config_map = self.client.get(ConfigMap, name, namespace=self.namespace)
        if config_map is None:
            return None, None
        try:
            record = json.loads((config_map.data or {}).get(RECORD_KEY, ""))
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise ClusterError(
                "decode", "ConfigMap", self.namespace, name, f"{RECORD_KEY} is not a JSON object"
            )
        return record, config_map.metadata.resourceVersion if config_map.metadata else None

    def save_record(self, record: dict[str, Any], resource_version: str | None) -> str:
        """Creates the record, or replaces the version this run read: the lock on a canary.

        Returns the new resourceVersion, which the next save must pass.
        """
        name = self.record_name
        text = json.dumps(record, sort_keys=True)
        labels = {"app.kubernetes.io/managed-by": MANAGED_BY}
        try:
            if resource_version is None:
                with self._api("create", "ConfigMap", name):
                    saved = self.client.create(
                        ConfigMap(
                            metadata=ObjectMeta(name=name, namespace=self.namespace, labels=labels),
                            data={RECORD_KEY: text},
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
                            "metadata": {"resourceVersion": resource_version, "labels": labels},
                            "data": {RECORD_KEY: text},
                        },
                        namespace=self.namespace,
                        patch_type=PatchType.MERGE,
                        field_manager=self.field_manager,
                    )
        except ClusterError as error:
            if error.code not in (404, 409):
                raise
            raise ReleaseConflict(
                error.verb,
                error.kind,
                error.namespace,
                error.name,
                f"another release of {self.release.name} is running: {_lost_lock(error)}",
                code=error.code,
                reason=error.reason,
            ) from None
        version = saved.metadata.resourceVersion if saved.metadata else None
        if not version:
            raise ClusterError(
                "update",
                "ConfigMap",
                self.namespace,
                name,
                "the API server sent no resourceVersion",
            )
        return version

    def delete_record(self) -> None:
        name = self.record_name
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


def _lost_lock(error: ClusterError) -> str:
    if error.verb == "create":
        return f"its record {error.namespace}/{error.name} already exists"
    if error.code == 404:
        return f"its record {error.namespace}/{error.name} was deleted"
    return f"its record {error.namespace}/{error.name} changed since this run read it"


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
