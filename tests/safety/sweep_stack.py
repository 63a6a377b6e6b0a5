"""The stack the kill sweep and the fault suite release: the tutorial's podinfo, shortened.

Two weighted steps (25%, 50%) and one failed check to roll back, so that each of the many
releases takes a few seconds at the sweep's 2 s interval; everything else is the tutorial's.
"""

import pulumi

from components import CanaryDeployment, GateOptions
from tests.conftest import load_yaml

config = pulumi.Config()
canary = load_yaml("canary.yaml")
canary["spec"]["analysis"].update(stepWeight=25, threshold=1)
deployment = load_yaml("deployment.yaml")
deployment["spec"]["template"]["spec"]["containers"][0]["image"] = config.require("image")
podinfo = CanaryDeployment.from_flagger(
    "podinfo",
    canary=canary,
    deployment=deployment,
    gate=GateOptions(kubeconfig=config.get_secret("kubeconfig"), interval=config.get("interval")),
)
