"""Releases rehearsed on the bed push Flagger's metrics; its real Prometheus scrapes them from
its real Pushgateway, and the tutorial's three queries answer. Counters keep counting across
releases run by different processes, since their totals live in the release record."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest

from components.rehearse import rehearse, run_rehearsal
from components.rehearse.testbed import Fault, PushgatewayServer, TestBed
from components.rehearse.testbed._loop import free_port
from components.spec import ReleaseSpec
from components.spec.timing import Timing
from tests.conftest import load_yaml

pytestmark = pytest.mark.testbed
OUTCOMES = 'deployment_strategy="canary",analysis_status="completed"'


def tutorial(threshold: int = 5) -> ReleaseSpec:
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"].update(stepWeight=25, threshold=threshold)
    return ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))


def fast(release: ReleaseSpec) -> Timing:
    return Timing.of(release.spec.analysis, interval="2s")


def value(bed: TestBed, promql: str) -> float:
    (series,) = bed.prometheus.query_eventually(promql)
    sample: Any = series["value"]
    return float(sample[1])


@pytest.fixture(scope="module")
def bed() -> Iterator[TestBed]:
    with TestBed() as running:
        yield running


def test_the_tutorials_queries_answer_after_a_promotion_and_a_rollback(bed: TestBed) -> None:
    healthy = tutorial()
    assert rehearse(healthy, timing=fast(healthy), bed=bed).promoted
    # Promoting also reads 1, as in Flagger; the finalised release has all traffic back.
    assert value(bed, 'flagger_canary_weight{name="podinfo",workload="podinfo-primary"} == 100')
    assert value(bed, 'flagger_canary_weight{name="podinfo",workload="podinfo"}') == 0
    assert value(bed, 'flagger_canary_status{name="podinfo"}') == 1
    ticks = value(bed, 'flagger_canary_duration_seconds_count{name="podinfo"}')
    assert ticks >= 2  # one observation per analysis tick, as Flagger's
    assert value(bed, f'flagger_canary_successes_total{{name="podinfo",{OUTCOMES}}} == 1') == 1

    bad = tutorial(threshold=1)
    report = rehearse(bad, Fault(error_rate=0.5), timing=fast(bad), bed=bed)
    assert report.outcome == "rolled_back"
    assert value(bed, 'flagger_canary_status{name="podinfo"} == 2') == 2
    # Counted by the second process on top of the first one's total: the record carries it.
    assert value(bed, f'flagger_canary_failures_total{{name="podinfo",{OUTCOMES}}} == 1') == 1
    assert value(bed, f'flagger_canary_successes_total{{name="podinfo",{OUTCOMES}}}') == 1
    more = value(bed, 'flagger_canary_duration_seconds_count{name="podinfo"} > ' + f"{ticks:g}")
    assert more > ticks
    assert value(bed, 'flagger_canary_total{namespace="default"}') == 1


def test_a_pushgateway_that_is_down_does_not_change_the_release(bed: TestBed) -> None:
    healthy = tutorial()
    closed = f"http://127.0.0.1:{free_port()}"
    report = rehearse(healthy, timing=fast(healthy), bed=bed, pushgateway=closed)
    assert report.promoted


def test_a_pushgateway_of_ones_choice_gets_the_metrics_instead(bed: TestBed) -> None:
    """`--pushgateway URL`: the one address outside the bed a rehearsal reaches on purpose."""
    healthy = tutorial()
    with PushgatewayServer() as theirs:
        rehearsal = run_rehearsal(healthy, timing=fast(healthy), bed=bed, pushgateway=theirs.url)
        pushed = theirs.metrics()
    assert rehearsal.report.promoted
    assert re.search(r'^flagger_canary_status\{[^}]*name="podinfo"[^}]*\} 1$', pushed, re.MULTILINE)
    assert rehearsal.answered_locally == {}  # it was called, not answered by the bed
    assert rehearsal.queries == []  # the bed's Prometheus does not scrape theirs
