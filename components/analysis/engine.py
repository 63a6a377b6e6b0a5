"""The release state machine: Flagger's scheduler as pure functions over an immutable state.

Each tick the driver asks `gates()` which checks to run, runs them in order (stopping at the
first that blocks), and hands the results to `advance()`, which returns the next state and what
the driver must do: route traffic, run hooks, alert, promote. Time comes in as an argument, so
the same code is replayed by tests, the rehearsal and the Pulumi gate alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from ..routing import TrafficState
from ..spec import Analysis, CanarySpec, HookType, Strategy
from .plan import Step, plan


class Phase(StrEnum):
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class GateKind(StrEnum):
    READINESS = "readiness"
    HOOKS = "hooks"
    METRICS = "metrics"


@dataclass(frozen=True)
class Gate:
    kind: GateKind
    hook_type: HookType | None = None

    def __str__(self) -> str:
        return f"{self.hook_type} hooks" if self.hook_type else str(self.kind)


@dataclass(frozen=True)
class CheckResult:
    """One gate's outcome; `pending` means "not yet": it holds without counting a failure."""

    gate: Gate
    passed: bool
    reason: str | None = None
    pending: bool = False
    metrics: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Release:
    """Everything the engine remembers between ticks; small and plain so it can be persisted."""

    phase: Phase
    step: int = -1
    failed_checks: int = 0
    iterations: int = 0
    held_since: float | None = None
    reason: str | None = None
    applied_weights: tuple[int, ...] = ()

    @property
    def done(self) -> bool:
        return self.phase in (Phase.PROMOTING, Phase.SUCCEEDED, Phase.FAILED)


@dataclass(frozen=True)
class Event:
    """Something to tell people: an alert (with severity) and a progress line."""

    severity: Literal["info", "warn", "error"]
    message: str


@dataclass(frozen=True)
class Decision:
    release: Release
    traffic: TrafficState | None = None
    hooks: tuple[HookType, ...] = ()
    events: tuple[Event, ...] = ()
    scale_canary_up: bool = False


def begin(spec: CanarySpec) -> Decision:
    """A new revision: wait on confirm-rollout if any, otherwise scale the canary up."""
    analysis = spec.analysis
    if analysis.hooks(HookType.CONFIRM_ROLLOUT):
        return Decision(Release(Phase.WAITING))
    return _start(spec)


def gates(spec: CanarySpec, release: Release) -> list[Gate]:
    """The checks of the next tick, in the order Flagger runs them."""
    analysis = spec.analysis
    if release.phase is Phase.WAITING:
        return [Gate(GateKind.HOOKS, HookType.CONFIRM_ROLLOUT)]
    checks = [Gate(GateKind.READINESS)]
    if spec.skip_analysis:
        return checks
    if analysis.hooks(HookType.ROLLBACK):
        checks.append(Gate(GateKind.HOOKS, HookType.ROLLBACK))
    if release.step < 0:
        checks.append(Gate(GateKind.HOOKS, HookType.PRE_ROLLOUT))
    else:
        checks += [Gate(GateKind.HOOKS, HookType.ROLLOUT), Gate(GateKind.METRICS)]
    follow = _follow_up_gate(spec, release)
    if follow is not None:
        checks.append(follow)
    return checks


def advance(
    spec: CanarySpec, release: Release, results: list[CheckResult], now: float, deadline: float
) -> Decision:
    """The next state from this tick's results.

    `deadline` bounds the whole release, holds on closed gates and unready canaries included:
    past it the release rolls back, so traffic never waits on an unverified canary for ever.
    """
    if now >= deadline:
        waiting = f" while {release.reason}" if release.held_since is not None else ""
        return _rollback(release, f"release deadline exceeded{waiting}")
    if release.phase is Phase.WAITING:
        confirm = results[0] if results else None
        if confirm is not None and confirm.passed:
            return _start(spec)
        return _hold(release, now, f"confirm-rollout gate closed: {_reason(confirm)}")
    by_gate = {result.gate: result for result in results}
    readiness = by_gate.get(Gate(GateKind.READINESS))
    if readiness is not None and not readiness.passed:
        if readiness.pending:
            return _hold(release, now, f"canary not ready: {readiness.reason}")
        return _rollback(release, f"canary not ready: {readiness.reason}")
    rollback = by_gate.get(Gate(GateKind.HOOKS, HookType.ROLLBACK))
    if rollback is not None and rollback.passed:
        return _rollback(release, f"rollback requested by webhook: {rollback.reason}")
    if spec.skip_analysis:
        return _promote(spec, release, "analysis skipped (skipAnalysis)")
    failure = next((r for r in results if r.gate in _ANALYSIS_GATES and not r.passed), None)
    if failure is not None:
        return _failed_check(spec, release, failure)
    follow = next((r for r in results if r.gate.hook_type in _FOLLOW_UPS), None)
    if follow is not None and not follow.passed:
        held = _hold(release, now, f"{follow.gate.hook_type} gate closed: {_reason(follow)}")
        if follow.gate.hook_type is HookType.CONFIRM_PROMOTION:
            return replace(held, release=replace(held.release, phase=Phase.WAITING_PROMOTION))
        return held
    return _step(spec, release)


def finalising_weights(analysis: Analysis, canary_weight: int) -> list[int]:
    """Canary weights on the way back to the new primary: all at once unless stepWeightPromotion."""
    step = analysis.step_weight_promotion or 0
    if not step or analysis.strategy is not Strategy.CANARY:
        return [0]
    weights, weight = [], canary_weight
    while weight > 0:
        weight = max(weight - step, 0)
        weights.append(weight)
    return weights or [0]


_FOLLOW_UPS = (HookType.CONFIRM_TRAFFIC_INCREASE, HookType.CONFIRM_PROMOTION)
_ANALYSIS_GATES = (
    Gate(GateKind.HOOKS, HookType.PRE_ROLLOUT),
    Gate(GateKind.HOOKS, HookType.ROLLOUT),
    Gate(GateKind.METRICS),
)


def _reason(result: CheckResult | None) -> str:
    return (result.reason or "closed") if result is not None else "not checked"


def _follow_up_gate(spec: CanarySpec, release: Release) -> Gate | None:
    """After passing checks: confirm-promotion at the last step, else confirm-traffic-increase."""
    steps = plan(spec.analysis).steps
    if release.step >= len(steps) - 1:
        if spec.analysis.hooks(HookType.CONFIRM_PROMOTION):
            return Gate(GateKind.HOOKS, HookType.CONFIRM_PROMOTION)
        return None
    current = steps[release.step] if release.step >= 0 else None
    mirrored = current is not None and current.mirror
    if (
        spec.analysis.strategy is Strategy.CANARY
        and not mirrored
        and release.step >= 0
        and spec.analysis.hooks(HookType.CONFIRM_TRAFFIC_INCREASE)
    ):
        return Gate(GateKind.HOOKS, HookType.CONFIRM_TRAFFIC_INCREASE)
    return None


def _start(spec: CanarySpec) -> Decision:
    plan_ = plan(spec.analysis)
    message = f"New revision detected, starting {plan_.describe()}"
    return Decision(
        Release(Phase.PROGRESSING),
        traffic=TrafficState(),
        events=(Event("info", message),),
        scale_canary_up=True,
    )


def _hold(release: Release, now: float, reason: str) -> Decision:
    """Waits without counting a failure; the release deadline bounds the wait."""
    held = replace(release, held_since=release.held_since or now, reason=reason)
    return Decision(held, events=(Event("info", f"Waiting: {reason}"),))


def _failed_check(spec: CanarySpec, release: Release, failure: CheckResult) -> Decision:
    failed = release.failed_checks + 1
    threshold = spec.analysis.effective_threshold
    reason = f"{failure.gate} failed: {failure.reason}"
    counted = replace(release, failed_checks=failed, reason=reason, held_since=None)
    if failed >= threshold:
        return _rollback(counted, f"failed checks threshold reached {failed}: {reason}")
    message = f"Halt advancement ({failed}/{threshold} failed checks): {reason}"
    return Decision(counted, events=(Event("warn", message),))


def _step(spec: CanarySpec, release: Release) -> Decision:
    steps = plan(spec.analysis).steps
    if release.step >= len(steps) - 1:
        return _promote(spec, release, "analysis passed")
    index = release.step + 1
    step = steps[index]
    moved = replace(
        release,
        phase=Phase.PROGRESSING,
        step=index,
        iterations=index + 1 if spec.analysis.iterations else 0,
        held_since=None,
        reason=None,
        applied_weights=(*release.applied_weights, step.weight),
    )
    return Decision(
        moved,
        traffic=_traffic(step),
        events=(Event("info", _step_message(spec, step, index, len(steps))),),
    )


def _promote(spec: CanarySpec, release: Release, why: str) -> Decision:
    """Promotion right after the last passing check: no idle ticks in between."""
    promoted = replace(release, phase=Phase.PROMOTING, reason=why, held_since=None)
    traffic = None
    if spec.analysis.strategy is Strategy.BLUEGREEN and not spec.skip_analysis:
        traffic = TrafficState(canary_weight=100)
    return Decision(
        promoted,
        traffic=traffic,
        events=(Event("info", f"Copying the canary to the primary: {why}"),),
    )


def _rollback(release: Release, reason: str) -> Decision:
    """Every rollback ends the same way: all traffic to the primary, post-rollout hooks, alert."""
    failed = replace(release, phase=Phase.FAILED, reason=reason, held_since=None)
    return Decision(
        failed,
        traffic=TrafficState(),
        hooks=(HookType.POST_ROLLOUT,),
        events=(Event("error", f"Canary failed, rolling back: {reason}"),),
    )


def _traffic(step: Step) -> TrafficState:
    return TrafficState(canary_weight=step.weight, mirror=step.mirror)


def _step_message(spec: CanarySpec, step: Step, index: int, total: int) -> str:
    if spec.analysis.strategy is not Strategy.CANARY:
        return f"Advance iteration {index + 1}/{total}"
    if step.mirror:
        return "Mirroring traffic to the canary"
    return f"Advance canary weight {step.weight}"
