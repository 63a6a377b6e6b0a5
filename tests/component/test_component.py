"""The component graph under Pulumi's ordinary echo mocks."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components import CanaryDeployment, SpecError
from tests.conftest import load_yaml


class EchoMocks(pulumi.runtime.Mocks):
    """What users write in their own unit tests: outputs are the inputs."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


@pytest.fixture
def mocks() -> EchoMocks:
    mocks = EchoMocks()
    pulumi.runtime.set_mocks(mocks, preview=False)
    return mocks


def by_kind(mocks: EchoMocks) -> dict[str, list[pulumi.runtime.MockResourceArgs]]:
    kinds: dict[str, list[pulumi.runtime.MockResourceArgs]] = {}
    for resource in mocks.resources:
        kind = resource.inputs.get("kind") or resource.typ.split(":")[-1]
        kinds.setdefault(kind, []).append(resource)
    return kinds


@pulumi.runtime.test
def test_tutorial_canary_declares_flaggers_objects(mocks: EchoMocks) -> None:
    component = CanaryDeployment.from_flagger(
        "podinfo", canary=load_yaml("canary.yaml"), deployment=load_yaml("deployment.yaml")
    )

    def check(_: Any) -> None:
        kinds = by_kind(mocks)
        names = {
            kind: sorted(r.inputs["metadata"]["name"] for r in rs)
            for kind, rs in kinds.items()
            if kind not in ("CanaryDeployment", "ReleaseGuard", "Rollout", "RolloutFinaliser")
        }
        assert names["Deployment"] == ["podinfo", "podinfo-primary"]
        assert names["Service"] == ["podinfo", "podinfo-canary", "podinfo-primary"]
        assert names["DestinationRule"] == ["podinfo-canary", "podinfo-primary"]
        assert names["VirtualService"] == ["podinfo"]
        for resource in mocks.resources:
            if resource.typ != "canary:index:CanaryDeployment":
                assert resource.name.startswith("podinfo-")

    return component.virtual_service.id.apply(check)


def test_bad_input_declares_nothing(mocks: EchoMocks) -> None:
    canary = load_yaml("canary.yaml")
    canary["spec"]["analysis"]["stepWeight"] = 150
    with pytest.raises(SpecError, match=r"spec\.analysis\.stepWeight"):
        CanaryDeployment.from_flagger(
            "podinfo", canary=canary, deployment=load_yaml("deployment.yaml")
        )
    assert mocks.resources == []
