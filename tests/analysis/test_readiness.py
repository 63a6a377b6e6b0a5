"""Flagger's readiness rule, judged on a Deployment's status and the driver's clock."""

from __future__ import annotations

import pytest

from components.analysis import Condition, ReadinessState, WorkloadStatus, readiness

READY = WorkloadStatus(
    wanted=2, generation=1, observed_generation=1, available=2, updated=2, current=2
)
DEADLINE_EXCEEDED = Condition(
    "Progressing",
    "False",
    "ProgressDeadlineExceeded",
    'ReplicaSet "podinfo-5d9" has timed out progressing.',
)


def replace(status: WorkloadStatus, **fields: object) -> WorkloadStatus:
    return WorkloadStatus(**{**status.__dict__, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "threshold", "expected"),
    [
        (READY, 100, (ReadinessState.READY, "2/2 ready")),
        (replace(READY, available=1), 100, (ReadinessState.PENDING, "1/2 ready")),
        (replace(READY, available=1), 50, (ReadinessState.READY, "1/2 ready")),
        (replace(READY, updated=1), 100, (ReadinessState.PENDING, "1/2 updated")),
        (replace(READY, current=3), 100, (ReadinessState.PENDING, "1 old replicas terminating")),
        (replace(READY, observed_generation=0), 100, (ReadinessState.PENDING, "not observed yet")),
        (WorkloadStatus(wanted=2), 100, (ReadinessState.PENDING, "0/2 ready")),
        (  # the condition belongs to the previous generation until the controller observes this one
            replace(READY, observed_generation=0, conditions=(DEADLINE_EXCEEDED,)),
            100,
            (ReadinessState.PENDING, "generation 1 not observed yet"),
        ),
        (
            replace(READY, available=0, conditions=(DEADLINE_EXCEEDED,)),
            100,
            (
                ReadinessState.FAILED,
                "progress deadline exceeded: 0/2 ready "
                "(Progressing=False reason=ProgressDeadlineExceeded: "
                'ReplicaSet "podinfo-5d9" has timed out progressing.)',
            ),
        ),
        (replace(READY, wanted=0, available=0), 100, (ReadinessState.PENDING, "scaled to 0")),
    ],
)
def test_readiness(
    status: WorkloadStatus, threshold: int, expected: tuple[ReadinessState, str]
) -> None:
    state, message = expected
    judged = readiness(status, threshold, since=1000.0, now=1000.0, deadline_seconds=600)
    assert judged.state is state
    assert message in judged.message


def test_readiness_fails_after_the_deadline_by_the_callers_clock() -> None:
    unready = replace(READY, available=0)
    late = readiness(unready, 100, since=1000.0, now=1601.0, deadline_seconds=600)
    assert late.failed
    assert late.message.startswith("progress deadline exceeded: 0/2 ready after 600s")
    on_time = readiness(unready, 100, since=1000.0, now=1010.0, deadline_seconds=600)
    assert on_time.state is ReadinessState.PENDING
