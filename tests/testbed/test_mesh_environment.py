"""The mesh simulator gives pods the environment a kubelet would, read when they start.

That is what lets a test bed release fail because of a config: a fault keyed by `NAME=VALUE`
hits the pods that started with that value, and only those.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from components.rehearse.testbed import KubeEmulator, MeshSimulator
from tests.conftest import config_manifest

pytestmark = pytest.mark.testbed

PATH = "/apis/apps/v1/namespaces/default/deployments"


def config_map(**data: str) -> dict[str, Any]:
    return config_manifest("ConfigMap", "settings", metadata={"namespace": "default"}, data=data)


def reader(name: str, **annotations: str) -> dict[str, Any]:
    """A Deployment whose container reads `settings` whole, and a Secret's key, plus a value."""
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "token", "key": "token"}}},
        {"name": "MODE", "value": "from-env"},
    ]
    container = {
        "name": "app",
        "image": "app:1",
        "envFrom": [{"configMapRef": {"name": "settings"}}],
        "env": env,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {"containers": [container]},
            },
        },
    }


@pytest.fixture
def mesh(kube: KubeEmulator) -> Iterator[MeshSimulator]:
    kube.create(config_map(COLOR="blue", MODE="from-config"))
    token = base64.b64encode(b"s3cret").decode()
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "token"},
            "data": {"token": token},
        }
    )
    with MeshSimulator(kube.url, token=kube.token, seed=3) as simulator:
        yield simulator


def test_pods_get_env_from_config_maps_and_secrets_env_winning(
    kube: KubeEmulator, mesh: MeshSimulator, eventually: Callable[..., None]
) -> None:
    kube.create(reader("app"))
    expected = {"COLOR": "blue", "MODE": "from-env", "TOKEN": "s3cret"}
    eventually(lambda: mesh.environment("app") == expected)


def test_a_config_change_reaches_only_pods_started_after_it(
    kube: KubeEmulator, mesh: MeshSimulator, eventually: Callable[..., None]
) -> None:
    kube.create(reader("app"))
    eventually(lambda: mesh.environment("app").get("COLOR") == "blue")
    kube.apply_object(config_map(COLOR="red", MODE="from-config"), field_manager="test")
    # A Deployment started after the change sees it: the simulator has read the new config.
    kube.create(reader("later"))
    eventually(lambda: mesh.environment("later").get("COLOR") == "red")
    assert mesh.environment("app")["COLOR"] == "blue"
    # A new generation (a new pod template) restarts the pods, which read the change.
    kube.apply_object(reader("app", restartedAt="1"), field_manager="test")
    eventually(lambda: mesh.environment("app").get("COLOR") == "red")
