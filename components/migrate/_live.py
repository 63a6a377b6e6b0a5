"""`--from-cluster`: which declared objects exist, and what the first `pulumi up` would change.

A server-side apply sets the fields it is given and leaves the rest, so the only changes are
declared fields that the live object lacks or holds differently; fields only the live object has
(server defaults, Flagger's `flagger-id` annotation) are not changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import lightkube
from lightkube.core.exceptions import LoadResourceError
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import create_namespaced_resource

from ..adapters.kube import Connections, KubeAccess
from ..routing import route_weights
from ..spec import ReleaseSpec
from ..spec.configs import SECRET, Config
from ._objects import DeclaredObject


class LiveReadError(Exception):
    """The cluster could not be read; names the object and carries the API server's message."""


@dataclass(frozen=True)
class LiveState:
    """What the cluster holds for one declared object."""

    declared: DeclaredObject
    live: Mapping[str, Any] | None

    @property
    def exists(self) -> bool:
        return self.live is not None

    def changes(self, release: ReleaseSpec) -> list[str]:
        """The declared fields the first `pulumi up` would set to a new value."""
        if self.live is None:
            return []
        # The object is read with the API version Pulumi will use; the kind is its identity.
        declared = {
            k: v for k, v in self.declared.manifest.items() if k not in ("apiVersion", "kind")
        }
        if self.declared.kind == "VirtualService":
            # A release rewrites the routes; `at_rest` checks them instead.
            declared["spec"] = {k: v for k, v in declared["spec"].items() if k != "http"}
        if self.declared.k8s_name == release.target and self.declared.kind == "Deployment":
            declared["spec"] = {k: v for k, v in declared["spec"].items() if k != "replicas"}
        if self.declared.kind == SECRET:
            # Never a value: its keys only, compared as the API server keeps them.
            content = Config(self.declared.manifest, self.declared.name).content().get("data", {})
            declared = {k: v for k, v in declared.items() if k not in ("data", "stringData")}
            live = self.live.get("data") or {}
            return differences(declared, self.live) + [
                f"data.{key}: another value live (not shown)"
                for key, value in content.items()
                if live.get(key) != value
            ]
        return differences(declared, self.live)

    def owners(self) -> list[str]:
        """The Flagger Canaries that still own the object (Kubernetes deletes it with them)."""
        references = (self.live or {}).get("metadata", {}).get("ownerReferences") or []
        return [ref["name"] for ref in references if ref.get("kind") == "Canary"]


def read_live(declared: Sequence[DeclaredObject], access: KubeAccess) -> list[LiveState]:
    with Connections(access) as connections:
        return [LiveState(item, _get(connections.kube, item)) for item in declared]


def at_rest(states: Sequence[LiveState], release: ReleaseSpec) -> list[str]:
    """What the `ReleaseGuard` of the first `pulumi up` would move back to rest."""
    found = []
    for state in states:
        live = state.live
        if live is None:
            continue
        if state.declared.kind == "VirtualService":
            _, canary, mirrored = route_weights(live.get("spec") or {}, release)
            if canary or mirrored:
                found.append(
                    f"VirtualService {state.declared.k8s_name} routes {canary}% to the canary"
                    f"{' and mirrors it' if mirrored else ''}: the first `pulumi up` routes "
                    "all traffic back to the primary"
                )
        if state.declared.kind == "Deployment" and state.declared.k8s_name == release.target:
            replicas = live.get("spec", {}).get("replicas")
            if replicas:
                found.append(
                    f"Deployment {release.target} runs {replicas} replicas: the first "
                    "`pulumi up` scales it to zero before anything else"
                )
    return found


def differences(declared: Any, live: Any, path: str = "") -> list[str]:
    """Each declared leaf the live object lacks or holds differently, by field path."""
    if isinstance(declared, Mapping):
        if not isinstance(live, Mapping):
            return [f"{path or '(root)'}: {_shown(live)} live, an object declared"]
        found = []
        for key, value in declared.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in live:
                found.append(f"{where}: not set live, {_shown(value)} declared")
            else:
                found.extend(differences(value, live[key], where))
        return found
    if isinstance(declared, list):
        if not isinstance(live, list) or len(live) != len(declared):
            return [f"{path}: {_shown(live)} live, {_shown(declared)} declared"]
        return [
            found
            for index, (mine, theirs) in enumerate(zip(declared, live, strict=True))
            for found in differences(mine, theirs, f"{path}[{index}]")
        ]
    if declared != live:
        return [f"{path}: {_shown(live)} live, {_shown(declared)} declared"]
    return []


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _get(client: lightkube.Client, item: DeclaredObject) -> dict[str, Any] | None:
    resource = _resource(item.api_version, item.kind)
    try:
        found = client.get(resource, item.k8s_name, namespace=item.namespace)
    except lightkube.ApiError as error:
        details = error.status.details
        if error.status.code == 404 and details is not None and details.name == item.k8s_name:
            return None  # a missing resource type (Istio not installed) names no object
        message = error.status.message or error.status.reason or "request failed"
        raise LiveReadError(f"get {item.kind} {item.id}: {message}") from None
    except httpx.TransportError as error:
        message = f"cannot reach the API server: {type(error).__name__}: {error}"
        raise LiveReadError(f"get {item.kind} {item.id}: {message}") from None
    live: dict[str, Any] = found.to_dict()
    return live


def _resource(api_version: str, kind: str) -> Any:
    """lightkube's class for a built-in kind, or a generic one for the Istio kinds."""
    try:
        return resource_registry.load(api_version, kind)
    except LoadResourceError:
        group, _, version = api_version.rpartition("/")
        return create_namespaced_resource(group, version, kind, f"{kind.lower()}s")
