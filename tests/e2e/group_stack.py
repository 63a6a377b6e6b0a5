"""A stack of three canaries released as one group: the tutorial's podinfo as `cart`,
`catalog` and `checkout`, shortened as the kill sweep's (25%, 50%, one failed check rolls back).

Stack config: `<name>Image` for each canary, `waves` (JSON, default one wave), `onFailure`,
`interval` and `kubeconfig`.
"""

import json

import pulumi

from components import CanaryDeploymentArgs, CanaryGroup, CanaryGroupArgs, GateOptions
from tests.conftest import load_yaml
from tests.provider.dynamic_server import renamed

NAMES = ("cart", "catalog", "checkout")


config = pulumi.Config()
gate = GateOptions(kubeconfig=config.get_secret("kubeconfig"), interval=config.get("interval"))
canaries = {}
for name in NAMES:
    canary, deployment = renamed(load_yaml("canary.yaml"), load_yaml("deployment.yaml"), name)
    canary["spec"]["analysis"].update(stepWeight=25, threshold=1)
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = config.require(
        f"{name}Image"
    )
    canaries[name] = CanaryDeploymentArgs(canary=canary, deployment=deployment, gate=gate)
waves = config.get("waves")
shop = CanaryGroup(
    "shop",
    CanaryGroupArgs(
        canaries=canaries,
        waves=json.loads(waves) if waves else None,
        on_failure=config.get("onFailure") or "stop",
    ),
)
pulumi.export("revisions", {name: shop.canaries[name].rollout.revision for name in NAMES})
