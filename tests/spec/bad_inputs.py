"""Each class of bad input the issue names, as an edit of the tutorial's manifests.

Shared by the spec tests (the message names the field and the value) and the component tests
(nothing is declared).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.conftest import Bundle, load_yaml

Edit = Callable[[dict[str, Any]], None]
_ABSENT = object()


@dataclass(frozen=True)
class BadInput:
    """An edit of `from_flagger`'s keyword arguments, and what the SpecError must say."""

    id: str
    edit: Edit
    path: str
    value: Any = _ABSENT
    reason: str = ""

    def kwargs(self) -> dict[str, Any]:
        kwargs = Bundle(
            name=self.id,
            canary=load_yaml("canary-metrics.yaml"),
            deployment=load_yaml("deployment.yaml"),
            metric_templates=(load_yaml("metric-template.yaml"),),
        ).kwargs()
        self.edit(kwargs)
        return kwargs

    def check(self, message: str) -> None:
        assert f"{self.path}:" in message, message
        if self.value is not _ABSENT:
            assert f"(got {self.value!r})" in message, message
        assert self.reason.lower() in message.lower(), message


def analysis(**fields: Any) -> Edit:
    def edit(kwargs: dict[str, Any]) -> None:
        kwargs["canary"]["spec"]["analysis"].update(fields)

    return edit


def metric(index: int, **fields: Any) -> Edit:
    def edit(kwargs: dict[str, Any]) -> None:
        kwargs["canary"]["spec"]["analysis"]["metrics"][index].update(fields)

    return edit


def drop(*path: str) -> Edit:
    def edit(kwargs: dict[str, Any]) -> None:
        node = kwargs
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit


def both(*edits: Edit) -> Edit:
    def edit(kwargs: dict[str, Any]) -> None:
        for one in edits:
            one(kwargs)

    return edit


def webhook(**fields: Any) -> Edit:
    return analysis(webhooks=[{"name": "load-test", **fields}])


def service(**fields: Any) -> Edit:
    def edit(kwargs: dict[str, Any]) -> None:
        kwargs["canary"]["spec"]["service"].update(fields)

    return edit


def template_query(query: str) -> Edit:
    def edit(kwargs: dict[str, Any]) -> None:
        kwargs["metric_templates"][0]["spec"]["query"] = query

    return edit


A = "spec.analysis"
BAD_INPUTS = [
    BadInput("step-weight-over-100", analysis(stepWeight=150), f"{A}.stepWeight", 150, "100"),
    BadInput("max-weight-over-100", analysis(maxWeight=101), f"{A}.maxWeight", 101, "100"),
    BadInput("negative-mirror-weight", analysis(mirrorWeight=-1), f"{A}.mirrorWeight", -1, "0"),
    BadInput(
        "step-weights-not-increasing",
        both(drop("canary", "spec", "analysis", "stepWeight"), analysis(stepWeights=[10, 5])),
        f"{A}.stepWeights",
        [10, 5],
        "increase",
    ),
    BadInput(
        "step-weights-over-100",
        both(drop("canary", "spec", "analysis", "stepWeight"), analysis(stepWeights=[50, 120])),
        f"{A}.stepWeights",
        [50, 120],
        "120",
    ),
    BadInput(
        "no-strategy",
        drop("canary", "spec", "analysis", "stepWeight"),
        A,
        reason="no strategy",
    ),
    BadInput(
        "step-weight-and-iterations",
        analysis(iterations=10),
        A,
        reason="conflicting strategies: stepWeight and iterations",
    ),
    BadInput(
        "step-weight-and-step-weights",
        analysis(stepWeights=[10, 20]),
        A,
        reason="conflicting strategies: stepWeight and stepWeights",
    ),
    BadInput("negative-threshold", analysis(threshold=-1), f"{A}.threshold", -1),
    BadInput("duration-bad-unit", analysis(interval="5x"), f"{A}.interval", "5x", "duration"),
    BadInput("duration-unit-first", analysis(interval="m5"), f"{A}.interval", "m5", "duration"),
    BadInput("duration-empty", analysis(interval=""), f"{A}.interval", "", "duration"),
    BadInput("duration-hours", analysis(interval="1h"), f"{A}.interval", "1h", "duration"),
    BadInput("metric-interval", metric(0, interval="fast"), f"{A}.metrics[0].interval", "fast"),
    BadInput(
        "webhook-timeout",
        webhook(url="http://flagger-loadtester.test/", timeout="10"),
        f"{A}.webhooks[0].timeout",
        "10",
        "duration",
    ),
    BadInput(
        "unknown-builtin-metric",
        analysis(metrics=[{"name": "request-sucess-rate", "thresholdRange": {"min": 99}}]),
        f"{A}.metrics[0]",
        reason="'request-sucess-rate' is not built in",
    ),
    BadInput(
        "template-not-passed-in",
        lambda kwargs: kwargs.update(metric_templates=[]),
        f"{A}.metrics[2].templateRef.name",
        "error-rate",
        "no MetricTemplate",
    ),
    BadInput(
        "template-in-another-namespace",
        metric(2, templateRef={"name": "error-rate", "namespace": "monitoring"}),
        f"{A}.metrics[2].templateRef.name",
        "error-rate",
        "no MetricTemplate",
    ),
    BadInput(
        "threshold-range-inverted",
        metric(0, thresholdRange={"min": 99, "max": 90}),
        f"{A}.metrics[0].thresholdRange",
        {"min": 99, "max": 90},
        "min 99 is above max 90",
    ),
    BadInput("webhook-without-url", webhook(), f"{A}.webhooks[0].url", reason="required"),
    BadInput("webhook-empty-url", webhook(url=""), f"{A}.webhooks[0].url", ""),
    BadInput(
        "unknown-webhook-type",
        webhook(url="http://flagger-loadtester.test/", type="pre-rolout"),
        f"{A}.webhooks[0].type",
        "pre-rolout",
    ),
    BadInput(
        "missing-service-port",
        drop("canary", "spec", "service", "port"),
        "spec.service.port",
        reason="required",
    ),
    BadInput(
        "typo-stepweight",
        analysis(stepweight=5),
        f"{A}.stepweight",
        5,
        "unknown field",
    ),
    BadInput(
        "typo-nested-header-match",
        service(match=[{"headers": {"x-user": {"exactt": "x"}}}]),
        "spec.service.match[0].headers.x-user.exactt",
        "x",
        "unknown field",
    ),
    BadInput(
        "unknown-spec-field",
        lambda kwargs: kwargs["canary"]["spec"].update(autoscaler={"name": "podinfo"}),
        "spec.autoscaler",
        {"name": "podinfo"},
        "unknown field",
    ),
    BadInput(
        "promql-typo",
        template_query('sum(rate(istio_requests_total{reporter="destination"}[{{ interval }}])'),
        f"{A}.metrics[2]",
        reason="metric 'error-rate': PromQL does not parse",
    ),
    BadInput(
        "missing-template-variable",
        template_query('sum(rate(istio_requests_total{route="{{ variables.route }}"}[1m]))'),
        f"{A}.metrics[2]",
        reason="metric 'error-rate': templateVariables has no 'route'",
    ),
    BadInput(
        "inline-query-typo",
        metric(1, query="histogram_quantile(0.99, sum(rate(x[1m])) by (le)"),
        f"{A}.metrics[1]",
        reason="metric 'request-duration': PromQL does not parse",
    ),
]
