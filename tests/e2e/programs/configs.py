"""The example stack with a ConfigMap that podinfo reads through `envFrom`, tracked as Flagger
tracks it: `pulumi config set --path 'settings.PODINFO_UI_MESSAGE' hello` is this stack's
`kubectl edit configmap`. Run by tests/e2e/test_config_tracking.py."""

from pathlib import Path
from typing import Any

import pulumi
import yaml

from components import CanaryDeployment, GateOptions

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "podinfo"


def manifest(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLE / name).read_text())
    return loaded


config = pulumi.Config()
deployment = manifest("deployment.yaml")
container = deployment["spec"]["template"]["spec"]["containers"][0]
container["envFrom"] = [{"configMapRef": {"name": "podinfo-config"}}]
settings = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "podinfo-config", "namespace": "default"},
    "data": config.require_object("settings"),
}
gate = GateOptions(kubeconfig=config.get_secret("kubeconfig"), interval=config.get("interval"))
podinfo = CanaryDeployment.from_flagger(
    "podinfo", canary=manifest("canary.yaml"), deployment=deployment, gate=gate, configs=[settings]
)
pulumi.export("revision", podinfo.rollout.revision)
