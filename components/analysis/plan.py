"""What a release will do, known before it starts: its steps, gates and worst-case duration.

Both the engine and `pulumi preview` read it, so the plan shown is the plan run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..spec import Analysis, HookType, Strategy, format_seconds


@dataclass(frozen=True)
class Step:
    """One analysis step: the canary weight it applies, and whether the canary is mirrored."""

    weight: int
    mirror: bool = False


@dataclass(frozen=True)
class ReleasePlan:
    strategy: Strategy
    steps: tuple[Step, ...]
    interval_seconds: float
    threshold: int

    @property
    def checks_to_promote(self) -> int:
        """Metric checks a healthy release runs: one after every step, none before the first."""
        return len(self.steps)

    @property
    def nominal_seconds(self) -> float:
        return self.checks_to_promote * self.interval_seconds

    @property
    def worst_case_seconds(self) -> float:
        """Every step passes only after threshold - 1 failed checks spent along the way."""
        return (self.checks_to_promote + self.threshold - 1) * self.interval_seconds

    def describe(self) -> str:
        weights = [step.weight for step in self.steps if not step.mirror]
        every = format_seconds(self.interval_seconds)
        mirrored = "mirrored, then " if any(step.mirror for step in self.steps) else ""
        if self.strategy is Strategy.CANARY:
            body = f"canary {mirrored}{weights[0]}% -> {weights[-1]}% in {len(weights)} steps"
        elif self.strategy is Strategy.AB:
            body = f"A/B: matched traffic to the canary for {len(self.steps)} iterations"
        else:
            body = f"blue/green: {mirrored}{len(self.steps)} iterations at 0%"
        return f"{body} every {every}"


def canary_weights(analysis: Analysis) -> list[int]:
    """The weights a canary strategy applies, clamped to maxWeight.

    Divergence from Flagger: Flagger adds stepWeight until it passes maxWeight and may overshoot
    (stepWeight 20, maxWeight 50 gives 60); here the last step is clamped (20, 40, 50).
    """
    cap = analysis.effective_max_weight
    if analysis.step_weights:
        weights = [min(weight, cap) for weight in analysis.step_weights]
        return sorted(set(weights))
    step = analysis.step_weight or 0
    weights, weight = [], 0
    while weight < cap:
        weight = min(weight + step, cap)
        weights.append(weight)
    return weights


def plan(analysis: Analysis, interval_seconds: float | None = None) -> ReleasePlan:
    """The release's steps; `interval_seconds` overrides the analysis interval (the gate's
    `interval` input)."""
    strategy = analysis.strategy
    if strategy is Strategy.CANARY:
        steps = [Step(weight) for weight in canary_weights(analysis)]
        if analysis.mirror:
            steps.insert(0, Step(0, mirror=True))
    elif strategy is Strategy.AB:
        steps = [Step(100)] * (analysis.iterations or 0)
    else:
        steps = [Step(0, mirror=analysis.mirror)] * (analysis.iterations or 0)
    return ReleasePlan(
        strategy=strategy,
        steps=tuple(steps),
        interval_seconds=interval_seconds or analysis.interval_seconds,
        threshold=analysis.effective_threshold,
    )


def gate_summary(analysis: Analysis) -> str:
    """`request-success-rate >= 99, request-duration <= 500ms`, for the preview line."""
    parts = []
    for metric in analysis.metrics:
        bounds = metric.bounds
        unit = "ms" if metric.name == "request-duration" else ""
        described = bounds.describe().replace(" and ", f"{unit} and ") + unit if bounds else "any"
        parts.append(f"{metric.name} {described}")
    confirms = [hook.name for hook in analysis.webhooks if hook.hook_type in _CONFIRM]
    if confirms:
        parts.append("confirm: " + ", ".join(confirms))
    return ", ".join(parts) or "no metric gates"


_CONFIRM = (HookType.CONFIRM_ROLLOUT, HookType.CONFIRM_TRAFFIC_INCREASE, HookType.CONFIRM_PROMOTION)


def review(
    name: str,
    analysis: Analysis,
    old_template: Mapping[str, Any] | None,
    new_template: Mapping[str, Any],
    interval_seconds: float | None = None,
) -> str:
    """The change review `pulumi preview` prints: what rolls out, how, gated on what.

    `podinfo: ghcr.io/stefanprodan/podinfo:6.3.0 -> 6.3.1; canary 10% -> 50% in 5 steps every
    1m; gates: request-success-rate >= 99, request-duration <= 500ms; rollback after 5 failed
    checks; at most ~9m`.
    """
    if old_template is None:
        return f"{name}: first release of {images_of(new_template)}, promoted without analysis"
    release_plan = plan(analysis, interval_seconds)
    worst = format_seconds(release_plan.worst_case_seconds)
    return (
        f"{name}: {template_change(old_template, new_template)}; {release_plan.describe()}; "
        f"gates: {gate_summary(analysis)}; "
        f"rollback after {release_plan.threshold} failed checks; at most ~{worst}"
    )


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
