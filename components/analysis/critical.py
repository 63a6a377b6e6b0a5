"""Critical conditions decided: whether a value breaches one, and what a breach does.

A breach fails the release on its own, as a critical metric does in Kayenta: the rollback is
immediate, whatever the count of failed checks. No value never breaches: no data yet (the
first scrapes after the canary takes traffic) or no answer from Prometheus says nothing about
the canary, and the normal checks already fail a release whose Prometheus stays silent.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

from ..spec.critical import Comparison, CriticalCondition
from .engine import Decision, ReleaseState, _rollback

_BREACHES: dict[Comparison, Callable[[float, float], bool]] = {
    Comparison.BELOW: operator.lt,
    Comparison.AT_MOST: operator.le,
    Comparison.ABOVE: operator.gt,
    Comparison.AT_LEAST: operator.ge,
}


@dataclass(frozen=True)
class Breach:
    """A critical condition and the value that breached it."""

    condition: CriticalCondition
    value: float

    def __str__(self) -> str:
        return (
            f"critical condition {self.condition} breached: "
            f"{self.condition.metric} is {self.value:g}"
        )


def breach(condition: CriticalCondition, value: float | None) -> Breach | None:
    """The breach `value` makes of `condition`, if any; None and NaN (no value) never do."""
    if value is None or math.isnan(value):
        return None
    if _BREACHES[condition.comparison](value, condition.bound):
        return Breach(condition, value)
    return None


def critical_rollback(state: ReleaseState, found: Breach) -> Decision:
    """All traffic to the primary now, as every rollback: the reason names the condition and
    the value, and the failed checks stay as counted (the condition alone decided)."""
    return _rollback(state, str(found))
