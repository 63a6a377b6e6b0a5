"""Alerts against a recording stub: each provider's JSON, severity filtering, secret URLs."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import pytest
from http_stub import Reply, Stub

from components.adapters.alerts import AlertMessage, Notifier, Severity, admits, msteams, slack
from components.adapters.endpoints import Endpoints
from components.spec import AlertProvider, ReleaseSpec

SECRET = "XyZ-very-secret-hook-token"
FIELDS = {
    "Target": "Deployment/podinfo.default",
    "Failed checks threshold": "5",
    "Progress deadline": "600s",
    "Traffic routing": "Weight step: 10 max: 50",
}
MESSAGE = AlertMessage(
    "podinfo", "default", "New revision detected", "info", FIELDS, cluster="prod-eu"
)


def provider(name: str, kind: str, address: str | None = None, **spec: Any) -> dict[str, Any]:
    spec = {"type": kind, **spec}
    if address is not None:
        spec["address"] = address
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def release(
    canary: dict[str, Any],
    deployment: dict[str, Any],
    providers: list[dict[str, Any]],
    severities: Mapping[str, str] | None = None,
) -> ReleaseSpec:
    """The tutorial canary with one alert per provider (severity info unless given)."""
    chosen = severities or {}
    canary["spec"]["analysis"]["alerts"] = [
        {
            "name": f"to-{item['metadata']['name']}",
            "severity": chosen.get(item["metadata"]["name"], "info"),
            "providerRef": {"name": item["metadata"]["name"]},
        }
        for item in providers
    ]
    return ReleaseSpec.parse(canary=canary, deployment=deployment, alert_providers=providers)


def hook_url(stub: Stub, name: str) -> str:
    return f"{stub.url}/{name}/{SECRET}"


def notify(
    endpoints: Endpoints, spec: ReleaseSpec, message: AlertMessage = MESSAGE, **options: Any
) -> list[str]:
    return Notifier(endpoints, spec, **options).notify(message)


def test_slack_rocket_and_discord_share_slacks_shape(
    stub: Stub, endpoints: Endpoints, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    providers = [
        provider("s", "slack", hook_url(stub, "s"), channel="deploys", username="canary-bot"),
        provider("r", "rocket", hook_url(stub, "r"), channel="deploys", username="canary-bot"),
        provider(
            "d", "discord", hook_url(stub, "d") + "/", channel="deploys", username="canary-bot"
        ),
    ]

    assert notify(endpoints, release(canary, deployment, providers)) == []

    assert [seen.path for seen in stub.seen] == [
        f"/s/{SECRET}",
        f"/r/{SECRET}",
        f"/d/{SECRET}/slack",
    ]
    expected = {
        "channel": "deploys",
        "username": "canary-bot",
        "attachments": [
            {
                "color": "good",
                "author_name": "podinfo.default",
                "text": "New revision detected",
                "mrkdwn_in": ["text"],
                "fields": [
                    {"title": "Cluster", "value": "prod-eu", "short": True},
                    *({"title": k, "value": v, "short": True} for k, v in FIELDS.items()),
                ],
            }
        ],
    }
    assert all(seen.body == expected for seen in stub.seen)


@pytest.mark.parametrize(
    ("severity", "slack_color", "teams_color"),
    [("info", "good", "0076D7"), ("warn", "warning", "FFA500"), ("error", "danger", "FF0000")],
)
def test_colors_follow_severity(severity: Severity, slack_color: str, teams_color: str) -> None:
    message = AlertMessage("podinfo", "default", "Canary failed", severity)
    target = AlertProvider.model_validate(provider("s", "slack", "https://hooks.example/x"))

    assert slack(message, target)["attachments"][0]["color"] == slack_color
    assert slack(message, target)["attachments"][0]["fields"] == []
    assert msteams(message, target)["themeColor"] == teams_color


def test_msteams_message_card(
    stub: Stub, endpoints: Endpoints, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    notify(endpoints, release(canary, deployment, [provider("t", "msteams", hook_url(stub, "t"))]))

    assert stub.seen[0].body == {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "0076D7",
        "summary": "podinfo.default",
        "sections": [
            {
                "activityTitle": "New revision detected",
                "activitySubtitle": "podinfo.default",
                "facts": [
                    {"name": "Cluster", "value": "prod-eu"},
                    *({"name": k, "value": v} for k, v in FIELDS.items()),
                ],
            }
        ],
    }


def test_gchat_card(
    stub: Stub, endpoints: Endpoints, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    notify(endpoints, release(canary, deployment, [provider("g", "gchat", hook_url(stub, "g"))]))

    assert stub.seen[0].body == {
        "cards": [
            {
                "header": {"title": "podinfo.default", "subtitle": "flagger"},
                "sections": [
                    {
                        "widgets": [
                            {"textParagraph": {"text": "New revision detected"}},
                            {"keyValue": {"topLabel": "Cluster", "content": "prod-eu"}},
                            *(
                                {"keyValue": {"topLabel": k, "content": v}}
                                for k, v in FIELDS.items()
                            ),
                        ]
                    }
                ],
            }
        ]
    }


def test_generic_webhook_json(
    stub: Stub, endpoints: Endpoints, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    notify(endpoints, release(canary, deployment, [provider("w", "webhook", hook_url(stub, "w"))]))

    body = stub.seen[0].body
    timestamp = body.pop("timestamp")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", timestamp)
    assert body == {
        "name": "podinfo",
        "namespace": "default",
        "severity": "info",
        "message": "New revision detected",
        "fields": {"Cluster": "prod-eu", **FIELDS},
    }


@pytest.mark.parametrize(
    ("alert", "delivered"),
    [
        ("info", {"info", "warn", "error"}),
        ("", {"info", "warn", "error"}),  # deliberate divergence: Flagger delivers nothing
        ("warn", {"warn", "error"}),
        ("error", {"error"}),
    ],
)
def test_severity_matrix(alert: str, delivered: set[str]) -> None:
    severities: tuple[Severity, ...] = ("info", "warn", "error")
    assert {message for message in severities if admits(alert, message)} == delivered


def test_notify_sends_only_where_severity_admits(
    stub: Stub, endpoints: Endpoints, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    providers = [provider(level, "webhook", hook_url(stub, level)) for level in ("info", "error")]
    spec = release(canary, deployment, providers, {"info": "info", "error": "error"})

    notify(endpoints, spec, AlertMessage("podinfo", "default", "Halt", "warn"))
    notify(endpoints, spec, AlertMessage("podinfo", "default", "Rolled back", "error"))

    assert [(seen.path.split("/")[1], seen.body["message"]) for seen in stub.seen] == [
        ("info", "Halt"),
        ("info", "Rolled back"),
        ("error", "Rolled back"),
    ]


def test_address_from_secret(
    stub: Stub, endpoints: Endpoints, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    reads: list[tuple[str, str]] = []

    def secrets(namespace: str, name: str) -> dict[str, str]:
        reads.append((namespace, name))
        return {"address": hook_url(stub, "fromsecret")}

    item = provider("s", "slack", secretRef={"name": "slack-url"})

    assert notify(endpoints, release(canary, deployment, [item]), secrets=secrets) == []
    assert reads == [("default", "slack-url")]
    assert stub.seen[0].path == f"/fromsecret/{SECRET}"


def test_proxy_is_used(
    stub: Stub, endpoints: Endpoints, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    target = f"http://hooks.example.invalid/services/{SECRET}"
    item = provider("s", "slack", target, proxy=stub.url)

    assert notify(endpoints, release(canary, deployment, [item])) == []
    assert stub.seen[0].path == target


def test_failures_warn_without_the_url(
    stub: Stub,
    endpoints: Endpoints,
    canary: dict[str, Any],
    deployment: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stub.default = Reply(500, f"internal error for {hook_url(stub, 'x')}")
    providers = [
        provider("ops", "slack", hook_url(stub, "ops")),
        provider("down", "msteams", f"http://127.0.0.1:1/{SECRET}"),
        provider("slow", "webhook", hook_url(stub, "slow")),
        provider("nosecret", "gchat", secretRef={"name": "gchat-url"}),
        provider("broken", "rocket", secretRef={"name": "rocket-url"}),
    ]
    stub.queued = [Reply(500, SECRET), Reply(delay=1.0)]

    def secrets(namespace: str, name: str) -> dict[str, str]:
        if name == "rocket-url":
            raise LookupError(f"cannot find {SECRET}")
        return {}

    with caplog.at_level(logging.WARNING):
        warnings = notify(
            endpoints, release(canary, deployment, providers), secrets=secrets, timeout=0.3
        )

    assert warnings[0] == "alert provider ops (slack): answered 500"
    assert warnings[1].startswith("alert provider down (msteams): not delivered (ConnectError")
    assert warnings[2] == "alert provider slow (webhook): timed out after 0.3s"
    assert (
        warnings[3]
        == "alert provider nosecret (gchat): Secret default/gchat-url has no key address"
    )
    assert warnings[4] == (
        "alert provider broken (rocket): cannot read Secret default/rocket-url (LookupError)"
    )
    assert len(warnings) == 5
    assert SECRET not in " ".join(warnings)
    assert SECRET not in caplog.text
    assert caplog.messages == warnings


def test_without_secret_reader(
    endpoints: Endpoints, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    item = provider("s", "slack", secretRef={"name": "slack-url"})

    assert notify(endpoints, release(canary, deployment, [item])) == [
        "alert provider s (slack): cannot read Secret default/slack-url: no secret reader"
    ]


# -- a Slack notification webhook (the tutorial's snippet) -------------------------------------


def notifying_slack(canary: dict[str, Any], deployment: dict[str, Any], url: str) -> ReleaseSpec:
    """The tutorial canary with the tutorial's Slack webhook pointed at `url`."""
    canary["spec"]["analysis"]["webhooks"].append(
        {
            "name": "slack",
            "url": url,
            "timeout": "5s",
            "metadata": {"type": "slack", "channel": "deployments", "username": "flagger"},
        }
    )
    return ReleaseSpec.parse(canary=canary, deployment=deployment)


@pytest.mark.parametrize("severity", ["info", "warn", "error"])
def test_a_slack_notification_webhook_gets_every_alert_in_slacks_shape(
    stub: Stub,
    endpoints: Endpoints,
    canary: dict[str, Any],
    deployment: dict[str, Any],
    severity: Severity,
) -> None:
    spec = notifying_slack(canary, deployment, hook_url(stub, "slack"))
    message = AlertMessage("podinfo", "default", "Canary failed", severity)

    assert notify(endpoints, spec, message) == []

    (seen,) = stub.seen
    assert seen.path == f"/slack/{SECRET}"
    assert seen.body == slack(message, spec.slack_notifications[0])
    assert (seen.body["channel"], seen.body["username"]) == ("deployments", "flagger")


def test_a_slack_notification_that_fails_is_one_warning_without_the_url(
    endpoints: Endpoints,
    canary: dict[str, Any],
    deployment: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = notifying_slack(canary, deployment, f"http://127.0.0.1:1/services/{SECRET}")

    with caplog.at_level(logging.WARNING):
        warnings = notify(endpoints, spec)

    (warning,) = warnings
    assert warning.startswith("webhook slack (Slack notification): not delivered (ConnectError")
    assert SECRET not in warning
    assert SECRET not in caplog.text


def test_a_discord_address_that_is_no_url_is_a_warning_without_it(
    endpoints: Endpoints, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    """Discord's address is rewritten to its `/slack` path, which parses it first."""
    providers = [provider("chat", "discord", secretRef={"name": "discord-url"})]

    def secrets(namespace: str, name: str) -> dict[str, str]:
        return {"address": f"https://discord.com:44x/api/webhooks/{SECRET}"}

    warnings = notify(endpoints, release(canary, deployment, providers), secrets=secrets)

    assert warnings == ["alert provider chat (discord): not a URL (InvalidURL)"]
