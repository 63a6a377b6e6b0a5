"""The pure decision core: the plan, the release state machine, readiness and the review line.

No I/O here: every function is a decision over values, so the gate, the rehearsal and the
tests replay the same code with chosen inputs and clocks.
"""

from .critical import Breach, breach, critical_rollback
from .engine import (
    Check,
    CheckKind,
    CheckResult,
    Decision,
    Event,
    Phase,
    ReleaseState,
    advance,
    begin,
    checks,
)
from .plan import ReleasePlan, Step, canary_weights, plan
from .readiness import Condition, Readiness, ReadinessState, WorkloadStatus, readiness
from .review import images_of, review, template_change, value_text

__all__ = [
    "Breach",
    "Check",
    "CheckKind",
    "CheckResult",
    "Condition",
    "Decision",
    "Event",
    "Phase",
    "Readiness",
    "ReadinessState",
    "ReleasePlan",
    "ReleaseState",
    "Step",
    "WorkloadStatus",
    "advance",
    "begin",
    "breach",
    "canary_weights",
    "checks",
    "critical_rollback",
    "images_of",
    "plan",
    "readiness",
    "review",
    "template_change",
    "value_text",
]
