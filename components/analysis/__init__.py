"""The pure decision core: strategies, checks and the release state machine. No I/O here."""

from .engine import (
    CheckResult,
    Decision,
    Event,
    Gate,
    GateKind,
    Phase,
    Release,
    advance,
    begin,
    finalising_weights,
    gates,
)
from .plan import ReleasePlan, plan

__all__ = [
    "CheckResult",
    "Decision",
    "Event",
    "Gate",
    "GateKind",
    "Phase",
    "Release",
    "ReleasePlan",
    "advance",
    "begin",
    "finalising_weights",
    "gates",
    "plan",
]
