"""The status view as plain lines, phase by phase: no cluster and no terminal."""

from __future__ import annotations

from dataclasses import replace

import pytest

from components.adapters.cluster import Routes
from components.adapters.records import CheckValue, RecordPhase
from components.analysis import Condition, WorkloadStatus
from components.status.view import (
    EVENTS_SHOWN,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_SUCCEEDED,
    PLAIN_WIDTH,
    Snapshot,
    Tone,
    Workload,
    exit_status,
    plain_lines,
    rows,
)
from tests.conftest import ROOT
from tests.status.snapshots import (
    NEW_IMAGE,
    NOW,
    OLD_IMAGE,
    progressing,
    snapshot,
    tutorial_plan,
)


def lines(shown: Snapshot) -> list[str]:
    return plain_lines(rows(shown))


def line(shown: Snapshot, label: str) -> str:
    """The row of `label`, continuation lines joined."""
    found = []
    for row in rows(shown):
        if row.label == label or (found and not row.label):
            found.append(row.value)
        elif found:
            break
    assert found, f"no {label!r} row in {lines(shown)}"
    return " | ".join(found)


def test_a_release_mid_plan_shows_its_step_weights_checks_deadline_and_events() -> None:
    assert lines(snapshot(progressing())) == [
        "Release:    podinfo in default, read 2023-11-14 22:13:20 UTC",
        "Phase:      Progressing",
        "Owner:      pid 4242 on ci-runner-7, heartbeat 4s ago (stale after 3m)",
        "Revision:   3f2a9c1e5b7d0a42",
        "Settled:    no: the release is moving traffic",
        "Plan:       canary 10% -> 50% in 5 steps every 1m",
        "Step:       3/5: 30%",
        "Traffic:    primary 70%, canary 30%",
        "Checks:     1 failed, rollback at 5",
        "Last check: request-success-rate 99.93 (>= 99) pass",
        "            request-duration 41.2 (<= 500) pass",
        "Deadline:   6m12s left",
        f"Canary:     podinfo: 2/2 available, {NEW_IMAGE}",
        f"Primary:    podinfo-primary: 2/2 available, {OLD_IMAGE}",
        "Events:     2m4s ago: weight 10%: request-success-rate 99.95 -> pass",
        "            4s ago: weight 30%: request-success-rate 99.93 -> pass",
    ]
    assert exit_status(snapshot(progressing())) is None


def test_the_readme_example_is_what_the_view_renders() -> None:
    section = (ROOT / "README.md").read_text().split("## Watching a release")[1]
    blocks = section.split("```")[1::2]
    example = next(block for block in blocks if block.startswith("\nRelease:"))
    assert example.strip("\n").splitlines() == lines(snapshot(progressing()))


def test_a_failing_check_shows_its_value_against_its_bounds() -> None:
    failing = progressing(
        failed_checks=3,
        last_check={
            "request-success-rate": CheckValue(51.2, ">= 99", False),
            "request-duration": CheckValue(None, "<= 500", False),
        },
    )
    assert line(snapshot(failing), "Checks") == "3 failed, rollback at 5"
    assert line(snapshot(failing), "Last check") == (
        "request-success-rate 51.2 (>= 99) FAIL | request-duration no data (<= 500) FAIL"
    )
    tones = {row.value.split()[0]: row.tone for row in rows(snapshot(failing))}
    assert tones["request-success-rate"] is Tone.BAD


def test_waiting_for_promotion_is_at_the_last_step() -> None:
    waiting = progressing(phase=RecordPhase.WAITING_PROMOTION, step=4, weight=50)
    assert line(snapshot(waiting), "Phase") == "WaitingPromotion"
    assert line(snapshot(waiting), "Step") == "5/5: 50%"
    assert line(snapshot(waiting), "Traffic") == "primary 50%, canary 50%"
    assert exit_status(snapshot(waiting)) is None


def test_promoting_goes_on_until_the_finaliser_succeeds() -> None:
    promoting = progressing(phase=RecordPhase.PROMOTING, step=4, weight=50)
    assert line(snapshot(promoting), "Phase") == "Promoting"
    assert exit_status(snapshot(promoting)) is None


def test_a_promoted_release_is_settled_and_ends_the_watch_with_0() -> None:
    done = progressing(phase=RecordPhase.SUCCEEDED, step=4, weight=0, settled=True)
    shown = snapshot(done)
    assert line(shown, "Phase") == "Succeeded"
    assert line(shown, "Settled") == "yes"
    assert line(shown, "Traffic") == "primary 100%, canary 0%"
    assert line(shown, "Canary") == f"podinfo: 0/0 available (scaled to 0 replicas), {NEW_IMAGE}"
    assert not any(row.label in ("Deadline", "Next") for row in rows(shown))
    assert rows(shown)[1].tone is Tone.GOOD
    assert exit_status(shown) == EXIT_SUCCEEDED


def test_a_failed_release_shows_its_reason_wrapped_to_80_columns() -> None:
    reason = (
        "failed checks threshold reached 5: metrics failed: request-success-rate is 51.2, "
        "outside >= 99"
    )
    failed = progressing(phase=RecordPhase.FAILED, weight=0, failed_checks=5, reason=reason)
    shown = lines(snapshot(replace(failed, settled=True)))
    assert shown[1:5] == [
        "Phase:      Failed",
        "Reason:     failed checks threshold reached 5: metrics failed:",
        "            request-success-rate is 51.2, outside >= 99",
        "Owner:      pid 4242 on ci-runner-7, heartbeat 4s ago (stale after 3m)",
    ]
    assert (
        "Next:       pulumi up fails fast on this template; retryFailed analyses it again" in shown
    )
    assert exit_status(snapshot(replace(failed, settled=True))) == EXIT_FAILED


def test_a_failed_release_still_rolling_back_goes_on_until_settled_or_abandoned() -> None:
    rolling_back = progressing(phase=RecordPhase.FAILED, weight=30, reason="threshold reached")
    assert line(snapshot(rolling_back), "Settled") == (
        "no: its run is returning traffic to the primary"
    )
    assert exit_status(snapshot(rolling_back)) is None
    left = snapshot(rolling_back, abandoned=True)
    assert line(left, "Settled") == "no, and its run stopped: the next pulumi up settles it"
    assert exit_status(left) == EXIT_FAILED


def test_an_interrupted_release_says_what_the_next_run_does() -> None:
    interrupted = progressing(
        phase=RecordPhase.INTERRUPTED, weight=0, settled=True, reason="interrupted: SIGINT"
    )
    shown = snapshot(interrupted)
    assert line(shown, "Phase") == "Interrupted"
    assert line(shown, "Reason") == "interrupted: SIGINT"
    assert line(shown, "Next") == "the next pulumi up starts the release over from primary 100%"
    assert exit_status(shown) == EXIT_INTERRUPTED


def test_a_release_whose_owner_stopped_heartbeating_is_interrupted() -> None:
    stale = progressing(heartbeat=NOW - 250)
    shown = snapshot(stale, abandoned=True)
    assert line(shown, "Phase") == "Progressing, interrupted: its run stopped"
    assert line(shown, "Owner") == ("pid 4242 on ci-runner-7, heartbeat 4m10s ago (stale after 3m)")
    assert line(shown, "Next") == "the next pulumi up starts the release over from primary 100%"
    assert line(shown, "Traffic") == "primary 70%, canary 30%"  # it stays where the run left it
    assert exit_status(shown) == EXIT_INTERRUPTED


def test_the_virtual_service_is_the_truth_and_the_record_is_shown_beside_it() -> None:
    shown = snapshot(progressing(weight=20), routes=Routes(70, 30, False))
    assert line(shown, "Traffic") == "primary 70%, canary 30%; the record says canary 20%"
    assert next(row for row in rows(shown) if row.label == "Traffic").tone is Tone.WARN


def test_a_mirrored_step_and_an_ab_release_say_what_the_weights_mean() -> None:
    mirrored = snapshot(
        progressing(step=0, weight=0),
        routes=Routes(100, 0, True),
        release_plan=tutorial_plan(mirror=True),
    )
    assert line(mirrored, "Step") == "1/6: mirrored"
    assert line(mirrored, "Traffic") == "primary 100%, canary 0%, mirrored to the canary"
    ab_plan = tutorial_plan(
        stepWeight=None, maxWeight=None, iterations=10, match=[{"headers": {"x": {"exact": "1"}}}]
    )
    ab = snapshot(progressing(step=2, weight=100), release_plan=ab_plan)
    assert line(ab, "Step") == "3/10: 100%"
    assert line(ab, "Traffic") == "primary 0%, canary 100% of matched requests"


def test_without_the_spec_the_plan_is_unknown_and_the_rest_is_shown() -> None:
    shown = snapshot(progressing(threshold=None), release_plan=None)
    assert line(shown, "Plan") == "unknown: pass --canary and --deployment to show it"
    assert line(shown, "Step") == "3 of an unknown plan"
    assert line(shown, "Checks") == "1 failed"
    assert line(shown, "Owner") == "pid 4242 on ci-runner-7, heartbeat 4s ago"
    assert line(shown, "Traffic") == "primary 70%, canary 30%"


def test_before_the_first_step_and_past_the_deadline() -> None:
    late = snapshot(progressing(step=-1, weight=0, deadline=NOW - 75))
    assert line(late, "Step") == "not started"
    assert line(late, "Deadline") == "passed 1m15s ago: it rolls back"


def test_no_record_is_idle() -> None:
    shown = snapshot(None)
    assert lines(shown)[1:3] == [
        "Phase:      no release record: nothing released yet under this name",
        "Traffic:    primary 100%, canary 0%",
    ]
    assert exit_status(shown) == EXIT_SUCCEEDED


def test_workloads_missing_or_not_ready_say_so() -> None:
    stuck = WorkloadStatus(
        2,
        2,
        2,
        0,
        2,
        2,
        (Condition("Progressing", "False", "ProgressDeadlineExceeded", "too slow"),),
    )
    shown = snapshot(progressing(), canary=stuck)
    assert line(shown, "Canary").startswith("podinfo: 0/2 available (progress deadline exceeded")
    missing = replace(shown, primary=Workload("podinfo-primary", None))
    assert line(missing, "Primary") == "podinfo-primary: no such Deployment"


def test_only_the_last_events_are_shown() -> None:
    busy = progressing()
    for second in range(30):
        busy = busy.with_event(NOW - 30 + second, f"event {second}")
    events = line(snapshot(busy), "Events").split(" | ")
    assert len(events) == EVENTS_SHOWN
    assert events[-1] == "1s ago: event 29"


@pytest.mark.parametrize(
    "shown",
    [
        snapshot(progressing()),
        snapshot(progressing(reason="x" * 300, phase=RecordPhase.FAILED)),
        snapshot(progressing(heartbeat=NOW - 9000), abandoned=True),
        snapshot(progressing(weight=20), routes=Routes(70, 30, True)),
        snapshot(progressing(), release_plan=None),
        snapshot(None),
    ],
    ids=["progressing", "long-reason", "stale", "disagreeing", "no-plan", "no-record"],
)
def test_every_line_fits_80_columns(shown: Snapshot) -> None:
    assert all(len(text) <= PLAIN_WIDTH for text in lines(shown)), lines(shown)
    assert all(text.isprintable() for text in lines(shown))
