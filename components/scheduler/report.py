"""What a release did, for the rehearsal's report and the gate's failure message.

The scheduler fills it as the release runs: every metric check with each value against its
bounds, every webhook call, every decision of the engine, each with its Unix time (`at`) and
its seconds since the analysis started (`since_start_s`). Its JSON form is documented by
`docs/rehearsal-report.schema.json`.

One word, one meaning: `step` is the 1-based number of the plan step a check ran at, for every
strategy (for A/B and blue/green it is Flagger's iteration number, for a canary the n-th
weight); `weight` is the canary route's weight in the VirtualService (for A/B it applies to the
matched requests only; `routing` says in words what was routed where).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..adapters.webhooks import WebhookResult
from ..analysis import Event, Phase, ReleasePlan


@dataclass
class MetricEntry:
    """One metric at one check: its value (None when the query found none) and its bounds."""

    value: float | None
    min: float | None
    max: float | None
    passed: bool


@dataclass
class CheckEntry:
    """One metric check as the report shows it."""

    at: float
    since_start_s: float
    step: int
    weight: int
    routing: str
    metrics: dict[str, MetricEntry]
    passed: bool


@dataclass
class WebhookEntry:
    """One webhook call: `status` is None when no answer came; `elapsed_s` covers retries."""

    at: float
    since_start_s: float
    name: str
    type: str
    phase: str
    status: int | None
    passed: bool
    reason: str | None
    elapsed_s: float
    attempts: int


@dataclass
class DecisionEntry:
    """One event of the engine (`severity` as alerts have it), the phase it led to and the
    canary route's weight once it was carried out."""

    at: float
    since_start_s: float
    severity: str
    message: str
    phase: str
    weight: int


@dataclass
class PlanStep:
    weight: int
    mirror: bool


@dataclass
class PlanEntry:
    """The plan the release ran: its steps, the interval between checks and its bounds."""

    description: str
    steps: list[PlanStep]
    interval_s: float
    threshold: int
    deadline_s: float
    worst_case_s: float

    @classmethod
    def of(cls, plan: ReleasePlan) -> PlanEntry:
        return cls(
            description=plan.describe(),
            steps=[PlanStep(step.weight, step.mirror) for step in plan.steps],
            interval_s=plan.interval_seconds,
            threshold=plan.threshold,
            deadline_s=plan.deadline_seconds,
            worst_case_s=plan.worst_case_seconds,
        )


@dataclass
class ReleaseReport:
    outcome: str
    strategy: str
    name: str = ""
    namespace: str = ""
    revision: str = ""
    started_at: float = 0.0
    """Unix time the analysis started; every `since_start_s` counts from here."""
    ended_at: float = 0.0
    """Unix time the analysis reached its outcome (a promotion's finalising comes after)."""
    duration_s: float = 0.0
    steps_run: int = 0
    """Plan steps applied: Flagger's iterations for A/B and blue/green, weights for a canary."""
    canary_weights: list[int] = field(default_factory=list)
    """The canary route's weight at each step applied."""
    failed_checks: int = 0
    reason: str | None = None
    plan: PlanEntry | None = None
    checks: list[CheckEntry] = field(default_factory=list)
    webhooks: list[WebhookEntry] = field(default_factory=list)
    decisions: list[DecisionEntry] = field(default_factory=list)
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
            if last is not None and (last.step, last.passed) == (check.step, check.passed):
                groups[-1].append(check)
            else:
                groups.append([check])
        parts = []
        for group in groups:
            first = group[0]
            where = f"{first.weight}%" if self.strategy == "canary" else f"check {first.step}"
            count = f" ({len(group)})" if len(group) > 1 else ""
            if first.passed:
                parts.append(f"{where} pass{count}")
                continue
            failing = [
                (name, [check.metrics[name].value for check in group if name in check.metrics])
                for name in dict.fromkeys(
                    name
                    for check in group
                    for name, entry in check.metrics.items()
                    if not entry.passed
                )
            ]
            values = "; ".join(f"{name} {'/'.join(map(_value, seen))}" for name, seen in failing)
            parts.append(f"{where} FAIL{count} {values}".rstrip())
        return ", ".join(parts)

    def since_start(self, at: float) -> float:
        return round(at - self.started_at, 3)

    def add_webhook(self, outcome: WebhookResult, phase: str, at: float) -> None:
        self.webhooks.append(
            WebhookEntry(
                at=at,
                since_start_s=self.since_start(at),
                name=outcome.name,
                type=str(outcome.type),
                phase=phase,
                status=outcome.status,
                passed=outcome.passed,
                reason=outcome.reason,
                elapsed_s=round(outcome.elapsed, 4),
                attempts=outcome.attempts,
            )
        )

    def add_decision(self, event: Event, phase: Phase, weight: int, at: float) -> None:
        since = self.since_start(at)
        entry = DecisionEntry(at, since, event.severity, event.message, str(phase), weight)
        self.decisions.append(entry)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _value(value: float | None) -> str:
    return "no data" if value is None else f"{value:.4g}"
