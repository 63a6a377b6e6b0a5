"""The Rollout provider's methods called directly, with the cluster and the analysis faked.

The engine's own behaviour (preview short-circuit, secrets) is out of reach here; what is
tested is the provider's contract: pure check/diff, the failure record, fail-fast reruns,
and a provider that pickles by reference.
"""

from __future__ import annotations

import base64
import contextlib
import copy
from collections.abc import Iterator
from typing import Any, cast

import dill  # type: ignore[import-untyped]
import pulumi
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown

from components.provider import rollout
from components.provider.rollout import RolloutFailed, RolloutProvider
from components.scheduler import Adapters, ReleaseReport
from components.spec import ReleaseSpec, template_revision


def unknown() -> Any:
    """What a preview passes for a value not known yet."""
    return Unknown()  # type: ignore[no-untyped-call]


class FakeCluster:
    """The record operations of `Cluster`, in memory, versioned like the API server."""

    def __init__(self, record: dict[str, Any] | None = None) -> None:
        self.record = record
        self.version = 1 if record is not None else 0
        self.saves: list[dict[str, Any]] = []
        self.deleted = False

    def load_record(self) -> tuple[dict[str, Any] | None, str | None]:
        if self.record is None:
            return None, None
        return copy.deepcopy(self.record), str(self.version)

    def save_record(self, record: dict[str, Any], version: str | None) -> str:
        assert version == (str(self.version) if self.record is not None else None)
        self.record = copy.deepcopy(record)
        self.version += 1
        self.saves.append(self.record)
        return str(self.version)

    def delete_record(self) -> None:
        self.record, self.deleted = None, True

    def close(self) -> None:
        pass


class FakeScheduler:
    """Stands in for the Scheduler; records the Failed phase as the real one does."""

    def __init__(self, cluster: FakeCluster, report: ReleaseReport) -> None:
        self.cluster, self.report = cluster, report

    def analyse(self) -> ReleaseReport:
        if self.report.outcome == "rolled_back":
            _, version = self.cluster.load_record()
            self.cluster.save_record({"phase": "Failed", "step": 2}, version)
        return self.report


@pytest.fixture
def props(canary: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any]:
    """The tutorial's podinfo, as the engine passes it: camelCase keys, numbers as floats."""
    deployment["spec"]["replicas"] = 2.0
    canary["spec"]["analysis"]["threshold"] = 5.0
    return {
        "canary": canary,
        "deployment": deployment,
        "podTemplate": copy.deepcopy(deployment["spec"]["template"]),
        "metricTemplates": [],
        "alertProviders": [],
        "autoscaler": None,
        "kubeconfig": "apiVersion: v1\nkind: Config\n# s3cr3t\n",
        "context": None,
        "deadlineSeconds": None,
        "interval": None,
        "retryFailed": False,
    }


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster()

    @contextlib.contextmanager
    def connect(_props: Any, _release: ReleaseSpec) -> Iterator[Adapters]:
        yield Adapters(cast(Any, fake), cast(Any, None), cast(Any, None), cast(Any, None))

    monkeypatch.setattr(rollout, "_connect", connect)
    return fake


def with_image(props: dict[str, Any], image: str) -> dict[str, Any]:
    changed = copy.deepcopy(props)
    changed["deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] = image
    changed["podTemplate"]["spec"]["containers"][0]["image"] = image
    return changed


def use_report(
    monkeypatch: pytest.MonkeyPatch, cluster: FakeCluster, report: ReleaseReport
) -> None:
    monkeypatch.setattr(rollout, "_scheduler", lambda *_: FakeScheduler(cluster, report))


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
        ("interval", "must be positive, not '0s'")
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


# -- diff -------------------------------------------------------------------------------------


def state_of(props: dict[str, Any]) -> dict[str, Any]:
    return rollout.outputs(props, phase="Succeeded", promotion=rollout.INITIAL_PROMOTION)


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


def test_diff_config_only_change(props: dict[str, Any]) -> None:
    news = {**props, "interval": "30s"}
    assert RolloutProvider().diff("id", state_of(props), news).changes is True


# -- create / update / delete -----------------------------------------------------------------


def test_create_promotes_without_analysis(props: dict[str, Any], cluster: FakeCluster) -> None:
    result = RolloutProvider().create(props)
    assert result.id == "default/podinfo"
    outs = result.outs
    assert outs is not None
    revision = template_revision(props["podTemplate"])
    assert cluster.record == {"phase": "Succeeded", "revision": revision, "reason": None}
    assert outs["revision"] == revision
    assert outs["phase"] == "Succeeded"
    assert outs["podTemplate"]["spec"]["containers"][0]["image"].endswith(":6.3.0")
    assert outs["plan"] == "canary 10% -> 50% in 5 steps every 1m"
    # The kubeconfig stays under its own (secret) key only.
    carrying = [key for key, value in outs.items() if "s3cr3t" in repr(value)]
    assert carrying == ["kubeconfig"]


def test_update_config_only_does_not_analyse(
    props: dict[str, Any], cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollout, "_scheduler", lambda *_: pytest.fail("analysed"))
    outs = RolloutProvider().update("id", state_of(props), {**props, "interval": "30s"}).outs
    assert outs is not None
    assert outs["interval"] == "30s"
    assert cluster.saves == []


def test_update_promotes(
    props: dict[str, Any], cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_report(monkeypatch, cluster, ReleaseReport(outcome="promoted", strategy="canary"))
    news = with_image(props, "ghcr.io/stefanprodan/podinfo:6.3.1")
    outs = RolloutProvider().update("id", state_of(props), news).outs
    assert outs is not None
    assert outs["phase"] == "Promoting"
    assert outs["revision"] == template_revision(news["podTemplate"])
    assert outs["podTemplate"]["spec"]["containers"][0]["image"].endswith(":6.3.1")
    # Each promotion has its own id, so the finaliser acts even for a template seen before.
    again = RolloutProvider().update("id", state_of(props), news).outs
    assert again is not None
    assert len({rollout.INITIAL_PROMOTION, outs["promotion"], again["promotion"]}) == 3


def test_update_rolled_back_records_and_raises_the_reason(
    props: dict[str, Any], cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = ReleaseReport(
        outcome="rolled_back",
        strategy="canary",
        failed_checks=5,
        reason="request-success-rate 42 < 99",
    )
    use_report(monkeypatch, cluster, report)
    news = with_image(props, "bad:1")
    with pytest.raises(RolloutFailed, match=r"request-success-rate 42 < 99 \(5 failed checks\)"):
        RolloutProvider().update("id", state_of(props), news)
    revision = template_revision(news["podTemplate"])
    assert cluster.record is not None
    assert cluster.record["phase"] == "Failed"
    assert cluster.record["revision"] == revision
    assert cluster.record["reason"] == "request-success-rate 42 < 99"


def test_update_of_a_failed_revision_fails_fast(
    props: dict[str, Any], cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    news = with_image(props, "bad:1")
    revision = template_revision(news["podTemplate"])
    cluster.record = {"phase": "Failed", "revision": revision, "reason": "latency 900 > 500"}
    monkeypatch.setattr(rollout, "_scheduler", lambda *_: pytest.fail("analysed"))
    with pytest.raises(RolloutFailed) as raised:
        RolloutProvider().update("id", state_of(props), news)
    assert str(raised.value) == (
        f"podinfo: release of bad:1 ({revision}) already failed: latency 900 > 500; "
        "set retryFailed to analyse it again"
    )


def test_update_of_a_failed_revision_retries_when_asked(
    props: dict[str, Any], cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    news = {**with_image(props, "bad:1"), "retryFailed": True}
    revision = template_revision(news["podTemplate"])
    cluster.record = {"phase": "Failed", "revision": revision, "reason": "latency 900 > 500"}
    use_report(monkeypatch, cluster, ReleaseReport(outcome="promoted", strategy="canary"))
    outs = RolloutProvider().update("id", state_of(props), news).outs
    assert outs is not None
    assert outs["phase"] == "Promoting"


def test_delete_removes_the_record(props: dict[str, Any], cluster: FakeCluster) -> None:
    cluster.record = {"phase": "Succeeded"}
    RolloutProvider().delete("default/podinfo", props)
    assert cluster.deleted


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
        outs.update(podTemplate={"spec": {}}, revision="abc", phase="Succeeded", plan="p")
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
        assert values == [{"spec": {}}, "abc", "Succeeded", "p"]

    return pulumi.Output.all(
        resource.pod_template, resource.revision, resource.phase, resource.plan
    ).apply(check)


# -- the change review ------------------------------------------------------------------------


def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollout, "_connect", lambda *_: pytest.fail("check/diff used the network"))


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
    )


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


class FinaliseRecorder:
    def __init__(self) -> None:
        self.finalised = 0

    def finalise(self) -> None:
        self.finalised += 1


@pytest.fixture
def finalise(monkeypatch: pytest.MonkeyPatch, cluster: FakeCluster) -> FinaliseRecorder:
    recorder = FinaliseRecorder()
    monkeypatch.setattr(rollout, "_scheduler", lambda *_: recorder)
    return recorder


def finaliser_props(props: dict[str, Any], promotion: str, phase: str) -> dict[str, Any]:
    return {**props, "promotion": promotion, "phase": phase, "primary": "default/podinfo-primary"}


def test_finaliser_create_after_an_initial_release_does_nothing(
    props: dict[str, Any], finalise: FinaliseRecorder
) -> None:
    outs = rollout.FinaliserProvider().create(finaliser_props(props, "initial", "Succeeded")).outs
    assert finalise.finalised == 0
    assert outs is not None and outs["promotion"] == "initial"


def test_finaliser_finalises_each_promotion_once(
    props: dict[str, Any], finalise: FinaliseRecorder
) -> None:
    provider = rollout.FinaliserProvider()
    first = finaliser_props(props, "r1", "Succeeded")
    promoted = finaliser_props(props, "r2", "Promoting")
    assert provider.diff("id", first, promoted).changes is True
    provider.update("id", first, promoted)
    assert finalise.finalised == 1
    assert provider.diff("id", promoted, promoted).changes is False
    provider.update("id", promoted, {**promoted, "interval": "30s"})
    assert finalise.finalised == 1


def test_finaliser_rerun_after_a_failed_finalise_acts_again(
    props: dict[str, Any], finalise: FinaliseRecorder
) -> None:
    """A finalise that raised left the old state, so the next `pulumi up` diffs and retries."""
    provider = rollout.FinaliserProvider()
    old = finaliser_props(props, "r1", "Succeeded")
    promoted = finaliser_props(props, "r2", "Promoting")
    provider.update("id", old, promoted)
    provider.update("id", old, promoted)
    assert finalise.finalised == 2


def test_update_of_a_template_stopped_by_an_error_is_analysed_again(
    props: dict[str, Any], cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the canary's fault (an API error, a cleared way): no fail-fast on the next run."""
    news = with_image(props, "x:2")
    revision = template_revision(news["podTemplate"])
    cluster.record = {"phase": "Failed", "revision": revision, "retryable": True, "reason": "e"}
    use_report(monkeypatch, cluster, ReleaseReport(outcome="promoted", strategy="canary"))
    outs = RolloutProvider().update("id", state_of(props), news).outs
    assert outs is not None and outs["phase"] == "Promoting"


# -- the guard --------------------------------------------------------------------------------


class ClearWayRecorder:
    def __init__(self) -> None:
        self.cleared = 0

    def clear_way(self) -> None:
        self.cleared += 1


@pytest.fixture
def clear_way(monkeypatch: pytest.MonkeyPatch, cluster: FakeCluster) -> ClearWayRecorder:
    recorder = ClearWayRecorder()
    monkeypatch.setattr(rollout, "_scheduler", lambda *_: recorder)
    return recorder


def test_guard_clears_the_way_for_each_new_template_only(
    props: dict[str, Any], clear_way: ClearWayRecorder
) -> None:
    guard = rollout.GuardProvider()
    state = guard.create(props).outs
    assert state is not None and clear_way.cleared == 1  # adopting a canary with traffic
    news = with_image(props, "x:2")
    assert guard.diff("id", state, news).changes is True
    state = guard.update("id", state, news).outs
    assert state is not None and clear_way.cleared == 2
    assert guard.diff("id", state, news).changes is False
    guard.update("id", state, {**news, "interval": "30s"})
    assert clear_way.cleared == 2
