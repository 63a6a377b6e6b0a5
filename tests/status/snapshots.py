"""Snapshots of one release in each phase, as the status view's tests build them."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from components.adapters.cluster import Routes
from components.adapters.records import CheckValue, Owner, RecordPhase, ReleaseRecord
from components.analysis import ReleasePlan, WorkloadStatus, plan
from components.spec import ReleaseSpec
from components.spec.timing import Timing
from components.status.view import Snapshot, Workload
from tests.conftest import load_yaml

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
OLD_IMAGE = "ghcr.io/stefanprodan/podinfo:6.3.0"
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.3.1"
STALE_AFTER = 180.0  # three 1m intervals


def tutorial_plan(**analysis: Any) -> ReleasePlan:
    """The tutorial's canary: 10% -> 50% by 10, every 1m, rollback at 5 failed checks."""
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"].update(analysis)
    release = ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))
    return plan(release.spec, Timing.of(release.spec.analysis))


PLAN = tutorial_plan()


def ready(replicas: int) -> WorkloadStatus:
    return WorkloadStatus(replicas, 1, 1, replicas, replicas, replicas)


def record(phase: RecordPhase, **fields: Any) -> ReleaseRecord:
    """A record as a run on another host wrote it 4 s before NOW."""
    base = ReleaseRecord(
        "3f2a9c1e5b7d0a42",
        phase,
        heartbeat=NOW - 4,
        owner=Owner("ci-runner-7", 4242),
        threshold=5,
        interval_seconds=60.0,
    )
    return replace(base, **fields)


def progressing(**fields: Any) -> ReleaseRecord:
    mid_plan = record(
        RecordPhase.PROGRESSING,
        step=2,
        weight=30,
        failed_checks=1,
        deadline=NOW + 372,
        last_check={
            "request-success-rate": CheckValue(99.93, ">= 99", True),
            "request-duration": CheckValue(41.2, "<= 500", True),
        },
    )
    mid_plan = mid_plan.with_event(NOW - 124, "weight 10%: request-success-rate 99.95 -> pass")
    mid_plan = mid_plan.with_event(NOW - 4, "weight 30%: request-success-rate 99.93 -> pass")
    return replace(mid_plan, **fields)


def snapshot(
    release_record: ReleaseRecord | None,
    *,
    routes: Routes | None = None,
    release_plan: ReleasePlan | None = PLAN,
    abandoned: bool = False,
    canary: WorkloadStatus | None = None,
) -> Snapshot:
    """The cluster as the record says it is, unless told otherwise."""
    weight = release_record.weight if release_record else 0
    return Snapshot(
        name="podinfo",
        namespace="default",
        read_at=NOW,
        record=release_record,
        routes=routes or Routes(100 - weight, weight, False),
        canary=Workload("podinfo", canary or ready(2 if weight else 0), NEW_IMAGE),
        primary=Workload("podinfo-primary", ready(2), OLD_IMAGE),
        plan=release_plan,
        stale_after=STALE_AFTER if release_plan else None,
        abandoned=abandoned,
    )
