"""Flagger-style progressive delivery on Istio, run by `pulumi up`."""

from .component import CanaryDeployment, CanaryDeploymentArgs
from .spec import ReleaseSpec, SpecError

__all__ = ["CanaryDeployment", "CanaryDeploymentArgs", "ReleaseSpec", "SpecError"]
