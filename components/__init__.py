"""Flagger-style progressive delivery on Istio, run by `pulumi up`."""

from .component import CanaryDeployment, CanaryDeploymentArgs
from .errors import CanaryError, PermanentError, ReleaseFailed, ReleaseInterrupted, TemporaryError
from .group import CanaryGroup, CanaryGroupArgs
from .provider.rollout import GateOptions
from .spec import ReleaseSpec, SpecError
from .spec.group import FailurePolicy

__all__ = [
    "CanaryDeployment",
    "CanaryDeploymentArgs",
    "CanaryError",
    "CanaryGroup",
    "CanaryGroupArgs",
    "FailurePolicy",
    "GateOptions",
    "PermanentError",
    "ReleaseFailed",
    "ReleaseInterrupted",
    "ReleaseSpec",
    "SpecError",
    "TemporaryError",
]
