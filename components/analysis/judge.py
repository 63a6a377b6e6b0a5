"""Kayenta's NetflixACAJudge as a pure function: canary and primary samples in, a verdict out.

Per metric, the samples are cleaned (NaN strategy, outliers), compared with a two-sided
Mann-Whitney U test and classified Pass, High, Low, Nodata or NodataFail; the classifications
are scored by group and the score is compared with the thresholds. No I/O, no clock: the only
randomness, Kayenta's noise on constant samples, comes from a generator seeded per metric.
docs/judge.md gives the Kayenta source of each rule and where this judge differs.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from statistics import NormalDist, fmean, median

from ..spec.judge import (
    Direction,
    EffectMeasure,
    JudgeMetric,
    JudgeSpec,
    MarginalPolicy,
    NanStrategy,
    OutlierStrategy,
)

NOISE_SEED = 0
"""Seed of the noise added to constant samples, fresh for each metric, so runs repeat."""
NOISE_SCALE = 1e-5
"""Kayenta's noise: Gaussian, standard deviation 1e-5 times the sample's value."""
NODATA_LIMIT = 50.0
"""Kayenta scores 0 when this percentage of the counted metrics or more has no data."""


class Classification(StrEnum):
    PASS = "Pass"
    HIGH = "High"
    LOW = "Low"
    NODATA = "Nodata"
    NODATA_FAIL = "NodataFail"


class Verdict(StrEnum):
    PASS = "Pass"
    MARGINAL = "Marginal"
    FAIL = "Fail"


@dataclass(frozen=True)
class MannWhitney:
    """A two-sided Mann-Whitney U test of canary against primary, normal approximation with
    continuity correction, and the confidence interval of the location shift canary - primary.

    `u` counts the pairs where the canary is higher (ties count half); `estimate` is the
    Hodges-Lehmann estimate, the median of all pairwise differences.
    """

    u: float
    pairs: int
    p_value: float
    estimate: float
    lower: float
    upper: float
    confidence_level: float

    @property
    def cles(self) -> float:
        """Kayenta's common-language effect size: the share of pairs where the canary is
        higher. Kayenta's rank formula (2 R1 - m (m + 1)) / (2 m n) is U / (m n)."""
        return self.u / self.pairs


@dataclass(frozen=True)
class MetricJudgement:
    """One metric's classification; `test` is None when no test was needed (or possible)."""

    name: str
    group: str
    classification: Classification
    reason: str
    canary_count: int
    primary_count: int
    mean_ratio: float | None = None
    effect_size: float | None = None
    test: MannWhitney | None = None
    critical_failure: bool = False
    muted: bool = False


@dataclass(frozen=True)
class GroupScore:
    """A group's score in percent; None when none of its counted metrics had data (counts 100)."""

    name: str
    weight: float
    score: float | None


@dataclass(frozen=True)
class JudgeResult:
    """The verdict, and what the check reports: `passed`, or `pending` to hold (onMarginal)."""

    score: float
    verdict: Verdict
    passed: bool
    pending: bool
    reason: str
    metrics: tuple[MetricJudgement, ...]
    groups: tuple[GroupScore, ...]


Samples = Mapping[str, tuple[Sequence[float], Sequence[float]]]
"""Per metric name: the canary's samples and the primary's, over the same window."""


def judge(spec: JudgeSpec, samples: Samples) -> JudgeResult:
    """Classifies every metric of `spec` and scores them; `samples` must name each metric."""
    names = [metric.name for metric in spec.metrics]
    if set(samples) != set(names):
        missing = sorted(set(names) - set(samples))
        unknown = sorted(set(samples) - set(names))
        raise ValueError(f"samples do not match the metrics: missing {missing}, unknown {unknown}")
    judgements = tuple(
        classify(metric, *samples[metric.name], spec.confidence_level, spec.tolerance)
        for metric in spec.metrics
    )
    return score(spec, judgements)


def classify(
    metric: JudgeMetric,
    canary: Sequence[float],
    primary: Sequence[float],
    confidence_level: float,
    tolerance: float,
) -> MetricJudgement:
    """Kayenta's MannWhitneyClassifier on the cleaned samples of one metric."""
    canary, primary = _clean(metric, canary), _clean(metric, primary)
    base = MetricJudgement(
        name=metric.name,
        group=metric.group,
        classification=Classification.PASS,
        reason="",
        canary_count=len(canary),
        primary_count=len(primary),
        muted=metric.muted,
    )
    if not canary or not primary:
        return _no_data(metric, base)
    ratio = mean_ratio(canary, primary)
    if sorted(canary) == sorted(primary):
        reason = _line(metric, Classification.PASS, "canary and primary samples are identical")
        return replace(base, reason=reason, mean_ratio=ratio)
    if len(set(canary) | set(primary)) == 1:
        text = f"every canary and primary sample is {_number(canary[0])}{_unit(metric)}"
        return replace(base, reason=_line(metric, Classification.PASS, text), mean_ratio=ratio)
    if len(set(canary)) == 1 and len(set(primary)) == 1:
        # Kayenta's way around a test of two constants: noise small enough not to matter.
        rng = random.Random(NOISE_SEED)
        canary, primary = _jitter(canary, rng), _jitter(primary, rng)
        ratio = mean_ratio(canary, primary)
    test = mann_whitney(canary, primary, confidence_level)
    effect = ratio if metric.effect_size.measure is EffectMeasure.MEAN_RATIO else test.cles
    label = _compare(metric, test, effect, tolerance)
    failed = label is not Classification.PASS
    critical = metric.critical and failed and _large(metric, label, effect, critical=True)
    return replace(
        base,
        classification=label,
        reason=_line(metric, label, _test_text(metric, test, ratio), critical=critical),
        mean_ratio=ratio,
        effect_size=effect,
        test=test,
        critical_failure=critical,
    )


def score(spec: JudgeSpec, judgements: Sequence[MetricJudgement]) -> JudgeResult:
    """Kayenta's WeightedSumScorer and ThresholdScoreClassifier over the judgements of
    `spec`'s metrics; muted metrics do not count."""
    counted = [judgement for judgement in judgements if not judgement.muted]
    groups = tuple(
        GroupScore(name, weight, _group_score(j for j in counted if j.group == name))
        for name, weight in spec.weights.items()
    )
    critical = next((judgement for judgement in counted if judgement.critical_failure), None)
    nodata = sum(judgement.classification is Classification.NODATA for judgement in counted)
    if critical is not None:
        total, cause = 0.0, f"critical failure, {critical.reason}"
    elif nodata * 100 / len(counted) >= NODATA_LIMIT:
        total, cause = 0.0, f"{nodata} of {len(counted)} metrics have no data"
    else:
        summed = sum(_or_full(group.score) * group.weight / 100 for group in groups)
        total = _round(summed)
        failing = [j for j in counted if j.classification is not Classification.PASS]
        cause = "; ".join(judgement.reason for judgement in failing)
    thresholds = spec.thresholds
    if total >= thresholds.pass_score:
        verdict = Verdict.PASS
    elif total >= thresholds.marginal:
        verdict = Verdict.MARGINAL
    else:
        verdict = Verdict.FAIL
    marginal = verdict is Verdict.MARGINAL
    reason = (
        f"judge score {total:g} ({verdict}; pass {thresholds.pass_score:g}, "
        f"marginal {thresholds.marginal:g})" + (f": {cause}" if cause else "")
    )
    return JudgeResult(
        score=total,
        verdict=verdict,
        passed=verdict is Verdict.PASS or (marginal and spec.on_marginal is MarginalPolicy.PASS),
        pending=marginal and spec.on_marginal is MarginalPolicy.HOLD,
        reason=reason,
        metrics=tuple(judgements),
        groups=groups,
    )


# --- Statistics ------------------------------------------------------------------------------


def mann_whitney(
    canary: Sequence[float], primary: Sequence[float], confidence_level: float
) -> MannWhitney:
    """The test, as Kayenta's MannWhitney (R's wilcox.test with conf.int, exact=FALSE) does it.

    Kayenta finds each interval bound as a root, in the shift mu, of the continuity-corrected
    standardised rank sum of canary - mu against primary, minus the normal quantile. That
    statistic is a step function changing only at the pairwise differences, so the root is
    found exactly here: the first difference after which the statistic is no longer above the
    quantile (Kayenta's Brent solver lands within 1e-4 of the same point).
    """
    if not canary or not primary:
        raise ValueError("the Mann-Whitney test needs at least one sample on each side")
    m, n = len(canary), len(primary)
    pairs = m * n
    differences = sorted(c - p for c in canary for p in primary)
    below_zero, up_to_zero = bisect_left(differences, 0.0), bisect_right(differences, 0.0)
    u = pairs - up_to_zero + (up_to_zero - below_zero) / 2
    # Between differences, canary - mu ties primary nowhere: only ties within each sample count.
    spread = _rank_sum_sd(m, n, [*Counter(canary).values(), *Counter(primary).values()])
    at_zero = _rank_sum_sd(m, n, list(Counter([*canary, *primary]).values()))
    z = NormalDist().inv_cdf(1 - (1 - confidence_level) / 2)
    values, below = _steps(differences)
    return MannWhitney(
        u=u,
        pairs=pairs,
        p_value=_p_value(u - pairs / 2, at_zero),
        estimate=median(differences),
        lower=_root(values, below, pairs, spread, z),
        upper=_root(values, below, pairs, spread, -z),
        confidence_level=confidence_level,
    )


def mean_ratio(canary: Sequence[float], primary: Sequence[float]) -> float | None:
    """Canary mean over primary mean; None, like Kayenta's NaN, when either mean is 0."""
    canary_mean, primary_mean = fmean(canary), fmean(primary)
    if canary_mean == 0 or primary_mean == 0:
        return None
    return canary_mean / primary_mean


def remove_outliers(values: Sequence[float], factor: float) -> list[float]:
    """Kayenta's IQRDetector with reduced sensitivity, as its judge runs it: a value is an
    outlier beyond Q1 - factor * IQR and the 1st percentile, or beyond Q3 + factor * IQR and
    the 99th percentile (R-7 percentiles)."""
    if not values:
        return []
    ordered = sorted(values)
    q1, q3 = _percentile(ordered, 25), _percentile(ordered, 75)
    low = min(_percentile(ordered, 1), q1 - factor * (q3 - q1))
    high = max(_percentile(ordered, 99), q3 + factor * (q3 - q1))
    return [value for value in values if low <= value <= high]


def _rank_sum_sd(m: int, n: int, tie_sizes: Iterable[int]) -> float:
    """Standard deviation of the rank sum under the null, with the tie correction."""
    total = m + n
    ties = sum(size**3 - size for size in tie_sizes)
    return math.sqrt(m * n / 12 * ((total + 1) - ties / (total * (total - 1))))


def _p_value(centred_u: float, sd: float) -> float:
    if sd == 0:
        return 1.0
    corrected = max(abs(centred_u) - 0.5, 0.0)
    return min(1.0, 2 * (1 - NormalDist().cdf(corrected / sd)))


def _steps(differences: Sequence[float]) -> tuple[list[float], list[int]]:
    """The distinct differences, ascending, and how many differences are at or below each."""
    values: list[float] = []
    below: list[int] = []
    for index, difference in enumerate(differences):
        if values and values[-1] == difference:
            below[-1] = index + 1
        else:
            values.append(difference)
            below.append(index + 1)
    return values, below


def _root(values: Sequence[float], below: Sequence[int], pairs: int, sd: float, z: float) -> float:
    """Where the corrected statistic, minus `z`, drops to 0 or below; the last difference if
    it never does (Kayenta's solver then returns the end of its bracket)."""
    for value, count in zip(values, below, strict=True):
        centred = pairs / 2 - count
        corrected = centred - math.copysign(0.5, centred) if centred else 0.0
        if corrected / sd - z <= 0:
            return value
    return values[-1]


def _percentile(ordered: Sequence[float], percent: float) -> float:
    """R-7 (linear) percentile of sorted values, as Kayenta's DescriptiveStatistics."""
    position = (len(ordered) - 1) * percent / 100
    index = math.floor(position)
    upper = ordered[min(index + 1, len(ordered) - 1)]
    return ordered[index] + (position - index) * (upper - ordered[index])


def _jitter(values: Sequence[float], rng: random.Random) -> list[float]:
    sd = abs(values[0]) * NOISE_SCALE
    return [value + rng.gauss(0.0, sd) for value in values]


# --- Classification --------------------------------------------------------------------------


def _clean(metric: JudgeMetric, values: Sequence[float]) -> list[float]:
    """The NaN strategy, then the outlier strategy. Infinities (PromQL's x/0) count as NaN."""
    if metric.nan_strategy is NanStrategy.REPLACE:
        cleaned = [value if math.isfinite(value) else 0.0 for value in values]
    else:
        cleaned = [value for value in values if math.isfinite(value)]
    if metric.outliers.strategy is OutlierStrategy.REMOVE:
        return remove_outliers(cleaned, metric.outliers.factor)
    return cleaned


def _no_data(metric: JudgeMetric, base: MetricJudgement) -> MetricJudgement:
    """Kayenta: Pass under `replace`; NodataFail if data is a must (and not critical);
    otherwise Nodata, which a critical metric turns into a critical failure."""
    if metric.nan_strategy is NanStrategy.REPLACE:
        label, critical = Classification.PASS, False
    elif metric.must_have_data and not metric.critical:
        label, critical = Classification.NODATA_FAIL, False
    else:
        label, critical = Classification.NODATA, metric.critical
    sides = [
        side
        for side, count in (("canary", base.canary_count), ("primary", base.primary_count))
        if not count
    ]
    missing = f"no {' or '.join(sides)} samples"
    return replace(
        base,
        classification=label,
        reason=_line(metric, label, missing, critical=critical),
        critical_failure=critical,
    )


def _compare(
    metric: JudgeMetric, test: MannWhitney, effect: float | None, tolerance: float
) -> Classification:
    """High when the whole interval lies above tolerance x |estimate| (Low: below minus that),
    the direction allows it and the effect size is large enough."""
    margin = tolerance * abs(test.estimate)
    increase = metric.direction in (Direction.INCREASE, Direction.EITHER)
    decrease = metric.direction in (Direction.DECREASE, Direction.EITHER)
    if increase and test.lower > margin and _large(metric, Classification.HIGH, effect):
        return Classification.HIGH
    if decrease and test.upper < -margin and _large(metric, Classification.LOW, effect):
        return Classification.LOW
    return Classification.PASS


def _large(
    metric: JudgeMetric, label: Classification, effect: float | None, *, critical: bool = False
) -> bool:
    """Whether the effect size reaches the allowed (or critical) threshold on `label`'s side;
    an effect size that cannot be computed is no objection, as in Kayenta."""
    if effect is None:
        return True
    sizes = metric.effect_size
    if label is Classification.HIGH:
        return effect >= (sizes.critical_increase if critical else sizes.allowed_increase)
    return effect <= (sizes.critical_decrease if critical else sizes.allowed_decrease)


# --- Scoring ---------------------------------------------------------------------------------


_SCORED = (Classification.PASS, Classification.HIGH, Classification.LOW, Classification.NODATA_FAIL)


def _group_score(judgements: Iterable[MetricJudgement]) -> float | None:
    """Pass / (Pass + High + Low + NodataFail) x 100; Nodata is left out of both."""
    labels = Counter(judgement.classification for judgement in judgements)
    scored = sum(labels[label] for label in _SCORED)
    return labels[Classification.PASS] * 100 / scored if scored else None


def _or_full(group_score: float | None) -> float:
    """A group without data counts 100, as in Kayenta."""
    return 100.0 if group_score is None else group_score


def _round(value: float) -> float:
    """Two decimals, half up, as Kayenta's Precision.round."""
    return float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --- Reasons ---------------------------------------------------------------------------------


def _line(metric: JudgeMetric, label: Classification, text: str, *, critical: bool = False) -> str:
    """`request-duration: High (critical), ...`: one line, to fit in a progress message."""
    flags = [flag for flag, on in (("critical", critical), ("muted", metric.muted)) if on]
    shown = f"{label} ({', '.join(flags)})" if flags else str(label)
    return f"{metric.name}: {shown}, {text}"


def _test_text(metric: JudgeMetric, test: MannWhitney, ratio: float | None) -> str:
    parts = [f"canary/primary mean ratio {_number(ratio) if ratio is not None else 'n/a'}"]
    if metric.effect_size.measure is EffectMeasure.CLES:
        parts.append(f"CLES {_number(test.cles)}")
    level = f"{test.confidence_level * 100:g}%"
    interval = f"[{_number(test.lower)}, {_number(test.upper)}]{_unit(metric)}"
    parts.append(f"{level} interval {interval}")
    return ", ".join(parts)


def _number(value: float) -> str:
    return f"{value:.4g}"


def _unit(metric: JudgeMetric) -> str:
    return f" {metric.unit}" if metric.unit else ""
