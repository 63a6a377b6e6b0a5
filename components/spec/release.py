"""Everything one release needs, cross-checked: the Canary, its Deployment, templates and alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from .canary import BUILTIN_METRICS, Canary, CanarySpec, Metric, Strategy
from .configs import ConfigTracking
from .critical import annotation_problems
from .durations import format_seconds
from .errors import Problem, SpecError
from .judge import JUDGE_METRIC, Judge, JudgeMetric, SampleQueries
from .queries import BUILTIN_QUERIES, QueryContext, check_syntax, render
from .templates import AlertProvider, MetricTemplate
from .timing import Timing

# Flagger's -selector-labels default, in its order of preference.
SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
DEFAULT_NAMESPACE = "default"
# Containers whose ports port discovery skips: the mesh's proxies (Flagger's pkg/canary/util.go).
MESH_SIDECARS = ("istio-proxy", "envoy")

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class MetricQuery:
    """A metric with its query rendered for this release; the template supplies address and auth."""

    metric: Metric
    query: str
    template: MetricTemplate | None


class DiscoveredPort(NamedTuple):
    """A container port of the target that the Services also expose (`service.portDiscovery`)."""

    name: str
    number: int
    protocol: str


@dataclass(frozen=True)
class ReleaseSpec:
    """The validated input of the component, the gate and the rehearsal alike."""

    canary: Canary
    deployment: Mapping[str, Any]
    metric_templates: tuple[MetricTemplate, ...] = ()
    alert_providers: tuple[AlertProvider, ...] = ()
    autoscaler: Mapping[str, Any] | None = None
    judge: Judge | None = None
    """The statistical judge, run in every metrics check beside the thresholds."""
    configs: tuple[Mapping[str, Any], ...] = ()
    """The ConfigMaps and Secrets the pod template references, as given (see `config_tracking`)."""
    selector_label: str = field(init=False)

    def __post_init__(self) -> None:
        problems = [
            *self._strategy_problems(),
            *self._deployment_problems(),
            *self._autoscaler_problems(),
            *self._reference_problems(),
            *self._tcp_problems(),
            *annotation_problems(self.canary.metadata, self.spec.analysis),
            *self._judge_problems(),
            *self.config_tracking.problems(self.namespace),
        ]
        if problems:
            raise SpecError(problems)
        object.__setattr__(self, "selector_label", self._find_selector_label())
        port_problems = self._port_problems()
        if port_problems:
            raise SpecError(port_problems)
        self._check_queries()

    @classmethod
    def parse(
        cls,
        *,
        canary: Mapping[str, Any] | Canary,
        deployment: Mapping[str, Any],
        metric_templates: Sequence[Mapping[str, Any] | MetricTemplate] = (),
        alert_providers: Sequence[Mapping[str, Any] | AlertProvider] = (),
        autoscaler: Mapping[str, Any] | None = None,
        judge: Mapping[str, Any] | Judge | None = None,
        configs: Sequence[Mapping[str, Any]] = (),
    ) -> ReleaseSpec:
        """Builds from Flagger-shaped manifests (camelCase) or already-built models; the
        judge's problems are reported under `judge.`."""
        return cls(
            canary=_model(Canary, canary, "Canary"),
            deployment=deployment,
            metric_templates=tuple(
                _model(MetricTemplate, item, f"MetricTemplate[{index}]")
                for index, item in enumerate(metric_templates)
            ),
            alert_providers=tuple(
                _model(AlertProvider, item, f"AlertProvider[{index}]")
                for index, item in enumerate(alert_providers)
            ),
            autoscaler=autoscaler,
            judge=None if judge is None else _model(Judge, judge, "Judge", prefix="judge"),
            configs=tuple(configs),
        )

    # Names, exactly as Flagger spells them, so DNS and dashboards keep working.
    @property
    def spec(self) -> CanarySpec:
        return self.canary.spec

    @property
    def name(self) -> str:
        return self.canary.metadata.name

    @property
    def namespace(self) -> str:
        return self.canary.metadata.namespace or _namespace_of(self.deployment) or DEFAULT_NAMESPACE

    @property
    def target(self) -> str:
        return self.spec.target_ref.name

    @property
    def primary(self) -> str:
        return f"{self.target}-primary"

    @property
    def service(self) -> str:
        return self.spec.service_name

    @property
    def primary_service(self) -> str:
        return f"{self.service}-primary"

    @property
    def canary_service(self) -> str:
        return f"{self.service}-canary"

    @property
    def selector_value(self) -> str:
        return str(self.deployment["spec"]["selector"]["matchLabels"][self.selector_label])

    @property
    def config_tracking(self) -> ConfigTracking:
        """Which of `configs` the release tracks, against its pod template's references."""
        template = (self.deployment.get("spec") or {}).get("template")
        return ConfigTracking.of(template if isinstance(template, Mapping) else None, self.configs)

    @property
    def discovered_ports(self) -> tuple[DiscoveredPort, ...]:
        """Flagger's getPorts: every container port except the mesh sidecars' and the one
        `targetPort` names (by number, or by name; `port` when unset). An unnamed port is
        `tcp-<container>-<index in its ports>`; of two ports with one name the later container's
        wins. The protocol is the container port's (Flagger writes TCP even for UDP ports)."""
        service = self.spec.service
        if not service.port_discovery:
            return ()
        target = service.target_port or service.port
        found: dict[str, DiscoveredPort] = {}
        for container in self.deployment["spec"]["template"]["spec"]["containers"]:
            if container.get("name") in MESH_SIDECARS:
                continue
            for index, port in enumerate(container.get("ports") or []):
                number = port.get("containerPort")
                if (port.get("name") if isinstance(target, str) else number) == target:
                    continue
                name = port.get("name") or f"tcp-{container.get('name')}-{index}"
                found[name] = DiscoveredPort(name, number, port.get("protocol") or "TCP")
        return tuple(found.values())

    def template_for(self, metric: Metric) -> MetricTemplate | None:
        if metric.template_ref is None:
            return None
        namespace = metric.template_ref.namespace or self.namespace
        for template in self.metric_templates:
            if template.name == metric.template_ref.name and (
                (template.metadata.namespace or self.namespace) == namespace
            ):
                return template
        return None

    def alert_provider(self, name: str, namespace: str | None) -> AlertProvider | None:
        wanted = namespace or self.namespace
        for provider in self.alert_providers:
            if provider.name == name and (provider.metadata.namespace or self.namespace) == wanted:
                return provider
        return None

    @property
    def slack_notifications(self) -> tuple[AlertProvider, ...]:
        """Each Slack notification webhook (`Webhook.is_slack_notification`) as the Slack
        AlertProvider it stands for: named after the hook, its URL a secret address, channel
        and username from its metadata (Flagger's defaults `general` and `flagger`)."""
        providers = []
        for hook in self.spec.analysis.slack_notifications:
            metadata = hook.metadata or {}
            spec: dict[str, Any] = {"type": "slack", "address": hook.url}
            spec.update(
                (key, str(metadata[key])) for key in ("channel", "username") if key in metadata
            )
            providers.append(
                AlertProvider.model_validate(
                    {"metadata": {"name": hook.name, "namespace": self.namespace}, "spec": spec}
                )
            )
        return tuple(providers)

    @property
    def primary_replicas(self) -> int | None:
        """The primary's replicas: the target's, but at least 1 as Flagger creates it; None when
        an autoscaler owns them."""
        if self.autoscaler is not None:
            return None
        replicas = self.deployment["spec"].get("replicas")
        return replicas if isinstance(replicas, int) and replicas > 0 else 1

    @property
    def notes(self) -> list[str]:
        """What the preview should say about valid input that may not do what it seems to."""
        notes = []
        for index, metric in enumerate(self.spec.analysis.metrics):
            if metric.bounds is None:
                notes.append(
                    f"spec.analysis.metrics[{index}] {metric.name!r} has no thresholdRange: "
                    "it only fails when the query returns no data"
                )
        for index, hook in enumerate(self.spec.analysis.webhooks):
            if hook.is_slack_notification:
                notes.append(
                    f"spec.analysis.webhooks[{index}] {hook.name!r} is a Slack notification, "
                    "not a gate: its events are posted to Slack as alerts; "
                    "set type: rollout to gate on it"
                )
        for index, weight in enumerate(self.spec.analysis.step_weights or []):
            if weight > 100:
                notes.append(
                    f"spec.analysis.stepWeights[{index}] is {weight}: read as 100, as Flagger does"
                )
        if self.deployment["spec"].get("replicas") == 0 and self.autoscaler is None:
            notes.append(
                "deployment.spec.replicas is 0: as with Flagger, the primary runs 1 replica "
                "and the canary is scaled to 1 for its analysis"
            )
        if self.judge is not None and self.spec.analysis.strategy is Strategy.BLUEGREEN:
            notes.append(
                "judge: blue/green sends users only to the primary and tests the canary "
                "directly, so the judge compares the load tests' requests to the canary with "
                "the users' requests to the primary; without a load test the canary has no "
                "samples and each judge metric follows its nanStrategy and mustHaveData"
            )
        notes += self.config_tracking.notes()
        return notes

    def metric_queries(self, timing: Timing | None = None) -> list[MetricQuery]:
        """Built-in metrics first, then the rest, in Flagger's order; each query's window is
        the metric's interval unless the timing overrides it."""
        ordered = sorted(self.spec.analysis.metrics, key=lambda m: m.name not in BUILTIN_METRICS)
        return [
            self.query(metric, timing.window(metric) if timing else metric.interval)
            for metric in ordered
        ]

    def judge_queries(self) -> list[tuple[JudgeMetric, SampleQueries]]:
        """Each judge metric with its canary and primary query. `{{ interval }}` is the
        judge's step, so that each sample's rate covers only its own step (`SampleWindow`)."""
        if self.judge is None:
            return []
        context = self._context(format_seconds(self.judge.spec.step_seconds), {})
        return [(metric, metric.sample_queries(context)) for metric in self.judge.spec.metrics]

    def sampling_problems(self, timing: Timing) -> list[Problem]:
        """Whether every check holds enough judge samples; needs the timing, which the gate and
        the rehearsal settle after the spec (an interval override changes the count)."""
        if self.judge is None:
            return []
        return self.judge.spec.sampling_problems(timing.interval_seconds, "judge.spec.step")

    def query(self, metric: Metric, window: str) -> MetricQuery:
        """`metric`'s query for this release, its range `{{ interval }}` set to `window`."""
        template = self.template_for(metric)
        if metric.name in BUILTIN_METRICS and template is None and not metric.query:
            text = BUILTIN_QUERIES[metric.name]
        else:
            text = template.spec.query if template else metric.query or ""
        context = self._context(window, metric.template_variables or {})
        return MetricQuery(metric, render(text, context), template)

    def _context(self, window: str, variables: Mapping[str, str]) -> QueryContext:
        return QueryContext(
            name=self.name,
            namespace=self.namespace,
            target=self.target,
            service=self.service,
            interval=window,
            variables=variables,
        )

    def _check_queries(self) -> None:
        problems = []
        for index, metric in enumerate(self.spec.analysis.metrics):
            path = f"spec.analysis.metrics[{index}]"
            try:
                check_syntax(self.query(metric, metric.interval).query)
            except (KeyError, ValueError) as error:
                reason = error.args[0] if error.args else str(error)
                problems.append(Problem(path, f"metric {metric.name!r}: {reason}"))
        if problems:
            raise SpecError(problems)

    def _strategy_problems(self) -> list[Problem]:
        found = self.spec.analysis.strategy_problems(skip_analysis=self.spec.skip_analysis)
        return [
            Problem(
                f"spec.analysis.{field}" if field else "spec.analysis",
                message,
                value,
                value is not None,
            )
            for field, message, value in found
        ]

    def _deployment_problems(self) -> list[Problem]:
        deployment = self.deployment
        problems = []
        if deployment.get("kind") != "Deployment" or deployment.get("apiVersion") != "apps/v1":
            found = f"{deployment.get('apiVersion')}/{deployment.get('kind')}"
            problems.append(Problem("deployment", "must be an apps/v1 Deployment", found, True))
            return problems
        name = (deployment.get("metadata") or {}).get("name")
        if name != self.target:
            problems.append(
                Problem(
                    "deployment.metadata.name",
                    f"must equal the Canary's spec.targetRef.name {self.target!r}",
                    name,
                    True,
                )
            )
        namespace = _namespace_of(deployment)
        if self.canary.metadata.namespace and namespace and namespace != self.namespace:
            problems.append(
                Problem(
                    "deployment.metadata.namespace",
                    f"must equal the Canary's namespace {self.namespace!r}",
                    namespace,
                    True,
                )
            )
        labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not any(label in labels for label in SELECTOR_LABELS):
            problems.append(
                Problem(
                    "deployment.spec.selector.matchLabels",
                    f"needs one of the labels {', '.join(SELECTOR_LABELS)} (Flagger's selector)",
                    labels,
                    True,
                )
            )
        template = (deployment.get("spec") or {}).get("template")
        if not isinstance(template, Mapping) or not (template.get("spec") or {}).get("containers"):
            problems.append(
                Problem("deployment.spec.template.spec.containers", "at least one container")
            )
            return problems
        template_labels = (template.get("metadata") or {}).get("labels") or {}
        if any(template_labels.get(key) != value for key, value in labels.items()):
            problems.append(
                Problem(
                    "deployment.spec.selector.matchLabels",
                    "must match the pod template's labels (spec.template.metadata.labels "
                    f"{dict(template_labels)!r}), or the Deployment selects none of its pods",
                    labels,
                    True,
                )
            )
        replicas = (deployment.get("spec") or {}).get("replicas")
        if replicas is not None and (
            isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0
        ):
            problems.append(
                Problem("deployment.spec.replicas", "must be a whole number >= 0", replicas, True)
            )
        return problems

    def _autoscaler_problems(self) -> list[Problem]:
        ref = self.spec.autoscaler_ref
        if ref is None:
            return []
        if self.autoscaler is None:
            return [
                Problem(
                    "spec.autoscalerRef",
                    f"names HPA {ref.name!r}: pass its manifest as `autoscaler`",
                )
            ]
        name = (self.autoscaler.get("metadata") or {}).get("name")
        if name != ref.name:
            return [
                Problem(
                    "autoscaler.metadata.name",
                    f"must equal autoscalerRef.name {ref.name!r}",
                    name,
                    True,
                )
            ]
        return []

    def _reference_problems(self) -> list[Problem]:
        problems = []
        analysis = self.spec.analysis
        for index, metric in enumerate(analysis.metrics):
            if metric.template_ref and self.template_for(metric) is None:
                known = ", ".join(t.name for t in self.metric_templates) or "none were passed in"
                problems.append(
                    Problem(
                        f"spec.analysis.metrics[{index}].templateRef.name",
                        f"no MetricTemplate of that name (known: {known})",
                        metric.template_ref.name,
                        True,
                    )
                )
        for index, alert in enumerate(analysis.alerts):
            ref = alert.provider_ref
            if self.alert_provider(ref.name, ref.namespace) is None:
                known = ", ".join(p.name for p in self.alert_providers) or "none were passed in"
                problems.append(
                    Problem(
                        f"spec.analysis.alerts[{index}].providerRef.name",
                        f"no AlertProvider of that name (known: {known})",
                        ref.name,
                        True,
                    )
                )
        return problems

    def _tcp_problems(self) -> list[Problem]:
        """A TCP service is routed by weight alone: Flagger drops every HTTP-only setting of a
        TCP canary without a word, and its A/B run then sends all connections to the canary."""
        service, analysis = self.spec.service, self.spec.analysis
        if not service.is_tcp:
            return []
        http_only = {
            "spec.analysis.match": analysis.match,
            "spec.analysis.mirror": analysis.mirror,
            "spec.analysis.sessionAffinity": analysis.session_affinity,
            "spec.service.timeout": service.timeout,
            "spec.service.retries": service.retries,
            "spec.service.headers": service.headers,
            "spec.service.corsPolicy": service.cors_policy,
            "spec.service.rewrite": service.rewrite,
        }
        reason = f"needs HTTP routes, and appProtocol {service.app_protocol!r} routes TCP"
        problems = [Problem(path, reason) for path, value in http_only.items() if value]
        for index, condition in enumerate(service.match):
            extra = sorted(set(condition.to_manifest()) - {"port"})
            if extra:
                problems.append(
                    Problem(
                        f"spec.service.match[{index}]",
                        f"a TCP route matches on port only; remove {', '.join(extra)}",
                    )
                )
        return problems

    def _judge_problems(self) -> list[Problem]:
        """The judge reports and pushes its score as a metric named `judge`."""
        if self.judge is None:
            return []
        return [
            Problem(
                f"spec.analysis.metrics[{index}].name",
                f"{JUDGE_METRIC!r} is the judge's name in progress lines, reports and "
                "pushed metrics; rename this metric",
                metric.name,
                True,
            )
            for index, metric in enumerate(self.spec.analysis.metrics)
            if metric.name == JUDGE_METRIC
        ]

    def _port_problems(self) -> list[Problem]:
        """The API server rejects a Service whose ports repeat a name or a (number, protocol)
        pair; Flagger would generate such Services from these inputs and fail at every tick."""
        service = self.spec.service
        taken: dict[tuple[Any, ...], str] = {
            ("name", service.port_name): "spec.service.portName",
            ("port", service.port, "TCP"): "spec.service.port",
        }
        problems = []
        for port in self.discovered_ports:
            found = f"container port {port.name!r} ({port.number}/{port.protocol})"
            for key in (("name", port.name), ("port", port.number, port.protocol)):
                if key in taken:
                    problems.append(
                        Problem(
                            "spec.service.portDiscovery",
                            f"adds {found} to the Services, repeating the {key[0]} of "
                            f"{taken[key]}; rename or renumber the container port, or point "
                            "spec.service.targetPort at it",
                        )
                    )
                taken.setdefault(key, found)
        return problems

    def _find_selector_label(self) -> str:
        labels = self.deployment["spec"]["selector"]["matchLabels"]
        return next(label for label in SELECTOR_LABELS if label in labels)


def _namespace_of(manifest: Mapping[str, Any]) -> str | None:
    namespace = (manifest.get("metadata") or {}).get("namespace")
    return str(namespace) if namespace else None


def _model(model: type[M], value: Mapping[str, Any] | M, source: str, prefix: str = "") -> M:
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise SpecError.from_validation(error, prefix=prefix, source=source) from None
