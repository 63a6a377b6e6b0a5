"""What the status command shows: rows, as a pure function of one snapshot of the cluster.

`_run` reads the snapshot through the adapters; everything here is values in, rows out, so
each phase's view is tested without a cluster or a terminal, and the live terminal view and
the plain lines show the same rows. The cluster is the truth: the weights shown are the
VirtualService's, and the record's are shown beside them only when the two disagree.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from ..adapters.cluster import Routes
from ..adapters.records import RecordPhase, ReleaseRecord
from ..analysis import ReleasePlan, WorkloadStatus, readiness
from ..spec import Strategy, format_seconds

# Exit statuses of the command; a watch ends with the release's outcome.
EXIT_SUCCEEDED = 0
"""Promoted (Succeeded), or nothing in flight to watch."""
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 3
"""The record says Interrupted, or the run driving the release stopped (stale heartbeat)."""
EXIT_UNREACHABLE = 4
"""The cluster could not be read."""

PLAIN_WIDTH = 80
LABEL_WIDTH = 12
EVENTS_SHOWN = 8
PLAN_UNKNOWN = "unknown: pass --canary and --deployment to show it"


class Tone(StrEnum):
    """How a row reads at a glance; the terminal colours it, plain lines ignore it."""

    PLAIN = ""
    GOOD = "good"
    WARN = "warn"
    BAD = "bad"


_PHASE_TONES = {
    RecordPhase.SUCCEEDED: Tone.GOOD,
    RecordPhase.FAILED: Tone.BAD,
    RecordPhase.INTERRUPTED: Tone.WARN,
}
# What the next `pulumi up` does with a release that ended so.
_NEXT_RUN = {
    RecordPhase.INTERRUPTED: "the next pulumi up starts the release over from primary 100%",
    RecordPhase.FAILED: "pulumi up fails fast on this template; retryFailed analyses it again",
}


@dataclass(frozen=True)
class Row:
    """One line of the view; an empty label continues the row above (a list's next item)."""

    label: str
    value: str
    tone: Tone = Tone.PLAIN


@dataclass(frozen=True)
class Workload:
    """One Deployment as the cluster reports it; `status` is None when it does not exist."""

    name: str
    status: WorkloadStatus | None
    images: str = ""
    ready_percent: int = 100
    """The share of replicas that must be available for it to count as ready."""


@dataclass(frozen=True)
class Snapshot:
    """Everything shown about one release, read at one moment (`read_at`, a Unix time)."""

    name: str
    namespace: str
    read_at: float
    record: ReleaseRecord | None
    routes: Routes
    canary: Workload
    primary: Workload
    plan: ReleasePlan | None = None
    stale_after: float | None = None
    """The record's stale window (`Timing.stale_after_seconds`); None when the interval is
    known neither from the record nor from the spec."""
    abandoned: bool = False
    """`ReleaseRecord.abandoned` at `read_at`: the run that wrote the record stopped."""

    @property
    def interrupted(self) -> bool:
        """A release in flight whose run stopped: nothing will move it until the next run."""
        return self.record is not None and self.record.in_flight and self.abandoned


def exit_status(snapshot: Snapshot) -> int | None:
    """The status a watch ends with on this snapshot; None while the release goes on.

    A release ends when its record leaves the in-flight phases and the cluster is settled (a
    rollback still returning traffic is part of it), or when its run stopped heartbeating.
    No record at all is idle: there is nothing to wait for.
    """
    record = snapshot.record
    if record is None:
        return EXIT_SUCCEEDED
    if record.in_flight:
        return EXIT_INTERRUPTED if snapshot.abandoned else None
    if not record.settled and not snapshot.abandoned:
        return None
    if record.phase is RecordPhase.FAILED:
        return EXIT_FAILED
    if record.phase is RecordPhase.INTERRUPTED:
        return EXIT_INTERRUPTED
    return EXIT_SUCCEEDED


def rows(snapshot: Snapshot) -> list[Row]:
    """The view, top to bottom: the release, its progress, its checks, its workloads, events."""
    read_at = datetime.fromtimestamp(snapshot.read_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    shown = [Row("Release", f"{snapshot.name} in {snapshot.namespace}, read {read_at}")]
    record = snapshot.record
    if record is None:
        shown.append(
            Row("Phase", "no release record: nothing released yet under this name", Tone.WARN)
        )
        shown += [_traffic(snapshot), *_workloads(snapshot)]
        return shown
    shown += _progress(snapshot, record)
    shown.append(_traffic(snapshot))
    shown += _checks(snapshot, record)
    shown += _outlook(snapshot, record)
    shown += _workloads(snapshot)
    shown += _events(snapshot, record)
    return shown


def plain_lines(shown: list[Row], width: int = PLAIN_WIDTH) -> list[str]:
    """`Label:     value` lines, long values wrapped under themselves, no control codes."""
    lines = []
    indent = " " * LABEL_WIDTH
    for row in shown:
        label = f"{row.label}:" if row.label else ""
        lines += textwrap.wrap(
            row.value,
            width,
            initial_indent=label.ljust(LABEL_WIDTH),
            subsequent_indent=indent,
            break_on_hyphens=False,
        ) or [label]
    return lines


# -- the parts ------------------------------------------------------------------------------


def _progress(snapshot: Snapshot, record: ReleaseRecord) -> list[Row]:
    age = snapshot.read_at - record.heartbeat
    phase = Row("Phase", str(record.phase), _PHASE_TONES.get(record.phase, Tone.PLAIN))
    if snapshot.interrupted:
        phase = Row("Phase", f"{record.phase}, interrupted: its run stopped", Tone.BAD)
    shown = [phase]
    if record.reason:
        shown.append(Row("Reason", record.reason, phase.tone))
    window = f" (stale after {_span(snapshot.stale_after)})" if snapshot.stale_after else ""
    owner = str(record.owner) if record.owner else "unknown"
    heartbeat = f"{owner}, heartbeat {_span(age)} ago{window}"
    shown.append(Row("Owner", heartbeat, Tone.BAD if snapshot.interrupted else Tone.PLAIN))
    shown.append(Row("Revision", record.revision or "unknown"))
    shown.append(_settled(snapshot, record))
    plan = snapshot.plan
    shown.append(Row("Plan", plan.describe() if plan else PLAN_UNKNOWN))
    shown.append(Row("Step", _step(record, plan)))
    return shown


def _settled(snapshot: Snapshot, record: ReleaseRecord) -> Row:
    """Whether the record says the cluster is at the rest its phase implies."""
    if record.settled:
        return Row("Settled", "yes")
    if snapshot.abandoned:
        return Row("Settled", "no, and its run stopped: the next pulumi up settles it", Tone.WARN)
    if record.in_flight:
        return Row("Settled", "no: the release is moving traffic")
    return Row("Settled", "no: its run is returning traffic to the primary")


def _outlook(snapshot: Snapshot, record: ReleaseRecord) -> list[Row]:
    """Time left before the release gives up, and what the next `pulumi up` will do."""
    shown = []
    if record.in_flight and record.deadline is not None:
        left = record.deadline - snapshot.read_at
        if left > 0:
            shown.append(Row("Deadline", f"{_span(left)} left"))
        else:
            shown.append(Row("Deadline", f"passed {_span(-left)} ago: it rolls back", Tone.BAD))
    next_run = _NEXT_RUN.get(RecordPhase.INTERRUPTED if snapshot.interrupted else record.phase)
    if next_run:
        shown.append(Row("Next", next_run))
    return shown


def _step(record: ReleaseRecord, plan: ReleasePlan | None) -> str:
    """`3/5: 30%`: the record's step in the plan (the record counts from 0, -1 before any)."""
    if record.step < 0:
        return "not started"
    if plan is None:
        return f"{record.step + 1} of an unknown plan"
    if record.step >= len(plan.steps):
        return f"{record.step + 1}, past the {len(plan.steps)} steps of the plan given"
    step = plan.steps[record.step]
    weight = "mirrored" if step.mirror else f"{step.weight}%"
    return f"{record.step + 1}/{len(plan.steps)}: {weight}"


def _traffic(snapshot: Snapshot) -> Row:
    routes, record, plan = snapshot.routes, snapshot.record, snapshot.plan
    matched = " of matched requests" if plan and plan.strategy is Strategy.AB else ""
    text = f"primary {routes.primary}%, canary {routes.canary}%{matched}"
    if routes.mirrored:
        text += ", mirrored to the canary"
    if record is not None and record.weight != routes.canary:
        return Row("Traffic", f"{text}; the record says canary {record.weight}%", Tone.WARN)
    return Row("Traffic", text)


def _checks(snapshot: Snapshot, record: ReleaseRecord) -> list[Row]:
    plan = snapshot.plan
    threshold = record.threshold
    if threshold is None and plan is not None:
        threshold = plan.threshold
    counted = f"{record.failed_checks} failed"
    if threshold is not None:
        counted += f", rollback at {threshold}"
    shown = [Row("Checks", counted, Tone.WARN if record.failed_checks else Tone.PLAIN)]
    label = "Last check"
    for name, check in record.last_check.items():
        value = "no data" if check.value is None else f"{check.value:.4g}"
        verdict = "pass" if check.passed else "FAIL"
        text = f"{name} {value} ({check.bounds or 'any'}) {verdict}"
        shown.append(Row(label, text, Tone.PLAIN if check.passed else Tone.BAD))
        label = ""
    return shown


def _workloads(snapshot: Snapshot) -> list[Row]:
    return [
        _workload("Canary", snapshot.canary, snapshot.read_at),
        _workload("Primary", snapshot.primary, snapshot.read_at),
    ]


def _workload(label: str, workload: Workload, now: float) -> Row:
    status = workload.status
    if status is None:
        return Row(label, f"{workload.name}: no such Deployment", Tone.WARN)
    # Only the controller's own verdict can fail it here: the status has no deadline to keep.
    ready = readiness(status, workload.ready_percent, since=now, now=now, deadline_seconds=math.inf)
    text = f"{workload.name}: {status.available}/{status.wanted} available"
    if not ready.ready:
        text += f" ({ready.message})"
    if workload.images:
        text += f", {workload.images}"
    return Row(label, text, Tone.BAD if ready.failed else Tone.PLAIN)


def _events(snapshot: Snapshot, record: ReleaseRecord) -> list[Row]:
    label = "Events"
    shown = []
    for entry in record.history[-EVENTS_SHOWN:]:
        shown.append(Row(label, f"{_span(snapshot.read_at - entry.at)} ago: {entry.text}"))
        label = ""
    return shown


def _span(seconds: float) -> str:
    """`4s`, `2m30s`, `3h5m`: whole seconds, never negative (the writer's clock may differ)."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    if not hours:
        return format_seconds(rest)
    return f"{hours}h{rest // 60}m" if rest >= 60 else f"{hours}h"
