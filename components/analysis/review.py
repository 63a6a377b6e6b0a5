"""The change review `pulumi preview` prints: what rolls out, how, and gated on what."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..spec import (
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    Analysis,
    HookType,
    Metric,
    format_seconds,
)
from .plan import ReleasePlan

_CONFIRM = (HookType.CONFIRM_ROLLOUT, HookType.CONFIRM_TRAFFIC_INCREASE, HookType.CONFIRM_PROMOTION)


def review(
    name: str,
    analysis: Analysis,
    release_plan: ReleasePlan,
    old_template: Mapping[str, Any] | None,
    new_template: Mapping[str, Any],
    *,
    config_changes: Sequence[str] = (),
) -> str:
    """`podinfo: ghcr.io/stefanprodan/podinfo:6.3.0 -> 6.3.1; canary 10% -> 50% in 5 steps every
    1m; gates: request-success-rate >= 99, request-duration <= 500ms; rollback after 5 failed
    checks; at most ~9m`; the tracked configs' changes (`ConfigMap podinfo-config changed (keys:
    color)`) follow the template's, which is left out when only configs changed."""
    if old_template is None:
        return f"{name}: first release of {images_of(new_template)}, promoted without analysis"
    worst = format_seconds(release_plan.worst_case_seconds)
    changes = list(config_changes)
    if old_template != new_template or not changes:
        changes.insert(0, template_change(old_template, new_template))
    return (
        f"{name}: {', '.join(changes)}; {release_plan.describe()}; "
        f"gates: {gate_summary(analysis)}; "
        f"rollback after {release_plan.threshold} failed checks; at most ~{worst}"
    )


def gate_summary(analysis: Analysis) -> str:
    """`request-success-rate >= 99, request-duration <= 500ms`, for the review line."""
    parts = []
    for metric in analysis.metrics:
        if metric.bounds is None:
            described = "(no thresholdRange: needs data only)"
        else:
            described = bounds_text(metric)
        parts.append(f"{metric.name} {described}")
    confirms = [hook.name for hook in analysis.webhooks if hook.hook_type in _CONFIRM]
    if confirms:
        parts.append("confirm: " + ", ".join(confirms))
    return ", ".join(parts) or "no metric gates"


# The built-in metrics' names in the progress line, which must fit 80 columns with two of them.
_SHORT_NAMES = {REQUEST_SUCCESS_RATE: "success-rate", REQUEST_DURATION: "duration"}


def bounds_text(metric: Metric, separator: str = " ") -> str:
    """`>= 99`, `<= 500ms`, `>= 1 and <= 5`: a metric's bounds, in its unit."""
    if metric.bounds is None:
        return "any"
    unit = "ms" if metric.builtin and metric.name == REQUEST_DURATION else ""
    return " and ".join(
        f"{op}{separator}{bound:g}{unit}"
        for op, bound in ((">=", metric.bounds.min), ("<=", metric.bounds.max))
        if bound is not None
    )


def value_text(metric: Metric, value: float | None) -> str:
    """`success-rate 99.93 >=99`: one metric's value against its bounds, short enough for
    the progress line (built-in metrics go by their short names)."""
    name = _SHORT_NAMES.get(metric.name, metric.name) if metric.builtin else metric.name
    shown = "no data" if value is None else f"{value:.4g}"
    return f"{name} {shown} {bounds_text(metric, separator='')}"


def template_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """`repo:6.3.0 -> 6.3.1` per changed image, else the pod-template fields that changed."""
    before = dict(_images(old))
    changes = []
    for container, image in _images(new):
        previous = before.get(container)
        if previous is None:
            changes.append(f"+{container} {image}")
        elif previous != image:
            repository, _, tag = image.rpartition(":")
            same_repository = repository and previous.rpartition(":")[0] == repository
            changes.append(f"{previous} -> {tag if same_repository else image}")
    if changes:
        return ", ".join(changes)
    changed = sorted(
        f"{part}.{key}"
        for part in ("metadata", "spec")
        for key in {*(old.get(part) or {}), *(new.get(part) or {})}
        if (old.get(part) or {}).get(key) != (new.get(part) or {}).get(key)
    )
    return "pod template changed: " + (", ".join(changed) or "formatting only")


def images_of(template: Mapping[str, Any]) -> str:
    """The template's images, to name a release in messages."""
    return ", ".join(image for _, image in _images(template)) or "the pod template"


def _images(template: Mapping[str, Any]) -> list[tuple[str, str]]:
    containers = (template.get("spec") or {}).get("containers") or []
    return [(str(c.get("name", "")), str(c.get("image", ""))) for c in containers]
