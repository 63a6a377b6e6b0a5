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
    failing: list[str] = field(default_factory=list)
    """The metrics that failed the check."""

    @property
    def where(self) -> str:
        return f"{self.weight}%" if self.iteration == 0 else f"iteration {self.iteration}"


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

    def checks_line(self) -> str:
        """`10% pass, 20% pass, 30% FAIL (2) request-success-rate 51.2/48`: each step's
        checks, with the failing values, for the failure message a user reads last."""
        groups: list[list[CheckEntry]] = []
        for check in self.checks:
            last = groups[-1][-1] if groups else None
            if last is not None and (last.where, last.passed) == (check.where, check.passed):
                groups[-1].append(check)
            else:
                groups.append([check])
        parts = []
        for group in groups:
            first = group[0]
            count = f" ({len(group)})" if len(group) > 1 else ""
            if first.passed:
                parts.append(f"{first.where} pass{count}")
                continue
            names = dict.fromkeys(name for check in group for name in check.failing)
            values = "; ".join(
                f"{name} "
                + "/".join(
                    _value(check.metrics.get(name)) for check in group if name in check.failing
                )
                for name in names
            )
            parts.append(f"{first.where} FAIL{count} {values}".rstrip())
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _value(value: float | None) -> str:
    return "no data" if value is None else f"{value:.4g}"
