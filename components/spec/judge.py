"""The judge document: Kayenta's NetflixACAJudge settings, in a YAML document of its own.

A Flagger Canary must stay valid for Flagger, so the statistical judge is configured by a
separate `Judge` document (`apiVersion: canary.pulumi.com/v1alpha1`). The defaults are
Kayenta's; docs/judge.md lists each one with the Kayenta source it comes from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from statistics import NormalDist
from typing import Any, Literal, NamedTuple

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from .base import SpecModel
from .canary import ObjectMeta
from .durations import Duration, format_seconds, parse_seconds
from .errors import Problem, SpecError
from .queries import QueryContext, check_syntax, render

JUDGE_API_VERSION = "canary.pulumi.com/v1alpha1"
JUDGE_METRIC = "judge"
"""The judge's name where it stands beside the metrics: the record, pushed metrics, reports."""
DEFAULT_GROUP = "default"
# NetflixACAJudge builds its MannWhitneyClassifier with confLevel 0.98 and tolerance 0.25.
DEFAULT_CONFIDENCE_LEVEL = 0.98
DEFAULT_TOLERANCE = 0.25
# NetflixACAJudge's default outlierFactor.
DEFAULT_OUTLIER_FACTOR = 3.0
DEFAULT_STEP = "5s"
# Samples per side in one check at most: the test sorts all m x n pairwise differences, which
# for 1,000 against 1,000 takes about a second a metric (Prometheus's own cap is 11,000).
MAX_SAMPLES = 1000

# What a query is rendered with to check it: any names will do, the syntax is what counts.
_CHECK_CONTEXT = QueryContext(
    name="podinfo",
    namespace="default",
    target="podinfo",
    service="podinfo",
    interval="1m",
    variables={},
)


_Problem = tuple[tuple[str | int, ...], str, Any]
"""A cross-field problem: its location inside the model, the message and the bad value."""


class Direction(StrEnum):
    """Which change fails the metric (Kayenta's `direction`)."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"


class EffectMeasure(StrEnum):
    MEAN_RATIO = "meanRatio"
    CLES = "cles"

    @property
    def neutral(self) -> float:
        """The value of "no effect", which is also Kayenta's default for every threshold."""
        return 0.5 if self is EffectMeasure.CLES else 1.0


class NanStrategy(StrEnum):
    REMOVE = "remove"
    REPLACE = "replace"


class OutlierStrategy(StrEnum):
    KEEP = "keep"
    REMOVE = "remove"


class MarginalPolicy(StrEnum):
    """What a Marginal verdict does to the check: hold it open, fail it, or pass it."""

    HOLD = "hold"
    FAIL = "fail"
    PASS = "pass"


_THRESHOLDS = ("allowed_increase", "allowed_decrease", "critical_increase", "critical_decrease")


class EffectSize(SpecModel):
    """How large a significant change must be to count (`allowed*`) or to be critical."""

    measure: EffectMeasure = EffectMeasure.MEAN_RATIO
    allowed_increase: float = 1.0
    allowed_decrease: float = 1.0
    critical_increase: float = 1.0
    critical_decrease: float = 1.0

    @model_validator(mode="before")
    @classmethod
    def _neutral_defaults(cls, data: Any) -> Any:
        """Unset thresholds take the measure's neutral value (0.5 for cles), as in Kayenta."""
        if not isinstance(data, Mapping) or data.get("measure") != EffectMeasure.CLES:
            return data
        filled = dict(data)
        for name in _THRESHOLDS:
            if name not in filled and to_camel(name) not in filled:
                filled[to_camel(name)] = EffectMeasure.CLES.neutral
        return filled

    @model_validator(mode="after")
    def _on_the_failing_side(self) -> EffectSize:
        neutral = self.measure.neutral
        problems: list[_Problem] = []
        for name in _THRESHOLDS:
            value = getattr(self, name)
            increase = name.endswith("increase")
            if value < neutral if increase else value > neutral:
                side = "at least" if increase else "at most"
                problems.append(
                    ((to_camel(name),), f"must be {side} {neutral:g} for {self.measure}", value)
                )
            elif self.measure is EffectMeasure.CLES and not 0 <= value <= 1:
                problems.append(((to_camel(name),), "a cles is a probability, 0 to 1", value))
        _raise_if(problems, self)
        return self


class Outliers(SpecModel):
    """Kayenta's IQR outlier removal; `factor` is Kayenta's `outlierFactor`."""

    strategy: OutlierStrategy = OutlierStrategy.KEEP
    factor: float = Field(default=DEFAULT_OUTLIER_FACTOR, gt=0)


@dataclass(frozen=True)
class SampleWindow:
    """When one check samples: `count` evaluation times `step` seconds apart, the last at `end`.

    With `{{ interval }}` one step long, sample k covers (t_k - step, t_k]: the samples share no
    data, so the test sees `count` independent observations of the last count x step seconds.
    """

    end: float
    step: float
    count: int

    @property
    def start(self) -> float:
        return self.end - (self.count - 1) * self.step

    @property
    def times(self) -> list[float]:
        return [self.start + index * self.step for index in range(self.count)]


class SampleQueries(NamedTuple):
    """A metric's query rendered twice, for the two sides the judge compares."""

    canary: str
    primary: str


class JudgeMetric(SpecModel):
    """One judged metric: a PromQL query run once for the canary and once for the primary."""

    name: str = Field(min_length=1)
    query: str = Field(min_length=1)
    group: str = Field(default=DEFAULT_GROUP, min_length=1)
    direction: Direction = Direction.EITHER
    effect_size: EffectSize = Field(default_factory=EffectSize)
    critical: bool = False
    must_have_data: bool = False
    muted: bool = False
    nan_strategy: NanStrategy = NanStrategy.REMOVE
    outliers: Outliers = Field(default_factory=Outliers)
    unit: str = Field(default="", description="Shown after numbers in reasons, e.g. `ms`.")

    @field_validator("query")
    @classmethod
    def _renders_and_parses(cls, query: str) -> str:
        try:
            rendered = render(query, _CHECK_CONTEXT)
        except KeyError as error:
            raise ValueError(error.args[0]) from None
        other = render(query, replace(_CHECK_CONTEXT, target=f"{_CHECK_CONTEXT.target}-primary"))
        if rendered == other:
            raise ValueError(
                "must use {{ target }}: it selects the canary, then the primary, so without "
                "it both samples are the same series"
            )
        check_syntax(rendered)
        return query

    def sample_queries(self, context: QueryContext) -> SampleQueries:
        """The query for the canary (`context.target`) and for its primary (`-primary`)."""
        primary = replace(context, target=f"{context.target}-primary")
        return SampleQueries(render(self.query, context), render(self.query, primary))


class Group(SpecModel):
    """A metric group; groups without a weight share what the weighted ones leave of 100."""

    name: str = Field(min_length=1)
    weight: float | None = Field(default=None, ge=0, le=100)


class Thresholds(SpecModel):
    """Score thresholds: at least `pass` passes, at least `marginal` is Marginal, below fails."""

    pass_score: float = Field(alias="pass", ge=0, le=100)
    marginal: float = Field(
        gt=0, le=100, description="Above 0, so that a score of 0 (a critical failure) fails."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.marginal > self.pass_score:
            message = f"must not be above pass ({self.pass_score:g})"
            _raise_if([(("marginal",), message, self.marginal)], self)
        return self


class JudgeSpec(SpecModel):
    """`spec` of a Judge: the metrics, their groups and how the score becomes a verdict."""

    metrics: list[JudgeMetric] = Field(min_length=1)
    groups: list[Group] = Field(default_factory=list)
    thresholds: Thresholds
    on_marginal: MarginalPolicy = MarginalPolicy.HOLD
    confidence_level: float = Field(default=DEFAULT_CONFIDENCE_LEVEL, gt=0, lt=1)
    tolerance: float = Field(default=DEFAULT_TOLERANCE, ge=0)
    step: Duration = DEFAULT_STEP

    @field_validator("step")
    @classmethod
    def _positive(cls, step: str) -> str:
        if parse_seconds(step) <= 0:
            raise ValueError("must be longer than 0s")
        return step

    @model_validator(mode="after")
    def _consistent(self) -> JudgeSpec:
        _raise_if(
            [
                *_unique(self.metrics, "metrics"),
                *_unique(self.groups, "groups"),
                *self._group_problems(),
                *self._weight_problems(),
                *self._muted_problems(),
            ],
            self,
        )
        return self

    @property
    def step_seconds(self) -> float:
        return parse_seconds(self.step)

    @property
    def min_samples(self) -> int:
        """The fewest samples per side that can reach `confidence_level` at all: n against n
        with every canary sample above every primary one, no ties (5 at 0.98, 4 at 0.95).
        Below it the interval is the range of the differences, and chance alone fails canaries.
        """
        quantile = NormalDist().inv_cdf(1 - (1 - self.confidence_level) / 2)
        count = 1
        while _separated_z(count) < quantile:
            count += 1
        return count

    def samples_per_check(self, interval_seconds: float) -> int:
        """Samples per side in one check: one per step of the interval since the last check."""
        return math.floor(interval_seconds / self.step_seconds + 1e-9)

    def window(self, end: float, interval_seconds: float) -> SampleWindow:
        """The sample times of the check at `end`: the interval since the previous check."""
        return SampleWindow(
            end, self.step_seconds, max(self.samples_per_check(interval_seconds), 1)
        )

    def sampling_problems(self, interval_seconds: float, path: str) -> list[Problem]:
        """Too few samples per check for the confidence level, or too many to compare every
        pair in good time, reported at `path` (the step)."""
        count, needed = self.samples_per_check(interval_seconds), self.min_samples
        gives = (
            f"gives {count} samples per side in each {format_seconds(interval_seconds)} check "
            "(one per step)"
        )
        if count < needed:
            longest_step = math.floor(interval_seconds * 1000 / needed) / 1000
            message = (
                f"{gives}; confidenceLevel {self.confidence_level:g} needs at least {needed}: "
                f"a step of at most {format_seconds(longest_step)}, or an interval of at least "
                f"{format_seconds(self.step_seconds * needed)}"
            )
        elif count > MAX_SAMPLES:
            shortest_step = math.ceil(interval_seconds * 1000 / MAX_SAMPLES) / 1000
            message = (
                f"{gives}; at most {MAX_SAMPLES}, as the test compares every canary sample with "
                f"every primary one: a step of at least {format_seconds(shortest_step)}"
            )
        else:
            return []
        return [Problem(path, message, self.step, True)]

    @property
    def weights(self) -> dict[str, float]:
        """Each group's share of the score, in percent; unweighted groups split the rest."""
        declared = {group.name: group.weight for group in self.groups}
        used = list(dict.fromkeys(metric.group for metric in self.metrics))
        unweighted = [name for name in used if declared.get(name) is None]
        rest = 100 - sum(weight for weight in declared.values() if weight is not None)
        share = rest / len(unweighted) if unweighted else 0.0
        return {name: _or(declared.get(name), share) for name in used}

    def _group_problems(self) -> list[_Problem]:
        declared = [group.name for group in self.groups]
        used = {metric.group for metric in self.metrics}
        known = ", ".join(declared) or "none"
        problems: list[_Problem] = [
            (
                ("metrics", index, "group"),
                f"not in groups (declared: {known}; {DEFAULT_GROUP!r} needs no declaration)",
                metric.group,
            )
            for index, metric in enumerate(self.metrics)
            if metric.group != DEFAULT_GROUP and metric.group not in declared
        ]
        problems += [
            (("groups", index, "name"), "no metric is in this group", name)
            for index, name in enumerate(declared)
            if name not in used
        ]
        return problems

    def _weight_problems(self) -> list[_Problem]:
        weighted = {group.name: group.weight for group in self.groups if group.weight is not None}
        total = sum(weighted.values())
        if total > 100:
            return [(("groups",), f"weights total {total:g}, above 100", weighted)]
        everyone = {metric.group for metric in self.metrics} <= set(weighted)
        if everyone and total != 100:
            return [
                (
                    ("groups",),
                    f"every group has a weight, so the weights must total 100, not {total:g}",
                    weighted,
                )
            ]
        return []

    def _muted_problems(self) -> list[_Problem]:
        if all(metric.muted for metric in self.metrics):
            names = [metric.name for metric in self.metrics]
            return [(("metrics",), "every metric is muted: nothing would be judged", names)]
        return []


class Judge(SpecModel):
    """A whole Judge document, kept in Git next to the Canary it judges."""

    api_version: Literal["canary.pulumi.com/v1alpha1"]
    kind: Literal["Judge"]
    metadata: ObjectMeta | None = None
    spec: JudgeSpec

    @classmethod
    def parse(cls, document: Mapping[str, Any] | Judge) -> Judge:
        """Validates a camelCase document; raises SpecError naming each bad field and value."""
        if isinstance(document, Judge):
            return document
        try:
            return cls.model_validate(document)
        except ValidationError as error:
            raise SpecError.from_validation(error, source="Judge") from None


def _separated_z(count: int) -> float:
    """The continuity-corrected z of `count` samples against `count`, every canary one higher:
    U at its maximum n², centred on n²/2, over the rank sum's spread without ties."""
    pairs = count * count
    return (pairs / 2 - 0.5) / math.sqrt(pairs * (2 * count + 1) / 12)


def _or(weight: float | None, share: float) -> float:
    return share if weight is None else weight


def _unique(items: Sequence[JudgeMetric | Group], field: str) -> list[_Problem]:
    seen: dict[str, int] = {}
    problems: list[_Problem] = []
    for index, item in enumerate(items):
        if item.name in seen:
            message = f"duplicate name (also {field}[{seen[item.name]}])"
            problems.append(((field, index, "name"), message, item.name))
        seen.setdefault(item.name, index)
    return problems


def _raise_if(problems: Sequence[_Problem], model: SpecModel) -> None:
    """Reports cross-field problems at their own field path, as pydantic does for one field.

    A ValidationError raised in a validator keeps its locations under the enclosing field,
    so `spec.metrics[1].group` is named instead of all of `spec`.
    """
    if not problems:
        return
    errors = [
        InitErrorDetails(
            type=PydanticCustomError("judge", "{reason}", {"reason": message}),
            loc=location,
            input=value,
        )
        for location, message, value in problems
    ]
    raise ValidationError.from_exception_data(type(model).__name__, errors)
