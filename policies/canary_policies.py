"""The canary-safety policies: no release reaches all users unverified.

This module only defines policies. `PolicyPack(...)` starts the analyzer and blocks, so the pack is
constructed in `__main__.py` alone and tests validate these policies directly.

Props arrive as the engine sends them: camelCase keys, numbers as floats, mappings and lists
wrapped in read-only proxies (so checks test for `Mapping` and `Sequence`, never `dict` or `list`),
and any key may be missing. Reading an unknown preview value raises `UnknownValueError`, which the
analyzer reports as "can't run policy during preview" instead of a false violation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.spec.canary import DEFAULT_INTERVAL
from components.spec.durations import DURATION_PATTERN, parse_seconds
from components.spec.hosts import is_in_cluster, service_of_host

ROLLOUT_TYPE = "pulumi-python:dynamic/canary:Rollout"
"""The component's release gate; its `canary` input is the Flagger Canary manifest."""
COMPONENT_TYPE = "canary:index:CanaryDeployment"
DEPLOYMENT_TYPE = "kubernetes:apps/v1:Deployment"
SUCCESS_RATE_METRIC = "request-success-rate"
# Flagger's defaults for unset fields (see Flagger's `pkg/apis/flagger/v1beta1/canary.go`).
FLAGGER_INTERVAL = DEFAULT_INTERVAL
FLAGGER_THRESHOLD = 1.0
FLAGGER_MAX_WEIGHT = 100.0
MESH_GATEWAY = "mesh"


Check = Callable[[ResourceValidationArgs, Mapping[str, Any]], Iterable[str]]
"""A policy's logic: the resource and its effective config in, violation messages out."""


# --- Reading engine props -------------------------------------------------------------------


def _setting(key: str, schema: dict[str, Any]) -> PolicyConfigSchema:
    """A policy's one configurable setting, as a JSON schema property."""
    return PolicyConfigSchema(properties={key: schema})


def _percentage(key: str, default: int, description: str) -> PolicyConfigSchema:
    schema = {"type": "integer", "minimum": 0, "maximum": 100, "default": default}
    return _setting(key, {**schema, "description": description})


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _numbers(value: object) -> list[float]:
    return [number for number in map(_number, _items(value)) if number is not None]


def _metadata(props: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name); an unset namespace is the provider's, `default` unless configured."""
    metadata = _mapping(props.get("metadata"))
    return str(metadata.get("namespace") or "default"), str(metadata.get("name") or "")


def _in_component(resource: PolicyResource | ResourceValidationArgs) -> bool:
    """Declared inside a `CanaryDeployment`, at any depth. Parent links exist only in stack
    validation and only for parents in the snapshot; the URN's `$`-joined type chain always
    records every ancestor type, so it settles the rest."""
    parent = resource.parent if isinstance(resource, PolicyResource) else None
    while parent is not None:
        if parent.resource_type == COMPONENT_TYPE:
            return True
        parent = parent.parent
    parts = resource.urn.split("::")
    return len(parts) > 2 and COMPONENT_TYPE in parts[2].split("$")[:-1]


def _service_host(host: str, namespace: str) -> str:
    """An Istio host as `<svc>.<ns>.svc` when it names a Service, so that every spelling of one
    Service (`podinfo`, `podinfo.default`, `podinfo.default.svc.cluster.local`) compares equal."""
    host = host.lower().rstrip(".")
    service = None if host.startswith("*") else service_of_host(host, namespace)
    return f"{service[0]}.{service[1]}.svc" if service else host


def _gateway(gateway: str, namespace: str) -> str:
    """Istio resolves a bare gateway name in the VirtualService's own namespace."""
    return gateway if gateway == MESH_GATEWAY or "/" in gateway else f"{namespace}/{gateway}"


def _is_virtual_service(resource_type: str) -> bool:
    """Any served Istio version: `networking.istio.io/v1`, `v1beta1` or `v1alpha3`."""
    return resource_type.startswith("kubernetes:networking.istio.io/") and resource_type.endswith(
        ":VirtualService"
    )


def _config(config: Mapping[str, Any], schema: PolicyConfigSchema | None) -> Mapping[str, Any]:
    """The stack's policy config over the schema defaults: one source for every threshold."""
    defaults = {
        key: spec["default"]
        for key, spec in (schema.properties.items() if schema else ())
        if "default" in spec
    }
    return {**defaults, **config}


def _policy(
    name: str,
    description: str,
    level: EnforcementLevel,
    check: Check,
    schema: PolicyConfigSchema | None = None,
) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for message in check(args, _config(args.get_config(), schema)):
            report(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=level,
        config_schema=schema,
    )


# --- The release gate's Canary spec ---------------------------------------------------------


class _Canary(NamedTuple):
    name: str
    spec: Mapping[str, Any]
    analysis: Mapping[str, Any]


def _canary(args: ResourceValidationArgs) -> _Canary | None:
    """The Flagger Canary the release gate runs; None for every other resource."""
    if args.resource_type != ROLLOUT_TYPE:
        return None
    manifest = _mapping(args.props.get("canary"))
    spec = _mapping(manifest.get("spec"))
    name = _mapping(manifest.get("metadata")).get("name") or args.name
    return _Canary(str(name), spec, _mapping(spec.get("analysis")))


def _gates(analysis: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Metrics that can fail a check: a metric without bounds only records a value."""
    gates = []
    for metric in map(_mapping, _items(analysis.get("metrics"))):
        bounds = _mapping(metric.get("thresholdRange"))
        limits = (bounds.get("min"), bounds.get("max"), metric.get("threshold"))
        if any(_number(limit) is not None for limit in limits):
            gates.append(metric)
    return gates


def _steps(analysis: Mapping[str, Any]) -> tuple[float | None, list[float]]:
    """(stepWeight, stepWeights): Flagger uses stepWeights only when stepWeight is 0 or unset."""
    step = _number(analysis.get("stepWeight"))
    return (step, []) if step else (None, _numbers(analysis.get("stepWeights")))


MIN_GATES_SCHEMA = _setting(
    "minMetricGates",
    {
        "type": "integer",
        "minimum": 1,
        "default": 1,
        "description": "Metrics with a thresholdRange each analysis must have.",
    },
)


def _check_metric_gates(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    canary = _canary(args)
    if canary is None:
        return
    count, minimum = len(_gates(canary.analysis)), float(config["minMetricGates"])
    if count < minimum:
        yield (
            f"{canary.name}: analysis.metrics has {count} metric gate(s) with a thresholdRange, "
            f"fewer than the minimum of {minimum:g}; add metrics such as {SUCCESS_RATE_METRIC} "
            "with thresholdRange.min, or lower the minimum in the policy config (minMetricGates)"
        )


METRIC_GATE = _policy(
    "canary-metric-gate",
    "A canary release has metric gates: without one, Flagger promotes on schedule, unverified.",
    EnforcementLevel.MANDATORY,
    _check_metric_gates,
    MIN_GATES_SCHEMA,
)


SUCCESS_RATE_SCHEMA = _setting(
    "gateKeywords",
    {
        "type": "array",
        "items": {"type": "string"},
        "default": ["error", "success"],
        "description": "A metric or MetricTemplate name containing one of these is a "
        f"success-rate or error-rate gate ({SUCCESS_RATE_METRIC} always is).",
    },
)


def _check_success_rate(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    canary = _canary(args)
    if canary is None:
        return
    keywords = [str(keyword).lower() for keyword in _items(config["gateKeywords"])]
    names = []
    for metric in _gates(canary.analysis):
        name = str(metric.get("name", ""))
        template = str(_mapping(metric.get("templateRef")).get("name", ""))
        if name == SUCCESS_RATE_METRIC or any(
            keyword in text.lower() for keyword in keywords for text in (name, template)
        ):
            return
        names.append(name)
    yield (
        f"{canary.name}: analysis.metrics gates on {', '.join(names) or 'nothing'}, with no "
        f"success-rate or error-rate gate; add {SUCCESS_RATE_METRIC} with thresholdRange.min, or a "
        f"metric whose name or template contains one of {keywords}, or extend gateKeywords in "
        "the policy config"
    )


SUCCESS_RATE_GATE = _policy(
    "canary-success-rate-gate",
    "A canary release gates on its success rate or error rate: latency alone misses failures.",
    EnforcementLevel.ADVISORY,
    _check_success_rate,
    SUCCESS_RATE_SCHEMA,
)


MAX_WEIGHT_SCHEMA = _percentage(
    "maxWeightCap", 50, "The highest traffic percentage a canary may reach before promotion."
)


def _check_max_weight(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    """Iterations strategies (A/B, blue/green) route by match or all at once: no weight to cap."""
    canary = _canary(args)
    if canary is None:
        return
    step, steps = _steps(canary.analysis)
    if step is None and not steps:
        return
    cap = float(config["maxWeightCap"])
    declared = _number(canary.analysis.get("maxWeight"))
    maximum = declared or FLAGGER_MAX_WEIGHT
    if steps:
        maximum = min(steps[-1], maximum)
    if maximum <= cap:
        return
    if declared:
        value, fix = f"analysis.maxWeight is {declared:g}", "lower maxWeight"
    elif steps:
        value = f"analysis.maxWeight is unset, so the last of stepWeights ({maximum:g}) is the max"
        fix = "lower the last stepWeights entry"
    else:
        value = f"analysis.maxWeight is unset, so Flagger's default of {maximum:g} applies"
        fix = f"set maxWeight to at most {cap:g}"
    yield (
        f"{canary.name}: {value}, above the cap of {cap:g}; {fix} or raise the cap in the policy "
        "config (maxWeightCap)"
    )


MAX_WEIGHT = _policy(
    "canary-max-weight",
    "A canary release is promoted before it takes more than a capped share of traffic.",
    EnforcementLevel.ADVISORY,
    _check_max_weight,
    MAX_WEIGHT_SCHEMA,
)


FIRST_STEP_SCHEMA = _percentage(
    "firstStepCap", 20, "The highest traffic percentage of a canary's first step."
)


def _check_first_step(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    canary = _canary(args)
    if canary is None:
        return
    step, steps = _steps(canary.analysis)
    if step:
        first, field = step, "analysis.stepWeight"
    elif steps:
        first, field = steps[0], "analysis.stepWeights[0]"
    else:
        return
    cap = float(config["firstStepCap"])
    if first > cap:
        yield (
            f"{canary.name}: {field} is {first:g}, above the cap of {cap:g}; start with a smaller "
            "step or raise the cap in the policy config (firstStepCap)"
        )


FIRST_STEP = _policy(
    "canary-first-step",
    "A canary's first step exposes a small share of traffic, so a bad release hurts few users.",
    EnforcementLevel.ADVISORY,
    _check_first_step,
    FIRST_STEP_SCHEMA,
)


THRESHOLD_SCHEMA = _setting(
    "minThreshold",
    {
        "type": "integer",
        "minimum": 1,
        "default": 1,
        "description": "The fewest failed checks analysis.threshold may allow.",
    },
)


def _check_threshold(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    """An unset threshold is Flagger's 1. An explicit 0 or less is flagged even though Flagger
    reads it as 1: the manifest would not say what actually runs."""
    canary = _canary(args)
    if canary is None:
        return
    declared = _number(canary.analysis.get("threshold"))
    minimum = float(config["minThreshold"])
    if declared is None and minimum > FLAGGER_THRESHOLD:
        value = f"analysis.threshold is unset (Flagger's default {FLAGGER_THRESHOLD:g})"
    elif declared is not None and declared < minimum:
        value = f"analysis.threshold is {declared:g}"
    else:
        return
    yield (
        f"{canary.name}: {value}, below the minimum of {minimum:g}; set threshold to at least "
        f"{minimum:g} or lower the minimum in the policy config (minThreshold)"
    )


THRESHOLD = _policy(
    "canary-threshold",
    "A canary's threshold (failed checks before rollback) is at least the configured minimum.",
    EnforcementLevel.ADVISORY,
    _check_threshold,
    THRESHOLD_SCHEMA,
)


INTERVAL_SCHEMA = _setting(
    "minInterval",
    {
        "type": "string",
        "pattern": DURATION_PATTERN,
        "default": "30s",
        "description": "The shortest analysis.interval, as a duration such as 30s or 1m.",
    },
)


def _check_interval(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    """Each check queries metrics over the interval: too short a window is mostly noise."""
    canary = _canary(args)
    if canary is None:
        return
    override = args.props.get("interval")
    text = override or canary.analysis.get("interval")
    if override:  # the gate's `interval` input replaces analysis.interval for the release
        value = f"the gate's interval (overriding analysis.interval) is {text}"
    else:
        value = f"analysis.interval is {text}" if text else "analysis.interval is unset"
    minimum = str(config["minInterval"])
    try:
        seconds = parse_seconds(str(text or FLAGGER_INTERVAL))
    except ValueError:
        yield f"{canary.name}: {value}, not a duration; write it like 30s, 1m or 1m30s"
        return
    if seconds < parse_seconds(minimum):
        if not text:
            value += f" (Flagger's default {FLAGGER_INTERVAL})"
        yield (
            f"{canary.name}: {value}, below the minimum of {minimum}; lengthen the interval or "
            "lower the minimum in the policy config (minInterval)"
        )


INTERVAL = _policy(
    "canary-analysis-interval",
    "A canary's analysis interval is at least the configured minimum, so checks see real traffic.",
    EnforcementLevel.ADVISORY,
    _check_interval,
    INTERVAL_SCHEMA,
)


def _check_skip_analysis(args: ResourceValidationArgs, _: Mapping[str, Any]) -> Iterator[str]:
    """Flagger also skips the analysis when `analysis` is absent."""
    canary = _canary(args)
    if canary is None:
        return
    if canary.spec.get("skipAnalysis") is True:
        yield (
            f"{canary.name}: spec.skipAnalysis is true, so the release is promoted without any "
            "check; remove skipAnalysis"
        )
    elif not canary.analysis:
        yield (
            f"{canary.name}: spec.analysis is missing, so Flagger skips the analysis and promotes "
            "unverified; add an analysis with metrics"
        )


NO_SKIP_ANALYSIS = _policy(
    "canary-no-skip-analysis",
    "A canary release is analysed: skipAnalysis promotes it to every user without a check.",
    EnforcementLevel.MANDATORY,
    _check_skip_analysis,
)


WEBHOOK_SCHEMA = _setting(
    "clusterDomain",
    {
        "type": "string",
        "default": "cluster.local",
        "description": "The cluster's DNS domain, for `<svc>.<ns>.svc.<domain>` hosts.",
    },
)


def _check_webhooks(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    """Flagger posts the release's metadata to every webhook: over plain HTTP that may only go
    to in-cluster Services. The URL is not repeated: it may embed a credential (Slack's do)."""
    canary = _canary(args)
    if canary is None:
        return
    domain = str(config["clusterDomain"])
    for index, hook in enumerate(map(_mapping, _items(canary.analysis.get("webhooks")))):
        url = str(hook.get("url", ""))
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:  # Not a URL at all: nothing is sent, so nothing leaks.
            continue
        if parts.scheme.lower() == "http" and not is_in_cluster(host, domain):
            yield (
                f"{canary.name}: analysis.webhooks[{index}] ({hook.get('name', 'unnamed')}) url is "
                f"plain HTTP to {host or 'no host'} outside the cluster; use https:// or an "
                "in-cluster Service address such as <svc>.<ns>"
            )


WEBHOOK_TLS = _policy(
    "canary-webhook-tls",
    "A canary's webhooks use HTTPS unless they call a Service inside the cluster.",
    EnforcementLevel.MANDATORY,
    _check_webhooks,
    WEBHOOK_SCHEMA,
)


# --- The component's Deployments ------------------------------------------------------------


def _component_containers(
    args: ResourceValidationArgs,
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """("Deployment ns/name: container c", container) for Deployments the component declares."""
    if args.resource_type != DEPLOYMENT_TYPE or not _in_component(args):
        return
    namespace, name = _metadata(args.props)
    pod = _mapping(_mapping(_mapping(args.props.get("spec")).get("template")).get("spec"))
    for container in map(_mapping, _items(pod.get("containers"))):
        label = f"Deployment {namespace}/{name or args.name}: container {container.get('name')}"
        yield label, container


def _check_readiness(args: ResourceValidationArgs, _: Mapping[str, Any]) -> Iterator[str]:
    for label, container in _component_containers(args):
        if not _mapping(container.get("readinessProbe")):
            yield (
                f"{label} has no readinessProbe, so the analysis measures pods that are not "
                "serving yet; add a readinessProbe to the Deployment's pod template"
            )


READINESS_PROBE = _policy(
    "canary-deployment-readiness-probe",
    "The component's Deployments have readiness probes: without one, an analysis measures pods "
    "that are not serving.",
    EnforcementLevel.ADVISORY,
    _check_readiness,
)


REQUESTS_SCHEMA = _setting(
    "requiredRequests",
    {
        "type": "array",
        "items": {"type": "string"},
        "default": ["cpu", "memory"],
        "description": "Resources every container must request.",
    },
)


def _check_requests(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    """Without requests the canary and primary are scheduled and autoscaled unlike each other."""
    required = [str(resource) for resource in _items(config["requiredRequests"])]
    for label, container in _component_containers(args):
        requests = _mapping(_mapping(container.get("resources")).get("requests"))
        missing = [resource for resource in required if resource not in requests]
        if missing:
            yield (
                f"{label} requests {sorted(requests) or 'nothing'}, missing {', '.join(missing)}; "
                f"set resources.requests.{missing[0]} (and the rest) in the pod template, or "
                "change requiredRequests in the policy config"
            )


RESOURCE_REQUESTS = _policy(
    "canary-deployment-resource-requests",
    "The component's Deployments request CPU and memory, so canary and primary are scheduled "
    "and autoscaled alike.",
    EnforcementLevel.ADVISORY,
    _check_requests,
    REQUESTS_SCHEMA,
)


# --- VirtualServices ------------------------------------------------------------------------


def _check_route_weights(args: ResourceValidationArgs, _: Mapping[str, Any]) -> Iterator[str]:
    """A single destination without a weight is Istio's implicit 100."""
    if not _is_virtual_service(args.resource_type):
        return
    namespace, name = _metadata(args.props)
    spec = _mapping(args.props.get("spec"))
    for protocol in ("http", "tcp", "tls"):
        for index, rule in enumerate(map(_mapping, _items(spec.get(protocol)))):
            weights = [_number(_mapping(d).get("weight")) for d in _items(rule.get("route"))]
            if not weights or weights == [None]:
                continue
            total = sum(weight or 0.0 for weight in weights)
            if total != 100:
                yield (
                    f"VirtualService {namespace}/{name or args.name}: "
                    f"spec.{protocol}[{index}].route weights sum to {total:g}, not 100; make the "
                    "destination weights add up to 100 (a single destination may omit its weight)"
                )


ROUTE_WEIGHTS = _policy(
    "virtualservice-route-weights",
    "Every VirtualService route's destination weights sum to 100.",
    EnforcementLevel.MANDATORY,
    _check_route_weights,
)


def _check_apex_host(args: ResourceValidationArgs, _: Mapping[str, Any]) -> Iterator[str]:
    """Flagger names the VirtualService after the apex Service and routes it: without that host,
    in-mesh calls to the apex bypass the canary weights. Delegates (no hosts) and `*` are exempt."""
    if not _is_virtual_service(args.resource_type):
        return
    namespace, name = _metadata(args.props)
    hosts = [str(host) for host in _items(_mapping(args.props.get("spec")).get("hosts"))]
    if not name or not hosts or "*" in hosts:
        return
    apex = _service_host(name, namespace)
    if all(_service_host(host, namespace) != apex for host in hosts):
        yield (
            f"VirtualService {namespace}/{name}: spec.hosts is {hosts}, without its apex Service "
            f"{name}; add {name} to hosts"
        )


APEX_HOST = _policy(
    "virtualservice-apex-host",
    "Every VirtualService's hosts include its own apex Service (its metadata.name).",
    EnforcementLevel.ADVISORY,
    _check_apex_host,
)


# --- Stack policies -------------------------------------------------------------------------


def _check_single_writer(args: StackValidationArgs, report: ReportViolation) -> None:
    """Two writers of one Deployment undo each other: the component scales and rewrites the canary
    Deployment during a release, so nothing else may declare it."""
    writers: dict[tuple[str, str], set[str]] = {}
    for resource in args.resources:
        if resource.resource_type == ROLLOUT_TYPE:
            manifest = _mapping(resource.props.get("canary"))
            target = _mapping(_mapping(manifest.get("spec")).get("targetRef")).get("name")
            namespace, name = _metadata(manifest)
            if target:
                claim = f"the canary {name or resource.name} targets it"
                writers.setdefault((namespace, str(target)), set()).add(claim)
        elif resource.resource_type == DEPLOYMENT_TYPE and _in_component(resource):
            claim = f"the component declares it as {resource.name}"
            writers.setdefault(_metadata(resource.props), set()).add(claim)
    for resource in args.resources:
        if resource.resource_type != DEPLOYMENT_TYPE or _in_component(resource):
            continue
        key = _metadata(resource.props)
        if key in writers:
            report(
                f"Deployment {key[0]}/{key[1]} ({resource.name}) is declared outside the "
                f"CanaryDeployment component, but {' and '.join(sorted(writers[key]))}; remove "
                "this Deployment and pass its manifest to CanaryDeployment as `deployment` instead",
                resource.urn,
            )


SINGLE_WRITER = StackValidationPolicy(
    name="canary-single-writer",
    description="No Deployment a canary releases is also declared outside its CanaryDeployment.",
    validate=_check_single_writer,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def _check_unique_hosts(args: StackValidationArgs, report: ReportViolation) -> None:
    """Istio applies one VirtualService per host and gateway, arbitrarily chosen: the other's
    routes, canary weights included, are silently ignored."""
    claims: dict[tuple[str, str], PolicyResource] = {}
    for resource in args.resources:
        if not _is_virtual_service(resource.resource_type):
            continue
        namespace, name = _metadata(resource.props)
        spec = _mapping(resource.props.get("spec"))
        gateways = [_gateway(str(g), namespace) for g in _items(spec.get("gateways"))]
        for host in map(str, _items(spec.get("hosts"))):
            for gateway in gateways or [MESH_GATEWAY]:
                first = claims.setdefault((gateway, _service_host(host, namespace)), resource)
                if first is resource:
                    continue
                other_namespace, other = _metadata(first.props)
                report(
                    f"VirtualService {namespace}/{name or resource.name} claims host {host} on "
                    f"gateway {gateway}, already claimed by VirtualService "
                    f"{other_namespace}/{other or first.name}; route the host from one "
                    "VirtualService (merge the routes, or delegate)",
                    resource.urn,
                )


UNIQUE_HOSTS = StackValidationPolicy(
    name="virtualservice-unique-hosts",
    description="No VirtualService host is claimed by two VirtualServices on the same gateway.",
    validate=_check_unique_hosts,
    enforcement_level=EnforcementLevel.MANDATORY,
)


POLICIES: list[Policy] = [
    METRIC_GATE,
    SUCCESS_RATE_GATE,
    MAX_WEIGHT,
    FIRST_STEP,
    THRESHOLD,
    INTERVAL,
    NO_SKIP_ANALYSIS,
    WEBHOOK_TLS,
    READINESS_PROBE,
    RESOURCE_REQUESTS,
    ROUTE_WEIGHTS,
    APEX_HOST,
    SINGLE_WRITER,
    UNIQUE_HOSTS,
]
