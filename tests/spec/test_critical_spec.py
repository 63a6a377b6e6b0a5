"""Critical conditions: read from the Canary's annotations or the gate's options, validated,
and rendered into one query each."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.spec import ReleaseSpec, SpecError
from components.spec.critical import (
    CRITICAL_ANNOTATION,
    SCRAPE_INTERVAL_ANNOTATION,
    Comparison,
    Critical,
    CriticalCondition,
)
from tests.conftest import flagger_schema_errors, load_yaml, tutorial_bundle

SUCCESS_RATE_BELOW_50 = CriticalCondition("request-success-rate", Comparison.BELOW, 50.0)


def annotated(**annotations: str) -> dict[str, Any]:
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["metadata"]["annotations"] = annotations
    return canary


def release_of(canary: dict[str, Any]) -> ReleaseSpec:
    return ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))


def test_without_settings_the_success_rate_below_50_is_watched_at_istios_scrape() -> None:
    critical = Critical.of(release_of(load_yaml("canary.yaml")))
    assert critical.conditions == (SUCCESS_RATE_BELOW_50,)
    assert critical.scrape_seconds == 15.0
    assert critical.window == "1m"
    assert critical.describe() == "request-success-rate < 50 every 15s"


def test_the_annotations_set_the_conditions_and_the_scrape_interval() -> None:
    canary = annotated(
        **{
            CRITICAL_ANNOTATION: "request-success-rate<80 , request-duration >= 2e3",
            SCRAPE_INTERVAL_ANNOTATION: "500ms",
        }
    )
    assert flagger_schema_errors(canary) == []  # still a valid Flagger Canary
    critical = Critical.of(release_of(canary))
    assert critical.conditions == (
        CriticalCondition("request-success-rate", Comparison.BELOW, 80.0),
        CriticalCondition("request-duration", Comparison.AT_LEAST, 2000.0),
    )
    assert (critical.scrape_seconds, critical.window) == (0.5, "2s")


def test_the_gate_options_win_over_the_annotations() -> None:
    canary = annotated(**{CRITICAL_ANNOTATION: "off", SCRAPE_INTERVAL_ANNOTATION: "30s"})
    critical = Critical.of(
        release_of(canary), critical="request-duration > 900", scrape_interval="5s"
    )
    assert critical.conditions == (CriticalCondition("request-duration", Comparison.ABOVE, 900.0),)
    assert critical.scrape_seconds == 5.0


def test_off_watches_nothing() -> None:
    critical = Critical.of(release_of(annotated(**{CRITICAL_ANNOTATION: " off "})))
    assert critical.conditions == ()
    assert critical.describe() == "off"


@pytest.mark.parametrize(
    ("options", "path", "shown"),
    [
        ({"critical": "request-duration => 500"}, "critical", "'request-duration => 500'"),
        ({"critical": 50}, "critical", "50"),
        ({"critical": "latency > 5"}, "critical", "'latency > 5'"),
        ({"critical": "request-duration > 1e999"}, "critical", "'request-duration > 1e999'"),
        ({"scrape_interval": "fast"}, "scrapeInterval", "'fast'"),
        ({"scrape_interval": 15}, "scrapeInterval", "15"),
    ],
)
def test_bad_options_name_the_field_and_the_value(
    options: dict[str, Any], path: str, shown: str
) -> None:
    with pytest.raises(SpecError) as raised:
        Critical.of(release_of(load_yaml("canary.yaml")), **options)
    (problem,) = raised.value.problems
    assert str(problem).startswith(f"{path}: ")
    assert str(problem).endswith(f"(got {shown})")


def test_without_the_analysis_only_the_syntax_is_checked() -> None:
    assert Critical.problems(None, critical="any-metric > 1") == []
    assert Critical.problems(None, critical="any-metric >> 1") != []


metric_names = st.sampled_from(["request-success-rate", "request-duration"])
bounds = st.integers(min_value=-39_999, max_value=39_999).map(lambda n: n / 4)


@given(st.lists(st.tuples(metric_names, st.sampled_from(Comparison), bounds), min_size=1))
def test_conditions_read_back_as_they_are_shown(
    listed: list[tuple[str, Comparison, float]],
) -> None:
    conditions = tuple(dict.fromkeys(CriticalCondition(*condition) for condition in listed))
    text = ", ".join(str(condition) for condition in conditions)
    critical = Critical.of(release_of(load_yaml("canary.yaml")), critical=text)
    assert critical.conditions == conditions


def test_a_condition_queries_its_metric_over_four_scrapes() -> None:
    release = release_of(load_yaml("canary.yaml"))
    (query,) = Critical.of(release, scrape_interval="500ms").queries(release)
    assert query.condition == SUCCESS_RATE_BELOW_50
    assert query.query.metric.name == "request-success-rate"
    assert "[2s]" in query.query.query
    assert "[1m]" not in query.query.query
    assert 'destination_workload=~"podinfo"' in query.query.query


def test_a_templated_metric_is_watched_with_its_template_and_a_built_in_one_even_unlisted() -> None:
    bundle = tutorial_bundle("tutorial-metrics")
    canary = copy.deepcopy(bundle.canary)
    canary["spec"]["analysis"]["metrics"] = [
        metric for metric in canary["spec"]["analysis"]["metrics"] if metric["name"] == "error-rate"
    ]
    release = ReleaseSpec.parse(
        canary=canary, deployment=bundle.deployment, metric_templates=bundle.metric_templates
    )
    critical = Critical.of(
        release, critical="error-rate > 10, request-success-rate < 50", scrape_interval="5s"
    )
    templated, built_in = critical.queries(release)
    assert templated.query.template is not None
    assert templated.query.query == release.query(release.spec.analysis.metrics[0], "20s").query
    assert built_in.query.template is None
    assert "[20s]" in built_in.query.query
