"""Flagger-style progressive delivery on Istio, run by `pulumi up`."""

from .component import CanaryDeployment, CanaryDeploymentArgs
from .errors import CanaryError, PermanentError, ReleaseFailed, ReleaseInterrupted, TemporaryError
from .provider.rollout import GateOptions
from .spec import ReleaseSpec, SpecError

__all__ = [
    "CanaryDeployment",
    "CanaryDeploymentArgs",
    "CanaryError",
    "GateOptions",
    "PermanentError",
    "ReleaseFailed",
    "ReleaseInterrupted",
    "ReleaseSpec",
    "SpecError",
    "TemporaryError",
]
