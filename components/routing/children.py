"""The children of a `CanaryDeployment`: the Pulumi name of each, and the manifests the traffic
builders do not make (the target's HPA, the metric-template ConfigMaps, the configs as given).

One place for both, because two programs must agree on them: the component, which declares the
children, and `components.migrate`, which writes the `pulumi import` file that adopts a Flagger
user's existing objects under exactly those names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..spec import MetricTemplate, ReleaseSpec
from ..spec.configs import Config, ConfigRef

TYPE_TOKEN = "canary:index:CanaryDeployment"
# The order of routing.services(): apex, primary, canary.
ROLES = ("apex", "primary", "canary")
# The `app.kubernetes.io/component` of the metric-template ConfigMaps, which Flagger never made.
METRIC_TEMPLATE_COMPONENT = "metric-template"


@dataclass(frozen=True)
class ChildNames:
    """The Pulumi resource names of the children of the component named `component`."""

    component: str

    @property
    def canary(self) -> str:
        return f"{self.component}-canary"

    @property
    def primary(self) -> str:
        return f"{self.component}-primary"

    def service(self, role: str) -> str:
        return f"{self.component}-{role}-service"

    def destination_rule(self, role: str) -> str:
        return f"{self.component}-{role}-destinationrule"

    @property
    def virtual_service(self) -> str:
        return f"{self.component}-virtualservice"

    def autoscaler(self, role: str) -> str:
        return f"{self.component}-{role}-hpa"

    def metric_template(self, template: str) -> str:
        return f"{self.component}-{template}-metric-template"

    def config(self, ref: ConfigRef) -> str:
        """A ConfigMap or Secret of `configs`, as given: `podinfo-podinfo-config-configmap`."""
        return f"{self.component}-{ref.name}-{ref.kind.lower()}"

    def config_copy(self, ref: ConfigRef) -> str:
        """Its `-primary` copy: `podinfo-podinfo-config-primary-configmap`."""
        return f"{self.component}-{ref.name}-primary-{ref.kind.lower()}"

    @property
    def guard(self) -> str:
        return f"{self.component}-guard"

    @property
    def rollout(self) -> str:
        return f"{self.component}-rollout"

    @property
    def finaliser(self) -> str:
        return f"{self.component}-finaliser"


def target_autoscaler(release: ReleaseSpec) -> dict[str, Any] | None:
    """The user's HPA as given, in the release's namespace; None without `autoscalerRef`."""
    if release.spec.autoscaler_ref is None or release.autoscaler is None:
        return None
    return {
        "metadata": {**release.autoscaler.get("metadata", {}), "namespace": release.namespace},
        "spec": release.autoscaler["spec"],
    }


def metric_template_config_map(release: ReleaseSpec, template: MetricTemplate) -> dict[str, Any]:
    """Kept as a ConfigMap, not a Flagger CR: no Flagger CRDs are needed in the cluster, and the
    queries the gate runs stay reviewable with kubectl. Credentials are never written here."""
    provider = template.spec.provider
    data = {"query": template.spec.query, "provider": provider.type}
    if provider.address:
        data["address"] = provider.address
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{template.name}-metric-template",
            "namespace": template.metadata.namespace or release.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "pulumi-canary",
                "app.kubernetes.io/component": METRIC_TEMPLATE_COMPONENT,
            },
        },
        "data": data,
    }


def given_config(release: ReleaseSpec, config: Config) -> dict[str, Any]:
    """An entry of `configs` as given, in the release's namespace (the canary runs it)."""
    manifest = dict(config.manifest)
    manifest["metadata"] = {**config.metadata, "namespace": release.namespace}
    return manifest
