"""The Judge document: the documented example parses with Kayenta's defaults, and each bad
input is reported at its field path with the value given."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from components.spec.errors import SpecError
from components.spec.judge import (
    DEFAULT_GROUP,
    Direction,
    EffectMeasure,
    EffectSize,
    Group,
    Judge,
    JudgeMetric,
    JudgeSpec,
    MarginalPolicy,
    NanStrategy,
    OutlierStrategy,
    Thresholds,
)
from components.spec.queries import QueryContext
from tests.conftest import ROOT

QUERY = 'sum(rate(istio_requests_total{destination_workload=~"{{ target }}"}[{{ interval }}]))'


def documented_example() -> dict[str, Any]:
    """The first YAML block of docs/judge.md, so that the documentation stays true."""
    text = (ROOT / "docs" / "judge.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert block is not None
    document: dict[str, Any] = yaml.safe_load(block.group(1))
    return document


def minimal() -> dict[str, Any]:
    return {
        "apiVersion": "canary.pulumi.com/v1alpha1",
        "kind": "Judge",
        "spec": {
            "thresholds": {"pass": 95, "marginal": 75},
            "metrics": [{"name": "m", "query": QUERY}],
        },
    }


# --- The example and the defaults ------------------------------------------------------------


def test_documented_example_parses() -> None:
    judge = Judge.parse(documented_example())
    assert judge.metadata is not None and judge.metadata.name == "podinfo"
    spec = judge.spec
    duration, success = spec.metrics
    assert (duration.name, success.name) == ("request-duration", "request-success-rate")
    assert duration.critical and duration.effect_size.critical_increase == 2.0
    assert duration.outliers.strategy is OutlierStrategy.REMOVE
    assert success.must_have_data and success.direction is Direction.DECREASE
    assert spec.weights == {"latency": 40, "errors": 60}
    assert spec.step_seconds == 5


def test_kayentas_defaults() -> None:
    spec = Judge.parse(minimal()).spec
    (metric,) = spec.metrics
    assert spec.confidence_level == 0.98
    assert spec.tolerance == 0.25
    assert spec.step == "5s"
    assert spec.on_marginal is MarginalPolicy.HOLD
    assert spec.groups == []
    assert spec.weights == {DEFAULT_GROUP: 100}
    assert metric.group == DEFAULT_GROUP
    assert metric.direction is Direction.EITHER
    assert metric.nan_strategy is NanStrategy.REMOVE
    assert (metric.outliers.strategy, metric.outliers.factor) == (OutlierStrategy.KEEP, 3.0)
    assert (metric.critical, metric.must_have_data, metric.muted) == (False, False, False)
    sizes = metric.effect_size
    assert sizes.measure is EffectMeasure.MEAN_RATIO
    allowed = (sizes.allowed_increase, sizes.allowed_decrease)
    critical = (sizes.critical_increase, sizes.critical_decrease)
    assert allowed == critical == (1.0, 1.0)


def test_cles_thresholds_default_to_one_half_unless_given() -> None:
    sizes = EffectSize.model_validate({"measure": "cles", "allowedIncrease": 0.8})
    assert (sizes.allowed_increase, sizes.allowed_decrease) == (0.8, 0.5)
    assert (sizes.critical_increase, sizes.critical_decrease) == (0.5, 0.5)
    assert EffectSize(measure=EffectMeasure.CLES, critical_increase=0.9).critical_increase == 0.9


def test_python_models_equal_the_parsed_document() -> None:
    built = JudgeSpec(
        metrics=[JudgeMetric(name="m", query=QUERY)],
        thresholds=Thresholds(pass_score=95, marginal=75),
    )
    assert built == Judge.parse(minimal()).spec


def test_manifest_round_trips() -> None:
    judge = Judge.parse(documented_example())
    assert Judge.parse(judge.to_manifest()) == judge
    assert Judge.parse(judge) is judge


def test_unweighted_groups_share_the_rest() -> None:
    spec = JudgeSpec(
        metrics=[
            JudgeMetric(name="a", query=QUERY, group="latency"),
            JudgeMetric(name="b", query=QUERY, group="errors"),
            JudgeMetric(name="c", query=QUERY),
        ],
        groups=[Group(name="latency", weight=50), Group(name="errors")],
        thresholds=Thresholds(pass_score=95, marginal=75),
    )
    assert spec.weights == {"latency": 50, "errors": 25, DEFAULT_GROUP: 25}


def test_a_weight_of_zero_is_kept() -> None:
    spec = JudgeSpec(
        metrics=[
            JudgeMetric(name="a", query=QUERY, group="latency"),
            JudgeMetric(name="b", query=QUERY),
        ],
        groups=[Group(name="latency", weight=0)],
        thresholds=Thresholds(pass_score=95, marginal=75),
    )
    assert spec.weights == {"latency": 0, DEFAULT_GROUP: 100}


def test_sample_queries_select_the_canary_then_the_primary() -> None:
    metric = Judge.parse(documented_example()).spec.metrics[0]
    context = QueryContext(
        name="podinfo",
        namespace="test",
        target="podinfo",
        service="podinfo",
        interval="30s",
        variables={},
    )
    canary, primary = metric.sample_queries(context)
    assert 'destination_workload=~"podinfo"' in canary
    assert 'destination_workload=~"podinfo-primary"' in primary
    for query in (canary, primary):
        assert 'destination_workload_namespace="test"' in query
        assert "[30s]" in query
        assert "{{" not in query and "\n" not in query


# --- Bad input -------------------------------------------------------------------------------

Edit = Callable[[dict[str, Any]], None]


def spec_edit(**fields: Any) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        document["spec"].update(fields)

    return edit


def metric_edit(**fields: Any) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        document["spec"]["metrics"][0].update(fields)

    return edit


def two_metrics(second: dict[str, Any], **spec_fields: Any) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        document["spec"]["metrics"].append({"name": "n", "query": QUERY, **second})
        document["spec"].update(spec_fields)

    return edit


_ABSENT = object()
BAD: list[tuple[str, Edit, str, Any, str]] = [
    # (id, edit, path, value, words of the reason)
    ("api-version", lambda d: d.update(apiVersion="flagger.app/v1beta1"), "apiVersion",
     "flagger.app/v1beta1", "canary.pulumi.com/v1alpha1"),
    ("kind", lambda d: d.update(kind="Canary"), "kind", "Canary", "Judge"),
    ("typo", metric_edit(mustHavData=True), "spec.metrics[0].mustHavData", True, "unknown field"),
    ("no-metrics", spec_edit(metrics=[]), "spec.metrics", [], "at least 1"),
    ("no-thresholds", lambda d: d["spec"].pop("thresholds"), "spec.thresholds", _ABSENT,
     "required"),
    ("direction", metric_edit(direction="up"), "spec.metrics[0].direction", "up", "either"),
    ("measure", metric_edit(effectSize={"measure": "cohen"}), "spec.metrics[0].effectSize.measure",
     "cohen", "cles"),
    ("increase-below-1", metric_edit(effectSize={"allowedIncrease": 0.9}),
     "spec.metrics[0].effectSize.allowedIncrease", 0.9, "at least 1 for meanRatio"),
    ("critical-decrease-above-1", metric_edit(effectSize={"criticalDecrease": 1.2}),
     "spec.metrics[0].effectSize.criticalDecrease", 1.2, "at most 1 for meanRatio"),
    ("cles-decrease", metric_edit(effectSize={"measure": "cles", "allowedDecrease": 0.7}),
     "spec.metrics[0].effectSize.allowedDecrease", 0.7, "at most 0.5 for cles"),
    ("cles-above-1", metric_edit(effectSize={"measure": "cles", "criticalIncrease": 1.5}),
     "spec.metrics[0].effectSize.criticalIncrease", 1.5, "probability"),
    ("nan-strategy", metric_edit(nanStrategy="zero"), "spec.metrics[0].nanStrategy", "zero",
     "replace"),
    ("outlier-strategy", metric_edit(outliers={"strategy": "drop"}),
     "spec.metrics[0].outliers.strategy", "drop", "keep"),
    ("outlier-factor", metric_edit(outliers={"factor": 0}), "spec.metrics[0].outliers.factor", 0,
     "greater than 0"),
    ("query-without-target", metric_edit(query="sum(up)"), "spec.metrics[0].query", "sum(up)",
     "must use {{ target }}"),
    ("query-syntax", metric_edit(query='sum(up{pod="{{ target }}"}'), "spec.metrics[0].query",
     'sum(up{pod="{{ target }}"}', "does not parse"),
    ("query-placeholder", metric_edit(query='up{pod="{{ target }}", x="{{ pod }}"}'),
     "spec.metrics[0].query", 'up{pod="{{ target }}", x="{{ pod }}"}', "unknown template name"),
    ("empty-name", metric_edit(name=""), "spec.metrics[0].name", "", "at least 1"),
    ("undeclared-group", metric_edit(group="latncy"), "spec.metrics[0].group", "latncy",
     "not in groups"),
    ("unused-group", spec_edit(groups=[{"name": "latency"}]), "spec.groups[0].name", "latency",
     "no metric"),
    ("duplicate-metric", two_metrics({"name": "m"}), "spec.metrics[1].name", "m",
     "duplicate name (also metrics[0])"),
    ("duplicate-group", two_metrics({"group": "a"}, groups=[{"name": "a"}, {"name": "a"}]),
     "spec.groups[1].name", "a", "duplicate name (also groups[0])"),
    ("weight-range", spec_edit(groups=[{"name": "default", "weight": 120}]),
     "spec.groups[0].weight", 120, "less than or equal to 100"),
    ("weights-above-100",
     two_metrics({"group": "a"}, groups=[{"name": "a", "weight": 60}, {"name": "default",
                                                                        "weight": 50}]),
     "spec.groups", {"a": 60.0, "default": 50.0}, "weights total 110, above 100"),
    ("weights-below-100",
     two_metrics({"group": "a"}, groups=[{"name": "a", "weight": 60}, {"name": "default",
                                                                        "weight": 30}]),
     "spec.groups", {"a": 60.0, "default": 30.0}, "must total 100, not 90"),
    ("marginal-above-pass", spec_edit(thresholds={"pass": 70, "marginal": 80}),
     "spec.thresholds.marginal", 80.0, "must not be above pass (70)"),
    ("marginal-zero", spec_edit(thresholds={"pass": 70, "marginal": 0}),
     "spec.thresholds.marginal", 0, "greater than 0"),
    ("pass-above-100", spec_edit(thresholds={"pass": 101, "marginal": 75}),
     "spec.thresholds.pass", 101, "less than or equal to 100"),
    ("on-marginal", spec_edit(onMarginal="retry"), "spec.onMarginal", "retry", "hold"),
    ("confidence", spec_edit(confidenceLevel=1.0), "spec.confidenceLevel", 1.0, "less than 1"),
    ("tolerance", spec_edit(tolerance=-0.1), "spec.tolerance", -0.1, "greater than or equal to 0"),
    ("step-format", spec_edit(step="5"), "spec.step", "5", "duration"),
    ("step-zero", spec_edit(step="0s"), "spec.step", "0s", "longer than 0s"),
    ("all-muted", metric_edit(muted=True), "spec.metrics", ["m"], "every metric is muted"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "path", "value", "reason"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_input_names_the_field_and_the_value(
    edit: Edit, path: str, value: Any, reason: str
) -> None:
    document = copy.deepcopy(minimal())
    edit(document)
    with pytest.raises(SpecError) as raised:
        Judge.parse(document)
    message = str(raised.value)
    assert message.startswith("invalid Judge:"), message
    assert f"  - {path}: " in message, message
    if value is not _ABSENT:
        assert f"(got {value!r})" in message, message
    assert reason.lower() in message.lower(), message


def test_every_problem_is_listed_not_only_the_first() -> None:
    document = minimal()
    document["spec"]["metrics"] = [
        {"name": "m", "query": QUERY, "group": "latncy"},
        {"name": "m", "query": QUERY},
    ]
    document["spec"]["groups"] = [{"name": "latency"}]
    with pytest.raises(SpecError) as raised:
        Judge.parse(document)
    paths = [problem.path for problem in raised.value.problems]
    assert paths == ["spec.metrics[1].name", "spec.metrics[0].group", "spec.groups[0].name"]


def test_python_models_are_checked_too() -> None:
    with pytest.raises(ValueError, match=r"metrics\.0\.group"):
        JudgeSpec(
            metrics=[JudgeMetric(name="m", query=QUERY, group="latncy")],
            thresholds=Thresholds(pass_score=95, marginal=75),
        )
    with pytest.raises(ValueError, match="at least 1 for meanRatio"):
        EffectSize(allowed_increase=0.5)
