"""The Rollout provider's methods called directly, over in-memory adapters and a fake clock.

The engine's own behaviour (preview short-circuit, secrets) is out of reach here; what is
tested is the provider's contract with the real scheduler: pure check/diff, the record,
fail-fast reruns that still return traffic to rest, and a provider that pickles by reference.
"""

from __future__ import annotations

import base64
import contextlib
import copy
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import dill  # type: ignore[import-untyped]
import pulumi
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown

from components.adapters.bundle import Adapters
from components.adapters.kube import ConnectionPool
from components.adapters.records import RecordPhase, ReleaseRecord
from components.errors import ReleaseFailed
from components.provider import rollout
from components.provider.rollout import GateInputs, GateOptions, RolloutProvider
from components.spec import template_revision
from tests.conftest import load_yaml
from tests.fakes import (
    FakeClock,
    FakeCluster,
    FakeMetrics,
    fake_adapters,
    gate_inputs,
    initial_state,
)


def unknown() -> Any:
    """What a preview passes for a value not known yet."""
    return Unknown()  # type: ignore[no-untyped-call]


@pytest.fixture
def props(canary: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any]:
    """The tutorial's podinfo, as the engine passes it: camelCase keys, numbers as floats."""
    deployment["spec"]["replicas"] = 2.0
    canary["spec"]["analysis"]["threshold"] = 5.0
    return gate_inputs(canary, deployment, kubeconfig="apiVersion: v1\nkind: Config\n# s3cr3t\n")


class World:
    """What the provider's calls reach: one fake cluster and metrics, shared across calls."""

    def __init__(self, props: dict[str, Any]) -> None:
        self.release = GateInputs.of(props).release
        self.clock = FakeClock()
        self.cluster = FakeCluster(self.release)
        self.metrics = FakeMetrics()
        self.sessions = 0

    def adapters(self) -> Adapters:
        self.sessions += 1
        adapters = fake_adapters(self.release, self.clock, self.cluster)
        return Adapters(
            adapters.cluster, adapters.records, self.metrics, adapters.hooks, adapters.alerts
        )


@pytest.fixture
def world(props: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> World:
    fake = World(props)

    @contextlib.contextmanager
    def adapters(*_: Any) -> Iterator[Adapters]:
        yield fake.adapters()

    monkeypatch.setattr(rollout, "_adapters", adapters)
    monkeypatch.setattr(rollout, "CLOCK", fake.clock)
    return fake


def with_image(props: dict[str, Any], image: str) -> dict[str, Any]:
    changed = copy.deepcopy(props)
    changed["deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] = image
    changed["podTemplate"]["spec"]["containers"][0]["image"] = image
    return changed


def revision_of(props: dict[str, Any]) -> str:
    return template_revision(props["podTemplate"])


# -- check ------------------------------------------------------------------------------------


def test_check_accepts_the_tutorial_spec_with_float_numbers(props: dict[str, Any]) -> None:
    assert RolloutProvider().check({}, props).failures == []


def test_check_reports_bad_fields_by_path(props: dict[str, Any]) -> None:
    props["canary"]["spec"]["analysis"]["stepWeight"] = -10.0
    props["deadlineSeconds"] = -1.0
    props["interval"] = "soon"
    failures = RolloutProvider().check({}, props).failures
    paths = {failure.property for failure in failures}
    assert "deadlineSeconds" in paths
    assert "interval" in paths
    assert any("stepWeight" in path for path in paths), paths
    assert all(failure.reason for failure in failures)


def test_check_rejects_a_zero_interval_naming_it(props: dict[str, Any]) -> None:
    failures = RolloutProvider().check({}, {**props, "interval": "0s"}).failures
    assert [(f.property, f.reason) for f in failures] == [
        ("interval", "interval: must be longer than 0s (got '0s')")
    ]


def test_check_tolerates_unknowns_anywhere(props: dict[str, Any]) -> None:
    props["deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] = unknown()
    props["podTemplate"]["spec"]["containers"][0]["image"] = unknown()
    props["kubeconfig"] = unknown()
    props["deadlineSeconds"] = unknown()
    result = RolloutProvider().check({}, props)
    assert result.failures == []
    assert result.inputs is props


def test_check_never_echoes_the_kubeconfig(props: dict[str, Any]) -> None:
    props["kubeconfig"] = 42.0
    props["canary"]["spec"]["analysis"]["stepWeight"] = -10.0
    failures = RolloutProvider().check({}, props).failures
    assert any(failure.property == "kubeconfig" for failure in failures)
    assert not any("42" in failure.reason for failure in failures)


def test_check_validates_the_judge_with_field_paths(props: dict[str, Any]) -> None:
    judge = load_yaml("judge.yaml")
    assert RolloutProvider().check({}, {**props, "judge": judge}).failures == []
    assert GateInputs.of({**props, "judge": judge}).release.judge is not None

    judge["spec"]["onMarginal"] = "wait"
    failures = RolloutProvider().check({}, {**props, "judge": judge}).failures
    assert [failure.property for failure in failures] == ["judge.spec.onMarginal"]
    assert "(got 'wait')" in failures[0].reason


def test_check_counts_the_judges_samples_at_the_interval_override(props: dict[str, Any]) -> None:
    judge = load_yaml("judge.yaml")
    judge["spec"]["step"] = "1s"
    failures = RolloutProvider().check({}, {**props, "judge": judge, "interval": "2s"}).failures
    assert [failure.property for failure in failures] == ["judge.spec.step"]
    assert "gives 2 samples per side in each 2s check" in failures[0].reason
    assert RolloutProvider().check({}, {**props, "judge": judge}).failures == []  # 1m: 60


def test_check_leaves_an_unknown_judge_to_pulumi_up(props: dict[str, Any]) -> None:
    assert RolloutProvider().check({}, {**props, "judge": unknown()}).failures == []


def test_check_wants_the_event_webhook_as_a_string(props: dict[str, Any]) -> None:
    failures = RolloutProvider().check({}, {**props, "eventWebhook": 8080.0}).failures
    assert [(f.property, f.reason) for f in failures] == [("eventWebhook", "must be a string")]


# A cluster that is never reached: building adapters does no I/O.
UNREACHED = (
    "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
    "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
    "users: [{name: u, user: {token: t}}]\n"
    "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
)


def test_releases_over_one_pool_share_which_event_receivers_are_silent(
    props: dict[str, Any],
) -> None:
    """A group's wave: one dead receiver is tried once for all its canaries."""
    props = {**props, "kubeconfig": UNREACHED}
    gate = GateInputs.of(props)
    with (
        ConnectionPool() as pool,
        rollout._adapters(props, gate, FakeClock(), pool) as one,
        rollout._adapters(props, gate, FakeClock(), pool) as other,
    ):
        assert one.silent_receivers is other.silent_receivers
    with (
        rollout._adapters(props, gate, FakeClock()) as one,
        rollout._adapters(props, gate, FakeClock()) as other,
    ):
        assert one.silent_receivers is not other.silent_receivers


def test_the_event_webhook_option_is_flaggers_events_hook(props: dict[str, Any]) -> None:
    """`GateOptions.event_webhook` becomes the `events` hook of `-event-webhook`."""
    props = {
        **props,
        "eventWebhook": GateOptions(event_webhook="http://events.example/").props()["eventWebhook"],
        "kubeconfig": UNREACHED,
    }
    with rollout._adapters(props, GateInputs.of(props), FakeClock()) as adapters:
        hook = adapters.event_webhook

    assert hook is not None
    assert (hook.name, hook.url, hook.hook_type) == ("events", "http://events.example/", "event")


# -- diff -------------------------------------------------------------------------------------


state_of = initial_state


def test_diff_nothing_changed(props: dict[str, Any]) -> None:
    result = RolloutProvider().diff("default/podinfo", state_of(props), props)
    assert result.changes is False


def test_diff_template_change(props: dict[str, Any]) -> None:
    result = RolloutProvider().diff("default/podinfo", state_of(props), with_image(props, "x:2"))
    assert result.changes is True
    assert result.replaces == []


def test_diff_ints_and_floats_hash_alike(props: dict[str, Any]) -> None:
    old = copy.deepcopy(props)
    old["podTemplate"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 9898
    new = copy.deepcopy(props)
    new["podTemplate"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 9898.0
    assert RolloutProvider().diff("id", state_of(old), new).changes is False


def test_diff_unknown_template_is_a_change(props: dict[str, Any]) -> None:
    news = copy.deepcopy(props)
    news["podTemplate"] = unknown()
    assert RolloutProvider().diff("id", state_of(props), news).changes is True


def test_diff_of_options_a_release_reads_when_it_runs_is_no_change(
    props: dict[str, Any],
) -> None:
    """Else the preview would show the primary as "may change" with nothing to release."""
    for change in ({"interval": "30s"}, {"retryFailed": True}, {"pushgateway": "http://p"}):
        assert RolloutProvider().diff("id", state_of(props), {**props, **change}).changes is False


def test_diff_of_what_later_calls_read_from_state_is_a_change(props: dict[str, Any]) -> None:
    """Delete reads the credentials from state, and every call checks the declared uids."""
    for change in (
        {"kubeconfig": "apiVersion: v1\nkind: Config\n# rotated\n"},
        {"context": "other"},
        {"declaredUids": {"Deployment/podinfo": "new-uid"}},
        {"declaredUids": {"Deployment/podinfo": unknown()}},
    ):
        assert RolloutProvider().diff("id", state_of(props), {**props, **change}).changes is True


# -- create / update / delete -----------------------------------------------------------------


def test_create_promotes_without_analysis(props: dict[str, Any], world: World) -> None:
    result = RolloutProvider().create(props)
    assert result.id == "default/podinfo"
    outs = result.outs
    assert outs is not None
    record = world.cluster.record()
    assert record is not None
    assert (record.phase, record.revision, record.settled) == (
        RecordPhase.SUCCEEDED,
        revision_of(props),
        True,
    )
    assert outs["revision"] == revision_of(props)
    assert outs["phase"] == "Succeeded"
    assert outs["podTemplate"]["spec"]["containers"][0]["image"].endswith(":6.3.0")
    assert world.metrics.calls == 0
    # The kubeconfig stays under its own (secret) key only.
    carrying = [key for key, value in outs.items() if "s3cr3t" in repr(value)]
    assert carrying == ["kubeconfig"]


def test_update_config_only_does_not_analyse(props: dict[str, Any], world: World) -> None:
    outs = RolloutProvider().update("id", state_of(props), {**props, "interval": "30s"}).outs
    assert outs is not None
    assert outs["interval"] == "30s"
    assert world.sessions == 0


def test_update_promotes(props: dict[str, Any], world: World) -> None:
    news = with_image(props, "ghcr.io/stefanprodan/podinfo:6.3.1")
    outs = RolloutProvider().update("id", state_of(props), news).outs
    assert outs is not None
    assert outs["phase"] == "Promoting"
    assert outs["revision"] == revision_of(news)
    assert outs["podTemplate"]["spec"]["containers"][0]["image"].endswith(":6.3.1")
    # Five metric checks at 10..50%, one interval apart, and traffic stays at 50% for Pulumi to
    # roll the primary: the finaliser moves it back.
    assert world.metrics.calls == 5 * 2
    assert world.cluster.canary_weight == 50
    record = world.cluster.record()
    assert record is not None and record.phase is RecordPhase.PROMOTING and record.weight == 50
    # Each promotion has its own id, so the finaliser acts even for a template seen before.
    world.cluster.put_record(replace(record, phase=RecordPhase.SUCCEEDED, settled=True))
    again = RolloutProvider().update("id", state_of(props), news).outs
    assert again is not None
    assert len({rollout.INITIAL_PROMOTION, outs["promotion"], again["promotion"]}) == 3


def test_update_rolled_back_records_and_raises_the_reason(
    props: dict[str, Any], world: World
) -> None:
    world.metrics.values["request-success-rate"] = 42.0
    news = with_image(props, "bad:1")
    with pytest.raises(ReleaseFailed, match=r"request-success-rate 42 < 99") as raised:
        RolloutProvider().update("id", state_of(props), news)
    assert "rolled back, the primary is unchanged" in str(raised.value)
    assert "(5 failed checks)" in str(raised.value)
    record = world.cluster.record()
    assert record is not None
    assert record.phase is RecordPhase.FAILED
    assert record.revision == revision_of(news)
    assert record.settled and record.weight == 0
    assert "failed checks threshold reached 5" in (record.reason or "")
    assert (world.cluster.canary_weight, world.cluster.replicas_of["podinfo"]) == (0, 0)


def test_update_of_a_failed_revision_fails_fast(props: dict[str, Any], world: World) -> None:
    news = with_image(props, "bad:1")
    world.cluster.put_record(
        ReleaseRecord(revision_of(news), RecordPhase.FAILED, reason="latency 900 > 500")
    )
    with pytest.raises(ReleaseFailed) as raised:
        RolloutProvider().update("id", state_of(props), news)
    assert str(raised.value) == (
        f"podinfo: release of bad:1 ({revision_of(news)}) already failed: latency 900 > 500; "
        "set retryFailed to analyse it again"
    )
    assert world.metrics.calls == 0


def test_failing_fast_still_returns_what_a_killed_rollback_left_to_rest(
    props: dict[str, Any], world: World
) -> None:
    """Killed after the Failed record was written but before traffic moved: the rerun must not
    analyse the bad canary again, nor leave users on it."""
    news = with_image(props, "bad:1")
    world.cluster.put_record(
        ReleaseRecord(revision_of(news), RecordPhase.FAILED, weight=10, reason="errors")
    )
    world.cluster.canary_weight, world.cluster.replicas_of["podinfo"] = 10, 2
    with pytest.raises(ReleaseFailed, match="already failed: errors"):
        RolloutProvider().update("id", state_of(props), news)
    assert (world.cluster.canary_weight, world.cluster.replicas_of["podinfo"]) == (0, 0)
    record = world.cluster.record()
    assert record is not None
    assert (record.phase, record.reason, record.settled) == (RecordPhase.FAILED, "errors", True)
    assert world.metrics.calls == 0


def test_update_of_a_failed_revision_retries_when_asked(
    props: dict[str, Any], world: World
) -> None:
    news = {**with_image(props, "bad:1"), "retryFailed": True}
    world.cluster.put_record(
        ReleaseRecord(revision_of(news), RecordPhase.FAILED, reason="latency 900 > 500")
    )
    outs = RolloutProvider().update("id", state_of(props), news).outs
    assert outs is not None
    assert outs["phase"] == "Promoting"


def test_delete_removes_the_record(props: dict[str, Any], world: World) -> None:
    world.cluster.put_record(ReleaseRecord(revision_of(props), RecordPhase.SUCCEEDED))
    RolloutProvider().delete("default/podinfo", props)
    assert world.cluster.record() is None


def primary_runs_another_template(props: dict[str, Any], world: World) -> dict[str, Any]:
    other = copy.deepcopy(props["podTemplate"])
    other["spec"]["containers"][0]["image"] = "ghcr.io/stefanprodan/podinfo:6.2.0"
    world.cluster.templates["podinfo-primary"] = other
    return other


def test_create_over_a_primary_running_another_template_analyses_first(
    props: dict[str, Any], world: World
) -> None:
    """State lost, a renamed component, an imported stack: re-creation is not promotion."""
    primary_runs_another_template(props, world)
    outs = RolloutProvider().create(props).outs
    assert outs is not None
    assert world.metrics.calls == 5 * 2
    assert outs["phase"] == "Promoting" and outs["promotion"] != rollout.INITIAL_PROMOTION
    assert outs["history"] and all(len(line) <= 80 for line in outs["history"])


def test_create_over_a_bad_template_rolls_back_and_leaves_the_primary(
    props: dict[str, Any], world: World
) -> None:
    other = primary_runs_another_template(props, world)
    world.metrics.values["request-success-rate"] = 42.0
    failing = r"checks: 10% FAIL \(5\) request-success-rate 42/42/42/42/42$"
    with pytest.raises(ReleaseFailed, match=failing):
        RolloutProvider().create(props)
    assert world.cluster.canary_weight == 0
    assert world.cluster.templates["podinfo-primary"] == other


def test_create_over_the_same_template_promotes_at_once(
    props: dict[str, Any], world: World
) -> None:
    """A primary the API server filled with defaults still runs what was declared."""
    running = rollout.primary_deployment(world.release, props["podTemplate"], None)
    template = copy.deepcopy(running["spec"]["template"])
    template["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    template["spec"]["restartPolicy"] = "Always"
    world.cluster.templates["podinfo-primary"] = template
    outs = RolloutProvider().create(props).outs
    assert outs is not None and outs["promotion"] == rollout.INITIAL_PROMOTION
    assert world.metrics.calls == 0


def test_delete_leaves_a_record_another_rollout_owns(props: dict[str, Any], world: World) -> None:
    """A renamed component: the new Rollout is created before the old one is deleted."""
    world.cluster.put_record(ReleaseRecord(revision_of(props), RecordPhase.SUCCEEDED, gate="new"))
    RolloutProvider().delete("default/podinfo", {**state_of(props), "rolloutId": "old"})
    assert world.cluster.record() is not None
    RolloutProvider().delete("default/podinfo", {**state_of(props), "rolloutId": "new"})
    assert world.cluster.record() is None


def test_the_gate_refuses_a_cluster_the_stack_did_not_declare_on(
    props: dict[str, Any], world: World
) -> None:
    world.cluster.uids[("Deployment", "podinfo")] = "uid-on-the-gates-cluster"
    world.cluster.canary_weight = 0
    news = {
        **with_image(props, "ghcr.io/stefanprodan/podinfo:6.3.1"),
        "declaredUids": {"Deployment/podinfo": "uid-on-the-stacks-cluster"},
    }
    with pytest.raises(rollout.ClusterMismatch) as raised:
        RolloutProvider().update("id", state_of(props), news)
    message = str(raised.value)
    assert "uid-on-the-gates-cluster" in message and "uid-on-the-stacks-cluster" in message
    assert "Deployment default/podinfo" in message
    assert "s3cr3t" not in message
    assert world.cluster.routes_written == [] and world.metrics.calls == 0
    guard = rollout.GuardProvider()
    world.cluster.canary_weight = 30
    with pytest.raises(rollout.ClusterMismatch, match="none \\(it does not exist\\)"):
        guard.create({**props, "declaredUids": {"DestinationRule/podinfo-canary": "u"}})
    assert world.cluster.canary_weight == 30


def test_the_gate_proceeds_where_the_uids_match(props: dict[str, Any], world: World) -> None:
    world.cluster.uids[("Deployment", "podinfo")] = "u1"
    news = {**with_image(props, "x:2"), "declaredUids": {"Deployment/podinfo": "u1"}}
    outs = RolloutProvider().update("id", state_of(props), news).outs
    assert outs is not None and outs["phase"] == "Promoting"


# -- pickling ---------------------------------------------------------------------------------


def test_provider_pickles_by_reference() -> None:
    payload = serialize_provider(RolloutProvider())
    raw = base64.b64decode(payload)
    assert len(raw) < 200, len(raw)
    assert b"components.provider.rollout" in raw
    assert b"def " not in raw
    assert isinstance(dill.loads(raw), RolloutProvider)


# -- the resource class -----------------------------------------------------------------------


class _Mocks(pulumi.runtime.Mocks):
    """Echoes inputs plus the outputs a create would add, as the engine records them."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outs = dict(args.inputs)
        outs.update(
            podTemplate={"spec": {}},
            promotedTemplate={"spec": {"x": 1}},
            revision="abc",
            phase="Succeeded",
            plan="p",
            rolloutId="r1",
        )
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], Any]:
        return {}, None


@pulumi.runtime.test  # type: ignore[untyped-decorator]
def test_rollout_resource_declares_snake_case_outputs(
    canary: dict[str, Any], deployment: dict[str, Any]
) -> Any:
    pulumi.runtime.set_mocks(_Mocks(), preview=False)
    resource = rollout.Rollout(
        "podinfo",
        rollout.ReleaseInputs(canary=canary, deployment=deployment),
        rollout.GateOptions(kubeconfig="k"),
    )
    assert resource._type == "pulumi-python:dynamic/canary:Rollout"

    def check(values: list[Any]) -> None:
        assert values == [{"spec": {}}, {"spec": {"x": 1}}, "abc", "Succeeded", "p", "r1"]

    return pulumi.Output.all(
        resource.pod_template,
        resource.promoted_template,
        resource.revision,
        resource.phase,
        resource.plan,
        resource.rollout_id,
    ).apply(check)


# -- the change review ------------------------------------------------------------------------


def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollout, "_adapters", lambda *_: pytest.fail("check/diff used the network"))


def test_diff_prints_the_change_review(
    props: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_network(monkeypatch)
    news = with_image(props, "ghcr.io/stefanprodan/podinfo:6.3.1")
    assert RolloutProvider().diff("id", state_of(props), news).changes is True
    assert capsys.readouterr().out == (
        "podinfo: ghcr.io/stefanprodan/podinfo:6.3.0 -> 6.3.1; "
        "canary 10% -> 50% in 5 steps every 1m; "
        "gates: request-success-rate >= 99, request-duration <= 500ms; "
        "rollback after 5 failed checks; at most ~9m\n"
        "podinfo: watching request-success-rate < 50 every 15s: a breach rolls back at once\n"
    )


def test_diff_says_nothing_of_a_watch_turned_off(
    props: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_network(monkeypatch)
    news = {**with_image(props, "ghcr.io/stefanprodan/podinfo:6.3.1"), "critical": "off"}
    RolloutProvider().diff("id", state_of(props), news)
    out = capsys.readouterr().out
    assert out.startswith("podinfo: ghcr.io/stefanprodan/podinfo:6.3.0 -> 6.3.1; ")
    assert "watching" not in out


def test_diff_review_uses_the_interval_override(
    props: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_network(monkeypatch)
    news = {**with_image(props, "ghcr.io/stefanprodan/podinfo:6.3.1"), "interval": "10s"}
    RolloutProvider().diff("id", state_of(props), news)
    assert "in 5 steps every 10s" in capsys.readouterr().out


def test_diff_without_a_release_prints_nothing(
    props: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_network(monkeypatch)
    RolloutProvider().diff("id", state_of(props), {**props, "interval": "30s"})
    assert capsys.readouterr().out == ""


def test_check_of_a_new_rollout_announces_the_first_release(
    props: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_network(monkeypatch)
    RolloutProvider().check({}, props)
    assert capsys.readouterr().out == (
        "podinfo: first release of ghcr.io/stefanprodan/podinfo:6.3.0, promoted without analysis\n"
    )
    RolloutProvider().check(props, props)
    assert capsys.readouterr().out == ""


# -- the finaliser ----------------------------------------------------------------------------


def finaliser_props(props: dict[str, Any], promotion: str, phase: str) -> dict[str, Any]:
    return {**props, "promotion": promotion, "phase": phase, "primary": "default/podinfo-primary"}


def promoted(world: World, props: dict[str, Any]) -> None:
    """What an analysis leaves for the finaliser: the canary at 50%, scaled up, Promoting."""
    world.cluster.put_record(ReleaseRecord(revision_of(props), RecordPhase.PROMOTING, weight=50))
    world.cluster.canary_weight, world.cluster.replicas_of["podinfo"] = 50, 2


def test_finaliser_create_after_an_initial_release_does_nothing(
    props: dict[str, Any], world: World
) -> None:
    outs = rollout.FinaliserProvider().create(finaliser_props(props, "initial", "Succeeded")).outs
    assert world.sessions == 0
    assert outs is not None and outs["promotion"] == "initial"


def test_finaliser_finalises_each_promotion_once(props: dict[str, Any], world: World) -> None:
    provider = rollout.FinaliserProvider()
    first = finaliser_props(props, "r1", "Succeeded")
    promotion = finaliser_props(props, "r2", "Promoting")
    promoted(world, props)
    assert provider.diff("id", first, promotion).changes is True
    provider.update("id", first, promotion)
    assert world.sessions == 1
    assert (world.cluster.canary_weight, world.cluster.replicas_of["podinfo"]) == (0, 0)
    record = world.cluster.record()
    assert record is not None and (record.phase, record.settled) == (RecordPhase.SUCCEEDED, True)
    assert provider.diff("id", promotion, promotion).changes is False
    provider.update("id", promotion, {**promotion, "interval": "30s"})
    assert world.sessions == 1


def test_finaliser_rerun_after_a_failed_finalise_acts_again(
    props: dict[str, Any], world: World
) -> None:
    """A finalise that raised left the old state, so the next `pulumi up` diffs and retries."""
    provider = rollout.FinaliserProvider()
    old = finaliser_props(props, "r1", "Succeeded")
    promotion = finaliser_props(props, "r2", "Promoting")
    promoted(world, props)
    provider.update("id", old, promotion)
    provider.update("id", old, promotion)
    assert world.sessions == 2


def test_update_of_a_template_stopped_by_an_error_is_analysed_again(
    props: dict[str, Any], world: World
) -> None:
    """Not the canary's fault (an API error, a cleared way): no fail-fast on the next run."""
    news = with_image(props, "x:2")
    world.cluster.put_record(ReleaseRecord(revision_of(news), RecordPhase.INTERRUPTED, reason="e"))
    outs = RolloutProvider().update("id", state_of(props), news).outs
    assert outs is not None and outs["phase"] == "Promoting"


def test_an_old_retryable_record_counts_as_interrupted() -> None:
    text = '{"phase": "Failed", "retryable": true, "revision": "abc", "reason": "e"}'
    assert ReleaseRecord.from_json(text).phase is RecordPhase.INTERRUPTED


# -- the guard --------------------------------------------------------------------------------


def test_guard_clears_the_way_for_each_new_template_only(
    props: dict[str, Any], world: World
) -> None:
    guard = rollout.GuardProvider()
    world.cluster.canary_weight, world.cluster.replicas_of["podinfo"] = 30, 2
    state = guard.create(props).outs  # adopting a canary with traffic
    assert state is not None
    assert (world.cluster.canary_weight, world.cluster.replicas_of["podinfo"]) == (0, 0)
    news = with_image(props, "x:2")
    assert guard.diff("id", state, news).changes is True
    world.cluster.canary_weight = 20
    state = guard.update("id", state, news).outs
    assert state is not None and world.cluster.canary_weight == 0
    assert guard.diff("id", state, news).changes is False
    world.cluster.canary_weight = 20
    guard.update("id", state, {**news, "interval": "30s"})
    assert world.cluster.canary_weight == 20  # no new template: not the guard's to move
