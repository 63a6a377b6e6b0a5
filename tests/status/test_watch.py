"""The watch loop and its two displays, over snapshots given in order: no cluster."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from rich.console import Console

from components.adapters.cluster import ClusterError, Routes
from components.adapters.records import RecordPhase
from components.status._run import LiveDisplay, PlainDisplay, watch
from components.status.view import EXIT_FAILED, EXIT_SUCCEEDED, Snapshot
from tests.status.snapshots import progressing, snapshot

OUTAGE = ClusterError("get", "ConfigMap", "default", "podinfo-canary-release", "refused")


def reads(*answers: Snapshot | ClusterError) -> Callable[[], Snapshot]:
    """A read that answers each snapshot, or raises each error, in turn."""
    pending: Iterator[Snapshot | ClusterError] = iter(answers)

    def read() -> Snapshot:
        answer = next(pending)
        if isinstance(answer, ClusterError):
            raise answer
        return answer

    return read


def test_a_watch_ends_with_the_outcome_and_prints_only_what_changed() -> None:
    mid = snapshot(progressing())
    later = replace(mid, read_at=mid.read_at + 2)  # nothing changed but the time
    failed = snapshot(progressing(phase=RecordPhase.FAILED, weight=0, settled=True))
    out, err = io.StringIO(), io.StringIO()
    slept: list[float] = []
    status = watch(reads(mid, later, failed), PlainDisplay(out, err), 2.0, slept.append)
    assert status == EXIT_FAILED
    assert slept == [2.0, 2.0]
    printed = out.getvalue()
    assert printed.count("Release:") == 2
    assert "Phase:      Progressing" in printed and "Phase:      Failed" in printed
    assert "\x1b" not in printed and err.getvalue() == ""


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (snapshot(progressing(phase=RecordPhase.SUCCEEDED, weight=0, settled=True)), 0),
        (snapshot(progressing(phase=RecordPhase.INTERRUPTED, weight=0, settled=True)), 3),
        (snapshot(progressing(), abandoned=True), 3),
        (snapshot(None), 0),
        (snapshot(progressing(phase=RecordPhase.FAILED, weight=0, settled=True)), 1),
    ],
    ids=["succeeded", "interrupted", "stale", "no-record", "failed"],
)
def test_each_ending_has_its_documented_exit_status(last: Snapshot, expected: int) -> None:
    out = io.StringIO()
    assert watch(reads(snapshot(progressing()), last), PlainDisplay(out, out), 1, no_sleep) == (
        expected
    )


def test_a_failed_read_during_a_watch_is_said_once_and_retried() -> None:
    out, err = io.StringIO(), io.StringIO()
    done = snapshot(progressing(phase=RecordPhase.SUCCEEDED, weight=0, settled=True))
    answers = reads(snapshot(progressing()), OUTAGE, OUTAGE, done)
    assert watch(answers, PlainDisplay(out, err), 1.5, no_sleep) == EXIT_SUCCEEDED
    assert err.getvalue().splitlines() == [
        "error: cannot read the cluster: get ConfigMap default/podinfo-canary-release: refused; "
        "retrying every 1.5s"
    ]
    assert out.getvalue().count("Release:") == 2


def test_a_failed_first_read_is_the_callers_to_report() -> None:
    out = io.StringIO()
    with pytest.raises(ClusterError):
        watch(reads(OUTAGE), PlainDisplay(out, out), 1, no_sleep)
    assert out.getvalue() == ""


def test_the_live_display_redraws_in_place_and_takes_nothing_read_as_markup() -> None:
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=80, color_system="standard")
    tricky = progressing(phase=RecordPhase.FAILED, reason="[bold]not markup[/bold]", weight=30)
    with LiveDisplay(console) as display:
        display.show(snapshot(progressing(), routes=Routes(70, 30, False)))
        display.problem("cannot read the cluster: refused; retrying every 2s")
        display.show(snapshot(tricky))
    drawn = terminal.getvalue()
    assert "primary 70%, canary 30%" in drawn
    assert "cannot read the cluster" in drawn
    assert "[bold]not markup[/bold]" in drawn
    assert "\x1b[" in drawn  # control codes: cursor moves and colours


def no_sleep(seconds: float) -> None:
    """The watch's sleep, skipped."""
