"""The canary spec: Flagger's manifests parse with Flagger's defaults, bad input is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components import routing
from components.spec import (
    Analysis,
    HookType,
    Metric,
    MetricTemplate,
    ReleaseSpec,
    ServiceSpec,
    SpecError,
    Strategy,
    Webhook,
    parse_seconds,
)
from tests.conftest import (
    TUTORIAL_CANARIES,
    all_bundles,
    corpus_bundle,
    corpus_documents,
    corpus_names,
    flagger_schema_errors,
    istio_schema_errors,
    kubernetes_errors,
    load_yaml,
    tutorial_bundle,
)
from tests.spec.bad_inputs import BAD_INPUTS, BadInput

# --- The tutorial's manifests and Flagger's defaults -----------------------------------------


@pytest.mark.parametrize("name", sorted(TUTORIAL_CANARIES))
def test_tutorial_manifests_parse_and_flaggers_schema_accepts_them(name: str) -> None:
    bundle = tutorial_bundle(name)
    for manifest in (bundle.canary, *bundle.metric_templates):
        assert flagger_schema_errors(manifest) == []
    release = bundle.release()
    assert release.name == "podinfo"
    assert release.namespace == "default"


def test_tutorial_canary_gets_flaggers_defaults() -> None:
    release = tutorial_bundle("tutorial-canary").release()
    spec = release.spec
    assert spec.service.port_name == "http"
    assert spec.service.name is None
    assert release.service == "podinfo"
    assert spec.progress_deadline_seconds == 600
    assert spec.skip_analysis is False
    assert spec.analysis.strategy is Strategy.CANARY
    assert spec.analysis.effective_max_weight == 50
    assert spec.analysis.primary_ready_threshold == 100
    assert spec.analysis.canary_ready_threshold == 100
    (hook,) = spec.analysis.webhooks
    assert hook.hook_type is HookType.ROLLOUT
    assert hook.timeout_seconds == 5
    vs = routing.virtual_service(release)
    assert vs["spec"]["gateways"] == ["mesh"]
    assert vs["spec"]["hosts"] == ["podinfo"]


def test_tutorial_ab_is_the_ab_strategy() -> None:
    analysis = tutorial_bundle("tutorial-ab").release().spec.analysis
    assert analysis.strategy is Strategy.AB
    assert analysis.iterations == 10
    assert analysis.match[0].headers is not None
    assert analysis.match[0].headers["x-user-type"].exact == "beta"


def test_tutorial_metrics_resolve_the_template() -> None:
    release = tutorial_bundle("tutorial-metrics").release()
    queries = {query.metric.name: query for query in release.metric_queries()}
    assert set(queries) == {"request-success-rate", "request-duration", "error-rate"}
    error_rate = queries["error-rate"]
    assert error_rate.template is not None
    assert error_rate.template.name == "error-rate"
    assert 'destination_workload_namespace="default"' in error_rate.query
    assert 'destination_workload="podinfo"' in error_rate.query
    assert "[1m]" in error_rate.query
    assert "{{" not in error_rate.query


def test_defaults_when_flagger_leaves_fields_out() -> None:
    analysis = Analysis.model_validate(
        {
            "stepWeight": 10,
            "threshold": 0,
            "metrics": [{"name": "request-success-rate", "threshold": 99}],
            "webhooks": [{"name": "hook", "url": "http://hook/"}],
        }
    )
    assert analysis.interval == "60s"
    assert analysis.interval_seconds == 60
    assert analysis.threshold == 0
    assert analysis.effective_threshold == 1
    assert analysis.effective_max_weight == 100
    assert analysis.metrics[0].interval == "1m"
    assert analysis.metrics[0].interval_seconds == 60
    assert analysis.webhooks[0].timeout == "10s"
    assert analysis.webhooks[0].timeout_seconds == 10
    assert analysis.webhooks[0].hook_type is HookType.ROLLOUT


def test_deprecated_threshold_is_a_min_for_success_rate_and_a_max_otherwise() -> None:
    success = Metric(name="request-success-rate", threshold=99)
    duration = Metric(name="request-duration", threshold=500)
    assert success.bounds is not None and (success.bounds.min, success.bounds.max) == (99, None)
    assert duration.bounds is not None and (duration.bounds.min, duration.bounds.max) == (None, 500)


@pytest.mark.parametrize(
    ("step_weights", "max_weight", "expected"),
    [([1, 5, 10, 30], None, 30), ([10, 50, 100], None, 100), ([10, 20], 15, 15)],
)
def test_max_weight_defaults_to_the_last_step_weight(
    step_weights: list[int], max_weight: int | None, expected: int
) -> None:
    analysis = Analysis(step_weights=step_weights, max_weight=max_weight)
    assert analysis.effective_max_weight == expected


@pytest.mark.parametrize(
    ("iterations", "match", "strategy"),
    [
        (10, [{"headers": {"x-canary": {"exact": "on"}}}], Strategy.AB),
        (10, [], Strategy.BLUEGREEN),
    ],
)
def test_iterations_pick_ab_or_blue_green_as_flagger_does(
    iterations: int, match: list[dict[str, Any]], strategy: Strategy
) -> None:
    assert Analysis.model_validate({"iterations": iterations, "match": match}).strategy is strategy


@pytest.mark.parametrize("duration", ["10s", "1m", "1m30s", "90s", "2m0s", "500ms"])
def test_flaggers_duration_form_is_accepted(duration: str) -> None:
    assert Analysis(step_weight=10, interval=duration).interval == duration


def test_durations_are_read_as_go_durations() -> None:
    assert parse_seconds("1m30s") == 90
    assert parse_seconds("10s") == 10
    assert parse_seconds("500ms") == 0.5


# --- snake_case in Python, camelCase in YAML ---------------------------------------------------


def test_snake_case_construction_round_trips_to_flaggers_camel_case() -> None:
    analysis = Analysis(
        step_weight=10,
        max_weight=50,
        step_weight_promotion=25,
        primary_ready_threshold=80,
        metrics=[Metric(name="request-duration", threshold_range={"max": 500})],
        webhooks=[Webhook(name="gate", url="http://gate/", type="confirm-promotion")],
        session_affinity={"cookie_name": "canary", "http_only": True},
    )
    manifest = analysis.to_manifest()
    assert manifest["stepWeight"] == 10
    assert manifest["maxWeight"] == 50
    assert manifest["stepWeightPromotion"] == 25
    assert manifest["primaryReadyThreshold"] == 80
    assert manifest["metrics"][0]["thresholdRange"] == {"max": 500}
    assert manifest["webhooks"][0]["type"] == "confirm-promotion"
    assert manifest["webhooks"][0]["disableTLS"] is False
    assert manifest["sessionAffinity"]["cookieName"] == "canary"
    assert manifest["sessionAffinity"]["httpOnly"] is True
    assert not any("_" in key for key in manifest)
    assert Analysis.model_validate(manifest) == analysis


def test_service_spec_in_either_spelling_is_the_same_spec() -> None:
    snake = ServiceSpec(port=80, port_name="http", target_port=9898, cors_policy={"max_age": "1h"})
    camel = ServiceSpec.model_validate(
        {"port": 80, "portName": "http", "targetPort": 9898, "corsPolicy": {"maxAge": "1h"}}
    )
    assert snake == camel
    manifest = snake.to_manifest()
    assert manifest["portName"] == "http"
    assert manifest["targetPort"] == 9898
    assert manifest["corsPolicy"] == {"maxAge": "1h"}


def test_a_whole_canary_round_trips_through_to_manifest() -> None:
    for bundle in all_bundles():
        release = bundle.release()
        again = ReleaseSpec.parse(**{**bundle.kwargs(), "canary": release.canary.to_manifest()})
        assert again.canary == release.canary, bundle.name


def test_snake_case_models_are_accepted_by_release_spec() -> None:
    canary = load_yaml("canary.yaml")
    canary["spec"]["analysis"] = Analysis(iterations=5).to_manifest()
    release = ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))
    assert release.spec.analysis.strategy is Strategy.BLUEGREEN


# --- Bad input: the field path and the value are in the message -------------------------------


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[case.id for case in BAD_INPUTS])
def test_bad_input_names_the_field_and_the_value(case: BadInput) -> None:
    with pytest.raises(SpecError) as raised:
        ReleaseSpec.parse(**case.kwargs())
    case.check(str(raised.value))


def test_every_problem_is_reported_not_just_the_first() -> None:
    canary = load_yaml("canary.yaml")
    canary["spec"]["analysis"].update(stepWeight=150, threshold=-1, interval="soon")
    with pytest.raises(SpecError) as raised:
        ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))
    paths = {problem.path for problem in raised.value.problems}
    assert {
        "spec.analysis.stepWeight",
        "spec.analysis.threshold",
        "spec.analysis.interval",
    } <= paths


def test_python_construction_reports_the_snake_case_error_too() -> None:
    with pytest.raises(ValueError, match="step_weight"):
        Analysis(step_weight=101)


def test_metric_template_with_unknown_field_is_rejected() -> None:
    template = load_yaml("metric-template.yaml")
    template["spec"]["provider"]["adress"] = "http://prometheus:9090"
    with pytest.raises(SpecError) as raised:
        ReleaseSpec.parse(
            canary=load_yaml("canary-metrics.yaml"),
            deployment=load_yaml("deployment.yaml"),
            metric_templates=[template],
        )
    assert "MetricTemplate[0]" in str(raised.value)
    assert "spec.provider.adress: unknown field" in str(raised.value)


def test_metric_template_keeps_credentials_out_of_its_manifest() -> None:
    template = MetricTemplate.model_validate(
        {**load_yaml("metric-template.yaml"), "credentials": {"token": "s3cret"}}
    )
    assert template.credentials is not None
    assert "s3cret" not in str(template.to_manifest())
    assert "s3cret" not in repr(template)


# --- A corpus of Flagger manifests: what Flagger's schema accepts, the parser accepts ---------


def test_the_corpus_covers_the_features_the_issue_lists() -> None:
    assert len(corpus_names()) >= 10
    strategies = {corpus_bundle(name).release().spec.analysis.strategy for name in corpus_names()}
    assert strategies == set(Strategy)


@pytest.mark.parametrize("name", corpus_names())
def test_corpus_manifest_is_valid_for_flagger_and_kubernetes(name: str) -> None:
    for document in corpus_documents(name):
        if document["apiVersion"].startswith("flagger.app/"):
            assert flagger_schema_errors(document) == [], document["kind"]
        else:
            assert kubernetes_errors(document) == [], document["kind"]


@pytest.mark.parametrize("name", corpus_names())
def test_corpus_manifest_is_accepted_by_the_parser(name: str) -> None:
    bundle = corpus_bundle(name)
    release = bundle.release()
    assert release.name == bundle.canary["metadata"]["name"]
    assert release.target == bundle.deployment["metadata"]["name"]
    # Nothing was silently dropped: the model writes back every field the manifest had.
    assert _subset(bundle.canary["spec"], release.canary.spec.to_manifest())


def _subset(given: Any, kept: Any) -> bool:
    """True if every key and value of `given` is in `kept` (which adds defaults)."""
    if isinstance(given, dict):
        return isinstance(kept, dict) and all(
            key in kept and _subset(value, kept[key]) for key, value in given.items()
        )
    if isinstance(given, list):
        return (
            isinstance(kept, list)
            and len(given) == len(kept)
            and all(_subset(a, b) for a, b in zip(given, kept, strict=True))
        )
    return bool(given == kept)


def test_the_schema_check_itself_rejects_what_flagger_rejects() -> None:
    """Guards the corpus test: a typo or a bad pattern must fail the converted CRD schema."""
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"]["stepweight"] = 5
    canary["spec"]["analysis"]["interval"] = "5x"
    errors = flagger_schema_errors(canary)
    assert any("stepweight" in error for error in errors)
    assert any("5x" in error for error in errors)


# --- Random analysis blocks Flagger's schema accepts --------------------------------------------

DURATIONS = st.builds(
    lambda number, unit, rest: f"{number}{unit}{rest}",
    st.integers(1, 600),
    st.sampled_from(["s", "m"]),
    st.sampled_from(["", "30s", "0s"]),
).filter(lambda text: not (text.endswith("s") and text.count("s") == 2))
STRING_MATCHES = st.one_of(
    st.builds(lambda v: {"exact": v}, st.text("abcdefgh-", min_size=1, max_size=8)),
    st.builds(lambda v: {"prefix": v}, st.text("abcdefgh/", min_size=1, max_size=8)),
    st.builds(lambda v: {"regex": f".*{v}.*"}, st.text("abcdefgh", min_size=1, max_size=8)),
)
# Flagger's schema also admits `suffix` for A/B headers (not for query parameters).
HEADER_MATCHES = st.one_of(
    STRING_MATCHES,
    st.builds(lambda v: {"suffix": v}, st.text("abcdefgh.", min_size=1, max_size=8)),
)
HEADER_NAMES = st.sampled_from(["x-canary", "x-user-type", "cookie", "user-agent"])
MATCHES = st.lists(
    st.one_of(
        st.builds(
            lambda h: {"headers": h}, st.dictionaries(HEADER_NAMES, HEADER_MATCHES, min_size=1)
        ),
        st.builds(
            lambda q: {"queryParams": q},
            st.dictionaries(st.sampled_from(["canary", "beta"]), STRING_MATCHES, min_size=1),
        ),
        st.builds(lambda s: {"sourceLabels": {"app": s}}, st.sampled_from(["web", "api"])),
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def threshold_ranges(draw: st.DrawFn) -> dict[str, float]:
    low = draw(st.floats(0, 1000, allow_nan=False))
    high = draw(st.floats(low, 2000, allow_nan=False))
    return draw(st.sampled_from([{"min": low}, {"max": high}, {"min": low, "max": high}]))


METRICS = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["request-success-rate", "request-duration"])},
        optional={"interval": DURATIONS, "thresholdRange": threshold_ranges()},
    ),
    max_size=2,
)
WEBHOOKS = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["load", "gate", "smoke"]), "url": st.just("http://hook.test/")},
        optional={
            "type": st.sampled_from(["", *(hook.value for hook in HookType)]),
            "timeout": DURATIONS,
            "retries": st.integers(0, 5),
            "muteAlert": st.booleans(),
        },
    ),
    max_size=3,
)


@st.composite
def analyses(draw: st.DrawFn) -> dict[str, Any]:
    """An `analysis` with exactly one of Flagger's three strategies, as its oneOf demands."""
    analysis: dict[str, Any] = {"interval": draw(DURATIONS), "threshold": draw(st.integers(0, 20))}
    strategy = draw(st.sampled_from(["stepWeight", "stepWeights", "iterations"]))
    if strategy == "stepWeight":
        analysis["stepWeight"] = draw(st.integers(1, 100))
        analysis |= draw(st.fixed_dictionaries({}, optional={"maxWeight": st.integers(1, 100)}))
    elif strategy == "stepWeights":
        weights = draw(st.lists(st.integers(1, 100), min_size=1, max_size=8, unique=True))
        analysis["stepWeights"] = sorted(weights)
    else:
        analysis["iterations"] = draw(st.integers(1, 50))
        if draw(st.booleans()):
            analysis["match"] = draw(MATCHES)
    if draw(st.booleans()):
        analysis["mirror"] = True
        analysis |= draw(st.fixed_dictionaries({}, optional={"mirrorWeight": st.integers(0, 100)}))
    analysis |= draw(
        st.fixed_dictionaries(
            {},
            optional={
                "stepWeightPromotion": st.integers(0, 100),
                "primaryReadyThreshold": st.integers(0, 100),
                "canaryReadyThreshold": st.integers(0, 100),
                "metrics": METRICS,
                "webhooks": WEBHOOKS,
            },
        )
    )
    return analysis


@settings(max_examples=150, deadline=None)
@given(analysis=analyses())
def test_random_analysis_accepted_by_flaggers_schema_is_accepted_here(
    analysis: dict[str, Any],
) -> None:
    canary = load_yaml("canary.yaml")
    canary["spec"]["analysis"] = analysis
    assert flagger_schema_errors(canary) == []

    release = ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))

    parsed = release.spec.analysis
    if "iterations" in analysis:
        expected = Strategy.AB if analysis.get("match") else Strategy.BLUEGREEN
    else:
        expected = Strategy.CANARY
    assert parsed.strategy is expected
    assert parsed.interval_seconds == _seconds(analysis["interval"])
    assert parsed.effective_threshold == (analysis["threshold"] or 1)
    if "stepWeights" in analysis:
        assert parsed.effective_max_weight == analysis["stepWeights"][-1]
    assert len(parsed.metrics) == len(analysis.get("metrics", []))
    assert len(parsed.webhooks) == len(analysis.get("webhooks", []))
    # What the parser accepts, routing turns into an object Istio accepts.
    assert istio_schema_errors(routing.virtual_service(release)) == []


def _seconds(duration: str) -> float:
    minutes, _, seconds = duration.partition("m")
    if duration.endswith("s") and "m" not in duration:
        return float(duration[:-1])
    return float(minutes) * 60 + float(seconds.removesuffix("s") or 0)


@pytest.mark.parametrize(
    ("alert_provider", "metric_template_credentials"),
    [
        ({"type": "slack", "address": ["https://hooks.slack.com/services/T0/B0/S3CRET"]}, None),
        (None, {"password": "S3CRET"}),
    ],
)
def test_errors_never_echo_credentials(
    alert_provider: dict[str, Any] | None, metric_template_credentials: dict[str, Any] | None
) -> None:
    canary = load_yaml("canary.yaml")
    alert_providers = (
        [{"metadata": {"name": "on-call"}, "spec": alert_provider}] if alert_provider else []
    )
    templates = []
    if metric_template_credentials:
        (template,) = [load_yaml("metric-template.yaml")]
        templates = [{**template, "credentials": metric_template_credentials}]
    with pytest.raises(SpecError) as raised:
        ReleaseSpec.parse(
            canary=canary,
            deployment=load_yaml("deployment.yaml"),
            alert_providers=alert_providers,
            metric_templates=templates,
        )
    message = str(raised.value)
    assert "S3CRET" not in message
    assert "value not shown" in message or "<hidden>" in message


# -- valid input that the preview remarks on ---------------------------------------------------


def test_step_weights_above_100_are_read_as_100_with_a_note(
    canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    del canary["spec"]["analysis"]["stepWeight"]
    del canary["spec"]["analysis"]["maxWeight"]
    canary["spec"]["analysis"]["stepWeights"] = [50, 120]
    release = ReleaseSpec.parse(canary=canary, deployment=deployment)
    assert release.spec.analysis.effective_max_weight == 100
    assert release.notes == ["spec.analysis.stepWeights[1] is 120: read as 100, as Flagger does"]


def test_a_metric_without_bounds_is_accepted_with_a_note(
    canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    del canary["spec"]["analysis"]["metrics"][1]["thresholdRange"]
    release = ReleaseSpec.parse(canary=canary, deployment=deployment)
    assert release.notes == [
        "spec.analysis.metrics[1] 'request-duration' has no thresholdRange: it only fails when "
        "the query returns no data"
    ]


def test_a_target_scaled_to_zero_runs_one_primary_replica_as_flagger_does(
    canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    deployment["spec"]["replicas"] = 0
    release = ReleaseSpec.parse(canary=canary, deployment=deployment)
    assert release.primary_replicas == 1
    assert "the primary runs 1 replica" in release.notes[0]


def test_skip_analysis_needs_no_strategy(
    canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    canary["spec"]["analysis"] = {}
    canary["spec"]["skipAnalysis"] = True
    release = ReleaseSpec.parse(canary=canary, deployment=deployment)
    assert release.spec.skip_analysis
