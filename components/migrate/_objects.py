"""The Kubernetes objects a `CanaryDeployment` declares, how each joins the stack on migration,
and the `pulumi import` file for those that are imported.

Names, namespaces and manifests come from the code the component itself uses (the routing
builders and `routing.children`), so the file names exactly what the program declares.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .. import routing
from ..routing.children import (
    METRIC_TEMPLATE_COMPONENT,
    ROLES,
    TYPE_TOKEN,
    ChildNames,
    given_config,
    metric_template_config_map,
    target_autoscaler,
)
from ..spec import ReleaseSpec
from ..spec.configs import checksums

# The pulumi-kubernetes class the component declares each built-in kind with; the Istio objects
# are CustomResources. tests/migrate checks these against the component's registrations.
_CLASSES: Mapping[str, type[pulumi.CustomResource]] = {
    "Deployment": k8s.apps.v1.Deployment,
    "Service": k8s.core.v1.Service,
    "HorizontalPodAutoscaler": k8s.autoscaling.v2.HorizontalPodAutoscaler,
    "ConfigMap": k8s.core.v1.ConfigMap,
    "Secret": k8s.core.v1.Secret,
}


class Adoption(enum.Enum):
    """How an object joins the stack."""

    IMPORT = "import"
    """Already in the cluster: `pulumi import` records it before the first `pulumi up`."""
    UPSERT = "upsert"
    """Already in the cluster, but taken over by the first `pulumi up` itself, with
    pulumi-kubernetes' `upsertExistingObjects`: an imported Service records its live
    `spec.clusterIP`, which the component does not declare, and pulumi-kubernetes replaces a
    Service whose `spec.clusterIP` changes."""
    CREATE = "create"
    """Not in the cluster: the first `pulumi up` creates it."""


@dataclass(frozen=True)
class DeclaredObject:
    """One Kubernetes object of the component: its Pulumi name and type, and its manifest at
    rest (what `pulumi up` applies while no release runs)."""

    name: str
    type: str
    manifest: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return self.type.rpartition(":")[2]

    @property
    def api_version(self) -> str:
        """From the type token, which is what pulumi-kubernetes reads the object with."""
        module = self.type.split(":")[1]
        return module.removeprefix("core/")

    @property
    def namespace(self) -> str:
        return str(self.manifest["metadata"]["namespace"])

    @property
    def k8s_name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    @property
    def id(self) -> str:
        """pulumi-kubernetes' import id of a namespaced object."""
        return f"{self.namespace}/{self.k8s_name}"

    def adoption(self, exists: bool) -> Adoption:
        if not exists:
            return Adoption.CREATE
        return Adoption.UPSERT if self.kind == "Service" else Adoption.IMPORT


def declared_objects(component: str, release: ReleaseSpec) -> list[DeclaredObject]:
    """Every Kubernetes object the component named `component` declares, in its order."""
    names = ChildNames(component)
    template = release.deployment["spec"]["template"]
    found = [
        _declared(
            names.metric_template(item.name),
            "ConfigMap",
            metric_template_config_map(release, item),
        )
        for item in release.metric_templates
    ]
    tracking = release.config_tracking
    found.extend(
        _declared(names.config(config.ref), config.kind, given_config(release, config))
        for config in tracking.configs
    )
    found.append(_declared(names.canary, "Deployment", routing.canary_deployment(release, 0)))
    found.extend(
        _declared(
            names.config_copy(config.ref),
            config.kind,
            routing.primary_config(release, config, config.content()),
        )
        for config in tracking.tracked
    )
    running = checksums(tracking.contents())
    found.append(
        _declared(
            names.primary,
            "Deployment",
            routing.primary_deployment(release, template, release.primary_replicas, running),
        )
    )
    found.extend(
        _declared(names.service(role), "Service", manifest)
        for role, manifest in zip(ROLES, routing.services(release), strict=True)
    )
    found.extend(
        _declared(names.destination_rule(role), "DestinationRule", manifest)
        for role, manifest in zip(ROLES[1:], routing.destination_rules(release), strict=True)
    )
    found.append(
        _declared(names.virtual_service, "VirtualService", routing.virtual_service(release))
    )
    target, primary = target_autoscaler(release), routing.primary_autoscaler(release)
    if target is not None and primary is not None:
        found.append(_declared(names.autoscaler("canary"), "HorizontalPodAutoscaler", target))
        found.append(_declared(names.autoscaler("primary"), "HorizontalPodAutoscaler", primary))
    return found


def exists_under_flagger(declared: DeclaredObject) -> bool:
    """What a Flagger user's cluster holds before migrating: Flagger created everything but the
    target Deployment, its HPA and the configs it reads (the user's), the `-primary` copies of
    those it tracks included; but no metric-template ConfigMap (Flagger keeps MetricTemplates
    as its own CRs)."""
    labels = declared.manifest["metadata"].get("labels") or {}
    return labels.get("app.kubernetes.io/component") != METRIC_TEMPLATE_COMPONENT


def import_file(
    component: str,
    declared: Sequence[DeclaredObject],
    existing: Mapping[str, bool],
    *,
    provider: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The `pulumi import --file` document: the component first (`component: true`, so the
    imported objects get it as parent), then every object to import.

    `provider` is the name and URN of the explicit Kubernetes provider the program passes to
    the component. Without one, each entry names pulumi-kubernetes' version, so the import
    uses the default provider the program's resources use (`default_<version>`).
    """
    resources: list[dict[str, Any]] = [{"type": TYPE_TOKEN, "name": component, "component": True}]
    for item in declared:
        if item.adoption(existing[item.name]) is not Adoption.IMPORT:
            continue
        entry: dict[str, Any] = {
            "type": item.type,
            "name": item.name,
            "id": item.id,
            "parent": component,
        }
        if provider is None:
            entry["version"] = version("pulumi_kubernetes")
        else:
            entry["provider"] = provider[0]
        resources.append(entry)
    document: dict[str, Any] = {"resources": resources}
    if provider is not None:
        document = {"nameTable": {provider[0]: provider[1]}, **document}
    return document


def _declared(name: str, kind: str, manifest: Mapping[str, Any]) -> DeclaredObject:
    return DeclaredObject(name, _type_token(kind, manifest), manifest)


def _type_token(kind: str, manifest: Mapping[str, Any]) -> str:
    cls = _CLASSES.get(kind)
    if cls is None:
        # pulumi-kubernetes' CustomResource registers as `kubernetes:<apiVersion>:<kind>`.
        return f"kubernetes:{manifest['apiVersion']}:{kind}"
    token = pulumi.get_type_token(cls)
    assert token is not None, f"{cls.__name__} has no type token"
    return token
