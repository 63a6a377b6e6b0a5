"""A release's timing, settled once where the inputs enter: the interval and the deadline.

The analysis interval can be overridden (the gate's `interval` option, the rehearsal's
`--interval`); the override is validated here like the spec's own durations, and everything
downstream (the plan, the metric windows, the sleeps, the stale-record window, the review line)
reads this one value instead of parsing strings again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .canary import Analysis, Metric
from .durations import duration_problems, format_seconds, positive_seconds
from .errors import Problem, SpecError

# A record whose heartbeat is older than this many intervals (at least STALE_FLOOR_SECONDS)
# belongs to an interrupted run.
STALE_HEARTBEATS = 3
STALE_FLOOR_SECONDS = 10.0


@dataclass(frozen=True)
class Timing:
    """The interval between checks and the release's own deadline, in seconds.

    `override` is set when the interval comes from outside the spec; it then also sets every
    metric's window, so a fast rehearsal or pre-production stack queries windows as short as its
    checks. `deadline_seconds` is None for the default (see `analysis.plan`).
    """

    interval_seconds: float
    override: bool = False
    deadline_seconds: float | None = None

    @classmethod
    def of(
        cls,
        analysis: Analysis,
        *,
        interval: Any = None,
        deadline_seconds: Any = None,
        interval_field: str = "interval",
        deadline_field: str = "deadlineSeconds",
    ) -> Timing:
        """Validates the overrides, naming `interval_field` or `deadline_field` in the error."""
        problems = cls.problems(
            interval=interval,
            deadline_seconds=deadline_seconds,
            interval_field=interval_field,
            deadline_field=deadline_field,
        )
        if problems:
            raise SpecError(problems)
        overridden = interval is not None and interval != ""
        return cls(
            positive_seconds(interval) if overridden else analysis.interval_seconds,
            override=overridden,
            deadline_seconds=None if deadline_seconds is None else float(deadline_seconds),
        )

    @staticmethod
    def problems(
        *,
        interval: Any = None,
        deadline_seconds: Any = None,
        interval_field: str = "interval",
        deadline_field: str = "deadlineSeconds",
    ) -> list[Problem]:
        """What is wrong with the overrides, also when the spec they apply to is invalid."""
        problems = []
        if interval is not None and interval != "":
            problems += duration_problems(interval, interval_field)
        if deadline_seconds is not None and (
            isinstance(deadline_seconds, bool)
            or not isinstance(deadline_seconds, (int, float))
            or not deadline_seconds > 0
        ):
            problems.append(
                Problem(deadline_field, "must be a positive number", deadline_seconds, True)
            )
        return problems

    @property
    def interval(self) -> str:
        """The interval as a duration string, for `{{ interval }}` and messages."""
        return format_seconds(self.interval_seconds)

    @property
    def stale_after_seconds(self) -> float:
        """How old a release record's heartbeat may be before its run counts as interrupted."""
        return STALE_HEARTBEATS * max(self.interval_seconds, STALE_FLOOR_SECONDS)

    def window(self, metric: Metric) -> str:
        """The PromQL range of a metric: its own interval, or the override's."""
        return self.interval if self.override else metric.interval
