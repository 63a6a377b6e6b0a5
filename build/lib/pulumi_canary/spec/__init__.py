"""The canary spec: Flagger's Canary, MetricTemplate and AlertProvider as validated models."""

from .canary import (
    BUILTIN_METRICS,
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    Alert,
    Analysis,
    Canary,
    CanarySpec,
    HookType,
    Metric,
    ServiceSpec,
    Strategy,
    ThresholdRange,
    Webhook,
)
from .durations import format_seconds, parse_seconds
from .errors import Problem, SpecError
from .release import MetricQuery, ReleaseSpec
from .revision import checksum, integral, template_revision
from .templates import AlertProvider, Credentials, MetricTemplate

__all__ = [
    "BUILTIN_METRICS",
    "REQUEST_DURATION",
    "REQUEST_SUCCESS_RATE",
    "Alert",
    "AlertProvider",
    "Analysis",
    "Canary",
    "CanarySpec",
    "Credentials",
    "HookType",
    "Metric",
    "MetricQuery",
    "MetricTemplate",
    "Problem",
    "ReleaseSpec",
    "ServiceSpec",
    "SpecError",
    "Strategy",
    "ThresholdRange",
    "Webhook",
    "checksum",
    "format_seconds",
    "integral",
    "parse_seconds",
    "template_revision",
]
