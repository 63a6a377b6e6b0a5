"""The component graph under Pulumi's echo mocks: Flagger's names, parents, options, providers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import CanaryDeployment, SpecError
from components.component import RELEASE_OWNED_REPLICAS, TYPE_TOKEN
from tests.conftest import (
    Bundle,
    RecordingMonitor,
    Registration,
    corpus_bundle,
    load_yaml,
    tutorial_bundle,
)
from tests.spec.bad_inputs import BAD_INPUTS, BadInput

GRAPHS = {
    "tutorial-canary": tutorial_bundle,
    "tutorial-ab": tutorial_bundle,
    "tutorial-metrics": tutorial_bundle,
    "mirror": corpus_bundle,
    "blue-green": corpus_bundle,
    "session-affinity": corpus_bundle,
    "autoscaler": corpus_bundle,
    "metrics-server": corpus_bundle,
    "tcp": corpus_bundle,
}


def children_of(component: CanaryDeployment) -> list[pulumi.CustomResource]:
    return [
        component.canary_deployment,
        component.primary_deployment,
        *component.services,
        *component.destination_rules,
        component.virtual_service,
        *component.autoscalers,
        *component.metric_templates,
        *component.configs,
        *component.config_copies,
        component.guard,
        component.rollout,
        component.finaliser,
    ]


def kubernetes(registrations: list[Registration]) -> list[Registration]:
    """The Kubernetes objects; the gate's dynamic resources have no metadata or k8s provider."""
    return [r for r in registrations if r.typ.startswith("kubernetes:")]


def after_declared(
    component: CanaryDeployment, check: Callable[[list[Registration]], None], monitor: Any
) -> pulumi.Output[None]:
    """Runs `check` on the registrations once every child has been registered."""
    ids = [child.id for child in children_of(component)]
    return pulumi.Output.all(component.urn, *ids).apply(
        lambda _: check(list(monitor.registrations))
    )


def declare(bundle: Bundle, name: str = "release", **options: Any) -> CanaryDeployment:
    opts = pulumi.ResourceOptions(**options) if options else None
    return CanaryDeployment.from_flagger(name, **bundle.kwargs(), opts=opts)


def of_kind(registrations: list[Registration], kind: str) -> list[Registration]:
    return [r for r in registrations if r.kind == kind]


def one(registrations: list[Registration], kind: str, k8s_name: str) -> Registration:
    (found,) = [r for r in of_kind(registrations, kind) if r.k8s_name == k8s_name]
    return found


@pytest.mark.parametrize("graph", sorted(GRAPHS))
@pulumi.runtime.test
def test_children_are_flaggers_objects_parented_to_the_component(
    graph: str, monitor: RecordingMonitor
) -> None:
    bundle = GRAPHS[graph](graph)
    release = bundle.release()
    component = declare(bundle, name="shop")

    def check(registrations: list[Registration]) -> None:
        (root,) = [r for r in registrations if r.typ == TYPE_TOKEN]
        children = [r for r in registrations if r is not root]
        assert len(children) == len(children_of(component))
        for child in children:
            assert child.parent == root.urn, child.name
            assert child.name.startswith("shop-"), child.name
            assert child.urn.endswith(f"{TYPE_TOKEN}${child.typ}::{child.name}")

        service, target = release.service, release.target
        names = {kind: sorted(r.k8s_name for r in of_kind(children, kind)) for kind in KINDS}
        assert names["Deployment"] == sorted([target, f"{target}-primary"])
        assert names["Service"] == sorted([service, f"{service}-primary", f"{service}-canary"])
        assert names["DestinationRule"] == sorted([f"{service}-primary", f"{service}-canary"])
        assert names["VirtualService"] == [service]

        value = release.selector_value
        label = release.selector_label
        primary = one(children, "Deployment", f"{target}-primary").inputs
        assert primary["spec"]["selector"] == {"matchLabels": {label: f"{value}-primary"}}
        assert primary["spec"]["template"]["metadata"]["labels"][label] == f"{value}-primary"
        for name in (service, f"{service}-primary"):
            assert one(children, "Service", name).inputs["spec"]["selector"] == {
                label: f"{value}-primary"
            }
        canary_service = one(children, "Service", f"{service}-canary").inputs
        assert canary_service["spec"]["selector"] == {label: value}
        assert one(children, "Deployment", target).inputs["spec"]["replicas"] == 0

    return after_declared(component, check, monitor)


KINDS = ("Deployment", "Service", "DestinationRule", "VirtualService")


@pytest.mark.parametrize("graph", ["tutorial-canary", "autoscaler", "tcp"])
@pulumi.runtime.test
def test_release_owned_fields_are_ignored_by_pulumi(graph: str, monitor: RecordingMonitor) -> None:
    bundle = GRAPHS[graph](graph)
    release = bundle.release()
    component = declare(bundle)

    def check(registrations: list[Registration]) -> None:
        routes = one(registrations, "VirtualService", release.service)
        owned = "spec.tcp" if release.spec.service.is_tcp else "spec.http"
        assert list(routes.ignore_changes) == [owned]
        canary = one(registrations, "Deployment", release.target)
        assert list(canary.ignore_changes) == RELEASE_OWNED_REPLICAS == ["spec.replicas"]
        primary = one(registrations, "Deployment", release.primary)
        # With an HPA the primary's replicas are the HPA's; without one Pulumi owns them.
        assert list(primary.ignore_changes) == (["spec.replicas"] if release.autoscaler else [])
        for other in registrations:
            if other.kind in ("Service", "DestinationRule", "HorizontalPodAutoscaler"):
                assert other.ignore_changes == (), other.name

    return after_declared(component, check, monitor)


@pulumi.runtime.test
def test_autoscaler_declares_the_hpa_and_its_primary(monitor: RecordingMonitor) -> None:
    component = declare(corpus_bundle("autoscaler"))

    def check(registrations: list[Registration]) -> None:
        hpas = {r.k8s_name: r.inputs for r in of_kind(registrations, "HorizontalPodAutoscaler")}
        assert sorted(hpas) == ["scaled-hpa", "scaled-hpa-primary"]
        assert hpas["scaled-hpa-primary"]["spec"]["scaleTargetRef"]["name"] == "scaled-primary"
        assert hpas["scaled-hpa"]["spec"]["scaleTargetRef"]["name"] == "scaled"
        primary = one(registrations, "Deployment", "scaled-primary").inputs
        assert "replicas" not in primary["spec"]

    return after_declared(component, check, monitor)


@pulumi.runtime.test
def test_metric_templates_are_declared_with_the_component(monitor: RecordingMonitor) -> None:
    component = declare(corpus_bundle("metrics-server"))

    def check(registrations: list[Registration]) -> None:
        maps = {
            (r.inputs["metadata"]["namespace"], r.k8s_name): r.inputs["data"]
            for r in of_kind(registrations, "ConfigMap")
        }
        assert set(maps) == {
            ("monitoring", "latency-metric-template"),
            ("test", "not-found-metric-template"),
        }
        assert maps["monitoring", "latency-metric-template"]["provider"] == "prometheus"
        assert "{{ variables.route }}" in maps["monitoring", "latency-metric-template"]["query"]

    return after_declared(component, check, monitor)


@pytest.mark.parametrize("graph", ["mirror", "autoscaler"])
@pulumi.runtime.test
def test_provider_and_namespace_reach_every_child(graph: str, monitor: RecordingMonitor) -> None:
    bundle = GRAPHS[graph](graph)
    namespace = bundle.release().namespace
    assert namespace != "default"
    cluster = k8s.Provider("cluster", kubeconfig="{}", namespace=namespace)
    component = declare(bundle, providers=[cluster])

    def check(registrations: list[Registration]) -> None:
        (provider,) = [r for r in registrations if r.typ == "pulumi:providers:kubernetes"]
        (root,) = [r for r in registrations if r.typ == TYPE_TOKEN]
        children = [r for r in registrations if r.parent == root.urn]
        assert len(children) == len(children_of(component))
        for child in kubernetes(children):
            assert child.provider.startswith(provider.urn + "::"), child.name
            assert child.inputs["metadata"]["namespace"] == namespace, child.name

    return pulumi.Output.all(cluster.urn, after_declared(component, check, monitor))


@pulumi.runtime.test
def test_namespace_of_the_deployment_is_used_when_the_canary_has_none(
    monitor: RecordingMonitor,
) -> None:
    bundle = tutorial_bundle("tutorial-canary")
    kwargs = bundle.kwargs()
    del kwargs["canary"]["metadata"]["namespace"]
    kwargs["deployment"]["metadata"]["namespace"] = "payments"
    component = CanaryDeployment.from_flagger("podinfo", **kwargs)

    def check(registrations: list[Registration]) -> None:
        children = kubernetes(registrations)
        assert {r.inputs["metadata"]["namespace"] for r in children} == {"payments"}

    return after_declared(component, check, monitor)


@pulumi.runtime.test
def test_parent_options_flow_through_the_component(monitor: RecordingMonitor) -> None:
    """Inside a larger stack: the component under a parent of the caller's, with a provider."""
    cluster = k8s.Provider("cluster", kubeconfig="{}")
    stack_part = pulumi.ComponentResource("acme:index:Shop", "shop", None)
    component = CanaryDeployment.from_flagger(
        "podinfo",
        **tutorial_bundle("tutorial-canary").kwargs(),
        opts=pulumi.ResourceOptions(parent=stack_part, providers={"kubernetes": cluster}),
    )

    def check(registrations: list[Registration]) -> None:
        (shop,) = [r for r in registrations if r.typ == "acme:index:Shop"]
        (root,) = [r for r in registrations if r.typ == TYPE_TOKEN]
        (provider,) = [r for r in registrations if r.typ == "pulumi:providers:kubernetes"]
        assert root.parent == shop.urn
        for child in kubernetes([r for r in registrations if r.parent == root.urn]):
            assert child.provider.startswith(provider.urn + "::"), child.name

    return pulumi.Output.all(cluster.urn, after_declared(component, check, monitor))


@pulumi.runtime.test
def test_pod_template_may_hold_pulumi_inputs(monitor: RecordingMonitor) -> None:
    """The example stack takes the image from stack config: an Output inside the template."""
    deployment = load_yaml("deployment.yaml")
    image = pulumi.Output.from_input("ghcr.io/stefanprodan/podinfo:6.3.1")
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image
    component = CanaryDeployment.from_flagger(
        "podinfo", canary=load_yaml("canary.yaml"), deployment=deployment
    )

    def check(registrations: list[Registration]) -> None:
        for registration in of_kind(registrations, "Deployment"):
            (container,) = registration.inputs["spec"]["template"]["spec"]["containers"]
            assert container["image"] == "ghcr.io/stefanprodan/podinfo:6.3.1"

    return after_declared(component, check, monitor)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[case.id for case in BAD_INPUTS])
def test_bad_input_declares_nothing(case: BadInput, monitor: RecordingMonitor) -> None:
    with pytest.raises(SpecError) as raised:
        CanaryDeployment.from_flagger("podinfo", **case.kwargs())
    case.check(str(raised.value))
    assert monitor.registrations == []
