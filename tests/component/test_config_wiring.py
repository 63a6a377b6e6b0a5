"""Tracked configs in the component graph, under mocks that answer as the engine would.

The canary reads the ConfigMaps and Secrets as given; the primary reads `-primary` copies
declared from the Rollout's `promoted_configs` output, so they change only when a release
promotes. What the engine is told about secrets is read off the RegisterResource requests.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pulumi
from pulumi.runtime import rpc

from components import CanaryDeployment, routing
from tests.component.test_gate_wiring import ROLLOUT, declared, find, record_with
from tests.conftest import (
    RecordingMonitor,
    Registration,
    config_manifest,
    kubernetes_errors,
    load_yaml,
)
from tests.e2e.engine import unwrap_secrets

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PASSWORD = "pa55-w0rd-s3cret"
PROMOTED_MESSAGE = "promoted last time"


def deployment() -> dict[str, Any]:
    """The tutorial's podinfo, reading a ConfigMap through envFrom and a Secret mounted."""
    manifest = load_yaml("deployment.yaml")
    pod = manifest["spec"]["template"]["spec"]
    pod["containers"][0]["envFrom"] = [{"configMapRef": {"name": "podinfo-config"}}]
    pod["containers"][0]["volumeMounts"] = [{"name": "db", "mountPath": "/etc/db"}]
    pod["volumes"] = [{"name": "db", "secret": {"secretName": "podinfo-db"}}]
    return manifest


def config_map(message: Any = "hello") -> dict[str, Any]:
    return config_manifest(
        "ConfigMap",
        "podinfo-config",
        metadata={"labels": {"app.kubernetes.io/name": "podinfo"}},
        data={"PODINFO_UI_MESSAGE": message},
    )


def secret() -> dict[str, Any]:
    return config_manifest("Secret", "podinfo-db", stringData={"password": PASSWORD})


class PromotedConfigsMocks(pulumi.runtime.Mocks):
    """Echo mocks, except that the Rollout answers with configs promoted last time."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outs = dict(args.inputs)
        if args.typ == ROLLOUT:
            encoded = base64.b64encode(PASSWORD.encode()).decode()
            outs.update(
                promotedTemplate=copy.deepcopy(outs["podTemplate"]),
                promotedConfigs={
                    "configmap/podinfo-config": {"data": {"PODINFO_UI_MESSAGE": PROMOTED_MESSAGE}},
                    "secret/podinfo-db": {"data": {"password": encoded}},
                },
            )
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


def declare(*configs: dict[str, Any]) -> CanaryDeployment:
    return CanaryDeployment.from_flagger(
        "podinfo", canary=load_yaml("canary.yaml"), deployment=deployment(), configs=list(configs)
    )


def after(component: CanaryDeployment) -> pulumi.Output[Any]:
    """Once everything, the copies included, is registered."""
    copies = [copy_.id for copy_ in component.config_copies]
    return pulumi.Output.all(declared(component), *copies)


def pod_spec(registration: Registration) -> dict[str, Any]:
    spec: dict[str, Any] = registration.inputs["spec"]["template"]["spec"]
    return spec


@pulumi.runtime.test
def test_the_primary_runs_copies_declared_from_what_the_gate_promoted() -> None:
    monitor = record_with(PromotedConfigsMocks())
    component = declare(config_map(), secret())

    def check(_: Any) -> None:
        registrations = monitor.registrations
        original = find(registrations, CONFIG_MAP, "podinfo-podinfo-config-configmap")
        copied = find(registrations, CONFIG_MAP, "podinfo-podinfo-config-primary-configmap")
        assert original.inputs["data"] == {"PODINFO_UI_MESSAGE": "hello"}
        assert copied.inputs["data"] == {"PODINFO_UI_MESSAGE": PROMOTED_MESSAGE}
        assert copied.inputs["metadata"] == {
            "name": "podinfo-config-primary",
            "namespace": "default",
            "labels": {"app.kubernetes.io/name": "podinfo"},
        }
        rollout = find(registrations, ROLLOUT, "podinfo-rollout")
        assert rollout.urn in copied.dependencies
        primary = find(registrations, DEPLOYMENT, "podinfo-primary")
        canary = find(registrations, DEPLOYMENT, "podinfo-canary")
        assert pod_spec(primary)["containers"][0]["envFrom"] == [
            {"configMapRef": {"name": "podinfo-config-primary"}}
        ]
        assert pod_spec(primary)["volumes"][0]["secret"]["secretName"] == "podinfo-db-primary"
        assert pod_spec(canary)["containers"][0]["envFrom"] == [
            {"configMapRef": {"name": "podinfo-config"}}
        ]
        assert pod_spec(canary)["volumes"][0]["secret"]["secretName"] == "podinfo-db"
        annotations = primary.inputs["spec"]["template"]["metadata"]["annotations"]
        assert set(annotations) == {routing.CONFIGS_ANNOTATION}
        # The copies exist before the primary runs them; the originals change after the guard
        # and before the canary.
        copy_secret = find(registrations, SECRET, "podinfo-podinfo-db-primary-secret")
        assert {copied.urn, copy_secret.urn} <= set(primary.dependencies)
        guard = find(registrations, "pulumi-python:dynamic/canary:ReleaseGuard", "podinfo-guard")
        assert guard.urn in original.dependencies
        assert original.urn in canary.dependencies
        assert original.urn in rollout.dependencies

    return after(component).apply(check)


@pulumi.runtime.test
def test_secrets_stay_secret_and_the_rest_readable() -> None:
    monitor = record_with(PromotedConfigsMocks())
    component = declare(config_map(), secret())

    def check(_: Any) -> None:
        registrations = monitor.registrations
        for typ, name in (
            ("pulumi-python:dynamic/canary:ReleaseGuard", "podinfo-guard"),
            (ROLLOUT, "podinfo-rollout"),
            ("pulumi-python:dynamic/canary:RolloutFinaliser", "podinfo-finaliser"),
        ):
            gate = find(registrations, typ, name)
            assert rpc.is_rpc_secret(gate.inputs["configs"]), name
            assert {"configs", "promotedConfigs"} <= set(gate.additional_secret_outputs), name
        for name in ("podinfo-podinfo-db-secret", "podinfo-podinfo-db-primary-secret"):
            data = find(registrations, SECRET, name).inputs
            assert any(rpc.is_rpc_secret(data.get(key)) for key in ("data", "stringData")), name
        copied = find(registrations, CONFIG_MAP, "podinfo-podinfo-config-primary-configmap")
        assert not rpc.is_rpc_secret(copied.inputs["data"])
        primary = find(registrations, DEPLOYMENT, "podinfo-primary")
        assert not rpc.is_rpc_secret(primary.inputs["spec"])
        assert PASSWORD not in repr(primary.inputs)

    return after(component).apply(check)


@pulumi.runtime.test
def test_a_config_map_holding_a_secret_value_has_a_secret_copy() -> None:
    monitor = record_with(PromotedConfigsMocks())
    component = declare(config_map(pulumi.Output.secret("from stack config")), secret())

    def check(_: Any) -> None:
        copied = find(monitor.registrations, CONFIG_MAP, "podinfo-podinfo-config-primary-configmap")
        assert rpc.is_rpc_secret(copied.inputs["data"])

    return after(component).apply(check)


@pulumi.runtime.test
def test_plain_config_maps_stay_readable_in_the_gates_state() -> None:
    monitor = record_with(PromotedConfigsMocks())
    manifest = deployment()
    del manifest["spec"]["template"]["spec"]["volumes"]
    del manifest["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    component = CanaryDeployment.from_flagger(
        "podinfo", canary=load_yaml("canary.yaml"), deployment=manifest, configs=[config_map()]
    )

    def check(_: Any) -> None:
        rollout = find(monitor.registrations, ROLLOUT, "podinfo-rollout")
        assert not rpc.is_rpc_secret(rollout.inputs["configs"])
        assert "promotedConfigs" not in rollout.additional_secret_outputs

    return after(component).apply(check)


@pulumi.runtime.test
def test_under_echo_mocks_the_copies_hold_what_is_given(monitor: RecordingMonitor) -> None:
    """Users' own unit tests: the Rollout echoes its inputs, so nothing was promoted."""
    component = declare(config_map(), secret())

    def check(_: Any) -> None:
        registrations = monitor.registrations
        copied = find(registrations, CONFIG_MAP, "podinfo-podinfo-config-primary-configmap")
        assert copied.inputs["data"] == {"PODINFO_UI_MESSAGE": "hello"}
        for registration in registrations:
            if registration.typ in (CONFIG_MAP, SECRET, DEPLOYMENT):
                manifest = unwrap_secrets(registration.inputs)
                assert kubernetes_errors(manifest) == [], registration.name

    return after(component).apply(check)
