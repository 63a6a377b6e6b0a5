"""The canary-safety policies, called as the analyzer calls them.

Deployments, Services and the VirtualService are what `CanaryDeployment` really declares under
Pulumi's echo mocks. The release gate (`pulumi-python:dynamic/canary:Rollout`) does not exist yet,
so its props are built from the tutorial Canary in the shape it will take. Every props dict goes
through the engine's path (numbers as protobuf Struct floats, deserialization, the
unknown-checking proxy), so policies see floats and read-only proxies, as in `pulumi preview`.
"""

from __future__ import annotations

import copy
import json
import re
import runpy
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pulumi
import pytest
from pulumi.runtime import MockResourceArgs, proto
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from components import CanaryDeployment
from components.spec.durations import parse_seconds
from components.spec.hosts import is_in_cluster
from policies import canary_policies as cp
from tests.conftest import ROOT, load_yaml

STACK = "urn:pulumi:dev::canary::"
COMPONENT_URN = f"{STACK}{cp.COMPONENT_TYPE}::podinfo"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
CANARY_POLICIES = [
    cp.METRIC_GATE,
    cp.SUCCESS_RATE_GATE,
    cp.MAX_WEIGHT,
    cp.FIRST_STEP,
    cp.THRESHOLD,
    cp.INTERVAL,
    cp.NO_SKIP_ANALYSIS,
    cp.WEBHOOK_TLS,
]


# --- Building what the engine sends ---------------------------------------------------------


class EchoMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[MockResourceArgs] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


def declare(deployment: dict[str, Any]) -> list[MockResourceArgs]:
    """The component's registrations for the tutorial Canary and `deployment`."""
    mocks = EchoMocks()
    pulumi.runtime.set_mocks(mocks, preview=False)

    @pulumi.runtime.test
    def run() -> pulumi.Output[str]:
        component = CanaryDeployment.from_flagger(
            "podinfo", canary=load_yaml("canary.yaml"), deployment=deployment
        )
        return component.virtual_service.id

    run()
    return mocks.resources


def serving(deployment: dict[str, Any]) -> dict[str, Any]:
    """`deployment` with the readiness probe and requests the tutorial leaves out."""
    serving = copy.deepcopy(deployment)
    for container in serving["spec"]["template"]["spec"]["containers"]:
        container["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": 9898}}
        container["resources"] = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    return serving


def engine_props(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """`props` as `Analyze` hands them to a policy."""
    wire: dict[str, Any] = json.loads(json.dumps(props), parse_int=float)  # Struct numbers
    proxied: Mapping[str, Any] = unknown_checking_proxy(deserialize_properties(wire))
    return proxied


def urn(resource_type: str, name: str, *, in_component: bool = True) -> str:
    qualified = f"{cp.COMPONENT_TYPE}${resource_type}" if in_component else resource_type
    return f"{STACK}{qualified}::{name}"


def options(parent: str | None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent,
    )


def resource_args(
    resource_type: str,
    name: str,
    props: Mapping[str, Any],
    *,
    in_component: bool = True,
    config: Mapping[str, Any] | None = None,
) -> ResourceValidationArgs:
    return ResourceValidationArgs(
        resource_type=resource_type,
        props=engine_props(props),
        urn=urn(resource_type, name, in_component=in_component),
        name=name,
        opts=options(COMPONENT_URN if in_component else None),
        provider=None,
        config=config,
    )


def mock_args(resource: MockResourceArgs, **kwargs: Any) -> ResourceValidationArgs:
    return resource_args(resource.typ, resource.name, resource.inputs, **kwargs)


def rollout_props(canary: dict[str, Any]) -> dict[str, Any]:
    """The release gate's inputs: the Canary manifest plus keys the policies ignore."""
    return {"canary": canary, "namespace": "default", "stackName": "dev"}


def rollout_args(
    canary: dict[str, Any], config: Mapping[str, Any] | None = None
) -> ResourceValidationArgs:
    return resource_args(cp.ROLLOUT_TYPE, "podinfo-rollout", rollout_props(canary), config=config)


def violations(policy: Policy, args: ResourceValidationArgs) -> list[str]:
    assert isinstance(policy, ResourceValidationPolicy)
    found: list[str] = []

    def report(message: str, _urn: str | None = None) -> None:
        found.append(message)

    assert policy.validate(args, report) is None
    return found


def stack_violations(
    policy: Policy, resources: list[PolicyResource]
) -> list[tuple[str, str | None]]:
    assert isinstance(policy, StackValidationPolicy)
    found: list[tuple[str, str | None]] = []

    def report(message: str, at: str | None = None) -> None:
        found.append((message, at))

    assert policy.validate(StackValidationArgs(resources), report) is None
    return found


def tutorial_canary() -> dict[str, Any]:
    return load_yaml("canary.yaml")


def analysis(canary: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = canary["spec"]["analysis"]
    return spec


# --- The pack -------------------------------------------------------------------------------


def test_importing_the_policies_does_not_start_the_analyzer() -> None:
    """A constructed PolicyPack prints its port and serves forever; the import must return."""
    done = subprocess.run(
        [sys.executable, "-c", "import policies.canary_policies"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""


def test_main_builds_the_pack_from_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the directory as the Python policy host does (`runpy.run_path`), pack stubbed out."""
    built: dict[str, Any] = {}
    monkeypatch.setattr("pulumi_policy.PolicyPack", lambda **kwargs: built.update(kwargs))
    monkeypatch.setattr(sys, "path", [*sys.path])
    try:
        runpy.run_path(str(ROOT / "policies"), run_name="__main__")
    finally:
        sys.modules.pop("canary_policies", None)
    assert built["name"] == "canary-safety"
    assert built["enforcement_level"] == EnforcementLevel.ADVISORY
    assert [policy.name for policy in built["policies"]] == [p.name for p in cp.POLICIES]


def test_policies_are_named_described_and_leveled() -> None:
    names = [policy.name for policy in cp.POLICIES]
    assert len(set(names)) == len(names)
    for policy in cp.POLICIES:
        assert policy.description
        assert policy.enforcement_level in (EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY)
        for spec in (policy.config_schema.properties if policy.config_schema else {}).values():
            assert "default" in spec and spec["description"]
    mandatory = {p.name for p in cp.POLICIES if p.enforcement_level == EnforcementLevel.MANDATORY}
    assert mandatory == {
        "canary-metric-gate",
        "canary-no-skip-analysis",
        "canary-webhook-tls",
        "virtualservice-route-weights",
        "canary-single-writer",
        "virtualservice-unique-hosts",
    }


def test_the_analyzer_applies_stack_policy_config() -> None:
    """In process, through pulumi_policy's private servicer (as its own suite does): the schemas
    serialize, and a stack's config reaches the policy, with numbers as floats."""
    servicer = _PolicyAnalyzerServicer(
        "canary-safety", "0.0.1", cp.POLICIES, EnforcementLevel.ADVISORY
    )
    info = servicer.GetAnalyzerInfo(None, None)
    assert [policy.name for policy in info.policies] == [p.name for p in cp.POLICIES]
    configure = proto.ConfigureAnalyzerRequest()
    tightened = proto.PolicyConfig(enforcementLevel=proto.MANDATORY)
    tightened.properties.update({"maxWeightCap": 30})
    configure.policyConfig["canary-max-weight"].CopyFrom(tightened)
    servicer.Configure(configure, None)

    request = proto.AnalyzeRequest(
        type=cp.ROLLOUT_TYPE, urn=urn(cp.ROLLOUT_TYPE, "podinfo-rollout"), name="podinfo-rollout"
    )
    request.properties.update(rollout_props(tutorial_canary()))
    [diagnostic] = servicer.Analyze(request, None).diagnostics
    assert diagnostic.policyName == "canary-max-weight"
    assert diagnostic.enforcementLevel == proto.MANDATORY
    assert diagnostic.message.endswith(
        "podinfo: analysis.maxWeight is 50, above the cap of 30; lower maxWeight or raise the cap "
        "in the policy config (maxWeightCap)"
    )


# --- The release gate's Canary --------------------------------------------------------------


@pytest.mark.parametrize(
    "manifest", ["canary.yaml", "canary-metrics.yaml", "canary-ab-testing.yaml"]
)
@pytest.mark.parametrize("policy", CANARY_POLICIES, ids=lambda policy: policy.name)
def test_tutorial_canaries_comply(manifest: str, policy: Policy) -> None:
    assert violations(policy, rollout_args(load_yaml(manifest))) == []


@pytest.mark.parametrize("policy", CANARY_POLICIES, ids=lambda policy: policy.name)
def test_canary_policies_ignore_other_resources_and_tolerate_missing_keys(policy: Policy) -> None:
    deployment = resource_args(cp.DEPLOYMENT_TYPE, "podinfo-canary", {"spec": {}})
    assert violations(policy, deployment) == []
    bare = violations(policy, resource_args(cp.ROLLOUT_TYPE, "gate", {"other": 1}))
    assert all(message.startswith("gate: ") for message in bare)


def test_max_weight_above_the_cap() -> None:
    canary = tutorial_canary()
    analysis(canary)["maxWeight"] = 80
    assert violations(cp.MAX_WEIGHT, rollout_args(canary)) == [
        "podinfo: analysis.maxWeight is 80, above the cap of 50; lower maxWeight or raise the cap "
        "in the policy config (maxWeightCap)"
    ]
    assert violations(cp.MAX_WEIGHT, rollout_args(canary, {"maxWeightCap": 80})) == []


def test_max_weight_unset_is_flaggers_effective_maximum() -> None:
    canary = tutorial_canary()
    del analysis(canary)["maxWeight"]
    [message] = violations(cp.MAX_WEIGHT, rollout_args(canary))
    assert "maxWeight is unset, so Flagger's default of 100 applies, above the cap of 50" in message

    del analysis(canary)["stepWeight"]
    analysis(canary)["stepWeights"] = [5, 10, 80]
    [message] = violations(cp.MAX_WEIGHT, rollout_args(canary))
    assert "the last of stepWeights (80) is the max, above the cap of 50" in message
    assert "lower the last stepWeights entry" in message

    analysis(canary)["maxWeight"] = 40  # Flagger stops at min(last step, maxWeight).
    assert violations(cp.MAX_WEIGHT, rollout_args(canary)) == []


def test_first_step_above_the_cap() -> None:
    canary = tutorial_canary()
    analysis(canary)["stepWeight"] = 30
    assert violations(cp.FIRST_STEP, rollout_args(canary)) == [
        "podinfo: analysis.stepWeight is 30, above the cap of 20; start with a smaller step or "
        "raise the cap in the policy config (firstStepCap)"
    ]
    assert violations(cp.FIRST_STEP, rollout_args(canary, {"firstStepCap": 30})) == []

    del analysis(canary)["stepWeight"]
    analysis(canary)["stepWeights"] = [25, 50]
    [message] = violations(cp.FIRST_STEP, rollout_args(canary))
    assert message.startswith("podinfo: analysis.stepWeights[0] is 25, above the cap of 20")
    analysis(canary)["stepWeights"] = [10, 50]
    assert violations(cp.FIRST_STEP, rollout_args(canary)) == []


def test_metric_gate() -> None:
    canary = tutorial_canary()
    analysis(canary)["metrics"] = [{"name": "request-success-rate", "interval": "1m"}]
    [message] = violations(cp.METRIC_GATE, rollout_args(canary))
    assert message.startswith("podinfo: analysis.metrics has 0 metric gate(s) with a threshold")
    assert "(minMetricGates)" in message

    compliant = tutorial_canary()
    assert violations(cp.METRIC_GATE, rollout_args(compliant)) == []
    assert violations(cp.METRIC_GATE, rollout_args(compliant, {"minMetricGates": 3})) != []


def test_success_rate_gate() -> None:
    canary = tutorial_canary()
    analysis(canary)["metrics"] = [
        m for m in analysis(canary)["metrics"] if "success" not in m["name"]
    ]
    [message] = violations(cp.SUCCESS_RATE_GATE, rollout_args(canary))
    assert message.startswith("podinfo: analysis.metrics gates on request-duration, with no")

    analysis(canary)["metrics"].append(
        {"name": "5xx", "templateRef": {"name": "error-rate"}, "thresholdRange": {"max": 1}}
    )
    assert violations(cp.SUCCESS_RATE_GATE, rollout_args(canary)) == []

    analysis(canary)["metrics"][-1] = {"name": "availability", "thresholdRange": {"min": 99}}
    assert violations(cp.SUCCESS_RATE_GATE, rollout_args(canary)) != []
    config = {"gateKeywords": ["availability"]}
    assert violations(cp.SUCCESS_RATE_GATE, rollout_args(canary, config)) == []


def test_threshold() -> None:
    canary = tutorial_canary()
    analysis(canary)["threshold"] = 0
    assert violations(cp.THRESHOLD, rollout_args(canary)) == [
        "podinfo: analysis.threshold is 0, below the minimum of 1; set threshold to at least 1 or "
        "lower the minimum in the policy config (minThreshold)"
    ]
    del analysis(canary)["threshold"]
    assert violations(cp.THRESHOLD, rollout_args(canary)) == []
    [message] = violations(cp.THRESHOLD, rollout_args(canary, {"minThreshold": 2}))
    assert "threshold is unset (Flagger's default 1), below the minimum of 2" in message


def test_interval() -> None:
    canary = tutorial_canary()
    assert violations(cp.INTERVAL, rollout_args(canary, {"minInterval": "2m"})) == [
        "podinfo: analysis.interval is 1m, below the minimum of 2m; lengthen the interval or "
        "lower the minimum in the policy config (minInterval)"
    ]
    analysis(canary)["interval"] = "10s"
    assert violations(cp.INTERVAL, rollout_args(canary)) != []
    analysis(canary)["interval"] = "1m30s"
    assert violations(cp.INTERVAL, rollout_args(canary, {"minInterval": "90s"})) == []
    del analysis(canary)["interval"]
    [message] = violations(cp.INTERVAL, rollout_args(canary, {"minInterval": "2m"}))
    assert "interval is unset (Flagger's default 60s), below the minimum of 2m" in message
    analysis(canary)["interval"] = "soon"
    [message] = violations(cp.INTERVAL, rollout_args(canary))
    assert "analysis.interval is soon, not a duration" in message


def test_interval_counts_the_gates_override() -> None:
    """`pulumi config set interval 2s` shortens every step: the minimum applies to it too."""
    props = {**rollout_props(tutorial_canary()), "interval": "2s"}
    args = resource_args(cp.ROLLOUT_TYPE, "podinfo-rollout", props, config=None)
    assert violations(cp.INTERVAL, args) == [
        "podinfo: the gate's interval (overriding analysis.interval) is 2s, below the minimum "
        "of 30s; lengthen the interval or lower the minimum in the policy config (minInterval)"
    ]


def test_skip_analysis() -> None:
    canary = tutorial_canary()
    canary["spec"]["skipAnalysis"] = True
    assert violations(cp.NO_SKIP_ANALYSIS, rollout_args(canary)) == [
        "podinfo: spec.skipAnalysis is true, so the release is promoted without any check; "
        "remove skipAnalysis"
    ]
    canary["spec"]["skipAnalysis"] = False
    assert violations(cp.NO_SKIP_ANALYSIS, rollout_args(canary)) == []
    del canary["spec"]["analysis"]
    [message] = violations(cp.NO_SKIP_ANALYSIS, rollout_args(canary))
    assert "spec.analysis is missing, so Flagger skips the analysis" in message


def test_plain_http_webhook_outside_the_cluster() -> None:
    canary = tutorial_canary()
    analysis(canary)["webhooks"] += [
        {"name": "notify", "url": "http://hooks.example.com/flagger"},
        {"name": "gate", "url": "https://hooks.example.com/gate"},
        {"name": "corp", "url": "http://gate.ops.svc.corp.local:8080/"},
        {"name": "broken", "url": "http://[::1/"},
    ]
    found = violations(cp.WEBHOOK_TLS, rollout_args(canary))
    assert found == [
        "podinfo: analysis.webhooks[1] (notify) url is plain HTTP to hooks.example.com outside "
        "the cluster; use https:// or an in-cluster Service address such as <svc>.<ns>",
        "podinfo: analysis.webhooks[3] (corp) url is plain HTTP to gate.ops.svc.corp.local "
        "outside the cluster; use https:// or an in-cluster Service address such as <svc>.<ns>",
    ]
    config = {"clusterDomain": "corp.local"}
    assert len(violations(cp.WEBHOOK_TLS, rollout_args(canary, config))) == 1


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("flagger-loadtester", True),
        ("flagger-loadtester.test", True),
        ("flagger-loadtester.test.svc", True),
        ("flagger-loadtester.test.svc.cluster.local", True),
        ("FLAGGER-LOADTESTER.TEST.SVC.CLUSTER.LOCAL.", True),
        ("web-0.nginx.test.svc.cluster.local", True),
        ("hooks.slack.example.com", False),
        ("10.0.0.12", False),
        ("loadtester.test.svc.corp.local", False),
        ("", False),
    ],
)
def test_is_in_cluster(host: str, local: bool) -> None:
    """The rule the webhook policy and the gate's service proxy share (`spec.hosts`)."""
    assert is_in_cluster(host) is local


def test_is_in_cluster_with_a_custom_domain() -> None:
    assert is_in_cluster("loadtester.test.svc.corp.local", "corp.local")
    assert not is_in_cluster("loadtester.test.svc.cluster.local", "corp.local")


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("30s", True),
        ("1m30s", True),
        ("500ms", True),
        ("1h", False),
        ("1.5m", False),
        ("30", False),
    ],
)
def test_min_interval_is_a_duration_as_the_spec_reads_it(text: str, valid: bool) -> None:
    """One duration rule: the config schema takes exactly what the canary spec takes."""
    config = cp.INTERVAL_SCHEMA.properties["minInterval"]
    assert bool(re.match(config["pattern"], text)) is valid
    if valid:
        parse_seconds(text)
    else:
        with pytest.raises(ValueError, match="must be a duration"):
            parse_seconds(text)


def test_an_unknown_preview_value_is_left_to_the_analyzer() -> None:
    """Analyze turns UnknownValueError into "can't run policy during preview", not a pass."""
    canary = tutorial_canary()
    analysis(canary)["maxWeight"] = pulumi.runtime.rpc.UNKNOWN
    with pytest.raises(UnknownValueError):
        violations(cp.MAX_WEIGHT, rollout_args(canary))


# --- The component's Deployments ------------------------------------------------------------


def deployments(resources: list[MockResourceArgs]) -> list[MockResourceArgs]:
    """The canary Deployment, then the primary (registration order varies)."""
    return sorted((r for r in resources if r.typ == cp.DEPLOYMENT_TYPE), key=lambda r: r.name)


def test_tutorial_deployments_lack_readiness_and_requests() -> None:
    declared = deployments(declare(load_yaml("deployment.yaml")))
    assert [r.name for r in declared] == ["podinfo-canary", "podinfo-primary"]
    readiness = [m for r in declared for m in violations(cp.READINESS_PROBE, mock_args(r))]
    assert readiness == [
        f"Deployment default/{name}: container podinfo has no readinessProbe, so the analysis "
        "measures pods that are not serving yet; add a readinessProbe to the Deployment's pod "
        "template"
        for name in ("podinfo", "podinfo-primary")
    ]
    [message, _] = [m for r in declared for m in violations(cp.RESOURCE_REQUESTS, mock_args(r))]
    assert message.startswith(
        "Deployment default/podinfo: container podinfo requests nothing, missing cpu, memory; "
    )


def test_deployments_with_probes_and_requests_comply() -> None:
    for resource in deployments(declare(serving(load_yaml("deployment.yaml")))):
        assert violations(cp.READINESS_PROBE, mock_args(resource)) == []
        assert violations(cp.RESOURCE_REQUESTS, mock_args(resource)) == []


def test_required_requests_are_configurable() -> None:
    deployment = serving(load_yaml("deployment.yaml"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    del container["resources"]["requests"]["memory"]
    canary, _ = deployments(declare(deployment))
    [message] = violations(cp.RESOURCE_REQUESTS, mock_args(canary))
    assert "requests ['cpu'], missing memory" in message
    assert (
        violations(cp.RESOURCE_REQUESTS, mock_args(canary, config={"requiredRequests": ["cpu"]}))
        == []
    )


def test_deployments_outside_the_component_are_not_checked() -> None:
    canary, _ = deployments(declare(load_yaml("deployment.yaml")))
    outside = mock_args(canary, in_component=False)
    assert violations(cp.READINESS_PROBE, outside) == []
    assert violations(cp.RESOURCE_REQUESTS, outside) == []


# --- VirtualServices ------------------------------------------------------------------------


def virtual_service() -> MockResourceArgs:
    [declared] = [r for r in declare(load_yaml("deployment.yaml")) if r.typ == VIRTUAL_SERVICE]
    return declared


def with_spec(resource: MockResourceArgs, **spec: Any) -> dict[str, Any]:
    props = copy.deepcopy(resource.inputs)
    props["spec"].update(spec)
    return props


def test_the_components_virtual_service_complies() -> None:
    declared = virtual_service()
    assert violations(cp.ROUTE_WEIGHTS, mock_args(declared)) == []
    assert violations(cp.APEX_HOST, mock_args(declared)) == []


def test_route_weights_must_sum_to_100() -> None:
    declared = virtual_service()
    route = [
        {"destination": {"host": "podinfo-primary"}, "weight": 90},
        {"destination": {"host": "podinfo-canary"}, "weight": 20},
    ]
    props = with_spec(declared, http=[{"route": route}], tcp=[{"route": route[:1]}])
    assert violations(cp.ROUTE_WEIGHTS, resource_args(VIRTUAL_SERVICE, declared.name, props)) == [
        "VirtualService default/podinfo: spec.http[0].route weights sum to 110, not 100; make the "
        "destination weights add up to 100 (a single destination may omit its weight)",
        "VirtualService default/podinfo: spec.tcp[0].route weights sum to 90, not 100; make the "
        "destination weights add up to 100 (a single destination may omit its weight)",
    ]


def test_a_single_destination_may_omit_its_weight() -> None:
    declared = virtual_service()
    single = [{"route": [{"destination": {"host": "podinfo-primary"}}]}, {"redirect": {"uri": "/"}}]
    props = with_spec(declared, http=single)
    assert violations(cp.ROUTE_WEIGHTS, resource_args(VIRTUAL_SERVICE, declared.name, props)) == []


def test_hosts_must_include_the_apex_service() -> None:
    declared = virtual_service()
    props = with_spec(declared, hosts=["podinfo.example.com"])
    assert violations(cp.APEX_HOST, resource_args(VIRTUAL_SERVICE, declared.name, props)) == [
        "VirtualService default/podinfo: spec.hosts is ['podinfo.example.com'], without its apex "
        "Service podinfo; add podinfo to hosts"
    ]


@pytest.mark.parametrize(
    "hosts", [[], ["*"], ["podinfo.default.svc.cluster.local"], ["app.example.com", "podinfo"]]
)
def test_delegates_wildcards_and_qualified_apex_hosts_comply(hosts: list[str]) -> None:
    declared = virtual_service()
    props = with_spec(declared, hosts=hosts)
    assert violations(cp.APEX_HOST, resource_args(VIRTUAL_SERVICE, declared.name, props)) == []


# --- Stack policies -------------------------------------------------------------------------


def stack(resources: list[MockResourceArgs], *, parents: bool = True) -> list[PolicyResource]:
    """The snapshot AnalyzeStack builds: the component, its children and the release gate.
    `parents=False` drops the component from the snapshot, leaving children without links."""
    component = PolicyResource(
        cp.COMPONENT_TYPE,
        engine_props({}),
        COMPONENT_URN,
        "podinfo",
        options(None),
        None,
        None,
        [],
        {},
    )
    children = [(r.typ, r.name, r.inputs) for r in resources if r.typ != cp.COMPONENT_TYPE]
    children.append((cp.ROLLOUT_TYPE, "podinfo-rollout", rollout_props(tutorial_canary())))
    snapshot = [component] if parents else []
    for resource_type, name, props in children:
        snapshot.append(
            PolicyResource(
                resource_type,
                engine_props(props),
                urn(resource_type, name),
                name,
                options(COMPONENT_URN),
                None,
                component if parents else None,
                [],
                {},
            )
        )
    return snapshot


def outside(resource_type: str, name: str, props: dict[str, Any]) -> PolicyResource:
    return PolicyResource(
        resource_type,
        engine_props(props),
        urn(resource_type, name, in_component=False),
        name,
        options(None),
        None,
        None,
        [],
        {},
    )


@pytest.mark.parametrize("parents", [True, False], ids=["parent-links", "urn-only"])
def test_the_component_alone_complies(parents: bool) -> None:
    resources = stack(declare(load_yaml("deployment.yaml")), parents=parents)
    assert stack_violations(cp.SINGLE_WRITER, resources) == []
    assert stack_violations(cp.UNIQUE_HOSTS, resources) == []


def test_a_canary_target_declared_outside_the_component() -> None:
    duplicate = outside(cp.DEPLOYMENT_TYPE, "podinfo-app", load_yaml("deployment.yaml"))
    resources = stack(declare(load_yaml("deployment.yaml")))
    assert stack_violations(cp.SINGLE_WRITER, [*resources, duplicate]) == [
        (
            "Deployment default/podinfo (podinfo-app) is declared outside the CanaryDeployment "
            "component, but the canary podinfo targets it and the component declares it as "
            "podinfo-canary; remove this Deployment and pass its manifest to CanaryDeployment as "
            "`deployment` instead",
            duplicate.urn,
        )
    ]


def test_the_release_gate_target_alone_is_protected() -> None:
    """Without the component's Deployments in the snapshot, the gate's targetRef still counts."""
    rollout = [r for r in stack([]) if r.resource_type == cp.ROLLOUT_TYPE]
    duplicate = outside(cp.DEPLOYMENT_TYPE, "podinfo-app", load_yaml("deployment.yaml"))
    [(message, at)] = stack_violations(cp.SINGLE_WRITER, [*rollout, duplicate])
    assert "but the canary podinfo targets it" in message
    assert at == duplicate.urn


def test_a_same_named_deployment_in_another_namespace_is_not_a_second_writer() -> None:
    other = load_yaml("deployment.yaml")
    other["metadata"]["namespace"] = "staging"
    resources = stack(declare(load_yaml("deployment.yaml")))
    assert (
        stack_violations(cp.SINGLE_WRITER, [*resources, outside(cp.DEPLOYMENT_TYPE, "x", other)])
        == []
    )


def test_a_host_claimed_by_two_virtual_services() -> None:
    resources = stack(declare(load_yaml("deployment.yaml")))
    rival = outside(
        VIRTUAL_SERVICE,
        "podinfo-legacy",
        {
            "metadata": {"name": "podinfo-legacy", "namespace": "default"},
            "spec": {"hosts": ["podinfo.default.svc.cluster.local"], "http": []},
        },
    )
    assert stack_violations(cp.UNIQUE_HOSTS, [*resources, rival]) == [
        (
            "VirtualService default/podinfo-legacy claims host podinfo.default.svc.cluster.local "
            "on gateway mesh, already claimed by VirtualService default/podinfo; route the host "
            "from one VirtualService (merge the routes, or delegate)",
            rival.urn,
        )
    ]


@pytest.mark.parametrize(
    ("namespace", "spec"),
    [
        ("staging", {"hosts": ["podinfo"]}),
        ("default", {"hosts": ["podinfo"], "gateways": ["public-gateway"]}),
        ("default", {"hosts": []}),
    ],
    ids=["other-namespace", "other-gateway", "delegate"],
)
def test_distinct_hosts_comply(namespace: str, spec: dict[str, Any]) -> None:
    resources = stack(declare(load_yaml("deployment.yaml")))
    other = outside(
        VIRTUAL_SERVICE,
        "podinfo-other",
        {"metadata": {"name": "podinfo", "namespace": namespace}, "spec": spec},
    )
    assert stack_violations(cp.UNIQUE_HOSTS, [*resources, other]) == []
