"""How the gate sits in the component graph: order, the primary's template, secrets.

The primary Deployment is declared from the Rollout's `promoted_template` output, so Pulumi
applies a promotion only after the analysis passed; these tests pin that wiring under mocks.
"""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from components import CanaryDeployment, CanaryDeploymentArgs, SpecError
from components.provider.rollout import GateOptions
from components.spec import MetricTemplate
from components.spec.judge import Judge
from tests.conftest import RecordingMonitor, Registration, load_yaml, tutorial_bundle

ROLLOUT = "pulumi-python:dynamic/canary:Rollout"
FINALISER = "pulumi-python:dynamic/canary:RolloutFinaliser"
GUARD = "pulumi-python:dynamic/canary:ReleaseGuard"
PROMOTED_IMAGE = "ghcr.io/stefanprodan/podinfo:6.3.0"


class PromotedMocks(pulumi.runtime.Mocks):
    """Echo mocks, except that the Rollout answers with the template promoted last time, and
    Kubernetes objects get a uid as the API server gives them."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outs = dict(args.inputs)
        if args.typ == ROLLOUT:
            promoted = copy.deepcopy(outs["podTemplate"])
            promoted["spec"]["containers"][0]["image"] = PROMOTED_IMAGE
            outs.update(promotedTemplate=promoted, revision="r1", phase="Promoting", promotion="x")
        elif args.typ.startswith("kubernetes:"):
            outs["metadata"] = {**outs["metadata"], "uid": f"uid-of-{args.name}"}
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


def record_with(mocks: pulumi.runtime.Mocks) -> RecordingMonitor:
    recording = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(recording.mocks, preview=False, monitor=recording)
    return recording


def new_image_deployment() -> dict[str, Any]:
    deployment = load_yaml("deployment.yaml")
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "ghcr.io/stefanprodan/podinfo:6.3.1"
    )
    return deployment


def declared(component: CanaryDeployment) -> pulumi.Output[Any]:
    return pulumi.Output.all(component.finaliser.id, component.virtual_service.id)


def find(registrations: list[Registration], typ: str, name: str) -> Registration:
    (found,) = [r for r in registrations if r.typ == typ and r.name == name]
    return found


@pulumi.runtime.test
def test_the_primary_runs_the_template_the_gate_promoted() -> None:
    monitor = record_with(PromotedMocks())
    component = CanaryDeployment.from_flagger(
        "podinfo", canary=load_yaml("canary.yaml"), deployment=new_image_deployment()
    )

    def check(_: Any) -> None:
        registrations = monitor.registrations
        canary = find(registrations, "kubernetes:apps/v1:Deployment", "podinfo-canary")
        primary = find(registrations, "kubernetes:apps/v1:Deployment", "podinfo-primary")
        rollout = find(registrations, ROLLOUT, "podinfo-rollout")
        (canary_container,) = canary.inputs["spec"]["template"]["spec"]["containers"]
        (primary_container,) = primary.inputs["spec"]["template"]["spec"]["containers"]
        assert canary_container["image"].endswith(":6.3.1")
        assert primary_container["image"] == PROMOTED_IMAGE
        # The gate releases the target's template, and the primary keeps Flagger's labels.
        assert rollout.inputs["podTemplate"] == canary.inputs["spec"]["template"]
        labels = primary.inputs["spec"]["template"]["metadata"]["labels"]
        assert labels["app"] == "podinfo-primary"

    return declared(component).apply(check)


@pulumi.runtime.test
def test_the_gate_holds_to_the_uids_the_stacks_provider_saw() -> None:
    monitor = record_with(PromotedMocks())
    component = CanaryDeployment.from_flagger(
        "podinfo", canary=load_yaml("canary.yaml"), deployment=load_yaml("deployment.yaml")
    )

    def check(_: Any) -> None:
        registrations = monitor.registrations
        rules = {
            "DestinationRule/podinfo-canary": "uid-of-podinfo-canary-destinationrule",
            "DestinationRule/podinfo-primary": "uid-of-podinfo-primary-destinationrule",
        }
        guard = find(registrations, GUARD, "podinfo-guard")
        rollout = find(registrations, ROLLOUT, "podinfo-rollout")
        finaliser = find(registrations, FINALISER, "podinfo-finaliser")
        # The guard runs before the canary Deployment changes: it holds to the rules only.
        assert guard.inputs["declaredUids"] == rules
        canary = {"Deployment/podinfo": "uid-of-podinfo-canary"}
        assert rollout.inputs["declaredUids"] == {**rules, **canary}
        assert finaliser.inputs["declaredUids"] == {**rules, **canary}
        for rule in ("podinfo-canary-destinationrule", "podinfo-primary-destinationrule"):
            urn = find(registrations, "kubernetes:networking.istio.io/v1:DestinationRule", rule).urn
            assert urn in guard.dependencies
        # The plan is an input, known before anything runs.
        assert rollout.inputs["plan"] == "canary 10% -> 50% in 5 steps every 1m"

    return declared(component).apply(check)


@pulumi.runtime.test
def test_the_order_guard_canary_gate_primary_finaliser(monitor: RecordingMonitor) -> None:
    component = CanaryDeployment.from_flagger(
        "podinfo", canary=load_yaml("canary.yaml"), deployment=load_yaml("deployment.yaml")
    )

    def check(_: Any) -> None:
        registrations = monitor.registrations
        canary = find(registrations, "kubernetes:apps/v1:Deployment", "podinfo-canary")
        primary = find(registrations, "kubernetes:apps/v1:Deployment", "podinfo-primary")
        virtual_service = find(
            registrations,
            "kubernetes:networking.istio.io/v1:VirtualService",
            "podinfo-virtualservice",
        )
        guard = find(registrations, GUARD, "podinfo-guard")
        rollout = find(registrations, ROLLOUT, "podinfo-rollout")
        finaliser = find(registrations, FINALISER, "podinfo-finaliser")
        assert guard.urn in canary.dependencies
        assert canary.urn in rollout.dependencies
        assert rollout.urn in primary.dependencies
        assert primary.urn in finaliser.dependencies
        assert virtual_service.urn in finaliser.dependencies

    return declared(component).apply(check)


@pulumi.runtime.test
def test_credentials_reach_the_gate_as_secrets(monitor: RecordingMonitor) -> None:
    bundle = tutorial_bundle("tutorial-canary")
    alerts = [
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "AlertProvider",
            "metadata": {"name": "on-call", "namespace": "test"},
            "spec": {"type": "slack", "address": "https://hooks.slack.com/services/T/B/secret"},
        }
    ]
    component = CanaryDeployment.from_flagger(
        "podinfo",
        **{**bundle.kwargs(), "alert_providers": alerts},
        gate=GateOptions(kubeconfig="apiVersion: v1\nkind: Config\n", interval="10s"),
    )

    def check(_: Any) -> None:
        for typ, name in (
            (GUARD, "podinfo-guard"),
            (ROLLOUT, "podinfo-rollout"),
            (FINALISER, "podinfo-finaliser"),
        ):
            inputs = find(monitor.registrations, typ, name).inputs
            assert rpc.is_rpc_secret(inputs["kubeconfig"]), name
            assert rpc.is_rpc_secret(inputs["alertProviders"]), name
            assert not rpc.is_rpc_secret(inputs["canary"]), name
            assert inputs["interval"] == "10s"

    return declared(component).apply(check)


@pulumi.runtime.test
def test_metric_template_credentials_given_in_python_reach_the_gate_secret(
    monitor: RecordingMonitor,
) -> None:
    bundle = tutorial_bundle("tutorial-metrics")
    kwargs = bundle.kwargs()
    (raw,) = kwargs["metric_templates"]
    template = MetricTemplate.model_validate({**raw, "credentials": {"token": "t0ken-s3cret"}})
    component = CanaryDeployment(
        "shop",
        CanaryDeploymentArgs(
            canary=kwargs["canary"], deployment=kwargs["deployment"], metric_templates=[template]
        ),
    )

    def check(_: Any) -> None:
        rollout = find(monitor.registrations, ROLLOUT, "shop-rollout")
        templates = rollout.inputs["metricTemplates"]
        assert rpc.is_rpc_secret(templates)
        (sent,) = rpc.unwrap_rpc_secret(templates)
        assert sent["credentials"] == {"token": "t0ken-s3cret"}
        config_map = find(
            monitor.registrations,
            "kubernetes:core/v1:ConfigMap",
            f"shop-{template.name}-metric-template",
        )
        assert "t0ken" not in repr(config_map.inputs)

    return declared(component).apply(check)


@pulumi.runtime.test
def test_the_judge_reaches_every_gate_resource(monitor: RecordingMonitor) -> None:
    judge = load_yaml("judge.yaml")
    component = CanaryDeployment.from_flagger(
        "podinfo", **tutorial_bundle("tutorial-canary").kwargs(), judge=judge
    )
    assert component.release.judge is not None

    def check(_: Any) -> None:
        for typ, name in (
            (GUARD, "podinfo-guard"),
            (ROLLOUT, "podinfo-rollout"),
            (FINALISER, "podinfo-finaliser"),
        ):
            assert find(monitor.registrations, typ, name).inputs["judge"] == judge, name

    return declared(component).apply(check)


@pulumi.runtime.test
def test_a_judge_model_reaches_the_gate_as_its_document(monitor: RecordingMonitor) -> None:
    model = Judge.parse(load_yaml("judge.yaml"))
    kwargs = tutorial_bundle("tutorial-canary").kwargs()
    component = CanaryDeployment(
        "podinfo",
        CanaryDeploymentArgs(canary=kwargs["canary"], deployment=kwargs["deployment"], judge=model),
    )

    def check(_: Any) -> None:
        sent = find(monitor.registrations, ROLLOUT, "podinfo-rollout").inputs["judge"]
        assert Judge.parse(sent) == model

    return declared(component).apply(check)


def test_a_bad_judge_declares_nothing(monitor: RecordingMonitor) -> None:
    judge = load_yaml("judge.yaml")
    judge["spec"]["step"] = "soon"
    with pytest.raises(SpecError, match=r"judge\.spec\.step"):
        CanaryDeployment.from_flagger(
            "podinfo", **tutorial_bundle("tutorial-canary").kwargs(), judge=judge
        )
    assert monitor.registrations == []


@pulumi.runtime.test
def test_a_canary_that_notifies_slack_through_a_webhook_reaches_the_gate_secret(
    monitor: RecordingMonitor,
) -> None:
    """The Slack URL is a credential: the canary holding it is kept secret in state."""
    kwargs = tutorial_bundle("tutorial-canary").kwargs()
    kwargs["canary"]["spec"]["analysis"]["webhooks"].append(
        {"name": "slack", "url": "https://hooks.slack.com/services/T/B/secret"}
    )
    component = CanaryDeployment.from_flagger("podinfo", **kwargs)

    def check(_: Any) -> None:
        for typ, name in (
            (GUARD, "podinfo-guard"),
            (ROLLOUT, "podinfo-rollout"),
            (FINALISER, "podinfo-finaliser"),
        ):
            canary = find(monitor.registrations, typ, name).inputs["canary"]
            assert rpc.is_rpc_secret(canary), name
            (_, slack) = rpc.unwrap_rpc_secret(canary)["spec"]["analysis"]["webhooks"]
            assert slack["url"] == "https://hooks.slack.com/services/T/B/secret"

    return declared(component).apply(check)
