"""The tutorial's Slack webhook: a notification, not a gate, and its URL never printed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.analysis import plan
from components.provider.rollout import RolloutProvider
from components.spec import HookType, ReleaseSpec, SpecError
from components.spec.timing import Timing
from tests.conftest import load_yaml

SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/XyZ-s3cret-token"
# The tutorial's snippet, with a URL whose token a leak would show.
SNIPPET = {
    "name": "slack",
    "url": SLACK_URL,
    "timeout": "5s",
    "metadata": {"type": "slack", "channel": "deployments", "username": "flagger"},
}
NOTE = (
    "spec.analysis.webhooks[1] 'slack' is a Slack notification, not a gate: its events are "
    "posted to Slack as alerts; set type: rollout to gate on it"
)


def canary_with(*hooks: dict[str, Any]) -> dict[str, Any]:
    """The tutorial canary with its load test, then `hooks`."""
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"]["webhooks"] += copy.deepcopy(list(hooks))
    return canary


def release(*hooks: dict[str, Any]) -> ReleaseSpec:
    return ReleaseSpec.parse(canary=canary_with(*hooks), deployment=load_yaml("deployment.yaml"))


def test_the_tutorial_snippet_is_a_notification_not_a_gate() -> None:
    spec = release(SNIPPET)
    analysis = spec.spec.analysis

    assert [hook.name for hook in analysis.slack_notifications] == ["slack"]
    assert [hook.name for hook in analysis.hooks(HookType.ROLLOUT)] == ["load-test"]
    assert spec.notes == [NOTE]
    (provider,) = spec.slack_notifications
    assert provider.name == "slack"
    assert provider.spec.type == "slack"
    assert (provider.spec.channel, provider.spec.username) == ("deployments", "flagger")
    assert provider.spec.address is not None
    assert provider.spec.address.get_secret_value() == SLACK_URL


def test_a_canary_whose_only_webhook_notifies_slack_has_no_rollout_gate() -> None:
    canary = canary_with()
    canary["spec"]["analysis"]["webhooks"] = [SNIPPET]
    spec = ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))

    assert not plan(spec.spec, Timing.of(spec.spec.analysis)).has_hooks(HookType.ROLLOUT)


def test_a_slack_incoming_webhook_url_alone_is_a_notification_with_flaggers_defaults() -> None:
    spec = release({"name": "notify", "url": SLACK_URL})

    (provider,) = spec.slack_notifications
    assert (provider.spec.channel, provider.spec.username) == ("general", "flagger")
    assert spec.spec.analysis.hooks(HookType.ROLLOUT)[-1].name == "load-test"


@pytest.mark.parametrize("hook_type", ["rollout", "pre-rollout", "event"])
def test_an_explicit_type_keeps_the_hook_what_it_says(hook_type: str) -> None:
    spec = release({**SNIPPET, "type": hook_type})

    assert spec.slack_notifications == ()
    assert spec.notes == []
    assert [hook.name for hook in spec.spec.analysis.hooks(HookType(hook_type))][-1] == "slack"


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com.example.org/services/T/B/x",
        "https://hooks.slack.com/workflows/T/B/x",
        "http://hooks.slack.com/services/T/B/x",
    ],
)
def test_other_urls_without_metadata_type_slack_stay_gates(url: str) -> None:
    spec = release({"name": "hook", "url": url})

    assert spec.slack_notifications == ()
    assert spec.spec.analysis.hooks(HookType.ROLLOUT)[-1].name == "hook"


@pytest.mark.parametrize(
    "edit",
    [
        {"timeout": "soon"},  # an error in the same webhook
        {"retries": -1},
        {"typo": True},
        {"url": {"href": SLACK_URL}},  # the URL itself is the bad value
    ],
)
def test_no_error_about_the_webhook_shows_its_url(edit: dict[str, Any]) -> None:
    with pytest.raises(SpecError) as raised:
        release({**SNIPPET, **edit})

    assert "webhooks[1]" in str(raised.value)
    assert "s3cret" not in str(raised.value)
    assert "hooks.slack.com" not in str(raised.value)


def test_an_error_about_the_webhooks_list_hides_the_urls() -> None:
    canary = canary_with()
    canary["spec"]["analysis"]["webhooks"] = {"slack": SNIPPET}  # a map, not a list

    with pytest.raises(SpecError) as raised:
        ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))

    assert "spec.analysis.webhooks" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_no_model_or_provider_repr_shows_the_url() -> None:
    spec = release(SNIPPET)

    assert "s3cret" not in repr(spec.slack_notifications)
    assert "s3cret" not in str(spec.slack_notifications[0].to_manifest())


def test_the_preview_says_so_in_one_line_without_the_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    canary = canary_with(SNIPPET)
    deployment = load_yaml("deployment.yaml")
    props = {
        "canary": canary,
        "deployment": deployment,
        "podTemplate": copy.deepcopy(deployment["spec"]["template"]),
    }
    news = copy.deepcopy(props)
    news["podTemplate"]["spec"]["containers"][0]["image"] = "ghcr.io/stefanprodan/podinfo:6.3.1"
    olds = {**props, "revision": "an-older-revision"}

    RolloutProvider().diff("id", olds, news)

    out = capsys.readouterr().out
    assert f"podinfo: note: {NOTE}\n" in out
    assert "s3cret" not in out
    assert "hooks.slack.com" not in out
