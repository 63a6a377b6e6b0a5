"""Flagger's `Canary` for Istio and Deployments, with Flagger's defaults and stricter checks."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from .base import SpecModel
from .durations import Duration, parse_seconds
from .istio import (
    CorsPolicy,
    Headers,
    HTTPMatchRequest,
    HTTPRetry,
    HTTPRewrite,
    SessionAffinity,
    TrafficPolicy,
)

REQUEST_SUCCESS_RATE = "request-success-rate"
REQUEST_DURATION = "request-duration"
BUILTIN_METRICS = (REQUEST_SUCCESS_RATE, REQUEST_DURATION)

DEFAULT_INTERVAL = "60s"
DEFAULT_METRIC_INTERVAL = "1m"
DEFAULT_WEBHOOK_TIMEOUT = "10s"
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
SLACK_HOOKS_HOST = "hooks.slack.com"
# Flagger's Istio installation (kustomize/istio) points -metrics-server here.
DEFAULT_METRICS_SERVER = "http://prometheus.istio-system:9090"


class Strategy(StrEnum):
    """Flagger's DeploymentStrategy(): match + iterations is A/B, iterations alone blue/green."""

    CANARY = "canary"
    AB = "ab"
    BLUEGREEN = "bluegreen"


class HookType(StrEnum):
    ROLLOUT = "rollout"
    PRE_ROLLOUT = "pre-rollout"
    POST_ROLLOUT = "post-rollout"
    CONFIRM_ROLLOUT = "confirm-rollout"
    CONFIRM_PROMOTION = "confirm-promotion"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    ROLLBACK = "rollback"
    EVENT = "event"


class ObjectReference(SpecModel):
    api_version: str | None = None
    kind: str
    name: str = Field(min_length=1)


class TargetRef(ObjectReference):
    api_version: str = "apps/v1"
    kind: Literal["Deployment"] = Field(
        description="Only Deployments: DaemonSets cannot be weighted by replica-based canaries."
    )


class ScalerReplicas(SpecModel):
    min_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int | None = Field(default=None, ge=1)


class AutoscalerRef(SpecModel):
    api_version: str = "autoscaling/v2"
    kind: Literal["HorizontalPodAutoscaler"]
    name: str = Field(min_length=1)
    primary_scaler_replicas: ScalerReplicas | None = None
    primary_scaler_queries: dict[str, str] | None = None


class CustomMetadata(SpecModel):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class UnmanagedMetadata(SpecModel):
    labels: list[str] | None = None
    annotations: list[str] | None = None


class ServiceSpec(SpecModel):
    """`spec.service`: the apex, primary and canary Services and their Istio routes."""

    name: str | None = None
    port: int = Field(ge=1, le=65535)
    port_name: str = "http"
    target_port: int | str | None = None
    app_protocol: str | None = None
    traffic_distribution: Literal["PreferClose", "PreferSameZone", "PreferSameNode"] | None = None
    port_discovery: bool = False
    headless: bool = False
    timeout: str | None = None
    hosts: list[str] = Field(default_factory=list)
    gateways: list[str] = Field(default_factory=list)
    delegation: bool = False
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    retries: HTTPRetry | None = None
    headers: Headers | None = None
    cors_policy: CorsPolicy | None = None
    rewrite: HTTPRewrite | None = None
    traffic_policy: TrafficPolicy | None = None
    apex: CustomMetadata | None = None
    primary: CustomMetadata | None = None
    canary: CustomMetadata | None = None
    unmanaged_metadata: UnmanagedMetadata | None = None
    # Accepted because Flagger's schema accepts them, but they belong to other mesh providers.
    backend_timeout: str | None = None
    mesh_name: str | None = None
    backends: list[str] | None = None
    mirror: list[dict[str, Any]] | None = None
    gateway_refs: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _delegation_excludes_hosts(self) -> ServiceSpec:
        if self.delegation and (self.hosts or self.gateways):
            raise ValueError("delegation produces a VirtualService without hosts or gateways")
        return self

    @property
    def is_tcp(self) -> bool:
        """Flagger's isTcp: `appProtocol: tcp`, in any case, routes by `spec.tcp`."""
        return (self.app_protocol or "").lower() == "tcp"


class ThresholdRange(SpecModel):
    """Inclusive bounds: a value equal to min or max passes, as in Flagger."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdRange:
        if self.min is None and self.max is None:
            raise ValueError("set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self

    def admits(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def breach(self, value: float) -> str | None:
        """`< 99` or `> 500`: how `value` falls outside the range, as Flagger says it; None
        when admitted."""
        if self.min is not None and value < self.min:
            return f"< {self.min:g}"
        if self.max is not None and value > self.max:
            return f"> {self.max:g}"
        return None

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts)


class TemplateRef(SpecModel):
    name: str = Field(min_length=1)
    namespace: str | None = None


class Metric(SpecModel):
    name: str = Field(min_length=1)
    interval: Duration = DEFAULT_METRIC_INTERVAL
    threshold: float | None = Field(default=None, description="Deprecated: use thresholdRange.")
    threshold_range: ThresholdRange | None = None
    query: str | None = Field(default=None, description="Deprecated inline PromQL.")
    template_ref: TemplateRef | None = None
    template_variables: dict[str, str] | None = None

    @model_validator(mode="after")
    def _resolvable(self) -> Metric:
        if not self.builtin and not self.template_ref and not self.query:
            raise ValueError(
                f"metric {self.name!r} is not built in ({', '.join(BUILTIN_METRICS)}) "
                "and has neither templateRef nor query"
            )
        if self.template_ref and self.query:
            raise ValueError("set templateRef or query, not both")
        return self

    @property
    def builtin(self) -> bool:
        """One of Flagger's built-in metrics: no template or query of the user's."""
        return self.name in BUILTIN_METRICS and not self.template_ref and not self.query

    @property
    def bounds(self) -> ThresholdRange | None:
        """The effective range: the deprecated `threshold` is a min for success rate, else a max."""
        if self.threshold_range is not None:
            return self.threshold_range
        if self.threshold is None:
            return None
        if self.name == REQUEST_SUCCESS_RATE:
            return ThresholdRange(min=self.threshold)
        return ThresholdRange(max=self.threshold)

    @property
    def interval_seconds(self) -> float:
        return parse_seconds(self.interval)

    def failure(self, value: float | None) -> str | None:
        """Why `value` fails this metric (`request-success-rate 45.96 < 99`); None if it
        passes. A metric without bounds needs a value only."""
        if value is None:
            return f"no values found for {self.name} (is the canary receiving traffic?)"
        breach = self.bounds.breach(value) if self.bounds is not None else None
        return None if breach is None else f"{self.name} {value:.4g} {breach}"


class Webhook(SpecModel):
    name: str = Field(min_length=1)
    url: str = Field(min_length=1)
    type: HookType | Literal[""] = Field(
        default="", description="Unset (or empty, as Go cannot tell them apart) is rollout."
    )
    timeout: Duration = DEFAULT_WEBHOOK_TIMEOUT
    retries: int = Field(default=0, ge=0)
    disable_tls: bool = Field(default=False, alias="disableTLS")
    mute_alert: bool = False
    metadata: dict[str, Any] | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> Any:
        # One message instead of pydantic's one per union member.
        if value == "" or value in set(HookType):
            return value
        known = ", ".join(HookType)
        hint = ""
        if value in ("slack", "msteams", "discord", "rocket", "gchat"):
            hint = f"; a {value} notification is an AlertProvider in spec.analysis.alerts"
        if value == "slack":
            hint += ", or this webhook without type and with metadata.type: slack"
        raise ValueError(f"must be one of {known}{hint}")

    @property
    def hook_type(self) -> HookType:
        return HookType(self.type or HookType.ROLLOUT)

    @property
    def is_slack_notification(self) -> bool:
        """A hook Flagger's docs configure for Slack notifications: `metadata.type: slack` or
        a Slack incoming-webhook URL, with `type` unset. Flagger would call it as a rollout
        gate, Slack would reject the payload and the release would halt; here its events go
        to Slack as alerts. An explicit `type` keeps it a hook of that type."""
        if self.type:
            return False
        kind = str((self.metadata or {}).get("type", ""))
        return kind.lower() == "slack" or _is_slack_hook_url(self.url)

    @property
    def timeout_seconds(self) -> float:
        return parse_seconds(self.timeout)


def _is_slack_hook_url(url: str) -> bool:
    """`https://hooks.slack.com/services/...`, Slack's incoming-webhook address."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # not a URL at all
        return False
    return (
        parts.scheme == "https" and host == SLACK_HOOKS_HOST and parts.path.startswith("/services/")
    )


class ProviderRef(SpecModel):
    name: str = Field(min_length=1)
    namespace: str | None = None


class Alert(SpecModel):
    name: str = Field(min_length=1)
    severity: Literal["", "info", "warn", "error"] = "info"
    provider_ref: ProviderRef


class Analysis(SpecModel):
    """`spec.analysis`: the schedule, the strategy and its gates."""

    interval: Duration = DEFAULT_INTERVAL
    threshold: int = Field(default=1, ge=0)
    max_weight: int | None = Field(default=None, ge=0, le=100)
    step_weight: int | None = Field(default=None, ge=0, le=100)
    step_weights: list[int] | None = None
    step_weight_promotion: int | None = Field(default=None, ge=0, le=100)
    iterations: int | None = Field(default=None, ge=0)
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    mirror: bool = False
    mirror_weight: int | None = Field(default=None, ge=0, le=100)
    primary_ready_threshold: int = Field(default=100, ge=0, le=100)
    canary_ready_threshold: int = Field(default=100, ge=0, le=100)
    metrics: list[Metric] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)
    session_affinity: SessionAffinity | None = None

    @field_validator("step_weights")
    @classmethod
    def _increasing(cls, weights: list[int] | None) -> list[int] | None:
        # A field validator, so the error's path is `analysis.stepWeights`, not `analysis`.
        if weights is not None:
            _check_step_weights(weights)
        return weights

    def strategy_problems(self, *, skip_analysis: bool) -> list[tuple[str, str, Any]]:
        """(field, message, value) for a missing or ambiguous strategy; none is needed when the
        analysis is skipped, as Flagger accepts `analysis: {}` with `skipAnalysis: true`."""
        chosen = [
            label
            for label, value in (
                ("stepWeight", self.step_weight),
                ("stepWeights", self.step_weights),
                ("iterations", self.iterations),
            )
            if value
        ]
        if len(chosen) > 1:
            return [("", f"conflicting strategies: {' and '.join(chosen)}; set only one", None)]
        if chosen or skip_analysis:
            return []
        if self.step_weight == 0:
            return [("stepWeight", "must be at least 1 (or set stepWeights or iterations)", 0)]
        if self.iterations == 0:
            return [("iterations", "must be at least 1 (or set stepWeight or stepWeights)", 0)]
        return [("", "no strategy: set stepWeight, stepWeights or iterations", None)]

    @property
    def strategy(self) -> Strategy:
        if self.iterations:
            return Strategy.AB if self.match else Strategy.BLUEGREEN
        return Strategy.CANARY

    @property
    def effective_threshold(self) -> int:
        """Flagger treats 0 as unset: one failed check rolls back."""
        return self.threshold or 1

    @property
    def effective_max_weight(self) -> int:
        if self.max_weight:
            return self.max_weight
        if self.step_weights:
            return min(100, self.step_weights[-1])
        return 100

    @property
    def interval_seconds(self) -> float:
        return parse_seconds(self.interval)

    @property
    def called_hooks(self) -> list[Webhook]:
        """The webhooks called with Flagger's payload: all but the Slack notifications."""
        return [hook for hook in self.webhooks if not hook.is_slack_notification]

    @property
    def slack_notifications(self) -> list[Webhook]:
        return [hook for hook in self.webhooks if hook.is_slack_notification]

    def hooks(self, hook_type: HookType) -> list[Webhook]:
        return [hook for hook in self.called_hooks if hook.hook_type is hook_type]


def _check_step_weights(weights: list[int]) -> None:
    """At least 1 each and increasing; above 100 is allowed, read as 100 (as Flagger does)."""
    for index, weight in enumerate(weights):
        if weight < 1:
            raise ValueError(f"stepWeights[{index}] = {weight} is below 1")
    for index in range(1, len(weights)):
        if weights[index] <= weights[index - 1]:
            raise ValueError(
                f"stepWeights must increase: {weights[index - 1]} then {weights[index]}"
            )


class CanarySpec(SpecModel):
    """`spec` of a Flagger Canary, restricted to what applies to Istio and Deployments."""

    target_ref: TargetRef
    service: ServiceSpec
    analysis: Analysis
    provider: Literal["istio"] | None = None
    metrics_server: str | None = None
    autoscaler_ref: AutoscalerRef | None = None
    progress_deadline_seconds: int = Field(default=DEFAULT_PROGRESS_DEADLINE_SECONDS, ge=1)
    skip_analysis: bool = False
    revert_on_deletion: bool = False
    suspend: bool = False

    @property
    def service_name(self) -> str:
        return self.service.name or self.target_ref.name

    @property
    def metrics_address(self) -> str:
        return self.metrics_server or DEFAULT_METRICS_SERVER


class ObjectMeta(SpecModel):
    """Manifest metadata; fields a cluster adds (uid, resourceVersion...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class Canary(SpecModel):
    """A whole `Canary` manifest, as a Flagger user keeps it in Git."""

    api_version: Literal["flagger.app/v1beta1"]
    kind: Literal["Canary"]
    metadata: ObjectMeta
    spec: CanarySpec
    status: dict[str, Any] | None = Field(default=None, description="Ignored: exported manifests.")
