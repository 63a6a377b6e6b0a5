"""The dashboards: committed as generated, every query valid PromQL and, on the bed, answered."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import promql_parser
import pytest

from components.adapters.pushgateway import (
    MetricCheck,
    MetricsState,
    Pushgateway,
    ReleaseMetrics,
)
from components.analysis import Phase
from components.rehearse import rehearse
from components.rehearse.testbed import TestBed
from components.spec import ReleaseSpec
from components.spec.timing import Timing
from observability import dashboards
from tests.conftest import load_yaml

NAMES = sorted(dashboards.DASHBOARDS)
# What Grafana would put in for the variables on the bed after the tutorial's release.
VALUES = {
    "namespace": "default",
    "primary": "podinfo-primary",
    "canary": "podinfo",
    "metric": "request-success-rate",
    "__rate_interval": "5s",
    "__range": "5m",
}
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


def board(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(dashboards.path(name).read_text())
    return loaded


def panels(name: str) -> Iterator[dict[str, Any]]:
    for panel in board(name)["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(name: str) -> list[tuple[str, str]]:
    """(panel title, PromQL with the variables filled in) for every target."""
    return [
        (panel["title"], substituted(target["expr"]))
        for panel in panels(name)
        for target in panel.get("targets", [])
    ]


def substituted(text: str) -> str:
    """Grafana's `$name` and `${name}` variables replaced; an unknown one is a test failure."""
    return re.sub(r"\$\{?(\w+)\}?", lambda match: VALUES[match[1]], text)


def variable_queries(name: str) -> dict[str, tuple[str | None, str]]:
    """Each query variable's (series selector or None, label) from its `label_values(...)`."""
    found = {}
    for variable in board(name)["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(variable["query"])
            assert match, f"{variable['name']}: {variable['query']}"
            selector = match["selector"] and substituted(match["selector"])
            found[variable["name"]] = (selector, match["label"])
    return found


@pytest.mark.parametrize("name", NAMES)
def test_the_committed_json_is_the_generators_output(name: str) -> None:
    assert dashboards.path(name).read_text() == dashboards.render(name), (
        "run `python -m observability.dashboards`"
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_panel_query_is_valid_promql(name: str) -> None:
    found = queries(name)
    assert found
    for title, promql in found:
        try:
            promql_parser.parse(promql)
        except Exception as error:
            pytest.fail(f"{title}: {promql}: {error}")


@pytest.mark.parametrize("name", NAMES)
def test_every_variable_reads_a_label_of_a_valid_selector(name: str) -> None:
    for selector, _ in variable_queries(name).values():
        if selector is not None:
            promql_parser.parse(selector)


def test_the_istio_dashboard_has_flaggers_panels_and_variables() -> None:
    titles = [panel["title"] for panel in panels("istio-canary")]
    for side in ("Primary", "Canary"):
        for panel in ("Incoming Request Volume", "Incoming Success Rate", "Request Duration"):
            assert f"{side}: {panel}" in titles
    assert set(variable_queries("istio-canary")) == {"namespace", "primary", "canary"}
    legends = {
        target["legendFormat"]
        for panel in panels("istio-canary")
        if panel["title"].endswith("Request Duration")
        for target in panel["targets"]
    }
    assert legends == {"P50", "P90", "P99"}


def test_the_release_dashboard_shows_what_flaggers_lacks() -> None:
    promql = " ".join(expr for _, expr in queries("canary-release"))
    for series in (
        "flagger_canary_weight",
        "flagger_canary_metric_analysis",
        "pulumi_canary_metric_threshold",
        "pulumi_canary_metric_check_passed",
        "flagger_canary_successes_total",
        "flagger_canary_failures_total",
        "flagger_canary_duration_seconds_bucket",
        "pulumi_canary_release_deadline_timestamp_seconds",
    ):
        assert series in promql
    (repeated,) = [panel for panel in panels("canary-release") if panel.get("repeat")]
    assert repeated["repeat"] == "metric"


# --- On the bed: a rehearsal for the Istio series, pushes for the release's own --------------


def push_the_release(bed: TestBed, release: ReleaseSpec, report: Any) -> None:
    """Pushes one snapshot per analysis tick of the rehearsal, then the outcome, each held
    long enough for a scrape, as the scheduler will push them."""
    strategy = release.spec.analysis.strategy
    with httpx.Client() as client:
        gateway = Pushgateway(client.request, bed.pushgateway.url)
        state = MetricsState()
        for check in report.checks:
            state = state.after_tick(0.2 + check.weight / 100)
            checks = {
                name: MetricCheck(entry.value, entry.passed, entry.min, entry.max)
                for name, entry in check.metrics.items()
            }
            snapshot = ReleaseMetrics(
                release.target,
                release.namespace,
                strategy,
                Phase.PROGRESSING,
                check.weight,
                100 - check.weight,
                state,
                checks,
                deadline=time.time() + 60,
            )
            assert gateway.push(snapshot) is None
            time.sleep(1.0)
        done = ReleaseMetrics(
            release.target,
            release.namespace,
            strategy,
            Phase.SUCCEEDED,
            0,
            100,
            state.after_outcome(strategy, succeeded=True),
            checks,
        )
        assert gateway.push(done) is None
    bed.prometheus.query_eventually(
        'flagger_canary_successes_total{name="podinfo",deployment_strategy="canary"} == 1'
    )


def has_data(bed: TestBed, promql: str, start: float) -> bool:
    """Whether a range query over the release, as Grafana runs it, has a number in it."""
    response = httpx.get(
        f"{bed.prometheus.url}/api/v1/query_range",
        params={"query": promql, "start": start, "end": time.time(), "step": "1s"},
        timeout=10,
    )
    response.raise_for_status()
    return any(
        value != "NaN"
        for series in response.json()["data"]["result"]
        for _, value in series["values"]
    )


@pytest.mark.testbed
def test_every_panel_and_variable_answers_after_a_rehearsal(bed: TestBed) -> None:
    start = time.time()
    release = ReleaseSpec.parse(
        canary=load_yaml("canary.yaml"), deployment=load_yaml("deployment.yaml")
    )
    report = rehearse(release, timing=Timing.of(release.spec.analysis, interval="2s"), bed=bed)
    assert report.outcome == "promoted"
    push_the_release(bed, release, report)

    empty = [
        f"{name}: {title}: {promql}"
        for name in NAMES
        for title, promql in queries(name)
        if not has_data(bed, promql, start)
    ]
    assert not empty, "no data for:\n" + "\n".join(empty)

    expected = {
        "namespace": "default",
        "primary": "podinfo-primary",
        "canary": "podinfo",
        "metric": "request-success-rate",
    }
    for name in NAMES:
        for variable, (selector, label) in variable_queries(name).items():
            response = httpx.get(
                f"{bed.prometheus.url}/api/v1/label/{label}/values",
                params={"match[]": selector} if selector else {},
                timeout=10,
            )
            response.raise_for_status()
            assert expected[variable] in response.json()["data"], f"{name}: {variable}"
