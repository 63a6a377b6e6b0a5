"""The decision core, driven tick by tick with chosen and random outcomes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from components.analysis import (
    Check,
    CheckKind,
    CheckResult,
    Phase,
    ReleasePlan,
    ReleaseState,
    advance,
    begin,
    canary_weights,
    checks,
    plan,
    template_change,
)
from components.analysis.plan import describe_match
from components.routing import TrafficState
from components.spec import Canary, CanarySpec, HookType, ReleaseSpec
from components.spec.istio import HTTPMatchRequest
from components.spec.timing import Timing
from tests.conftest import load_yaml

Outcome = Callable[[Check, int], CheckResult]


@dataclass
class Run:
    state: ReleaseState
    traffic: list[TrafficState] = field(default_factory=list)
    ticks: int = 0
    checks: int = 0


def spec_with(**analysis: Any) -> CanarySpec:
    manifest = load_yaml("canary.yaml")
    manifest["spec"]["analysis"].pop("stepWeight")
    manifest["spec"]["analysis"].update(analysis)
    return Canary.model_validate(manifest).spec


def plan_of(spec: CanarySpec) -> ReleasePlan:
    return plan(spec, Timing.of(spec.analysis))


def passing(check: Check, tick: int) -> CheckResult:
    return CheckResult(check, passed=check.hook_type is not HookType.ROLLBACK)


def drive(spec: CanarySpec, outcome: Outcome = passing, limit: int = 200) -> Run:
    """Runs the state machine as the driver does, one interval per tick, deadline far away."""
    release_plan = plan_of(spec)
    decision = begin(release_plan)
    run = Run(decision.state)
    if decision.traffic:
        run.traffic.append(decision.traffic)
    while not run.state.done and run.ticks < limit:
        results = []
        for check in checks(release_plan, run.state):
            result = outcome(check, run.ticks)
            results.append(result)
            if check.kind is CheckKind.METRICS:
                run.checks += 1
            if result.blocks:
                break
        decision = advance(release_plan, run.state, results, now=float(run.ticks), deadline=1e9)
        run.state = decision.state
        if decision.traffic:
            run.traffic.append(decision.traffic)
        run.ticks += 1
    return run


def test_tutorial_canary_promotes_through_10_to_50_with_five_checks() -> None:
    spec = spec_with(stepWeight=10)
    run = drive(spec)
    assert run.state.phase is Phase.PROMOTING
    assert run.state.applied_weights == (10, 20, 30, 40, 50)
    assert run.checks == 5
    assert run.ticks == 6  # the first tick steps to 10 without a metric check


def test_last_step_is_clamped_to_max_weight() -> None:
    assert canary_weights(spec_with(stepWeight=20, maxWeight=50).analysis) == [20, 40, 50]
    assert canary_weights(spec_with(stepWeights=[1, 5, 60, 80], maxWeight=50).analysis) == [
        1,
        5,
        50,
    ]


def test_failed_checks_add_up_and_do_not_advance() -> None:
    spec = spec_with(stepWeight=10, threshold=3)

    def flaky(check: Check, tick: int) -> CheckResult:
        failing = check.kind is CheckKind.METRICS and tick in (2, 4, 6)
        return CheckResult(check, passed=not failing and check.hook_type is not HookType.ROLLBACK)

    run = drive(spec, flaky)
    assert run.state.phase is Phase.FAILED
    assert run.state.failed_checks == 3
    assert "failed checks threshold reached 3" in (run.state.reason or "")
    assert run.state.applied_weights == (10, 20, 30, 40)
    assert run.traffic[-1] == TrafficState()


def test_first_step_goes_in_without_metric_check() -> None:
    release_plan = plan_of(spec_with(stepWeight=10))
    first = checks(release_plan, begin(release_plan).state)
    assert Check(CheckKind.METRICS) not in first
    assert Check(CheckKind.HOOKS, HookType.PRE_ROLLOUT) in first


def test_ab_promotes_after_its_iterations_with_matched_traffic_at_100() -> None:
    manifest = load_yaml("canary-ab-testing.yaml")
    spec = Canary.model_validate(manifest).spec
    run = drive(spec)
    assert run.state.phase is Phase.PROMOTING
    assert run.state.applied_weights == (100,) * 10
    assert run.checks == 10


def test_bluegreen_iterates_at_zero_then_switches_to_the_canary() -> None:
    spec = spec_with(iterations=4)
    run = drive(spec)
    assert run.state.applied_weights == (0, 0, 0, 0)
    assert run.traffic[-1] == TrafficState(canary_weight=100)


def test_mirroring_canary_mirrors_first_then_steps() -> None:
    spec = spec_with(stepWeight=25, maxWeight=50, mirror=True, mirrorWeight=50)
    run = drive(spec)
    assert run.traffic[1] == TrafficState(canary_weight=0, mirror=True)
    assert run.state.applied_weights == (0, 25, 50)


def test_closed_confirm_promotion_holds_then_rolls_back_at_the_deadline() -> None:
    spec = spec_with(
        stepWeight=50,
        webhooks=[{"name": "gate", "type": "confirm-promotion", "url": "http://gate/"}],
    )
    release_plan = plan_of(spec)
    state = begin(release_plan).state
    for tick in range(4):
        results = [
            CheckResult(c, passed=c.hook_type is not HookType.CONFIRM_PROMOTION)
            for c in checks(release_plan, state)
        ]
        state = advance(release_plan, state, results, now=float(tick), deadline=3.0).state
    assert state.phase is Phase.FAILED
    assert "deadline exceeded while confirm-promotion gate closed" in (state.reason or "")
    assert state.failed_checks == 0


def test_rollback_hook_answering_2xx_rolls_back() -> None:
    spec = spec_with(
        stepWeight=10, webhooks=[{"name": "abort", "type": "rollback", "url": "http://gate/"}]
    )
    run = drive(spec, lambda check, tick: CheckResult(check, passed=True, reason="200 OK"))
    assert run.state.phase is Phase.FAILED
    assert "rollback requested by webhook" in (run.state.reason or "")


def test_skip_analysis_promotes_without_checks() -> None:
    manifest = copy.deepcopy(load_yaml("canary.yaml"))
    manifest["spec"]["skipAnalysis"] = True
    run = drive(Canary.model_validate(manifest).spec)
    assert run.state.phase is Phase.PROMOTING
    assert run.checks == 0


def test_plan_describes_steps_and_worst_case() -> None:
    release_plan = plan_of(spec_with(stepWeight=10))
    assert release_plan.describe() == "canary 10% -> 50% in 5 steps every 1m"
    assert release_plan.worst_case_seconds == (5 + 5 - 1) * 60


GATE_HOOKS = ["confirm-traffic-increase", "confirm-promotion", "rollback"]


@settings(max_examples=300, deadline=None)
@given(
    step=st.integers(1, 100),
    max_weight=st.integers(1, 100),
    threshold=st.integers(1, 5),
    outcomes=st.lists(st.booleans(), min_size=1, max_size=60),
    hook_outcomes=st.lists(st.booleans(), min_size=1, max_size=60),
    gate_hooks=st.sets(st.sampled_from(GATE_HOOKS)),
)
def test_invariants_over_random_outcomes(  # noqa: PLR0917 (one argument per hypothesis strategy)
    step: int,
    max_weight: int,
    threshold: int,
    outcomes: list[bool],
    hook_outcomes: list[bool],
    gate_hooks: set[str],
) -> None:
    spec = spec_with(
        stepWeight=step,
        maxWeight=max_weight,
        threshold=threshold,
        webhooks=[
            {"name": "load-test", "url": "http://t/"},
            *({"name": kind, "type": kind, "url": "http://t/"} for kind in sorted(gate_hooks)),
        ],
    )
    failed_at_threshold = False

    def outcome(check: Check, tick: int) -> CheckResult:
        if check.kind is CheckKind.METRICS:
            return CheckResult(check, passed=outcomes[tick % len(outcomes)])
        if check.hook_type is HookType.ROLLBACK:
            return CheckResult(check, passed=hook_outcomes[tick % len(hook_outcomes)] and tick > 50)
        return CheckResult(check, passed=hook_outcomes[(tick * 7) % len(hook_outcomes)])

    run = drive(spec, outcome, limit=120)
    failed_at_threshold = run.state.failed_checks >= threshold
    for state in run.traffic:
        assert 0 <= state.canary_weight <= 100
        assert state.primary_weight + state.canary_weight == 100
        assert state.canary_weight <= max_weight
    assert all(weight <= max_weight for weight in run.state.applied_weights)
    if run.state.phase is Phase.PROMOTING:
        assert not failed_at_threshold
    if run.state.phase is Phase.FAILED:
        assert run.traffic[-1] == TrafficState()


# -- the change review ------------------------------------------------------------------------


def _template(*images: str, **spec: Any) -> dict[str, Any]:
    containers = [{"name": f"c{index}", "image": image} for index, image in enumerate(images)]
    return {"metadata": {"labels": {"app": "podinfo"}}, "spec": {"containers": containers, **spec}}


def test_template_change_names_images_shortly_when_the_repository_stays() -> None:
    assert template_change(_template("repo/app:1"), _template("repo/app:2")) == "repo/app:1 -> 2"
    assert template_change(_template("a:1"), _template("b:1")) == "a:1 -> b:1"
    assert template_change(_template("a:1"), _template("a:1", "side:3")) == "+c1 side:3"


def test_template_change_without_new_images_names_the_fields() -> None:
    old, new = _template("a:1"), _template("a:1", serviceAccountName="robot")
    new["metadata"]["annotations"] = {"x": "y"}
    assert template_change(old, new) == (
        "pod template changed: metadata.annotations, spec.serviceAccountName"
    )


# -- the plan in words ---------------------------------------------------------------------------


def test_a_b_plans_name_their_match_and_route_matched_traffic() -> None:
    canary = load_yaml("canary-ab-testing.yaml")
    spec = ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml")).spec
    ab = plan(spec, Timing.of(spec.analysis))
    assert ab.matched == "x-user-type: beta"
    assert ab.describe() == (
        "A/B: matched traffic (x-user-type: beta) to the canary for 10 iterations every 1m"
    )
    assert ab.routing(0) == "matched traffic (x-user-type: beta) -> canary"
    assert ab.step_label(2) == "iteration 3/10, matched traffic (x-user-type: beta) -> canary"


def test_match_conditions_in_words() -> None:
    conditions = [
        HTTPMatchRequest.model_validate(
            {"headers": {"x-canary": {"exact": "insider"}, "cookie": {"regex": ".*beta.*"}}}
        ),
        HTTPMatchRequest.model_validate({"uri": {"prefix": "/beta"}}),
    ]
    assert describe_match(conditions) == "x-canary: insider, cookie ~ .*beta.* or uri: /beta*"


def test_canary_steps_say_their_weight_or_the_mirror() -> None:
    spec = ReleaseSpec.parse(
        canary={**load_yaml("canary.yaml")}, deployment=load_yaml("deployment.yaml")
    ).spec
    analysis = spec.analysis.model_copy(update={"mirror": True})
    mirrored = plan(spec.model_copy(update={"analysis": analysis}), Timing.of(analysis))
    assert [mirrored.routing(index) for index in range(2)] == [
        "mirrored to the canary",
        "weight 10%",
    ]
