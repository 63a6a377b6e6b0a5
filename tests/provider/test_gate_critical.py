"""The gate's critical options: validated at preview with their field and value, and carried
to the release's watch."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from pulumi.output import Unknown

from components.adapters.bundle import Adapters
from components.errors import ReleaseFailed
from components.provider import rollout
from components.provider.rollout import GateInputs, GateOptions, RolloutProvider
from components.spec.critical import CRITICAL_ANNOTATION, Comparison, CriticalCondition
from tests.conftest import load_yaml
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, fake_adapters, initial_state


def gate_props(**options: Any) -> dict[str, Any]:
    """The tutorial's podinfo as the engine passes it, with the gate's `options`."""
    deployment = load_yaml("deployment.yaml")
    return {
        "canary": load_yaml("canary.yaml"),
        "deployment": deployment,
        "podTemplate": copy.deepcopy(deployment["spec"]["template"]),
        **options,
    }


def failures(props: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f.property, f.reason) for f in RolloutProvider().check({}, props).failures]


def test_a_bad_critical_option_fails_the_preview_naming_it_and_its_value() -> None:
    assert failures(gate_props(critical="request-success-rate <> 50")) == [
        (
            "critical",
            "critical: condition 1 'request-success-rate <> 50': must be METRIC < NUMBER "
            "(or <=, >, >=), e.g. 'request-success-rate < 50' (got 'request-success-rate <> 50')",
        )
    ]


def test_a_condition_on_a_metric_the_release_lacks_fails_the_preview() -> None:
    ((path, reason),) = failures(gate_props(critical="error-rate > 5"))
    assert path == "critical"
    assert "'error-rate' is neither built in nor in spec.analysis.metrics" in reason
    assert reason.endswith("(got 'error-rate > 5')")


def test_a_bad_scrape_interval_fails_the_preview_naming_it() -> None:
    assert failures(gate_props(scrapeInterval="0s")) == [
        ("scrapeInterval", "scrapeInterval: must be longer than 0s (got '0s')")
    ]


def test_a_bad_annotation_fails_the_preview_by_its_path() -> None:
    props = gate_props()
    props["canary"]["metadata"]["annotations"] = {CRITICAL_ANNOTATION: "request-duration"}
    ((path, _),) = failures(props)
    assert path == f'metadata.annotations["{CRITICAL_ANNOTATION}"]'


def test_options_unknown_at_preview_are_checked_at_up() -> None:
    unknown = Unknown()  # type: ignore[no-untyped-call]
    assert failures(gate_props(critical=unknown, scrapeInterval=unknown)) == []


def test_the_options_reach_the_gate_under_their_input_names() -> None:
    props = GateOptions(critical="request-duration > 900", scrape_interval="30s").props()
    assert (props["critical"], props["scrapeInterval"]) == ("request-duration > 900", "30s")
    gate = GateInputs.of(gate_props(**props))
    assert gate.critical.conditions == (
        CriticalCondition("request-duration", Comparison.ABOVE, 900.0),
    )
    assert gate.critical.scrape_seconds == 30.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A release whose checks pass and whose watch reads a success rate of 12."""
    fake = FakeClock()

    @contextlib.contextmanager
    def adapters(props: Any, gate: GateInputs, _clock: Any) -> Iterator[Adapters]:
        cluster = FakeCluster(gate.release)
        yield replace(
            fake_adapters(gate.release, fake, cluster), critical_metrics=FakeMetrics(value=12.0)
        )

    monkeypatch.setattr(rollout, "_adapters", adapters)
    monkeypatch.setattr(rollout, "CLOCK", fake)
    return fake


def test_an_update_watched_with_the_options_rolls_back_at_the_first_scrape(
    clock: FakeClock,
) -> None:
    olds = initial_state(gate_props())
    news = gate_props(scrapeInterval="30s")
    news["podTemplate"]["spec"]["containers"][0]["image"] = "bad:1"
    with pytest.raises(ReleaseFailed) as raised:
        RolloutProvider().update("id", olds, news)
    assert (
        "rolled back, the primary is unchanged: critical condition request-success-rate < 50 "
        "breached: request-success-rate is 12 (0 failed checks)"
    ) in str(raised.value)
    assert clock.slept == [30.0]  # one scrape interval into the first step
