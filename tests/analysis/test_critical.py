"""Critical conditions decided: which values breach, and the rollback a breach makes."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from components.analysis import Phase, ReleaseState, breach, critical_rollback
from components.routing import TrafficState
from components.spec import HookType
from components.spec.critical import Comparison, CriticalCondition

values = st.floats(allow_nan=False, allow_infinity=False)
conditions = st.builds(
    CriticalCondition,
    st.sampled_from(["request-success-rate", "p99"]),
    st.sampled_from(Comparison),
    values,
)
# Each comparison and the one that holds exactly where it does not.
COMPLEMENTS = {
    Comparison.BELOW: Comparison.AT_LEAST,
    Comparison.AT_MOST: Comparison.ABOVE,
    Comparison.ABOVE: Comparison.AT_MOST,
    Comparison.AT_LEAST: Comparison.BELOW,
}


@given(conditions)
def test_no_value_never_breaches(condition: CriticalCondition) -> None:
    """No data yet, or no answer from Prometheus, says nothing about the canary."""
    assert breach(condition, None) is None
    assert breach(condition, math.nan) is None


@given(conditions, values)
def test_a_value_breaches_a_condition_or_its_complement_never_both(
    condition: CriticalCondition, value: float
) -> None:
    complement = CriticalCondition(
        condition.metric, COMPLEMENTS[condition.comparison], condition.bound
    )
    assert (breach(condition, value) is None) != (breach(complement, value) is None)


@given(conditions)
def test_the_bound_itself_breaches_only_an_inclusive_condition(
    condition: CriticalCondition,
) -> None:
    inclusive = condition.comparison in (Comparison.AT_MOST, Comparison.AT_LEAST)
    assert (breach(condition, condition.bound) is not None) == inclusive


@given(conditions, values, values)
def test_a_value_further_on_the_breaching_side_breaches_too(
    condition: CriticalCondition, value: float, other: float
) -> None:
    below = condition.comparison in (Comparison.BELOW, Comparison.AT_MOST)
    further = min(value, other) if below else max(value, other)
    if breach(condition, value) is not None:
        assert breach(condition, further) is not None


@given(st.floats(min_value=50, max_value=100))
def test_the_default_never_breaches_a_canary_with_half_its_requests_succeeding(
    success_rate: float,
) -> None:
    assert (
        breach(CriticalCondition("request-success-rate", Comparison.BELOW, 50), success_rate)
        is None
    )


states = st.builds(
    ReleaseState,
    phase=st.sampled_from([Phase.PROGRESSING, Phase.WAITING_PROMOTION]),
    step=st.integers(min_value=0, max_value=20),
    failed_checks=st.integers(min_value=0, max_value=10),
    iterations=st.integers(min_value=0, max_value=20),
    held_since=st.none() | st.floats(min_value=0, max_value=1e6),
    reason=st.none() | st.text(max_size=20),
    applied_weights=st.lists(st.integers(min_value=0, max_value=100), max_size=5).map(tuple),
)


@given(states, conditions, values)
def test_a_breach_rolls_back_at_once_whatever_the_state_naming_condition_and_value(
    state: ReleaseState, condition: CriticalCondition, value: float
) -> None:
    found = breach(condition, value)
    if found is None:
        return
    decision = critical_rollback(state, found)
    assert decision.state.phase is Phase.FAILED and decision.state.done
    assert decision.traffic == TrafficState()  # every user back on the primary
    assert decision.hooks == (HookType.POST_ROLLOUT,)
    assert decision.state.failed_checks == state.failed_checks  # the condition alone decided
    assert decision.state.held_since is None
    reason = decision.state.reason or ""
    assert f"critical condition {condition} breached" in reason
    assert f"{condition.metric} is {value:g}" in reason
    assert [event.severity for event in decision.events] == ["error"]
    assert reason in decision.events[0].message
