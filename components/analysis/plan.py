"""What a release will do, known before it starts: its steps, checks and worst-case duration.

The plan is the engine's whole input besides the state: built once per release from the spec
and its timing, read by every tick, by `pulumi preview`'s review line and by the reports, so
the plan shown is the plan run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec import Analysis, CanarySpec, HookType, Strategy, format_seconds
from ..spec.istio import HTTPMatchRequest, StringMatch
from ..spec.timing import Timing


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
    hook_types: frozenset[HookType]
    skip_analysis: bool
    step_weight_promotion: int
    progress_deadline_seconds: float
    deadline_seconds: float
    """The release's own bound, from the canary's first scale-up to its verdict."""
    matched: str = ""
    """The A/B match conditions in words (`x-user-type: beta`), empty for other strategies."""

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

    @property
    def last_step(self) -> int:
        return len(self.steps) - 1

    def seconds_to_promotion(self, step: int) -> float:
        """From a passing check at `step`, how long the remaining steps take if they pass."""
        return max(self.last_step - step, 0) * self.interval_seconds

    def has_hooks(self, hook_type: HookType) -> bool:
        return hook_type in self.hook_types

    def finalising_weights(self, canary_weight: int) -> list[int]:
        """Canary weights on the way back to the new primary: all at once, unless
        `stepWeightPromotion` asks for steps (canary strategy only, as in Flagger)."""
        step = self.step_weight_promotion
        if not step or self.strategy is not Strategy.CANARY:
            return [0]
        weights, weight = [], canary_weight
        while weight > 0:
            weight = max(weight - step, 0)
            weights.append(weight)
        return weights or [0]

    def describe(self) -> str:
        weights = [step.weight for step in self.steps if not step.mirror]
        every = format_seconds(self.interval_seconds)
        mirrored = "mirrored, then " if any(step.mirror for step in self.steps) else ""
        if self.skip_analysis:
            return "promoted without analysis (skipAnalysis)"
        if self.strategy is Strategy.CANARY:
            body = f"canary {mirrored}{weights[0]}% -> {weights[-1]}% in {len(weights)} steps"
        elif self.strategy is Strategy.AB:
            body = f"A/B: {self._matched_traffic} to the canary for {len(self.steps)} iterations"
        else:
            body = f"blue/green: {mirrored}{len(self.steps)} iterations at 0%"
        return f"{body} every {every}"

    def routing(self, index: int) -> str:
        """What step `index` (0-based) sends where, for progress lines and reports:
        `weight 20%`, `mirrored to the canary`, `matched traffic (x-user-type: beta) -> canary`,
        `primary serves all, canary tested directly`."""
        step = self.steps[index]
        if self.strategy is Strategy.AB:
            return f"{self._matched_traffic} -> canary"
        if self.strategy is Strategy.BLUEGREEN:
            tested = "mirrored to the canary" if step.mirror else "canary tested directly"
            return f"primary serves all, {tested}"
        return "mirrored to the canary" if step.mirror else f"weight {step.weight}%"

    def step_label(self, index: int) -> str:
        """`weight 20%` for a canary step; `iteration 2/10, <routing>` for A/B and blue/green,
        whose steps are Flagger's iterations."""
        if self.strategy is Strategy.CANARY:
            return self.routing(index)
        return f"iteration {index + 1}/{len(self.steps)}, {self.routing(index)}"

    @property
    def _matched_traffic(self) -> str:
        return f"matched traffic ({self.matched})" if self.matched else "matched traffic"


def describe_match(conditions: list[HTTPMatchRequest]) -> str:
    """`x-user-type: beta`, `cookie ~ .*canary.*`, `uri /beta*`; conditions joined by `or`."""
    described = []
    for condition in conditions:
        parts = [
            f"{name}{_describe_string(match)}" for name, match in (condition.headers or {}).items()
        ]
        parts += [
            f"not {name}{_describe_string(match)}"
            for name, match in (condition.without_headers or {}).items()
        ]
        for field_name in ("uri", "method", "authority", "scheme"):
            match = getattr(condition, field_name)
            if match is not None:
                parts.append(f"{field_name}{_describe_string(match)}")
        parts += [
            f"?{name}{_describe_string(match)}"
            for name, match in (condition.query_params or {}).items()
        ]
        parts += [f"from {key}={value}" for key, value in (condition.source_labels or {}).items()]
        if parts:
            described.append(", ".join(parts))
    return " or ".join(described)


def _describe_string(match: StringMatch) -> str:
    if match.exact is not None:
        return f": {match.exact}"
    if match.prefix is not None:
        return f": {match.prefix}*"
    return f" ~ {match.regex}"


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
    if step <= 0:
        return []  # no weighted steps: skipAnalysis without a strategy
    weights, weight = [], 0
    while weight < cap:
        weight = min(weight + step, cap)
        weights.append(weight)
    return weights


def plan(spec: CanarySpec, timing: Timing) -> ReleasePlan:
    """The release's steps, checks and bounds, at the timing the release runs with."""
    analysis = spec.analysis
    strategy = analysis.strategy
    if strategy is Strategy.CANARY:
        steps = [Step(weight) for weight in canary_weights(analysis)]
        if analysis.mirror:
            steps.insert(0, Step(0, mirror=True))
    elif strategy is Strategy.AB:
        steps = [Step(100)] * (analysis.iterations or 0)
    else:
        steps = [Step(0, mirror=analysis.mirror)] * (analysis.iterations or 0)
    interval = timing.interval_seconds
    threshold = analysis.effective_threshold
    progress_deadline = float(spec.progress_deadline_seconds)
    # Worst-case analysis time plus the progress deadline for the canary to come up.
    default_deadline = (len(steps) + threshold) * interval + progress_deadline
    return ReleasePlan(
        strategy=strategy,
        steps=tuple(steps),
        interval_seconds=interval,
        threshold=threshold,
        hook_types=frozenset(hook.hook_type for hook in analysis.webhooks),
        skip_analysis=spec.skip_analysis,
        step_weight_promotion=analysis.step_weight_promotion or 0,
        progress_deadline_seconds=progress_deadline,
        deadline_seconds=timing.deadline_seconds or default_deadline,
        matched=describe_match(analysis.match) if strategy is Strategy.AB else "",
    )
