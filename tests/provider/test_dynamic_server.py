"""Contract test of the real dynamic-provider server, driven over gRPC as the engine drives it.

Proves what calling methods directly cannot: the provider survives the real dill round trip,
`components.provider.rollout` imports from the project root in a fresh process, and errors
map to gRPC statuses whose details carry the reason. It does not reproduce the engine
(preview short-circuit, secret re-annotation, DIFF_UNKNOWN fallback).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from tests.fakes import initial_state
from tests.provider.dynamic_server import PROVIDER, DynamicServer, plain, struct, urn

URN = urn("podinfo")

# Nothing listens on port 1: every API call fails at once with a connection error.
UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: nobody
  user: {token: "not-a-real-token"}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody, namespace: default}
current-context: nowhere
"""


@pytest.fixture(scope="module")
def stub() -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    """The server the CLI's `pulumi-resource-pulumi-python` starts, from the project root."""
    with DynamicServer() as server:
        yield server.stub


@pytest.fixture
def props(canary: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any]:
    return {
        "__provider": PROVIDER,
        "canary": canary,
        "deployment": deployment,
        "podTemplate": copy.deepcopy(deployment["spec"]["template"]),
        "metricTemplates": [],
        "alertProviders": [],
        "kubeconfig": UNREACHABLE_KUBECONFIG,
        "retryFailed": False,
    }


def configure(stub: provider_pb2_grpc.ResourceProviderStub) -> None:
    response = stub.Configure(provider_pb2.ConfigureRequest(args=struct({"canary:interval": "1m"})))
    assert response.acceptSecrets is False


def test_check_maps_spec_problems_to_field_paths(
    stub: provider_pb2_grpc.ResourceProviderStub, props: dict[str, Any]
) -> None:
    configure(stub)
    good = stub.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(props)))
    assert list(good.failures) == []
    assert plain(good.inputs)["canary"]["metadata"]["name"] == "podinfo"

    bad = copy.deepcopy(props)
    bad["canary"]["spec"]["analysis"]["stepWeight"] = -10
    bad["deadlineSeconds"] = -1
    response = stub.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(bad)))
    paths = [failure.property for failure in response.failures]
    assert "deadlineSeconds" in paths
    assert any("stepWeight" in path for path in paths), paths


def test_diff_over_the_wire(
    stub: provider_pb2_grpc.ResourceProviderStub, props: dict[str, Any]
) -> None:
    configure(stub)
    olds = {
        **initial_state(props),
        "__provider": props["__provider"],
    }
    same = stub.Diff(
        provider_pb2.DiffRequest(
            id="default/podinfo", urn=URN, olds=struct(olds), news=struct(props)
        )
    )
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE

    changed = copy.deepcopy(props)
    changed["podTemplate"]["spec"]["containers"][0]["image"] = "podinfo:6.3.1"
    response = stub.Diff(
        provider_pb2.DiffRequest(
            id="default/podinfo", urn=URN, olds=struct(olds), news=struct(changed)
        )
    )
    assert response.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(response.replaces) == []


def test_create_against_an_unreachable_cluster_fails_with_the_reason(
    stub: provider_pb2_grpc.ResourceProviderStub, props: dict[str, Any]
) -> None:
    configure(stub)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Create(provider_pb2.CreateRequest(urn=URN, properties=struct(props)), timeout=60)
    error = raised.value
    assert error.code() == grpc.StatusCode.UNKNOWN
    details = error.details()
    assert "ConfigMap default/podinfo-canary-release" in details
    assert "cannot reach the API server" in details
    assert "not-a-real-token" not in details
