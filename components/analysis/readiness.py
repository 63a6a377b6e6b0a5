"""Flagger's readiness rule for a Deployment, as a pure function of its status and the time.

The cluster adapter reads the status; the time comes from the driver's clock, so a replayed
release and a real one judge readiness alike, the progress deadline included.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class WorkloadStatus:
    """What the deployment controller reports about one Deployment."""

    wanted: int
    generation: int = 0
    observed_generation: int = 0
    available: int = 0
    updated: int = 0
    current: int = 0
    conditions: tuple[Condition, ...] = ()


class ReadinessState(enum.Enum):
    READY = "ready"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True)
class Readiness:
    """Whether a Deployment can serve; `message` says what it waits for, or why it failed."""

    state: ReadinessState
    message: str = ""

    @property
    def ready(self) -> bool:
        return self.state is ReadinessState.READY

    @property
    def failed(self) -> bool:
        return self.state is ReadinessState.FAILED


def readiness(
    status: WorkloadStatus,
    threshold_percent: int,
    *,
    since: float,
    now: float,
    deadline_seconds: float,
) -> Readiness:
    """Ready when the new generation is rolled out and enough replicas are available.

    Messages are short (`0/2 ready, generation 3 not observed yet`): they end progress lines.

    Failed when the controller says ProgressDeadlineExceeded, or when `deadline_seconds` passed
    since `since` without readiness. A Deployment scaled to zero never counts as ready: a canary
    must be able to serve.
    """
    counted = f"{status.available}/{status.wanted} ready"
    observed = status.observed_generation >= status.generation
    if observed:
        for condition in status.conditions:
            if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
                return Readiness(
                    ReadinessState.FAILED,
                    f"progress deadline exceeded: {counted} (Progressing={condition.status} "
                    f"reason={condition.reason}: {condition.message})",
                )
    if not observed:
        waiting = f"{counted}, generation {status.generation} not observed yet"
    elif status.wanted == 0:
        waiting = "scaled to 0 replicas"
    elif status.updated < status.wanted:
        waiting = f"{counted}, {status.updated}/{status.wanted} updated"
    elif status.current > status.updated:
        waiting = f"{counted}, {status.current - status.updated} old replicas terminating"
    elif status.available * 100 < status.wanted * threshold_percent:
        waiting = f"{counted}, needs {threshold_percent}%"
    else:
        return Readiness(ReadinessState.READY, counted)
    if now - since > deadline_seconds:
        return Readiness(
            ReadinessState.FAILED,
            f"progress deadline exceeded: {counted} after {deadline_seconds:g}s ({waiting})",
        )
    return Readiness(ReadinessState.PENDING, waiting)
