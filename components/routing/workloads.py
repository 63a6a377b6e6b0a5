"""The Deployments, Services and HPA Flagger derives from the target (pkg/router/kubernetes*.go)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..spec import ReleaseSpec
from ..spec.canary import CustomMetadata, UnmanagedMetadata
from .configs import point_at_copies
from .metadata import FLUX_OPT_OUT, copied, object_metadata, without_flux, without_keys


def canary_deployment(release: ReleaseSpec, replicas: int | None) -> dict[str, Any]:
    """The user's Deployment, kept under its own name; a release scales it up and back to zero."""
    manifest: dict[str, Any] = _copy(dict(release.deployment))
    manifest.setdefault("metadata", {})["namespace"] = release.namespace
    manifest["metadata"].pop("resourceVersion", None)
    manifest.pop("status", None)
    if replicas is None:
        manifest["spec"].pop("replicas", None)
    else:
        manifest["spec"]["replicas"] = replicas
    return manifest


def primary_deployment(
    release: ReleaseSpec,
    pod_template: Mapping[str, Any],
    replicas: int | None,
    configs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`<target>-primary` running the promoted pod template, selected by `<app>-primary`.

    It copies only the target's `app.kubernetes.io` labels and annotations, and its pod template
    drops Flux's keys, as Flagger's Istio installation does; the pod template's scheduling terms
    that select the target's pods select the primary's. `configs` are the checksums of the
    promoted tracked configs, by Flagger's key: the pod template runs their `-primary` copies.
    """
    source = release.deployment
    label, primary_value = release.selector_label, f"{release.selector_value}-primary"
    metadata = source.get("metadata", {})
    spec: dict[str, Any] = {
        key: _copy(value)
        for key, value in source["spec"].items()
        if key in ("strategy", "minReadySeconds", "progressDeadlineSeconds", "revisionHistoryLimit")
    }
    if replicas is not None:
        spec["replicas"] = replicas
    spec["selector"] = {"matchLabels": {label: primary_value}}
    template = _copy(dict(pod_template))
    template_metadata = template.setdefault("metadata", {})
    template_metadata["labels"] = _relabel(
        without_flux(template_metadata.get("labels")), label, primary_value
    )
    annotations = without_flux(template_metadata.pop("annotations", None))
    if annotations:
        template_metadata["annotations"] = annotations
    _select_primary_pods(template.get("spec") or {}, label, release.selector_value)
    point_at_copies(template, configs or {})
    spec["template"] = template
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_metadata(
            release.primary,
            release.namespace,
            _relabel(copied(metadata.get("labels")), label, primary_value),
            copied(metadata.get("annotations")),
        ),
        "spec": spec,
    }


def _select_primary_pods(pod_spec: dict[str, Any], label: str, value: str) -> None:
    """Rewrites, in place, `<label>: <value>` to `<value>-primary` in the label selectors of
    pod (anti-)affinity terms, required and preferred, and of topology spread constraints, so
    the primary spreads over (or gathers with) its own pods rather than the canary's."""
    affinity = pod_spec.get("affinity") or {}
    selectors = [c.get("labelSelector") for c in pod_spec.get("topologySpreadConstraints") or []]
    for kind in ("podAntiAffinity", "podAffinity"):
        terms = affinity.get(kind) or {}
        selectors += [
            term.get("labelSelector")
            for term in terms.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        ]
        selectors += [
            (term.get("podAffinityTerm") or {}).get("labelSelector")
            for term in terms.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        ]
    primary = f"{value}-primary"
    for selector in filter(None, selectors):
        match_labels = selector.get("matchLabels") or {}
        if match_labels.get(label) == value:
            match_labels[label] = primary
        for expression in selector.get("matchExpressions") or []:
            if expression.get("key") == label:
                expression["values"] = [
                    primary if item == value else item for item in expression.get("values") or []
                ]


def services(release: ReleaseSpec) -> list[dict[str, Any]]:
    """Apex and primary select `<app>-primary`; `-canary` selects the target's own pods.

    Each keeps Flagger's `<selector label>: <its name>` label beside the custom labels of its
    role (`service.apex`, `.primary`, `.canary`), and Flux's opt-out annotations. Keys listed in
    `service.unmanagedMetadata` are left out, so Pulumi leaves them to whoever sets them.
    """
    service = release.spec.service
    value = release.selector_value
    ports = _ports(release)
    unmanaged = service.unmanaged_metadata or UnmanagedMetadata()
    roles = {
        release.service: (service.apex or CustomMetadata(), f"{value}-primary"),
        release.primary_service: (service.primary or CustomMetadata(), f"{value}-primary"),
        release.canary_service: (service.canary or CustomMetadata(), value),
    }
    manifests = []
    for name, (custom, selected) in roles.items():
        spec: dict[str, Any] = {
            "type": "ClusterIP",
            "selector": {release.selector_label: selected},
            "ports": _copy(ports),
        }
        if service.headless:
            spec["clusterIP"] = "None"
        if service.traffic_distribution:
            spec["trafficDistribution"] = service.traffic_distribution
        labels = {**(custom.labels or {}), release.selector_label: name}
        annotations = {**(custom.annotations or {}), **FLUX_OPT_OUT}
        metadata = object_metadata(
            name,
            release.namespace,
            without_keys(labels, unmanaged.labels),
            without_keys(annotations, unmanaged.annotations),
        )
        manifests.append(
            {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}
        )
    return manifests


def primary_autoscaler(release: ReleaseSpec) -> dict[str, Any] | None:
    """`<hpa>-primary`: the user's HPA pointed at the primary, as Flagger creates it."""
    ref = release.spec.autoscaler_ref
    if ref is None or release.autoscaler is None:
        return None
    spec = _copy(dict(release.autoscaler.get("spec", {})))
    spec["scaleTargetRef"] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": release.primary,
    }
    limits = ref.primary_scaler_replicas
    if limits is not None:
        if limits.min_replicas is not None:
            spec["minReplicas"] = limits.min_replicas
        if limits.max_replicas is not None:
            spec["maxReplicas"] = limits.max_replicas
    return {
        "apiVersion": release.autoscaler.get("apiVersion", "autoscaling/v2"),
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_metadata(f"{ref.name}-primary", release.namespace),
        "spec": spec,
    }


def _ports(release: ReleaseSpec) -> list[dict[str, Any]]:
    """`portName`/`port` to `targetPort` (the only port with `appProtocol`), then the
    discovered container ports, each to its own number."""
    service = release.spec.service
    main: dict[str, Any] = {
        "name": service.port_name,
        "port": service.port,
        "targetPort": service.target_port or service.port,
        "protocol": "TCP",
    }
    if service.app_protocol:
        main["appProtocol"] = service.app_protocol
    discovered = [
        {
            "name": port.name,
            "port": port.number,
            "targetPort": port.number,
            "protocol": port.protocol,
        }
        for port in release.discovered_ports
    ]
    return [main, *discovered]


def _copy(value: Any) -> Any:
    """A deep copy of the dicts and lists only: leaves such as Pulumi Outputs (an image from
    stack config) are shared, since `copy.deepcopy` refuses to copy an Output."""
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _relabel(labels: Mapping[str, str] | None, label: str, value: str) -> dict[str, str]:
    relabelled = dict(labels or {})
    relabelled[label] = value
    return relabelled
