"""The judge as part of a release's validated input: parsed with the Canary, its problems under
`judge.`, its queries rendered for both sides, and each check's samples counted at preview."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.spec import ReleaseSpec, SpecError
from components.spec.judge import Judge, SampleWindow
from components.spec.timing import Timing
from tests.conftest import load_yaml


def release(judge: Any = None, **analysis: Any) -> ReleaseSpec:
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"].update(analysis)
    document = load_yaml("judge.yaml") if judge is None else judge
    return ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"), judge=document)


def test_the_example_judge_parses_with_the_release() -> None:
    spec = release()
    assert spec.judge is not None
    assert [metric.name for metric in spec.judge.spec.metrics] == [
        "request-duration",
        "request-success-rate",
    ]
    assert (
        ReleaseSpec.parse(
            canary=load_yaml("canary.yaml"), deployment=load_yaml("deployment.yaml")
        ).judge
        is None
    )


def test_a_judge_model_is_taken_as_it_is() -> None:
    model = Judge.parse(load_yaml("judge.yaml"))
    assert release(model).judge is model


def test_judge_queries_select_the_canary_then_its_primary_at_the_judges_step() -> None:
    ((metric, (canary, primary)), _) = release().judge_queries()
    assert metric.name == "request-duration"
    assert 'destination_workload="podinfo"' in canary
    assert 'destination_workload="podinfo-primary"' in primary
    assert 'destination_workload_namespace="default"' in canary
    assert "[250ms]" in canary and "[250ms]" in primary  # {{ interval }} is one step


def test_judge_problems_are_reported_under_judge_with_the_value() -> None:
    document = load_yaml("judge.yaml")
    document["spec"]["thresholds"]["marginal"] = 99
    document["spec"]["metrics"][0]["query"] = "sum(rate(x[1m]))"
    with pytest.raises(SpecError) as raised:
        release(document)
    error = raised.value
    assert error.source == "Judge"
    assert [problem.path for problem in error.problems] == [
        "judge.spec.metrics[0].query",
        "judge.spec.thresholds.marginal",
    ]
    assert str(error.problems[1]) == (
        "judge.spec.thresholds.marginal: must not be above pass (95) (got 99.0)"
    )


def test_a_document_that_is_no_mapping_is_named() -> None:
    with pytest.raises(SpecError) as raised:
        release(["not", "a", "judge"])
    assert [problem.path for problem in raised.value.problems] == ["judge"]


def test_a_canary_metric_may_not_take_the_judges_name() -> None:
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"]["metrics"][1]["name"] = "judge"
    canary["spec"]["analysis"]["metrics"][1]["query"] = "vector(1)"
    with pytest.raises(SpecError) as raised:
        ReleaseSpec.parse(
            canary=canary, deployment=load_yaml("deployment.yaml"), judge=load_yaml("judge.yaml")
        )
    (problem,) = raised.value.problems
    assert problem.path == "spec.analysis.metrics[1].name"
    assert "'judge' is the judge's name" in str(problem)


def test_blue_green_says_what_the_judge_compares() -> None:
    bluegreen = release(iterations=3, stepWeight=None, maxWeight=None)
    (note,) = [note for note in bluegreen.notes if note.startswith("judge:")]
    assert "tests the canary directly" in note
    assert "follows its nanStrategy and mustHaveData" in note
    assert not [note for note in release().notes if note.startswith("judge:")]


@pytest.mark.parametrize(
    ("interval", "step", "confidence", "problem"),
    [
        ("1m", "5s", 0.98, None),  # 12 samples a check
        ("2s", "400ms", 0.98, None),  # exactly the 5 that 98% needs
        (
            "2s",
            "500ms",
            0.98,
            "judge.spec.step: gives 4 samples per side in each 2s check (one per step); "
            "confidenceLevel 0.98 needs at least 5: a step of at most 400ms, or an interval of "
            "at least 2s500ms (got '500ms')",
        ),
        ("2s", "500ms", 0.95, None),  # 95% needs 4
        ("10m", "600ms", 0.98, None),  # the most: 1000
        (
            "10m",
            "500ms",
            0.98,
            "judge.spec.step: gives 1200 samples per side in each 10m check (one per step); "
            "at most 1000, as the test compares every canary sample with every primary one: a "
            "step of at least 600ms (got '500ms')",
        ),
    ],
)
def test_too_few_or_too_many_samples_per_check_are_a_problem_at_the_step(
    interval: str, step: str, confidence: float, problem: str | None
) -> None:
    document = load_yaml("judge.yaml")
    document["spec"].update(step=step, confidenceLevel=confidence)
    spec = release(document)
    problems = spec.sampling_problems(Timing.of(spec.spec.analysis, interval=interval))
    assert [str(found) for found in problems] == ([problem] if problem else [])


def test_a_window_is_the_interval_since_the_last_check_one_sample_a_step() -> None:
    spec = release().judge
    assert spec is not None
    window = spec.spec.window(1000.0, 2.0)
    assert window == SampleWindow(1000.0, 0.25, 8)
    assert window.times == [998.25 + 0.25 * index for index in range(8)]
    assert spec.spec.window(1000.0, 0.1).count == 1  # an interval under one step: one sample
