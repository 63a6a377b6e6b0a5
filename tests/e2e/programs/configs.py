"""The example stack with a ConfigMap that podinfo reads through `envFrom`, tracked as Flagger
tracks it: `pulumi config set --path 'settings.PODINFO_UI_MESSAGE' hello` is this stack's
`kubectl edit configmap`. Run by tests/e2e/test_config_tracking.py."""

import pulumi

from components import CanaryDeployment, GateOptions
from tests.conftest import config_manifest, load_yaml

config = pulumi.Config()
deployment = load_yaml("deployment.yaml")
container = deployment["spec"]["template"]["spec"]["containers"][0]
container["envFrom"] = [{"configMapRef": {"name": "podinfo-config"}}]
settings = config_manifest(
    "ConfigMap",
    "podinfo-config",
    metadata={"namespace": "default"},
    data=config.require_object("settings"),
)
gate = GateOptions(kubeconfig=config.get_secret("kubeconfig"), interval=config.get("interval"))
podinfo = CanaryDeployment.from_flagger(
    "podinfo", canary=load_yaml("canary.yaml"), deployment=deployment, gate=gate, configs=[settings]
)
pulumi.export("revision", podinfo.rollout.revision)
