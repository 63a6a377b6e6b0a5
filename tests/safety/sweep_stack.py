"""The stack the kill sweep and the fault suite release: the tutorial's podinfo, shortened.

Two weighted steps (25%, 50%) and one failed check to roll back, so that each of the many
releases takes a few seconds at the sweep's 2 s interval; everything else is the tutorial's.
"""

from pathlib import Path
from typing import Any

import pulumi
import yaml

from components import CanaryDeployment, GateOptions

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "podinfo"


def manifest(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLE / name).read_text())
    return loaded


config = pulumi.Config()
canary = manifest("canary.yaml")
canary["spec"]["analysis"].update(stepWeight=25, threshold=1)
deployment = manifest("deployment.yaml")
deployment["spec"]["template"]["spec"]["containers"][0]["image"] = config.require("image")
podinfo = CanaryDeployment.from_flagger(
    "podinfo",
    canary=canary,
    deployment=deployment,
    gate=GateOptions(kubeconfig=config.get_secret("kubeconfig"), interval=config.get("interval")),
)
