"""Releases of tracked configs through the gate's providers, over in-memory adapters.

The tutorial's podinfo reads a ConfigMap through `envFrom` and a Secret through `secretKeyRef`,
both passed in `configs`: a change to either alone is a release with a new revision, reviewed by
its keys; a failed one leaves the promoted configs as they were, and no Secret value reaches a
line, an error or an output other than the configs' own.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from pulumi.output import Unknown

from components.adapters.records import RecordPhase
from components.errors import ReleaseFailed
from components.provider import rollout
from components.provider.rollout import GuardProvider, RolloutProvider
from components.spec import template_revision
from tests.conftest import config_manifest
from tests.fakes import gate_inputs
from tests.provider import test_rollout_provider
from tests.provider.test_rollout_provider import World, no_network, state_of, with_image

PASSWORD = "pa55-w0rd-s3cret"
NEW_PASSWORD = "n3w-pa55-s3cret"


DEFAULT = {"namespace": "default"}


def config_map(**data: str) -> dict[str, Any]:
    return config_manifest("ConfigMap", "podinfo-config", metadata=DEFAULT, data=data)


def secret(password: str) -> dict[str, Any]:
    return config_manifest(
        "Secret", "podinfo-db", metadata=DEFAULT, stringData={"password": password}
    )


@pytest.fixture
def props(canary: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any]:
    """As the engine passes them: camelCase keys, numbers as floats, secrets unwrapped."""
    deployment["spec"]["replicas"] = 2.0
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [{"configMapRef": {"name": "podinfo-config"}}]
    container["env"].append(
        {
            "name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "podinfo-db", "key": "password"}},
        }
    )
    configs = [config_map(PODINFO_UI_MESSAGE="hello", PODINFO_UI_COLOR="blue"), secret(PASSWORD)]
    return gate_inputs(canary, deployment, configs=configs)


# The same fake cluster, built on this module's `props`: pytest resolves a fixture's arguments by
# name where the test asks for it.
world = test_rollout_provider.world


def with_configs(props: dict[str, Any], *configs: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(props), "configs": list(configs)}


def message_changed(props: dict[str, Any]) -> dict[str, Any]:
    return with_configs(
        props, config_map(PODINFO_UI_MESSAGE="bonjour", PODINFO_UI_COLOR="blue"), secret(PASSWORD)
    )


def secrets_of(outs: dict[str, Any]) -> list[str]:
    """The output keys whose values carry a Secret's value, as given or base64-encoded."""
    spellings = [
        spelling
        for password in (PASSWORD, NEW_PASSWORD)
        for spelling in (password, base64.b64encode(password.encode()).decode())
    ]
    return [key for key, value in outs.items() if any(s in repr(value) for s in spellings)]


def test_a_change_of_a_config_alone_is_a_release_reviewed_by_its_keys(
    props: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_network(monkeypatch)
    news = message_changed(props)
    assert news["podTemplate"] == props["podTemplate"]
    assert RolloutProvider().diff("id", state_of(props), news).changes is True
    assert capsys.readouterr().out == (
        "podinfo: ConfigMap podinfo-config changed (keys: PODINFO_UI_MESSAGE); "
        "canary 10% -> 50% in 5 steps every 1m; "
        "gates: request-success-rate >= 99, request-duration <= 500ms; "
        "rollback after 5 failed checks; at most ~9m\n"
        "podinfo: watching request-success-rate < 50 every 15s: a breach rolls back at once\n"
    )


def test_a_change_of_a_secret_is_reviewed_without_its_value(
    props: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_network(monkeypatch)
    news = with_configs(props, props["configs"][0], secret(NEW_PASSWORD))
    assert RolloutProvider().diff("id", state_of(props), news).changes is True
    out = capsys.readouterr().out
    assert out.startswith("podinfo: Secret podinfo-db changed (keys: password); canary 10%")
    assert PASSWORD not in out and NEW_PASSWORD not in out


def test_an_image_and_a_config_change_are_reviewed_together(
    props: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_network(monkeypatch)
    news = with_image(message_changed(props), "ghcr.io/stefanprodan/podinfo:6.3.1")
    RolloutProvider().diff("id", state_of(props), news)
    assert capsys.readouterr().out.startswith(
        "podinfo: ghcr.io/stefanprodan/podinfo:6.3.0 -> 6.3.1, "
        "ConfigMap podinfo-config changed (keys: PODINFO_UI_MESSAGE); canary 10%"
    )


def test_a_config_change_is_analysed_and_promoted_with_the_new_revision(
    props: dict[str, Any], world: World
) -> None:
    olds, news = state_of(props), message_changed(props)
    outs = RolloutProvider().update("id", olds, news).outs
    assert outs is not None
    assert outs["revision"] != olds["revision"]
    assert outs["revision"] != template_revision(news["podTemplate"])
    assert world.metrics.calls == 5 * 2
    assert outs["phase"] == "Promoting"
    assert outs["promotedTemplate"] == olds["promotedTemplate"]
    promoted = outs["promotedConfigs"]
    assert promoted["configmap/podinfo-config"]["data"]["PODINFO_UI_MESSAGE"] == "bonjour"
    assert set(promoted) == {"configmap/podinfo-config", "secret/podinfo-db"}
    record = world.cluster.record()
    assert record is not None and record.revision == outs["revision"]
    assert secrets_of(outs) == ["configs", "promotedConfigs"]


def test_a_failed_config_release_leaves_the_promoted_configs_and_fails_fast_after(
    props: dict[str, Any], world: World
) -> None:
    """The engine keeps a failed update's old state: the copies are declared from it."""
    world.metrics.values["request-success-rate"] = 42.0
    olds, news = state_of(props), with_configs(props, props["configs"][0], secret(NEW_PASSWORD))
    before = copy.deepcopy(olds)
    with pytest.raises(ReleaseFailed) as raised:
        RolloutProvider().update("id", olds, news)
    message = str(raised.value)
    assert message.startswith(
        "podinfo: release of ghcr.io/stefanprodan/podinfo:6.3.0, ConfigMap podinfo-config, "
        "Secret podinfo-db ("
    )
    assert "rolled back, the primary is unchanged" in message
    assert PASSWORD not in message and NEW_PASSWORD not in message
    assert olds == before
    record = world.cluster.record()
    assert record is not None and record.phase is RecordPhase.FAILED
    with pytest.raises(ReleaseFailed, match="already failed"):
        RolloutProvider().update("id", olds, news)
    # Back to the promoted configs: nothing to release, and the old copies' content stays.
    assert (
        RolloutProvider().diff("id", olds, with_configs(props, *props["configs"])).changes is False
    )
    carried = RolloutProvider().update("id", olds, copy.deepcopy(props)).outs
    assert carried is not None and carried["promotedConfigs"] == before["promotedConfigs"]


def test_an_opted_out_config_changes_no_revision(props: dict[str, Any]) -> None:
    def opted_out(**data: str) -> dict[str, Any]:
        manifest = config_map(**data)
        manifest["metadata"]["annotations"] = {"flagger.app/config-tracking": "disabled"}
        return manifest

    olds = state_of(with_configs(props, opted_out(PODINFO_UI_MESSAGE="hello"), secret(PASSWORD)))
    news = with_configs(props, opted_out(PODINFO_UI_MESSAGE="bonjour"), secret(PASSWORD))
    assert RolloutProvider().diff("id", olds, news).changes is False
    assert "configmap/podinfo-config" not in olds["promotedConfigs"]


def test_a_config_unknown_at_preview_may_change(props: dict[str, Any]) -> None:
    news = copy.deepcopy(props)
    news["configs"][1]["stringData"]["password"] = Unknown()  # type: ignore[no-untyped-call]
    assert RolloutProvider().diff("id", state_of(props), news).changes is True


def test_the_guard_clears_the_way_before_a_config_changes(
    props: dict[str, Any], world: World
) -> None:
    guard = GuardProvider()
    state = guard.create(props).outs
    assert state is not None
    news = message_changed(props)
    assert guard.diff("id", state, news).changes is True
    world.cluster.canary_weight = 20
    guard.update("id", state, news)
    assert world.cluster.canary_weight == 0
    assert guard.diff("id", state, copy.deepcopy(props)).changes is False


def test_a_first_release_promotes_the_configs_as_they_are(
    props: dict[str, Any], world: World
) -> None:
    outs = RolloutProvider().create(props).outs
    assert outs is not None and outs["promotion"] == rollout.INITIAL_PROMOTION
    assert outs["promotedConfigs"]["configmap/podinfo-config"]["data"] == {
        "PODINFO_UI_MESSAGE": "hello",
        "PODINFO_UI_COLOR": "blue",
    }
    assert world.metrics.calls == 0


def test_a_recreated_rollout_over_a_primary_on_other_configs_analyses_first(
    props: dict[str, Any], world: World
) -> None:
    """State lost while the configs changed: the primary's checksum says it runs others."""
    world.cluster.templates["podinfo-primary"] = world.cluster.pod_template("podinfo-primary")
    outs = RolloutProvider().create(message_changed(props)).outs
    assert outs is not None and outs["promotion"] != rollout.INITIAL_PROMOTION
    assert world.metrics.calls == 5 * 2


def test_a_config_the_template_does_not_reference_fails_the_check(props: dict[str, Any]) -> None:
    news = with_configs(
        props, *props["configs"], {**config_map(a="b"), "metadata": {"name": "typo"}}
    )
    failures = RolloutProvider().check({}, news).failures
    assert [(f.property, f.reason) for f in failures] == [
        (
            "configs[2].metadata.name",
            "configs[2].metadata.name: the pod template references no ConfigMap of that name "
            "(it references: podinfo-config) (got 'typo')",
        )
    ]


def test_state_from_before_config_tracking_has_no_diff(props: dict[str, Any]) -> None:
    """A stack that tracks nothing: its old state has no `promotedConfigs` and the template's
    revision, which stays the release's."""
    plain = {**copy.deepcopy(props), "configs": []}
    container = plain["podTemplate"]["spec"]["containers"][0]
    del container["envFrom"], container["env"][1]
    plain["deployment"]["spec"]["template"] = copy.deepcopy(plain["podTemplate"])
    old = state_of(plain)
    del old["promotedConfigs"], old["configs"]
    assert old["revision"] == template_revision(plain["podTemplate"])
    assert RolloutProvider().diff("id", old, plain).changes is False
