"""`CanaryGroup` under Pulumi's mocks: one gate per wave, the order of waves, each primary from
its own canary's outcome, secrets, and bad input refused before anything is declared."""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from components import (
    CanaryDeploymentArgs,
    CanaryGroup,
    CanaryGroupArgs,
    GateOptions,
    SpecError,
)
from tests.conftest import RecordingMonitor, Registration, load_yaml
from tests.provider.dynamic_server import renamed

WAVE = "pulumi-python:dynamic/canary:Wave"
GROUP_ROLLOUT = "pulumi-python:dynamic/canary:GroupRollout"
VERDICT = "pulumi-python:dynamic/canary:GroupVerdict"
GUARD = "pulumi-python:dynamic/canary:ReleaseGuard"
FINALISER = "pulumi-python:dynamic/canary:RolloutFinaliser"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def args_of(name: str, image: str = "ghcr.io/stefanprodan/podinfo:6.3.1") -> CanaryDeploymentArgs:
    canary, deployment = renamed(load_yaml("canary.yaml"), load_yaml("deployment.yaml"), name)
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return CanaryDeploymentArgs(
        canary=canary,
        deployment=deployment,
        gate=GateOptions(kubeconfig="apiVersion: v1\nkind: Config\n"),
    )


def promoted_image(name: str) -> str:
    return f"registry.example/{name}:promoted"


class WaveMocks(pulumi.runtime.Mocks):
    """Echo mocks, except that a Wave answers each canary's outcome (a template of its own)
    and a GroupRollout takes its outcome as its provider does."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outs = dict(args.inputs)
        if args.typ == WAVE:
            outcomes = {}
            members = outs["members"]
            members = rpc.unwrap_rpc_secret(members) if rpc.is_rpc_secret(members) else members
            for name, member in members.items():
                template = copy.deepcopy(member["podTemplate"])
                template["spec"]["containers"][0]["image"] = promoted_image(name)
                outcomes[name] = {"promotedTemplate": template, "revision": f"r-{name}"}
            outs["outcomes"] = outcomes
        elif args.typ == GROUP_ROLLOUT:
            outs.update(outs["outcome"])
        elif args.typ.startswith("kubernetes:"):
            outs["metadata"] = {**outs["metadata"], "uid": f"uid-of-{args.name}"}
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


@pytest.fixture
def recording() -> RecordingMonitor:
    monitor = RecordingMonitor(WaveMocks())
    pulumi.runtime.set_mocks(monitor.mocks, preview=False, monitor=monitor)
    return monitor


def shop(**options: Any) -> CanaryGroup:
    return CanaryGroup(
        "shop",
        CanaryGroupArgs(
            canaries={name: args_of(name) for name in ("cart", "catalog", "checkout")},
            waves=[["cart", "catalog"], ["checkout"]],
            **options,
        ),
    )


def find(registrations: list[Registration], typ: str, name: str) -> Registration:
    (found,) = [r for r in registrations if r.typ == typ and r.name == name]
    return found


def declared(group: CanaryGroup) -> pulumi.Output[Any]:
    return pulumi.Output.all(*(verdict.id for verdict in group.verdicts))


@pulumi.runtime.test
def test_one_gate_per_wave_and_each_primary_from_its_own_outcome(
    recording: RecordingMonitor,
) -> None:
    group = shop()

    def check(_: Any) -> None:
        registrations = recording.registrations
        waves = [r for r in registrations if r.typ == WAVE]
        assert sorted(wave.name for wave in waves) == ["shop-wave-1", "shop-wave-2"]
        assert not [r for r in registrations if r.typ.endswith("canary:Rollout")]
        first = find(registrations, WAVE, "shop-wave-1")
        assert first.inputs["canaries"] == ["cart", "catalog"]
        for name in ("cart", "catalog", "checkout"):
            gate = find(registrations, GROUP_ROLLOUT, f"{name}-rollout")
            wave = first if name != "checkout" else find(registrations, WAVE, "shop-wave-2")
            assert wave.urn in gate.dependencies, name
            canary = find(registrations, DEPLOYMENT, f"{name}-canary")
            assert canary.urn in wave.dependencies, name
            assert canary.inputs["metadata"]["name"] == name  # Flagger's names, as a lone one
            primary = find(registrations, DEPLOYMENT, f"{name}-primary")
            assert primary.inputs["metadata"]["name"] == f"{name}-primary"
            (container,) = primary.inputs["spec"]["template"]["spec"]["containers"]
            assert container["image"] == promoted_image(name)
            labels = primary.inputs["spec"]["template"]["metadata"]["labels"]
            assert labels["app"] == f"{name}-primary"
            assert gate.urn in primary.dependencies

    return declared(group).apply(check)


@pulumi.runtime.test
def test_a_wave_starts_after_the_previous_one_is_finalised_and_judged(
    recording: RecordingMonitor,
) -> None:
    group = shop()

    def check(_: Any) -> None:
        registrations = recording.registrations
        verdict = find(registrations, VERDICT, "shop-wave-1-verdict")
        for name in ("cart", "catalog"):
            assert find(registrations, FINALISER, f"{name}-finaliser").urn in verdict.dependencies
        assert verdict.inputs["final"] is True  # stop: a failed wave keeps later ones back
        assert verdict.inputs["later"] == ["checkout"]
        assert verdict.urn in find(registrations, GUARD, "checkout-guard").dependencies
        assert verdict.urn not in find(registrations, GUARD, "cart-guard").dependencies
        last = find(registrations, VERDICT, "shop-wave-2-verdict")
        assert last.inputs["final"] is True and len(last.inputs["outcomes"]) == 2

    return declared(group).apply(check)


@pulumi.runtime.test
def test_with_finish_only_the_last_verdict_fails_the_up(recording: RecordingMonitor) -> None:
    group = shop(on_failure="finish")

    def check(_: Any) -> None:
        registrations = recording.registrations
        first = find(registrations, VERDICT, "shop-wave-1-verdict")
        assert (first.inputs["final"], first.inputs["later"]) == (False, [])
        assert find(registrations, VERDICT, "shop-wave-2-verdict").inputs["final"] is True
        assert find(registrations, WAVE, "shop-wave-1").inputs["policy"] == "finish"

    return declared(group).apply(check)


@pulumi.runtime.test
def test_each_canarys_credentials_reach_its_wave_secret(recording: RecordingMonitor) -> None:
    group = shop()

    def check(_: Any) -> None:
        wave = find(recording.registrations, WAVE, "shop-wave-1")
        # The SDK marks a property secret as a whole when any part of it is.
        members = wave.inputs["members"]
        assert rpc.is_rpc_secret(members)
        assert sorted(rpc.unwrap_rpc_secret(members)) == ["cart", "catalog"]
        for name in ("cart", "catalog"):
            gate = find(recording.registrations, GROUP_ROLLOUT, f"{name}-rollout")
            assert rpc.is_rpc_secret(gate.inputs["kubeconfig"]), name
            assert not rpc.is_rpc_secret(gate.inputs["canary"]), name

    return declared(group).apply(check)


@pytest.mark.parametrize(
    ("waves", "on_failure", "expected"),
    [
        ([["cart"], ["checkout", "cartt"]], "stop", "waves[1][1]: not a canary of the group"),
        ([["cart", "checkout"], ["cart"]], "stop", "waves[1][0]: already in waves[0][0]"),
        ([["cart", "checkout"], []], "stop", "waves[1]: a wave needs at least one canary"),
        ([["cart"]], "stop", "waves: every canary must be in a wave; in none: checkout"),
        (None, "abort", "on_failure: must be one of rollback, finish, stop (got 'abort')"),
    ],
)
def test_bad_waves_and_policies_are_refused_naming_the_field_and_value(
    waves: Any, on_failure: str, expected: str, recording: RecordingMonitor
) -> None:
    canaries = {name: args_of(name) for name in ("cart", "checkout")}
    with pytest.raises(SpecError) as raised:
        CanaryGroup("shop", CanaryGroupArgs(canaries=canaries, waves=waves, on_failure=on_failure))
    assert expected in str(raised.value)
    assert recording.registrations == []


def test_a_bad_canary_is_named_in_the_groups_error(recording: RecordingMonitor) -> None:
    bad = args_of("cart")
    assert isinstance(bad.canary, dict)
    bad.canary["spec"]["analysis"]["stepWeight"] = 150
    with pytest.raises(SpecError) as raised:
        CanaryGroup(
            "shop", CanaryGroupArgs(canaries={"cart": bad, "checkout": args_of("checkout")})
        )
    assert "canaries.cart.spec.analysis.stepWeight: Input should be less than or equal to 100" in (
        str(raised.value)
    )
    assert recording.registrations == []
