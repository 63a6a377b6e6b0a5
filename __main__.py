"""The tutorial's podinfo canary, released by `pulumi up`.

`pulumi config set image ghcr.io/stefanprodan/podinfo:6.3.1 && pulumi up` is this project's
`kubectl set image`: the component declares the canary, and the release follows.
"""

from pathlib import Path
from typing import Any

import pulumi
import yaml

from components import CanaryDeployment, GateOptions

EXAMPLE = Path(__file__).parent / "examples" / "podinfo"


def manifest(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLE / name).read_text())
    return loaded


config = pulumi.Config()
deployment = manifest("deployment.yaml")
image = config.get("image")
if image:
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image

# Optional stack config for the gate (not declared in Pulumi.yaml: declared keys without a default
# are required). Credentials: `kubeconfig` (set with --secret) if set, else KUBECONFIG or
# ~/.kube/config (`context` picks another context), else in-cluster service-account credentials.
gate = GateOptions(
    kubeconfig=config.get_secret("kubeconfig"),
    context=config.get("context"),
    deadline_seconds=config.get_float("deadlineSeconds"),
    interval=config.get("interval"),
    retry_failed=config.get_bool("retryFailed") or False,
    pushgateway=config.get("pushgateway"),
    critical=config.get("critical"),
    scrape_interval=config.get("scrapeInterval"),
    event_webhook=config.get("eventWebhook"),
)
podinfo = CanaryDeployment.from_flagger(
    "podinfo", canary=manifest("canary.yaml"), deployment=deployment, gate=gate
)
pulumi.export("primary", podinfo.release.primary)
pulumi.export("strategy", str(podinfo.release.spec.analysis.strategy))
pulumi.export("revision", podinfo.rollout.revision)
pulumi.export("plan", podinfo.rollout.plan)
