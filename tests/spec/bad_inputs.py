"""Each class of bad input the issue names, as an edit of the tutorial's manifests.

Shared by the spec tests (the message names the field and the value) and the component tests
(nothing is declared).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.conftest import Bundle, config_manifest, load_yaml

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


def deployment(**fields: Any) -> Edit:
    def edit(kwargs: dict[str, Any]) -> None:
        kwargs["deployment"]["spec"].update(fields)

    return edit


def annotation(key: str, value: Any) -> Edit:
    def edit(kwargs: dict[str, Any]) -> None:
        kwargs["canary"]["metadata"].setdefault("annotations", {})[key] = value

    return edit


def template_query(query: str) -> Edit:
    def edit(kwargs: dict[str, Any]) -> None:
        kwargs["metric_templates"][0]["spec"]["query"] = query

    return edit


def configs(*manifests: dict[str, Any], env_from: str | None = None) -> Edit:
    """`configs` as given; with `env_from`, the pod template reads that ConfigMap."""

    def edit(kwargs: dict[str, Any]) -> None:
        kwargs["configs"] = list(manifests)
        if env_from is not None:
            container = kwargs["deployment"]["spec"]["template"]["spec"]["containers"][0]
            container["envFrom"] = [{"configMapRef": {"name": env_from}}]

    return edit


def config_map(name: str, **fields: Any) -> dict[str, Any]:
    return config_manifest("ConfigMap", name, **fields)


A = "spec.analysis"
CRITICAL = "canary.pulumi.com/critical"
SCRAPE = "canary.pulumi.com/scrape-interval"
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
        "step-weights-below-1",
        both(drop("canary", "spec", "analysis", "stepWeight"), analysis(stepWeights=[0, 20])),
        f"{A}.stepWeights",
        [0, 20],
        "stepWeights[0] = 0 is below 1",
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
    BadInput(
        "webhook-empty-url",
        webhook(url=""),
        f"{A}.webhooks[0].url",
        reason="at least 1 character (value not shown: it may be a credential)",
    ),
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
    BadInput("zero-interval", analysis(interval="0s"), f"{A}.interval", "0s", "longer than 0s"),
    BadInput("zero-metric-interval", metric(0, interval="0s"), f"{A}.metrics[0].interval", "0s"),
    BadInput(
        "zero-webhook-timeout",
        webhook(url="http://flagger-loadtester.test/", timeout="0s"),
        f"{A}.webhooks[0].timeout",
        "0s",
        "longer than 0s",
    ),
    BadInput("step-weight-zero", analysis(stepWeight=0), f"{A}.stepWeight", 0, "at least 1"),
    BadInput(
        "iterations-zero",
        both(drop("canary", "spec", "analysis", "stepWeight"), analysis(iterations=0)),
        f"{A}.iterations",
        0,
        "at least 1",
    ),
    BadInput(
        "selector-does-not-match-the-template",
        deployment(selector={"matchLabels": {"app": "podinfo-v2"}}),
        "deployment.spec.selector.matchLabels",
        {"app": "podinfo-v2"},
        "must match the pod template's labels",
    ),
    BadInput("negative-replicas", deployment(replicas=-1), "deployment.spec.replicas", -1, ">= 0"),
    BadInput(
        "replicas-not-a-number", deployment(replicas="two"), "deployment.spec.replicas", "two"
    ),
    BadInput(
        "webhook-type-slack",
        webhook(url="https://hooks.slack.com/services/x", type="slack"),
        f"{A}.webhooks[0].type",
        "slack",
        "a slack notification is an AlertProvider",
    ),
    BadInput(
        "step-weight-promotion-over-100",
        analysis(stepWeightPromotion=101),
        f"{A}.stepWeightPromotion",
        101,
        "100",
    ),
    BadInput(
        "canary-ready-threshold-over-100",
        analysis(canaryReadyThreshold=101),
        f"{A}.canaryReadyThreshold",
        101,
        "100",
    ),
    BadInput(
        "session-max-age-zero",
        analysis(sessionAffinity={"cookieName": "flagger-cookie", "maxAge": 0}),
        f"{A}.sessionAffinity.maxAge",
        0,
        "1",
    ),
    BadInput(
        "daemonset-target",
        lambda kwargs: kwargs["canary"]["spec"]["targetRef"].update(kind="DaemonSet"),
        "spec.targetRef.kind",
        "DaemonSet",
        "Deployment",
    ),
    BadInput(
        "another-mesh",
        lambda kwargs: kwargs["canary"]["spec"].update(provider="linkerd"),
        "spec.provider",
        "linkerd",
        "istio",
    ),
    BadInput(
        "progress-deadline-zero",
        lambda kwargs: kwargs["canary"]["spec"].update(progressDeadlineSeconds=0),
        "spec.progressDeadlineSeconds",
        0,
        "1",
    ),
    BadInput(
        "alert-severity-unknown",
        analysis(
            alerts=[{"name": "on-call", "severity": "critical", "providerRef": {"name": "x"}}]
        ),
        f"{A}.alerts[0].severity",
        "critical",
        "info",
    ),
    BadInput(
        "metric-without-name",
        analysis(metrics=[{"thresholdRange": {"min": 99}}]),
        f"{A}.metrics[0].name",
        reason="required",
    ),
    BadInput(
        "threshold-range-empty",
        metric(0, thresholdRange={}),
        f"{A}.metrics[0].thresholdRange",
        {},
        "set min, max or both",
    ),
    BadInput(
        "service-port-out-of-range",
        service(port=70000),
        "spec.service.port",
        70000,
        "65535",
    ),
    BadInput(
        "deployment-of-another-kind",
        lambda kwargs: kwargs["deployment"].update(kind="StatefulSet"),
        "deployment",
        "apps/v1/StatefulSet",
        "must be an apps/v1 Deployment",
    ),
    BadInput(
        "critical-bad-operator",
        annotation(CRITICAL, "request-success-rate << 50"),
        f'metadata.annotations["{CRITICAL}"]',
        "request-success-rate << 50",
        "condition 1 'request-success-rate << 50': must be METRIC < NUMBER",
    ),
    BadInput(
        "critical-unknown-metric",
        annotation(CRITICAL, "request-success-rate < 50, error-rat > 5"),
        f'metadata.annotations["{CRITICAL}"]',
        "request-success-rate < 50, error-rat > 5",
        "condition 2 'error-rat > 5': 'error-rat' is neither built in nor in spec.analysis.metrics "
        "(known: request-success-rate, request-duration, error-rate)",
    ),
    BadInput(
        "critical-empty",
        annotation(CRITICAL, " "),
        f'metadata.annotations["{CRITICAL}"]',
        " ",
        "must list conditions",
    ),
    BadInput(
        "critical-off-with-conditions",
        annotation(CRITICAL, "off, request-duration > 2000"),
        f'metadata.annotations["{CRITICAL}"]',
        "off, request-duration > 2000",
        "'off' stands alone",
    ),
    BadInput(
        "scrape-interval-not-a-duration",
        annotation(SCRAPE, "15"),
        f'metadata.annotations["{SCRAPE}"]',
        "15",
        "duration",
    ),
    BadInput(
        "scrape-interval-zero",
        annotation(SCRAPE, "0s"),
        f'metadata.annotations["{SCRAPE}"]',
        "0s",
        "longer than 0s",
    ),
    BadInput(
        "config-not-referenced",
        configs(config_map("podinfo-settings", data={"color": "blue"})),
        "configs[0].metadata.name",
        "podinfo-settings",
        "the pod template references no ConfigMap of that name (it references: none)",
    ),
    BadInput(
        "config-of-another-kind",
        configs({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}),
        "configs[0]",
        "apps/v1/Deployment",
        "must be a v1 ConfigMap or Secret",
    ),
    BadInput(
        "config-in-another-namespace",
        configs(
            config_map("podinfo-settings", metadata={"name": "podinfo-settings", "namespace": "b"}),
            env_from="podinfo-settings",
        ),
        "configs[0].metadata.namespace",
        "b",
        "must equal the Canary's namespace 'default'",
    ),
    BadInput(
        "config-value-not-a-string",
        configs(config_map("podinfo-settings", data={"PORT": 9898}), env_from="podinfo-settings"),
        "configs[0].data.PORT",
        reason="must be a string",
    ),
    BadInput(
        "config-field-misspelt",
        configs(config_map("podinfo-settings", date={"a": "b"}), env_from="podinfo-settings"),
        "configs[0].date",
        reason="unknown field",
    ),
]
