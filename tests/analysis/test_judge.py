"""The statistical judge: its test against scipy and a direct computation, its classification
and its score against hand-worked cases of Kayenta's rules."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import mannwhitneyu, norm, rankdata

from components.analysis.judge import (
    Classification,
    MannWhitney,
    MetricJudgement,
    Verdict,
    judge,
    mann_whitney,
    mean_ratio,
    remove_outliers,
    score,
)
from components.spec.judge import (
    EffectSize,
    Group,
    JudgeMetric,
    JudgeSpec,
    MarginalPolicy,
    Outliers,
    Thresholds,
)

QUERY = (
    "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
    'destination_workload_namespace="{{ namespace }}", destination_workload="{{ target }}"'
    "}[{{ interval }}])) by (le))"
)
PRIMARY = [14.2, 15.1, 13.8, 16.0, 15.5, 14.9, 15.3, 14.4, 15.8, 14.7, 15.0, 16.2]
_WOBBLE = [0.3, -0.4, 0.5, -0.2, 0.1, -0.5, 0.4, 0.2, -0.3, 0.6, -0.1, 0.0]
SLOWER = [value + 5 + wobble for value, wobble in zip(PRIMARY, _WOBBLE, strict=True)]
FASTER = [value - 5 + wobble for value, wobble in zip(PRIMARY, _WOBBLE, strict=True)]
# A shift of 0.8 ms: significant, but its interval starts below a quarter of the estimate.
NUDGED = [value + 0.8 + wobble for value, wobble in zip(PRIMARY, _WOBBLE, strict=True)]
# Half-millisecond buckets: ties within each sample and across them.
TIED_PRIMARY = [2.0, 2.5, 2.5, 3.0, 3.0, 3.0, 3.5, 4.0, 2.5, 3.0]
TIED_CANARY = [2.5, 3.0, 3.5, 3.5, 4.0, 4.0, 4.5, 3.0, 3.5, 5.0, 4.0]


def metric(name: str = "request-duration", **fields: Any) -> JudgeMetric:
    return JudgeMetric(name=name, query=QUERY, **fields)


def spec_of(*metrics: JudgeMetric, **fields: Any) -> JudgeSpec:
    fields.setdefault("thresholds", Thresholds(pass_score=95, marginal=75))
    return JudgeSpec(metrics=list(metrics), **fields)


def judged(
    judged_metric: JudgeMetric, canary: Sequence[float], primary: Sequence[float], **fields: Any
) -> MetricJudgement:
    result = judge(spec_of(judged_metric, **fields), {judged_metric.name: (canary, primary)})
    return result.metrics[0]


def statistics_of(judgement: MetricJudgement) -> MannWhitney:
    assert judgement.test is not None, judgement.reason
    return judgement.test


# --- References, computed here independently of the judge -----------------------------------


def scipy_test(canary: Sequence[float], primary: Sequence[float]) -> tuple[float, float]:
    """U of the canary and the two-sided p-value, normal approximation, continuity correction."""
    result = mannwhitneyu(
        canary, primary, alternative="two-sided", method="asymptotic", use_continuity=True
    )
    return float(result.statistic), float(result.pvalue)


def differences(canary: Sequence[float], primary: Sequence[float]) -> Any:
    return np.sort(np.subtract.outer(np.asarray(canary), np.asarray(primary)).ravel())


def order_statistic_interval(
    canary: Sequence[float], primary: Sequence[float], level: float
) -> tuple[float, float]:
    """Without ties: the k-th smallest and k-th largest pairwise differences, k from the normal
    approximation with continuity correction, k = ceil(mn/2 - 1/2 - z sigma)."""
    m, n = len(canary), len(primary)
    pairs = m * n
    sigma = math.sqrt(m * n * (m + n + 1) / 12)
    z = norm.ppf(1 - (1 - level) / 2)
    k = min(max(math.ceil(pairs / 2 - 0.5 - z * sigma), 1), pairs)
    ordered = differences(canary, primary)
    return float(ordered[k - 1]), float(ordered[pairs - k])


def rank_statistic(mu: float, q: float, canary: Sequence[float], primary: Sequence[float]) -> Any:
    """Kayenta's wilcoxonDiff, by ranks: the corrected standardised rank sum of canary - mu."""
    x, y = np.asarray(canary) - mu, np.asarray(primary)
    ranks = rankdata(np.concatenate([x, y]))
    m, n = len(x), len(y)
    centred = ranks[:m].sum() - m * (m + 1) / 2 - m * n / 2
    _, ties = np.unique(ranks, return_counts=True)
    sd = math.sqrt(m * n / 12 * ((m + n + 1) - (ties**3 - ties).sum() / ((m + n) * (m + n - 1))))
    return (centred - np.sign(centred) * 0.5) / sd - q


def solved_interval(
    canary: Sequence[float], primary: Sequence[float], level: float
) -> tuple[float, float]:
    """Kayenta's interval re-enacted: a root in the shift, bracketed by the extreme differences,
    found with scipy's Brent solver (tightly, where Kayenta stops at 1e-4)."""
    low, high = min(canary) - max(primary), max(canary) - min(primary)

    def root(q: float) -> float:
        if rank_statistic(low, q, canary, primary) <= 0:
            return low
        if rank_statistic(high, q, canary, primary) >= 0:
            return high
        return float(brentq(rank_statistic, low, high, args=(q, canary, primary), xtol=1e-12))

    z = norm.ppf(1 - (1 - level) / 2)
    return root(z), root(-z)


# --- The test against the references ---------------------------------------------------------


@pytest.mark.parametrize(
    ("canary", "primary"),
    [(SLOWER, PRIMARY), (PRIMARY, SLOWER), (NUDGED, PRIMARY), (TIED_CANARY, TIED_PRIMARY)],
    ids=["slower", "faster", "nudged", "ties"],
)
def test_u_and_p_value_are_scipys(canary: list[float], primary: list[float]) -> None:
    test = mann_whitney(canary, primary, 0.98)
    u, p_value = scipy_test(canary, primary)
    assert test.u == u
    assert test.p_value == pytest.approx(p_value, rel=1e-9)
    assert test.cles == pytest.approx(u / (len(canary) * len(primary)))


@pytest.mark.parametrize(
    ("canary", "primary"),
    [(SLOWER, PRIMARY), (PRIMARY, SLOWER), (TIED_CANARY, TIED_PRIMARY), ([5.0, 1.0], [2.0])],
)
def test_estimate_is_the_median_of_all_pairwise_differences(
    canary: list[float], primary: list[float]
) -> None:
    estimate = mann_whitney(canary, primary, 0.98).estimate
    assert estimate == pytest.approx(float(np.median(differences(canary, primary))))


@pytest.mark.parametrize("level", [0.9, 0.95, 0.98, 0.99])
@pytest.mark.parametrize(
    ("canary", "primary"),
    [(SLOWER, PRIMARY), (NUDGED, PRIMARY), ([10.0, 20.0, 30.0, 40.0], [1.0, 2.0, 3.0, 4.0])],
)
def test_interval_is_the_order_statistics_of_the_differences_without_ties(
    canary: list[float], primary: list[float], level: float
) -> None:
    test = mann_whitney(canary, primary, level)
    assert (test.lower, test.upper) == pytest.approx(
        order_statistic_interval(canary, primary, level)
    )
    assert test.confidence_level == level


def test_four_by_four_interval_spans_every_difference_at_95_percent() -> None:
    # 16 differences: sigma = sqrt(12), k = ceil(8 - 0.5 - 1.96 sqrt(12)) = ceil(0.71) = 1.
    test = mann_whitney([10.0, 20.0, 30.0, 40.0], [1.0, 2.0, 3.0, 4.0], 0.95)
    assert (test.lower, test.upper, test.estimate) == (6.0, 39.0, 22.5)


def test_interval_with_ties_is_kayentas_root() -> None:
    test = mann_whitney(TIED_CANARY, TIED_PRIMARY, 0.98)
    lower, upper = solved_interval(TIED_CANARY, TIED_PRIMARY, 0.98)
    assert (test.lower, test.upper) == pytest.approx((lower, upper), abs=1e-9)
    # The roots fall on half-millisecond differences, where the step function jumps.
    assert (test.lower, test.upper) == (0.0, 1.5)


def test_mostly_tied_samples_give_an_interval_that_touches_zero() -> None:
    # Four of five canary samples equal every primary sample: 20 of 25 differences are 0.
    test = mann_whitney([1.0, 1.0, 1.0, 1.0, 10.0], [1.0] * 5, 0.95)
    assert (test.lower, test.estimate, test.upper) == (0.0, 0.0, 9.0)


def test_too_few_samples_for_the_level_give_the_range_of_the_differences() -> None:
    # Two against two cannot reach 98%: even complete separation has p = 0.12. Kayenta's
    # solver (like R's) then returns the ends of its bracket, the extreme differences.
    test = mann_whitney([10.0, 11.0], [1.0, 2.0], 0.98)
    assert (test.lower, test.upper) == (8.0, 10.0)
    assert (test.lower, test.upper) == solved_interval([10.0, 11.0], [1.0, 2.0], 0.98)
    assert test.p_value == pytest.approx(scipy_test([10.0, 11.0], [1.0, 2.0])[1])
    assert test.p_value > 0.1


def test_samples_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        mann_whitney([], [1.0], 0.98)


_tied = st.lists(st.integers(min_value=0, max_value=8).map(lambda step: step * 0.5), min_size=1)
_levels = st.sampled_from([0.9, 0.95, 0.98])


@settings(max_examples=300, deadline=None)
@given(canary=_tied.filter(lambda xs: len(xs) <= 15), primary=_tied, level=_levels)
def test_random_tied_samples_match_kayentas_roots_and_scipy(
    canary: list[float], primary: list[float], level: float
) -> None:
    assume(len(set(canary)) > 1 or len(set(primary)) > 1)
    test = mann_whitney(canary, primary, level)
    assert (test.lower, test.upper) == pytest.approx(
        solved_interval(canary, primary, level), abs=1e-9
    )
    assert test.lower <= test.estimate <= test.upper
    assert test.u == scipy_test(canary, primary)[0]


@settings(max_examples=300, deadline=None)
@given(
    canary=st.lists(st.integers(0, 40), min_size=8, max_size=15),
    primary=st.lists(st.integers(0, 40).map(lambda v: v + 0.5), min_size=8, max_size=15),
    level=_levels,
)
def test_interval_excludes_zero_exactly_when_the_test_is_significant(
    canary: list[int], primary: list[float], level: float
) -> None:
    # Canary on whole numbers, primary on halves: no difference is 0, the duality is exact.
    # Eight samples a side are enough for every level here to be reachable (see below).
    test = mann_whitney([float(value) for value in canary], primary, level)
    assert (test.lower > 0 or test.upper < 0) == (test.p_value < 1 - level)


# --- Classification --------------------------------------------------------------------------


def test_slower_canary_is_high_and_the_reason_fits_a_progress_line() -> None:
    judgement = judged(metric(unit="ms"), SLOWER, PRIMARY)
    test = statistics_of(judgement)
    assert judgement.classification is Classification.HIGH
    assert judgement.mean_ratio == pytest.approx(sum(SLOWER) / sum(PRIMARY))
    assert judgement.effect_size == judgement.mean_ratio
    assert (judgement.canary_count, judgement.primary_count) == (12, 12)
    assert judgement.reason == (
        f"request-duration: High, canary/primary mean ratio {judgement.mean_ratio:.4g}, "
        f"98% interval [{test.lower:.4g}, {test.upper:.4g}] ms"
    )
    assert "\n" not in judgement.reason and len(judgement.reason) < 100


def test_faster_canary_is_low() -> None:
    assert judged(metric(), FASTER, PRIMARY).classification is Classification.LOW


@pytest.mark.parametrize(
    ("direction", "slower", "faster"),
    [
        ("either", Classification.HIGH, Classification.LOW),
        ("increase", Classification.HIGH, Classification.PASS),
        ("decrease", Classification.PASS, Classification.LOW),
    ],
)
def test_direction_decides_which_change_fails(
    direction: str, slower: Classification, faster: Classification
) -> None:
    assert judged(metric(direction=direction), SLOWER, PRIMARY).classification is slower
    assert judged(metric(direction=direction), FASTER, PRIMARY).classification is faster


def test_tolerance_is_a_fraction_of_the_hodges_lehmann_estimate() -> None:
    judgement = judged(metric(), NUDGED, PRIMARY)
    test = statistics_of(judgement)
    assert 0.05 * test.estimate < test.lower < 0.25 * test.estimate  # the case's premise
    assert judgement.classification is Classification.PASS
    assert judged(metric(), NUDGED, PRIMARY, tolerance=0.05).classification is Classification.HIGH


def test_confidence_level_widens_the_interval() -> None:
    narrow = statistics_of(judged(metric(), SLOWER, PRIMARY, confidence_level=0.8))
    wide = statistics_of(judged(metric(), SLOWER, PRIMARY))
    assert wide.lower < narrow.lower and narrow.upper < wide.upper
    assert narrow.confidence_level == 0.8


@pytest.mark.parametrize(
    ("allowed", "expected"), [(1.2, Classification.HIGH), (1.5, Classification.PASS)]
)
def test_mean_ratio_must_reach_allowed_increase(allowed: float, expected: Classification) -> None:
    # SLOWER / PRIMARY is about 1.33.
    judgement = judged(metric(effect_size=EffectSize(allowed_increase=allowed)), SLOWER, PRIMARY)
    assert judgement.classification is expected


@pytest.mark.parametrize(
    ("allowed", "expected"), [(0.8, Classification.LOW), (0.5, Classification.PASS)]
)
def test_mean_ratio_must_reach_allowed_decrease(allowed: float, expected: Classification) -> None:
    # FASTER / PRIMARY is about 0.67.
    judgement = judged(metric(effect_size=EffectSize(allowed_decrease=allowed)), FASTER, PRIMARY)
    assert judgement.classification is expected


def test_cles_is_the_share_of_pairs_where_the_canary_is_higher() -> None:
    judgement = judged(metric(effect_size=EffectSize(measure="cles")), NUDGED, PRIMARY)
    u, _ = scipy_test(NUDGED, PRIMARY)
    assert judgement.effect_size == pytest.approx(u / 144)
    assert "CLES" in judgement.reason
    strict = EffectSize(measure="cles", allowed_increase=0.99)
    assert judged(metric(effect_size=strict), SLOWER, PRIMARY).classification is Classification.HIGH
    assert judged(metric(effect_size=strict), NUDGED, PRIMARY).classification is Classification.PASS


def test_critical_failure_needs_the_critical_effect_size() -> None:
    critical = metric(critical=True, effect_size=EffectSize(critical_increase=1.2))
    failed = judged(critical, SLOWER, PRIMARY)
    assert failed.classification is Classification.HIGH
    assert failed.critical_failure
    assert failed.reason.startswith("request-duration: High (critical), ")
    lenient = metric(critical=True, effect_size=EffectSize(critical_increase=2.0))
    high = judged(lenient, SLOWER, PRIMARY)
    assert high.classification is Classification.HIGH
    assert not high.critical_failure


def test_critical_low_needs_the_critical_decrease() -> None:
    strict = metric(critical=True, effect_size=EffectSize(critical_decrease=0.8))
    assert judged(strict, FASTER, PRIMARY).critical_failure
    lenient = metric(critical=True, effect_size=EffectSize(critical_decrease=0.5))
    assert not judged(lenient, FASTER, PRIMARY).critical_failure
    assert not judged(metric(), FASTER, PRIMARY).critical_failure


def test_critical_metric_that_passes_is_not_a_failure() -> None:
    judgement = judged(metric(critical=True), PRIMARY, PRIMARY[::-1])
    assert judgement.classification is Classification.PASS
    assert not judgement.critical_failure


def test_identical_samples_pass_without_a_test() -> None:
    judgement = judged(metric(), PRIMARY, PRIMARY[::-1])
    assert judgement.classification is Classification.PASS
    assert judgement.test is None
    assert judgement.reason == "request-duration: Pass, canary and primary samples are identical"


def test_one_value_everywhere_passes_whatever_the_counts() -> None:
    judgement = judged(metric(unit="ms"), [7.0] * 3, [7.0] * 5)
    assert judgement.classification is Classification.PASS
    assert judgement.test is None
    assert judgement.reason == "request-duration: Pass, every canary and primary sample is 7 ms"


def test_two_constants_get_seeded_noise_and_a_test() -> None:
    first = judged(metric(), [20.0] * 8, [10.0] * 8)
    test = statistics_of(first)
    assert first.classification is Classification.HIGH
    # Noise of 1e-5 times the value: the shift stays 10 to within a few 1e-4.
    assert test.estimate == pytest.approx(10.0, abs=1e-3)
    assert test.lower == pytest.approx(10.0, abs=1e-3)
    assert first.mean_ratio == pytest.approx(2.0, abs=1e-5)
    assert judged(metric(), [20.0] * 8, [10.0] * 8) == first


def test_constant_against_zeros_is_high_though_the_mean_ratio_is_undefined() -> None:
    judgement = judged(metric(critical=True), [10.0] * 5, [0.0] * 5)
    assert judgement.classification is Classification.HIGH
    assert judgement.mean_ratio is None
    assert judgement.effect_size is None  # no effect size: no objection, as in Kayenta
    assert judgement.critical_failure
    assert "mean ratio n/a" in judgement.reason


def test_mostly_tied_canary_with_one_spike_passes() -> None:
    judgement = judged(metric(), [1.0, 1.0, 1.0, 1.0, 10.0], [1.0] * 5, confidence_level=0.95)
    assert judgement.classification is Classification.PASS


def test_ratio_of_means() -> None:
    assert mean_ratio([2.0, 4.0], [1.0, 2.0]) == 2.0
    assert mean_ratio([1.0, -1.0], [3.0]) is None
    assert mean_ratio([1.0], [0.0]) is None


# --- NaN, empty samples and outliers ---------------------------------------------------------


def test_nan_and_infinities_are_removed_by_default() -> None:
    canary = [math.nan, *SLOWER, math.inf]
    judgement = judged(metric(), canary, [*PRIMARY, -math.inf])
    assert (judgement.canary_count, judgement.primary_count) == (12, 12)
    assert judgement.classification is Classification.HIGH


def test_nan_replaced_by_zero() -> None:
    # Error counts: no series means no errors, so NaN is 0.
    errors = metric("errors", nan_strategy="replace")
    judgement = judged(errors, [math.nan, 0.0, 1.0, 0.0], [0.0, 0.0, math.nan, 1.0])
    assert (judgement.canary_count, judgement.primary_count) == (4, 4)
    assert judgement.classification is Classification.PASS
    assert judgement.test is None  # same values once the NaNs are 0


@pytest.mark.parametrize(
    ("fields", "expected", "critical"),
    [
        ({}, Classification.NODATA, False),
        ({"must_have_data": True}, Classification.NODATA_FAIL, False),
        ({"critical": True}, Classification.NODATA, True),
        ({"critical": True, "must_have_data": True}, Classification.NODATA, True),
        ({"nan_strategy": "replace", "must_have_data": True}, Classification.PASS, False),
    ],
    ids=["nodata", "must-have-data", "critical", "critical-must-have-data", "replace"],
)
def test_empty_samples(fields: dict[str, Any], expected: Classification, critical: bool) -> None:
    judgement = judged(metric(**fields), [], PRIMARY)
    assert judgement.classification is expected
    assert judgement.critical_failure is critical
    assert judgement.test is None
    assert judgement.reason.endswith("no canary samples")


def test_all_nan_on_both_sides_is_no_data_on_both() -> None:
    judgement = judged(metric(), [math.nan] * 3, [math.nan])
    assert judgement.classification is Classification.NODATA
    assert judgement.reason == "request-duration: Nodata, no canary or primary samples"


def test_iqr_outliers_with_reduced_sensitivity() -> None:
    values = [float(value) for value in range(1, 11)]
    # Tukey's fences at factor 0.1 are 2.8 and 8.2; the 1st and 99th percentiles (1.09 and
    # 9.91) are wider, so only 1 and 10 go.
    ordered = np.asarray(values)
    q1, q3 = np.percentile(ordered, [25, 75])
    assert (q1 - 0.1 * (q3 - q1), q3 + 0.1 * (q3 - q1)) == pytest.approx((2.8, 8.2))
    assert np.percentile(ordered, [1, 99]) == pytest.approx([1.09, 9.91])
    assert remove_outliers(values, 0.1) == values[1:-1]
    assert remove_outliers(values, 3.0) == values
    assert remove_outliers([], 3.0) == []


def test_iqr_outliers_at_factor_3_drop_a_spike_and_keep_the_order() -> None:
    values = [10.0, 12.0, 11.0, 13.0, 10.0, 95.0, 12.0, 11.0, 10.0, 12.0, 11.0]
    q1, q3 = np.percentile(values, [25, 75])
    assert max(q3 + 3 * (q3 - q1), np.percentile(values, 99)) < 95  # the case's premise
    assert remove_outliers(values, 3.0) == [value for value in values if value != 95.0]


def test_outliers_are_kept_unless_removal_is_asked_for() -> None:
    spiked = [*PRIMARY[:-1], 500.0]
    kept = judged(metric(), spiked, PRIMARY)
    removed = judged(metric(outliers=Outliers(strategy="remove")), spiked, PRIMARY)
    assert (kept.canary_count, removed.canary_count) == (12, 11)
    assert removed.primary_count == 12


# --- Scoring ---------------------------------------------------------------------------------


def made(
    name: str,
    label: Classification,
    group: str = "default",
    *,
    critical: bool = False,
    muted: bool = False,
) -> MetricJudgement:
    """A judgement as the classifier would have returned it, for scoring by hand."""
    return MetricJudgement(
        name=name,
        group=group,
        classification=label,
        reason=f"{name}: {label}",
        canary_count=10,
        primary_count=10,
        critical_failure=critical,
        muted=muted,
    )


def scored(*judgements: MetricJudgement, groups: Sequence[Group] = (), **fields: Any) -> Any:
    metrics = [
        metric(j.name, group=j.group, muted=j.muted, critical=j.critical_failure)
        for j in judgements
    ]
    return score(spec_of(*metrics, groups=list(groups), **fields), judgements)


P, H, L = Classification.PASS, Classification.HIGH, Classification.LOW
N, NF = Classification.NODATA, Classification.NODATA_FAIL


def test_group_score_counts_nodata_fail_but_not_nodata() -> None:
    # Pass / (Pass + High + Low + NodataFail) = 2 / 4; the Nodata metric is left out.
    result = scored(made("a", P), made("b", P), made("c", H), made("d", NF), made("e", N))
    assert result.groups[0].score == 50.0
    assert result.score == 50.0
    assert result.reason == (
        "judge score 50 (Fail; pass 95, marginal 75): c: High; d: NodataFail; e: Nodata"
    )


def test_group_without_data_counts_100() -> None:
    groups = [Group(name="latency", weight=50), Group(name="errors", weight=50)]
    result = scored(
        made("a", N, "latency"), made("b", P, "errors"), made("c", L, "errors"), groups=groups
    )
    by_name = {group.name: group for group in result.groups}
    assert by_name["latency"].score is None
    assert by_name["errors"].score == 50.0
    assert result.score == 75.0  # 50% x 100 + 50% x 50


def test_unweighted_groups_share_what_the_weighted_ones_leave() -> None:
    groups = [Group(name="latency", weight=60), Group(name="errors"), Group(name="saturation")]
    result = scored(
        made("a", P, "latency"),
        made("b", H, "errors"),
        made("c", P, "saturation"),
        made("d", L, "saturation"),
        groups=groups,
    )
    assert [(g.name, g.weight, g.score) for g in result.groups] == [
        ("latency", 60, 100.0),
        ("errors", 20, 0.0),
        ("saturation", 20, 50.0),
    ]
    assert result.score == 70.0  # 60 + 0 + 10


def test_half_the_metrics_without_data_scores_0() -> None:
    result = scored(made("a", P), made("b", N))
    assert result.score == 0.0
    assert result.verdict is Verdict.FAIL
    assert result.reason.endswith(": 1 of 2 metrics have no data")
    assert scored(made("a", P), made("b", P), made("c", N)).score == 100.0  # a third is fine


def test_critical_failure_scores_0() -> None:
    result = scored(made("a", P), made("b", P), made("c", H, critical=True))
    assert result.score == 0.0
    assert result.reason.endswith(": critical failure, c: High")


def test_muted_metrics_are_reported_but_do_not_count() -> None:
    result = scored(made("a", P), made("b", H, muted=True), made("c", H, critical=True, muted=True))
    assert result.score == 100.0
    assert result.verdict is Verdict.PASS
    assert [j.name for j in result.metrics] == ["a", "b", "c"]


def test_group_of_muted_metrics_counts_as_a_group_without_data() -> None:
    groups = [Group(name="latency", weight=50), Group(name="errors", weight=50)]
    result = scored(made("a", P, "latency"), made("b", H, "errors", muted=True), groups=groups)
    assert result.groups[1].score is None
    assert result.score == 100.0


def test_summary_is_rounded_half_up_to_two_decimals() -> None:
    groups = [Group(name="a"), Group(name="b"), Group(name="c")]
    result = scored(made("x", P, "a"), made("y", P, "b"), made("z", H, "c"), groups=groups)
    assert result.score == 66.67
    # 2.675 is 2.67499999... in binary, where round() gives 2.67; Kayenta rounds the decimal
    # it prints, half up.
    weighted = [Group(name="a", weight=2.675), Group(name="b", weight=97.325)]
    assert scored(made("x", P, "a"), made("y", H, "b"), groups=weighted).score == 2.68


@pytest.mark.parametrize(
    ("labels", "verdict"),
    [
        ([P] * 19 + [H], Verdict.PASS),  # 95: at the pass threshold
        ([P] * 3 + [H], Verdict.MARGINAL),  # 75: at the marginal threshold
        ([P] * 37 + [H] * 13, Verdict.FAIL),  # 74
    ],
)
def test_thresholds_are_inclusive(labels: list[Classification], verdict: Verdict) -> None:
    result = scored(*(made(f"m{index}", label) for index, label in enumerate(labels)))
    assert result.verdict is verdict


@pytest.mark.parametrize(
    ("policy", "passed", "pending"),
    [("hold", False, True), ("fail", False, False), ("pass", True, False)],
)
def test_on_marginal_decides_what_the_check_reports(
    policy: MarginalPolicy, passed: bool, pending: bool
) -> None:
    result = scored(made("a", P), made("b", P), made("c", P), made("d", H), on_marginal=policy)
    assert result.verdict is Verdict.MARGINAL
    assert (result.passed, result.pending) == (passed, pending)


def test_pass_and_fail_do_not_depend_on_the_marginal_policy() -> None:
    for policy in MarginalPolicy:
        passing = scored(made("a", P), on_marginal=policy)
        failing = scored(made("a", H), on_marginal=policy)
        assert (passing.passed, passing.pending) == (True, False)
        assert (failing.passed, failing.pending) == (False, False)


# --- The whole judge -------------------------------------------------------------------------


def test_judge_scores_request_duration_and_success_rate() -> None:
    spec = spec_of(
        metric(unit="ms", direction="increase", group="latency"),
        metric("request-success-rate", direction="decrease", critical=True, group="errors"),
        groups=[Group(name="latency", weight=50), Group(name="errors", weight=50)],
    )
    success = [99.9, 100.0, 99.8, 100.0, 99.9, 100.0, 99.7, 100.0]
    result = judge(
        spec, {"request-duration": (SLOWER, PRIMARY), "request-success-rate": (success, success)}
    )
    assert [j.classification for j in result.metrics] == [Classification.HIGH, P]
    assert result.score == 50.0
    assert result.verdict is Verdict.FAIL
    assert not result.passed


def test_samples_must_name_exactly_the_metrics() -> None:
    spec = spec_of(metric())
    with pytest.raises(ValueError, match=r"missing \['request-duration'\], unknown \['latency'\]"):
        judge(spec, {"latency": ([1.0], [1.0])})
