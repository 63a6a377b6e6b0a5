"""Whole releases on the test bed: real Prometheus, API emulator, simulated mesh."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from components.rehearse import rehearse, run_rehearsal
from components.rehearse.testbed import Fault, RequestClass, TestBed
from components.scheduler import ReleaseReport
from components.spec import ReleaseSpec
from components.spec.timing import Timing
from tests.conftest import load_yaml

pytestmark = pytest.mark.testbed
INTERVAL = "2s"


def release(canary: dict[str, Any], **extra: Any) -> ReleaseSpec:
    return ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"), **extra)


def rehearsed(
    spec: ReleaseSpec,
    fault: Fault | None = None,
    *,
    deadline_seconds: float | None = None,
    **options: Any,
) -> ReleaseReport:
    """A rehearsal at the fast interval, which also sets every metric's window."""
    timing = Timing.of(spec.spec.analysis, interval=INTERVAL, deadline_seconds=deadline_seconds)
    return rehearse(spec, fault, timing=timing, **options)


def tutorial(**analysis: Any) -> dict[str, Any]:
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"].update(analysis)
    return canary


@pytest.fixture
def bed() -> Iterator[TestBed]:
    with TestBed(
        request_mix=(
            RequestClass("default", {}, 0.8),
            RequestClass("beta", {"x-user-type": "beta"}, 0.2),
        ),
    ) as running:
        yield running


def test_healthy_canary_promotes_through_the_tutorial_steps(bed: TestBed) -> None:
    report = rehearsed(release(load_yaml("canary.yaml")), bed=bed)
    assert report.outcome == "promoted"
    assert report.canary_weights == [10, 20, 30, 40, 50]
    assert report.failed_checks == 0
    commands = bed.loadtester.commands
    assert any("hey -z 1m" in command for command in commands)
    vs = bed.kube.get("/apis/networking.istio.io/v1/namespaces/default/virtualservices/podinfo")
    assert vs is not None
    weights = [d["weight"] for d in vs["spec"]["http"][0]["route"]]
    assert weights == [100, 0]
    canary = bed.kube.get("/apis/apps/v1/namespaces/default/deployments/podinfo")
    assert canary is not None and canary["spec"]["replicas"] == 0


def test_five_percent_errors_roll_back_after_threshold_failed_checks(bed: TestBed) -> None:
    report = rehearsed(release(tutorial(threshold=2)), Fault(error_rate=0.05), bed=bed)
    assert report.outcome == "rolled_back"
    assert report.failed_checks == 2
    assert "request-success-rate" in (report.reason or "")
    assert max(report.canary_weights) <= 30
    vs = bed.kube.get("/apis/networking.istio.io/v1/namespaces/default/virtualservices/podinfo")
    assert vs is not None
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [100, 0]


def test_slow_canary_rolls_back_on_request_duration(bed: TestBed) -> None:
    report = rehearsed(release(tutorial(threshold=2)), Fault(latency_ms=900), bed=bed)
    assert report.outcome == "rolled_back"
    assert "request-duration" in (report.reason or "")


def test_canary_without_traffic_rolls_back_with_no_values_found(bed: TestBed) -> None:
    report = rehearsed(release(tutorial(threshold=2)), no_telemetry=True, bed=bed)
    assert report.outcome == "rolled_back"
    assert "no values found for request-success-rate" in (report.reason or "")


def test_ab_promotes_after_iterations_with_only_matched_traffic_on_the_canary(
    bed: TestBed,
) -> None:
    canary = copy.deepcopy(load_yaml("canary-ab-testing.yaml"))
    canary["spec"]["analysis"]["iterations"] = 3
    report = rehearsed(release(canary), bed=bed)
    assert report.outcome == "promoted"
    assert report.strategy == "ab"
    assert report.steps_run == 3
    assert all(check.routing == "matched traffic (x-user-type: beta) -> canary"
               for check in report.checks)  # fmt: skip
    assert bed.mesh.routed("podinfo", "beta") > 0
    assert bed.mesh.routed("podinfo", "default") == 0


def test_bluegreen_promotes_after_iterations(bed: TestBed) -> None:
    canary = tutorial(iterations=3)
    del canary["spec"]["analysis"]["stepWeight"], canary["spec"]["analysis"]["maxWeight"]
    bed.mesh.direct_rps["podinfo-canary"] = 200.0
    report = rehearsed(release(canary), bed=bed)
    assert report.outcome == "promoted"
    assert report.strategy == "bluegreen"
    assert report.canary_weights == [0, 0, 0]
    assert {check.routing for check in report.checks} == {
        "primary serves all, canary tested directly"
    }


def test_mirroring_sends_copies_to_the_canary_then_steps(bed: TestBed) -> None:
    report = rehearsed(release(tutorial(mirror=True, mirrorWeight=50, stepWeight=25)), bed=bed)
    assert report.outcome == "promoted"
    assert report.canary_weights == [0, 25, 50]
    assert bed.mesh.mirrored("podinfo") > 0


def test_failing_webhook_rolls_back(bed: TestBed) -> None:
    hooks = [
        {
            "name": "smoke",
            "url": "http://flagger-loadtester.default/",
            "metadata": {"type": "bash", "cmd": "exit 3"},
        }
    ]
    bed.loadtester.forced_status = 500  # the stand-in runs no command: it is told to fail
    report = rehearsed(release(tutorial(threshold=2, webhooks=hooks)), bed=bed)
    assert report.outcome == "rolled_back"
    assert "smoke" in (report.reason or "")
    failed = [call for call in report.webhooks if call.name == "smoke"]
    assert failed and all((call.status, call.passed) == (500, False) for call in failed)


def test_timing_out_webhook_rolls_back(bed: TestBed) -> None:
    hooks = [
        {
            "name": "slow",
            "url": "http://flagger-loadtester.default/",
            "timeout": "1s",
            "metadata": {"type": "bash", "cmd": "sleep 3"},
        }
    ]
    bed.loadtester.delay = 3.0
    report = rehearsed(release(tutorial(threshold=1, webhooks=hooks)), bed=bed)
    assert report.outcome == "rolled_back"
    assert "timed out" in (report.reason or "")
    assert report.webhooks[-1].status is None


def test_closed_confirm_gate_holds_until_the_deadline(bed: TestBed) -> None:
    bed.loadtester.set_gate(False)
    hooks = [
        {
            "name": "approval",
            "type": "confirm-promotion",
            "url": "http://flagger-loadtester.default/gate/check",
        }
    ]
    report = rehearsed(
        release(tutorial(stepWeight=50, webhooks=hooks)),
        deadline_seconds=25,
        bed=bed,
    )
    assert report.outcome == "rolled_back"
    assert "confirm-promotion gate closed" in (report.reason or "")
    # A closed gate holds without counting failures.
    assert report.failed_checks == 0


def test_prometheus_down_fails_the_checks(bed: TestBed) -> None:
    bed.prometheus.stop()
    spec = release(tutorial(threshold=2))
    timing = Timing.of(spec.spec.analysis, interval=INTERVAL)
    rehearsal = run_rehearsal(spec, timing=timing, bed=bed)
    assert rehearsal.report.outcome == "rolled_back"
    assert "prometheus" in (rehearsal.report.reason or "").lower()
    # The tutorial's queries at the end say so too, instead of failing the rehearsal.
    assert [query.answer for query in rehearsal.queries] == ["no answer (ConnectError)"] * 3


def test_alerts_to_slack_reach_the_beds_receiver_on_start_and_rollback(bed: TestBed) -> None:
    """The provider's address is Slack's: the rehearsal answers it with the bed's receiver."""
    canary = tutorial(
        threshold=1, alerts=[{"name": "team", "severity": "info", "providerRef": {"name": "slack"}}]
    )
    provider = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": "slack", "namespace": "default"},
        "spec": {
            "type": "slack",
            "channel": "deploys",
            "address": "https://hooks.slack.com/services/T0/B0/S3CRET",
        },
    }
    report = rehearsed(
        release(canary, alert_providers=[provider]),
        Fault(error_rate=0.5),
        bed=bed,
    )
    assert report.outcome == "rolled_back"
    texts = [str(request.body) for request in bed.alerts.requests]
    assert any("New revision detected" in text for text in texts)
    assert any("rolling back" in text for text in texts)
    assert {request.path for request in bed.alerts.requests} == {"/services/T0/B0/S3CRET"}
