"""The statistical judge inside a metrics check: its samples, its verdict, and how it reads.

Each metrics check samples every judge metric for the canary and the primary over the
interval since the last check (`JudgeSpec.window`) and judges them (`analysis.judge`). A
metrics-server problem leaves the judge without samples and fails the check with the
server's reason, as it fails a threshold; missing samples are NaN, for the NaN strategy.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..adapters.ports import MetricsPort
from ..adapters.records import CheckValue
from ..analysis.judge import Classification, JudgeResult, MetricJudgement, Verdict, judge
from ..spec import ReleaseSpec
from ..spec.judge import EffectMeasure, JudgeSpec
from .report import JudgeEntry


@dataclass(frozen=True)
class Judged:
    """One check's judgement, or the metrics-server problem that left it without samples."""

    spec: JudgeSpec
    result: JudgeResult | None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.result is not None and self.result.passed

    @property
    def pending(self) -> bool:
        """A Marginal score under `onMarginal: hold`: the check waits without failing."""
        return self.result is not None and self.result.pending

    @property
    def reason(self) -> str:
        """The score and every counted metric that did not pass, with its classification,
        effect size and interval (`analysis.judge.score`)."""
        if self.result is None:
            return f"judge has no samples: {self.error}"
        return self.result.reason

    def fragment(self) -> str:
        """The judge in a progress line: `judge 100 (pass)`, `judge 80 (hold: ...)`,
        `judge 40 (FAIL: request-duration High x1.42)`."""
        if self.result is None:
            return f"judge no samples (FAIL: {self.error})"
        result = self.result
        outcome = "pass" if self.passed else "hold" if self.pending else "FAIL"
        if self.passed and result.verdict is Verdict.MARGINAL:
            outcome = "pass, marginal"
        measures = {metric.name: metric.effect_size.measure for metric in self.spec.metrics}
        failing = ", ".join(
            _short(j, measures[j.name]) for j in result.metrics if _counts_against(j)
        )
        return f"judge {result.score:g} ({outcome}{': ' + failing if failing else ''})"

    def check_value(self) -> CheckValue:
        """The judge beside the metrics in the record, so the status view and the pushed
        `flagger_canary_metric_analysis{metric="judge"}` show its score."""
        score = None if self.result is None else self.result.score
        return CheckValue(score, f">= {self.spec.thresholds.pass_score:g}", self.passed)

    def entry(self) -> JudgeEntry:
        result = self.result
        return JudgeEntry(
            score=None if result is None else result.score,
            verdict=None if result is None else str(result.verdict),
            passed=self.passed,
            pending=self.pending,
            classifications={} if result is None else _classifications(result),
            reason=None if self.passed else self.reason,
        )


def judge_check(
    release: ReleaseSpec, metrics: MetricsPort, now: float, interval_seconds: float
) -> Judged | None:
    """Samples and judges the check at `now`; None when the release has no judge."""
    if release.judge is None:
        return None
    spec = release.judge.spec
    window = spec.window(now, interval_seconds)
    sampled = [
        metrics.samples(metric.name, queries, window) for metric, queries in release.judge_queries()
    ]
    errors = [f"{samples.name}: {samples.error}" for samples in sampled if samples.error]
    if errors:
        return Judged(spec, None, "; ".join(errors))
    result = judge(spec, {samples.name: (samples.canary, samples.primary) for samples in sampled})
    return Judged(spec, result)


def _counts_against(judgement: MetricJudgement) -> bool:
    return not judgement.muted and judgement.classification is not Classification.PASS


def _short(judgement: MetricJudgement, measure: EffectMeasure) -> str:
    """`request-duration High x1.42` (a mean ratio) or `... High cles 0.91`: the
    classification and, when there was one, the effect size."""
    label = f"{judgement.name} {judgement.classification}"
    if judgement.critical_failure:
        label += " (critical)"
    effect = judgement.effect_size
    if effect is None:
        return label
    if measure is EffectMeasure.CLES:
        return f"{label} cles {effect:.2f}"
    return f"{label} x{effect:.3g}"


def _classifications(result: JudgeResult) -> dict[str, str]:
    return {judgement.name: str(judgement.classification) for judgement in result.metrics}
