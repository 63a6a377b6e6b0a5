"""What a release will do, known before it starts: its steps, checks and worst-case duration.

The plan is the engine's whole input besides the state: built once per release from the spec
and its timing, read by every tick, by `pulumi preview`'s review line and by the reports, so
the plan shown is the plan run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec import Analysis, CanarySpec, HookType, Strategy, format_seconds
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
    )
