"""The labels and annotations Flagger puts on what it generates, and what it copies from the
target (pkg/router/util.go, pkg/canary/util.go)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# On every Service and VirtualService Flagger generates, so that Flux neither reconciles nor
# drift-corrects objects it does not own.
FLUX_OPT_OUT = {
    "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
    "helm.toolkit.fluxcd.io/driftDetection": "disabled",
}
# Keys holding this are Flux's bookkeeping of the target (e.g. its checksum): never copied.
FLUX_MARKER = "toolkit.fluxcd.io"
# The target Deployment's labels and annotations the primary copies: Flagger's
# -include-label-prefix as its Istio installation sets it (kustomize/istio/patch.yaml).
COPIED_PREFIXES = ("app.kubernetes.io",)


def object_metadata(
    name: str,
    namespace: str,
    labels: Mapping[str, Any] | None = None,
    annotations: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`metadata` with empty maps left out, as Flagger's objects serialise them."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return metadata


def without_flux(values: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (values or {}).items() if FLUX_MARKER not in key}


def copied(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The target's metadata entries the primary Deployment carries too."""
    return {
        key: value for key, value in without_flux(values).items() if key.startswith(COPIED_PREFIXES)
    }


def without_keys(values: Mapping[str, Any], keys: Sequence[str] | None) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in (keys or ())}
