"""The release state machine: Flagger's scheduler as pure functions over an immutable state.

Each tick the driver asks `checks()` which checks to run, runs them in order (stopping at the
first that blocks), and hands the results to `advance()`, which returns the next state and what
the driver must do: route traffic, run hooks, alert, promote. The plan and the time come in as
arguments, so the same code is replayed by tests, the rehearsal and the Pulumi gate alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from ..routing import TrafficState
from ..spec import HookType, Strategy
from .plan import ReleasePlan, Step


class Phase(StrEnum):
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class CheckKind(StrEnum):
    READINESS = "readiness"
    HOOKS = "hooks"
    METRICS = "metrics"


@dataclass(frozen=True)
class Check:
    """One check of a tick: the canary's readiness, the hooks of one type, or the metrics."""

    kind: CheckKind
    hook_type: HookType | None = None

    def __str__(self) -> str:
        return f"{self.hook_type} hooks" if self.hook_type else str(self.kind)

    @property
    def blocks_on_pass(self) -> bool:
        """A rollback hook stops the tick when it answers yes; every other check when no."""
        return self.hook_type is HookType.ROLLBACK


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; `pending` means "not yet": it holds without counting a failure."""

    check: Check
    passed: bool
    reason: str | None = None
    pending: bool = False
    metrics: dict[str, float | None] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        return self.passed if self.check.blocks_on_pass else not self.passed


@dataclass(frozen=True)
class ReleaseState:
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
    state: ReleaseState
    traffic: TrafficState | None = None
    hooks: tuple[HookType, ...] = ()
    events: tuple[Event, ...] = ()
    scale_canary_up: bool = False


def begin(plan: ReleasePlan) -> Decision:
    """A new revision: wait on confirm-rollout if any, otherwise scale the canary up."""
    if plan.has_hooks(HookType.CONFIRM_ROLLOUT):
        return Decision(ReleaseState(Phase.WAITING))
    return _start(plan)


def checks(plan: ReleasePlan, state: ReleaseState) -> list[Check]:
    """The checks of the next tick, in the order Flagger runs them."""
    if state.phase is Phase.WAITING:
        return [Check(CheckKind.HOOKS, HookType.CONFIRM_ROLLOUT)]
    due = [Check(CheckKind.READINESS)]
    if plan.skip_analysis:
        return due
    if plan.has_hooks(HookType.ROLLBACK):
        due.append(Check(CheckKind.HOOKS, HookType.ROLLBACK))
    if state.step < 0:
        due.append(Check(CheckKind.HOOKS, HookType.PRE_ROLLOUT))
    else:
        due += [Check(CheckKind.HOOKS, HookType.ROLLOUT), Check(CheckKind.METRICS)]
    follow = _follow_up(plan, state)
    if follow is not None:
        due.append(follow)
    return due


def advance(
    plan: ReleasePlan,
    state: ReleaseState,
    results: list[CheckResult],
    now: float,
    deadline: float,
) -> Decision:
    """The next state from this tick's results.

    `deadline` (absolute, like `now`) bounds the whole release, holds on closed gates and
    unready canaries included: past it the release rolls back, so traffic never waits on an
    unverified canary for ever.
    """
    if now >= deadline:
        waiting = f" while {state.reason}" if state.held_since is not None else ""
        return _rollback(state, f"release deadline exceeded{waiting}")
    if state.phase is Phase.WAITING:
        confirm = results[0] if results else None
        if confirm is not None and confirm.passed:
            return _start(plan)
        return _hold(state, now, f"confirm-rollout gate closed: {_reason(confirm)}")
    by_check = {result.check: result for result in results}
    readiness = by_check.get(Check(CheckKind.READINESS))
    if readiness is not None and not readiness.passed:
        if readiness.pending:
            return _hold(state, now, f"canary not ready: {readiness.reason}")
        return _rollback(state, f"canary not ready: {readiness.reason}")
    rollback = by_check.get(Check(CheckKind.HOOKS, HookType.ROLLBACK))
    if rollback is not None and rollback.passed:
        return _rollback(state, f"rollback requested by webhook: {rollback.reason}")
    if plan.skip_analysis:
        return _promote(plan, state, "analysis skipped (skipAnalysis)")
    failure = next((r for r in results if r.check in _ANALYSIS_CHECKS and not r.passed), None)
    if failure is not None:
        return _failed_check(plan, state, failure)
    follow = next((r for r in results if r.check.hook_type in _FOLLOW_UPS), None)
    if follow is not None and not follow.passed:
        held = _hold(state, now, f"{follow.check.hook_type} gate closed: {_reason(follow)}")
        if follow.check.hook_type is HookType.CONFIRM_PROMOTION:
            return replace(held, state=replace(held.state, phase=Phase.WAITING_PROMOTION))
        return held
    return _step(plan, state)


_FOLLOW_UPS = (HookType.CONFIRM_TRAFFIC_INCREASE, HookType.CONFIRM_PROMOTION)
_ANALYSIS_CHECKS = (
    Check(CheckKind.HOOKS, HookType.PRE_ROLLOUT),
    Check(CheckKind.HOOKS, HookType.ROLLOUT),
    Check(CheckKind.METRICS),
)


def _reason(result: CheckResult | None) -> str:
    return (result.reason or "closed") if result is not None else "not checked"


def _follow_up(plan: ReleasePlan, state: ReleaseState) -> Check | None:
    """After passing checks: confirm-promotion at the last step, else confirm-traffic-increase."""
    if state.step >= plan.last_step:
        if plan.has_hooks(HookType.CONFIRM_PROMOTION):
            return Check(CheckKind.HOOKS, HookType.CONFIRM_PROMOTION)
        return None
    current = plan.steps[state.step] if state.step >= 0 else None
    mirrored = current is not None and current.mirror
    if (
        plan.strategy is Strategy.CANARY
        and not mirrored
        and state.step >= 0
        and plan.has_hooks(HookType.CONFIRM_TRAFFIC_INCREASE)
    ):
        return Check(CheckKind.HOOKS, HookType.CONFIRM_TRAFFIC_INCREASE)
    return None


def _start(plan: ReleasePlan) -> Decision:
    message = f"New revision detected, starting {plan.describe()}"
    return Decision(
        ReleaseState(Phase.PROGRESSING),
        traffic=TrafficState(),
        events=(Event("info", message),),
        scale_canary_up=True,
    )


def _hold(state: ReleaseState, now: float, reason: str) -> Decision:
    """Waits without counting a failure; the release deadline bounds the wait."""
    held = replace(state, held_since=state.held_since or now, reason=reason)
    return Decision(held, events=(Event("info", f"Waiting: {reason}"),))


def _failed_check(plan: ReleasePlan, state: ReleaseState, failure: CheckResult) -> Decision:
    failed = state.failed_checks + 1
    reason = f"{failure.check}: {failure.reason}"
    counted = replace(state, failed_checks=failed, reason=reason, held_since=None)
    if failed >= plan.threshold:
        return _rollback(counted, f"failed checks threshold reached {failed}: {reason}")
    message = f"Halt advancement ({failed}/{plan.threshold}): {reason}"
    return Decision(counted, events=(Event("warn", message),))


def _step(plan: ReleasePlan, state: ReleaseState) -> Decision:
    if state.step >= plan.last_step:
        return _promote(plan, state, "analysis passed")
    index = state.step + 1
    step = plan.steps[index]
    moved = replace(
        state,
        phase=Phase.PROGRESSING,
        step=index,
        iterations=index + 1 if plan.strategy is not Strategy.CANARY else 0,
        held_since=None,
        reason=None,
        applied_weights=(*state.applied_weights, step.weight),
    )
    return Decision(
        moved,
        traffic=_traffic(step),
        events=(Event("info", _step_message(plan, step, index)),),
    )


def _promote(plan: ReleasePlan, state: ReleaseState, why: str) -> Decision:
    """Promotion right after the last passing check: no idle ticks in between."""
    promoted = replace(state, phase=Phase.PROMOTING, reason=why, held_since=None)
    traffic = None
    if plan.strategy is Strategy.BLUEGREEN and not plan.skip_analysis:
        traffic = TrafficState(canary_weight=100)
    return Decision(
        promoted,
        traffic=traffic,
        events=(Event("info", f"Copying the canary to the primary: {why}"),),
    )


def _rollback(state: ReleaseState, reason: str) -> Decision:
    """Every rollback ends the same way: all traffic to the primary, post-rollout hooks, alert."""
    failed = replace(state, phase=Phase.FAILED, reason=reason, held_since=None)
    return Decision(
        failed,
        traffic=TrafficState(),
        hooks=(HookType.POST_ROLLOUT,),
        events=(Event("error", f"Canary failed, rolling back: {reason}"),),
    )


def _traffic(step: Step) -> TrafficState:
    return TrafficState(canary_weight=step.weight, mirror=step.mirror)


def _step_message(plan: ReleasePlan, step: Step, index: int) -> str:
    """`Advance canary weight 20`; A/B and blue/green say what the iteration routes where."""
    if plan.strategy is not Strategy.CANARY:
        return f"Advance iteration {index + 1}/{len(plan.steps)}: {plan.routing(index)}"
    if step.mirror:
        return "Mirroring traffic to the canary"
    return f"Advance canary weight {step.weight}"
