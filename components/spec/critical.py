"""Critical conditions: bounds that roll a canary back as soon as one is breached.

Flagger rolls a bad canary back only after `threshold` failed checks, one per interval; like
Kayenta's critical metrics, a critical condition fails the release on its own. It is watched
between checks at the cadence Prometheus scrapes the mesh, since no query can see anything
newer. The settings stay outside Flagger's schema, so a Canary stays valid for Flagger: the
Canary's annotations `canary.pulumi.com/critical` and `canary.pulumi.com/scrape-interval`, or
the gate's `critical` and `scrapeInterval` options, which win over them.

The `critical` value lists conditions `METRIC OP NUMBER` separated by commas, where OP is `<`,
`<=`, `>` or `>=` and says which values breach (`request-success-rate < 50, request-duration >
2000`), or is `off`. METRIC is a metric of `spec.analysis.metrics` (its own query, a
template's included) or a built-in one (Flagger's query, even if the analysis does not list it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .canary import BUILTIN_METRICS, REQUEST_SUCCESS_RATE, Analysis, Metric, ObjectMeta
from .durations import duration_problems, format_seconds, positive_seconds
from .errors import Problem, SpecError

if TYPE_CHECKING:
    from .release import MetricQuery, ReleaseSpec

CRITICAL_ANNOTATION = "canary.pulumi.com/critical"
SCRAPE_INTERVAL_ANNOTATION = "canary.pulumi.com/scrape-interval"
OFF = "off"
DEFAULT_CRITICAL = f"{REQUEST_SUCCESS_RATE} < 50"
# Istio's Prometheus scrapes the mesh every 15 s.
DEFAULT_SCRAPE_INTERVAL = "15s"
# A critical query's window, in scrape intervals: rate() needs two samples in its range, and
# four scrapes is Prometheus' rule of thumb for a range that always holds two.
WINDOW_SCRAPES = 4

_CONDITION = re.compile(
    r"\s*(?P<metric>[A-Za-z0-9][A-Za-z0-9_.:-]*)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<bound>[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*"
)
_FORM = f"must be METRIC < NUMBER (or <=, >, >=), e.g. {DEFAULT_CRITICAL!r}"


class Comparison(StrEnum):
    """Which side of the bound breaches."""

    BELOW = "<"
    AT_MOST = "<="
    ABOVE = ">"
    AT_LEAST = ">="


@dataclass(frozen=True)
class CriticalCondition:
    """A metric and the values of it that end the release at once."""

    metric: str
    comparison: Comparison
    bound: float

    def __str__(self) -> str:
        return f"{self.metric} {self.comparison} {self.bound:g}"


@dataclass(frozen=True)
class CriticalQuery:
    """A condition with the query that gives its metric's value, rendered for the release."""

    condition: CriticalCondition
    query: MetricQuery


@dataclass(frozen=True)
class Critical:
    """A release's critical conditions (none when `off`) and the scrape interval they are
    watched at: one query per condition per scrape."""

    conditions: tuple[CriticalCondition, ...]
    scrape_seconds: float

    @classmethod
    def of(
        cls,
        release: ReleaseSpec,
        *,
        critical: Any = None,
        scrape_interval: Any = None,
        critical_field: str = "critical",
        scrape_field: str = "scrapeInterval",
    ) -> Critical:
        """The options if given, else the Canary's annotations, else the defaults; raises
        SpecError naming `critical_field` or `scrape_field` and the bad value."""
        analysis = release.spec.analysis
        problems = cls.problems(
            analysis,
            critical=critical,
            scrape_interval=scrape_interval,
            critical_field=critical_field,
            scrape_field=scrape_field,
        )
        if problems:
            raise SpecError(problems)
        annotations = release.canary.metadata.annotations or {}
        if critical is None:
            critical = annotations.get(CRITICAL_ANNOTATION, DEFAULT_CRITICAL)
        if scrape_interval is None:
            scrape_interval = annotations.get(SCRAPE_INTERVAL_ANNOTATION, DEFAULT_SCRAPE_INTERVAL)
        conditions, _ = _parse(critical, critical_field, analysis)
        return cls(conditions, positive_seconds(scrape_interval))

    @staticmethod
    def problems(
        analysis: Analysis | None,
        *,
        critical: Any = None,
        scrape_interval: Any = None,
        critical_field: str = "critical",
        scrape_field: str = "scrapeInterval",
    ) -> list[Problem]:
        """What is wrong with the settings given (None: not given); without `analysis`, the
        syntax only, for when the spec they apply to is itself invalid."""
        problems = []
        if critical is not None:
            problems += _parse(critical, critical_field, analysis)[1]
        if scrape_interval is not None:
            problems += duration_problems(scrape_interval, scrape_field)
        return problems

    @property
    def window(self) -> str:
        """The range of the critical queries, as `{{ interval }}` renders it."""
        return format_seconds(WINDOW_SCRAPES * self.scrape_seconds)

    def queries(self, release: ReleaseSpec) -> list[CriticalQuery]:
        """Each condition's query over `window`: its metric's own in the analysis, else the
        built-in one."""
        listed = {metric.name: metric for metric in release.spec.analysis.metrics}
        return [
            CriticalQuery(
                condition,
                release.query(
                    listed.get(condition.metric) or Metric(name=condition.metric), self.window
                ),
            )
            for condition in self.conditions
        ]

    def describe(self) -> str:
        """`request-success-rate < 50 every 15s`, or `off`."""
        if not self.conditions:
            return OFF
        listed = ", ".join(str(condition) for condition in self.conditions)
        return f"{listed} every {format_seconds(self.scrape_seconds)}"

    def announcement(self) -> str | None:
        """What a release says of its watch, at preview and as it starts; None when `off`."""
        if not self.conditions:
            return None
        return f"watching {self.describe()}: a breach rolls back at once"


def annotation_problems(metadata: ObjectMeta, analysis: Analysis) -> list[Problem]:
    """What is wrong with the Canary's critical annotations, by their field paths."""
    annotations = metadata.annotations or {}
    return Critical.problems(
        analysis,
        critical=annotations.get(CRITICAL_ANNOTATION),
        scrape_interval=annotations.get(SCRAPE_INTERVAL_ANNOTATION),
        critical_field=f'metadata.annotations["{CRITICAL_ANNOTATION}"]',
        scrape_field=f'metadata.annotations["{SCRAPE_INTERVAL_ANNOTATION}"]',
    )


def _parse(
    text: Any, path: str, analysis: Analysis | None
) -> tuple[tuple[CriticalCondition, ...], list[Problem]]:
    """The conditions in `text` and the problems found; each problem shows the whole value."""

    def problem(message: str) -> Problem:
        return Problem(path, message, text, True)

    if not isinstance(text, str):
        return (), [problem(f"must be a string of conditions such as {DEFAULT_CRITICAL!r}")]
    if text.strip() == OFF:
        return (), []
    if not text.strip():
        return (), [problem(f"must list conditions such as {DEFAULT_CRITICAL!r}, or be {OFF!r}")]
    listed = [] if analysis is None else [metric.name for metric in analysis.metrics]
    known = [*BUILTIN_METRICS, *(name for name in listed if name not in BUILTIN_METRICS)]
    conditions: dict[CriticalCondition, None] = {}
    problems = []
    for index, clause in enumerate(text.split(","), start=1):
        shown = f"condition {index} {clause.strip()!r}"
        found = _CONDITION.fullmatch(clause)
        if found is None:
            hint = f"; {OFF!r} stands alone" if clause.strip() == OFF else ""
            problems.append(problem(f"{shown}: {_FORM}{hint}"))
            continue
        metric = found["metric"]
        if analysis is not None and metric not in known:
            problems.append(
                problem(
                    f"{shown}: {metric!r} is neither built in nor in spec.analysis.metrics "
                    f"(known: {', '.join(known)})"
                )
            )
            continue
        bound = float(found["bound"])
        if not math.isfinite(bound):
            problems.append(problem(f"{shown}: the bound is too large"))
            continue
        condition = CriticalCondition(metric, Comparison(found["op"]), bound)
        conditions[condition] = None  # the same condition twice is queried once
    return tuple(conditions), problems
