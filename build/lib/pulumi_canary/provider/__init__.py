"""Pulumi dynamic resources that gate `pulumi up` on a canary's analysis.

Kept free of import-time side effects: the dynamic-provider server unpickles providers by
reference, which imports this package in a process that has no engine connection.
"""

from .rollout import (
    FinaliserProvider,
    GateOptions,
    GuardProvider,
    Rollout,
    RolloutFinaliser,
    RolloutProvider,
)

__all__ = [
    "FinaliserProvider",
    "GateOptions",
    "GuardProvider",
    "Rollout",
    "RolloutFinaliser",
    "RolloutProvider",
]
