"""The critical watch on the test bed: a canary that turns clearly bad mid-step is pulled by
the watch before `threshold` checks fail; a healthy canary and a Prometheus that is down for a
few seconds raise no alarm."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from components.rehearse import rehearse
from components.rehearse.testbed import Fault, TestBed
from components.scheduler import ReleaseReport
from components.spec import ReleaseSpec
from components.spec.timing import Timing
from tests.conftest import load_yaml
from tests.provider.dynamic_server import wait_until

pytestmark = pytest.mark.testbed
THRESHOLD = 5  # the tutorial's
CRITICAL = "critical condition request-success-rate < 50 breached"


@pytest.fixture
def bed() -> Iterator[TestBed]:
    with TestBed() as running:
        yield running


def tutorial() -> ReleaseSpec:
    return ReleaseSpec.parse(
        canary=load_yaml("canary.yaml"), deployment=load_yaml("deployment.yaml")
    )


def rehearsed_while(
    bed: TestBed, release: ReleaseSpec, interval: str, meanwhile: Callable[[], None]
) -> ReleaseReport:
    """The tutorial rehearsed on `bed`; `meanwhile` runs once the canary takes traffic."""
    timing = Timing.of(release.spec.analysis, interval=interval)
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(rehearse, release, timing=timing, bed=bed)
        wait_until("canary traffic", lambda: running.done() or bed.canary_weight(release) > 0)
        meanwhile()
        return running.result(timeout=300)


def test_sixty_percent_errors_mid_step_are_rolled_back_by_the_watch(bed: TestBed) -> None:
    release = tutorial()

    def turn_bad() -> None:
        time.sleep(3.0)  # into the first 10 s step
        bed.mesh.set_fault(release.target, Fault(error_rate=0.6))

    report = rehearsed_while(bed, release, "10s", turn_bad)
    assert report.outcome == "rolled_back"
    assert (report.reason or "").startswith(CRITICAL), report.reason
    assert report.failed_checks < THRESHOLD
    assert report.canary_weights == [10]  # never stepped on
    assert bed.canary_weight(release) == 0


def test_a_healthy_canary_is_watched_and_promoted(
    bed: TestBed, capsys: pytest.CaptureFixture[str]
) -> None:
    report = rehearsed_while(bed, tutorial(), "2s", lambda: None)
    assert (report.outcome, report.failed_checks) == ("promoted", 0)
    watching = "podinfo: watching request-success-rate < 50 every 500ms: a breach rolls back"
    assert watching in capsys.readouterr().out


def test_a_prometheus_stopped_for_a_few_seconds_raises_no_alarm(bed: TestBed) -> None:
    """Restarted, the bed's Prometheus has no fresh samples until it has synced its targets
    (~5 s more): the checks of those seconds fail on no data, which 5 s intervals absorb."""

    def outage() -> None:
        bed.prometheus.stop()
        time.sleep(3.0)
        bed.prometheus.start()

    report = rehearsed_while(bed, tutorial(), "5s", outage)
    assert report.outcome == "promoted", report.reason
    assert report.failed_checks < THRESHOLD
