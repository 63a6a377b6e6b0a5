"""What a release did, for the rehearsal's report and the gate's failure message."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class CheckEntry:
    """One metric check as the report shows it."""

    weight: int
    iteration: int
    metrics: dict[str, float | None]
    passed: bool


@dataclass
class ReleaseReport:
    outcome: str
    strategy: str
    canary_weights: list[int] = field(default_factory=list)
    iterations: int = 0
    failed_checks: int = 0
    reason: str | None = None
    checks: list[CheckEntry] = field(default_factory=list)
    duration_s: float = 0.0
    cleanup: str | None = None
    """Set when a rollback could not return everything to rest: what is left."""

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
