"""Flagger-style progressive delivery on Istio, run by `pulumi up`."""

from .component import CanaryDeployment, CanaryDeploymentArgs
from .provider.rollout import GateOptions, RolloutFailed
from .spec import ReleaseSpec, SpecError

__all__ = [
    "CanaryDeployment",
    "CanaryDeploymentArgs",
    "GateOptions",
    "ReleaseSpec",
    "RolloutFailed",
    "SpecError",
]
