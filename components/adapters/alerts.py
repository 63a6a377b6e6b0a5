"""Release notifications in the formats of Flagger's AlertProviders.

Alerts must never break a release: a failed delivery becomes a warning string naming the
provider, its type and the HTTP status. Hook URLs embed their own credential, so no URL,
response body or exception text ever reaches a warning or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from ..spec import Alert, AlertProvider, ReleaseSpec
from .endpoints import Endpoints

Severity = Literal["info", "warn", "error"]
SecretReader = Callable[[str, str], Mapping[str, str]]

_LOG = logging.getLogger(__name__)
_RANK: dict[str, int] = {"info": 0, "warn": 1, "error": 2}
_SLACK_COLORS = {"info": "good", "warn": "warning", "error": "danger"}
_TEAMS_COLORS = {"info": "0076D7", "warn": "FFA500", "error": "FF0000"}


@dataclass(frozen=True)
class AlertMessage:
    """What happened to a release; `fields` keep their order in every format."""

    name: str
    namespace: str
    text: str
    severity: Severity = "info"
    fields: Mapping[str, str] = field(default_factory=dict)
    cluster: str | None = None

    @property
    def title(self) -> str:
        return f"{self.name}.{self.namespace}"

    def all_fields(self) -> dict[str, str]:
        """The fields with `Cluster` first when it is known, as Flagger adds it."""
        cluster = {"Cluster": self.cluster} if self.cluster else {}
        return {**cluster, **self.fields}


def admits(alert_severity: str, message_severity: Severity) -> bool:
    """Flagger's filter: info gets everything, warn gets warn and error, error gets error.

    Deliberate divergence: Flagger's code matches nothing for an empty severity, although its
    CRD defaults it to info; here "" means info, so an alert without severity is delivered.
    """
    return _RANK[message_severity] >= _RANK[alert_severity or "info"]


def slack(message: AlertMessage, provider: AlertProvider) -> dict[str, Any]:
    """Slack's attachment form, also accepted by Discord's and Rocket.Chat's Slack endpoints."""
    fields = [
        {"title": name, "value": value, "short": True}
        for name, value in message.all_fields().items()
    ]
    return {
        "channel": provider.spec.channel,
        "username": provider.spec.username,
        "attachments": [
            {
                "color": _SLACK_COLORS[message.severity],
                "author_name": message.title,
                "text": message.text,
                "mrkdwn_in": ["text"],
                "fields": fields,
            }
        ],
    }


def msteams(message: AlertMessage, provider: AlertProvider) -> dict[str, Any]:
    """An Office 365 connector MessageCard, as Flagger sends to Teams."""
    facts = [{"name": name, "value": value} for name, value in message.all_fields().items()]
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": _TEAMS_COLORS[message.severity],
        "summary": message.title,
        "sections": [
            {"activityTitle": message.text, "activitySubtitle": message.title, "facts": facts}
        ],
    }


def gchat(message: AlertMessage, provider: AlertProvider) -> dict[str, Any]:
    """Google Chat's card: a header, the text, then one key/value widget per field."""
    widgets: list[dict[str, Any]] = [{"textParagraph": {"text": message.text}}]
    widgets += [
        {"keyValue": {"topLabel": name, "content": value}}
        for name, value in message.all_fields().items()
    ]
    return {
        "cards": [
            {
                "header": {"title": message.title, "subtitle": provider.spec.username},
                "sections": [{"widgets": widgets}],
            }
        ]
    }


def generic(message: AlertMessage, provider: AlertProvider) -> dict[str, Any]:
    """This project's plain JSON for any receiver; the timestamp is RFC 3339 in UTC."""
    return {
        "name": message.name,
        "namespace": message.namespace,
        "severity": message.severity,
        "message": message.text,
        "fields": message.all_fields(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


FORMATS: dict[str, Callable[[AlertMessage, AlertProvider], dict[str, Any]]] = {
    "slack": slack,
    "discord": slack,
    "rocket": slack,
    "msteams": msteams,
    "gchat": gchat,
    "webhook": generic,
}


class _DeliveryError(Exception):
    """A delivery problem, worded to be safe to show (no URL, no body)."""


# A Slack notification webhook has no severity of its own: info, so it gets every alert (the
# start, each step, halts, the outcome), which is what Flagger's docs promise for it.
NOTIFICATION_SEVERITY: Severity = "info"


class Notifier:
    """Sends a message to every alert of one release whose severity admits it, and to its
    Slack notification webhooks (`ReleaseSpec.slack_notifications`)."""

    def __init__(
        self,
        endpoints: Endpoints,
        release: ReleaseSpec,
        *,
        secrets: SecretReader | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._endpoints = endpoints
        self._release = release
        self._secrets = secrets
        self._timeout = timeout

    def notify(self, message: AlertMessage) -> list[str]:
        """Returns (and logs) one warning per failed delivery; never raises for delivery."""
        outcomes = [
            self._alert(alert, message)
            for alert in self._release.spec.analysis.alerts
            if admits(alert.severity, message.severity)
        ]
        if admits(NOTIFICATION_SEVERITY, message.severity):
            outcomes += [
                self._deliver(provider, message, f"webhook {provider.name} (Slack notification)")
                for provider in self._release.slack_notifications
            ]
        warnings = [outcome for outcome in outcomes if outcome is not None]
        for warning in warnings:
            _LOG.warning(warning)
        return warnings

    def _alert(self, alert: Alert, message: AlertMessage) -> str | None:
        ref = alert.provider_ref
        provider = self._release.alert_provider(ref.name, ref.namespace)
        if provider is None:
            return f"alert {alert.name}: no AlertProvider {ref.name}"
        label = f"alert provider {provider.name} ({provider.spec.type})"
        return self._deliver(provider, message, label)

    def _deliver(self, provider: AlertProvider, message: AlertMessage, label: str) -> str | None:
        """Posts in the provider's format; a failure is a warning starting with `label`."""
        body = FORMATS[provider.spec.type](message, provider)
        try:
            self._post(self._address(provider, self._release.namespace), body, provider.spec.proxy)
        except _DeliveryError as problem:
            return f"{label}: {problem}"
        return None

    def _address(self, provider: AlertProvider, namespace: str) -> str:
        """The hook URL from the spec or from key `address` of the provider's Secret."""
        spec = provider.spec
        if spec.address is not None:
            url = spec.address.get_secret_value()
        else:
            assert spec.secret_ref is not None  # the model requires address or secretRef
            url = self._secret_address(
                provider.metadata.namespace or namespace, spec.secret_ref.name
            )
        if spec.type != "discord":
            return url
        try:  # Discord takes Slack's format on the `/slack` sub-path
            parsed = httpx.URL(url)
        except httpx.InvalidURL as error:  # the URL is a credential: named by type only
            raise _DeliveryError(f"not a URL ({type(error).__name__})") from None
        return str(parsed.copy_with(path=f"{parsed.path.rstrip('/')}/slack"))

    def _secret_address(self, namespace: str, name: str) -> str:
        if self._secrets is None:
            raise _DeliveryError(f"cannot read Secret {namespace}/{name}: no secret reader")
        try:
            address = self._secrets(namespace, name).get("address")
        except Exception as error:  # a missing Secret must not break the release
            raise _DeliveryError(
                f"cannot read Secret {namespace}/{name} ({type(error).__name__})"
            ) from None
        if not address:
            raise _DeliveryError(f"Secret {namespace}/{name} has no key address")
        return address

    def _post(self, url: str, body: Mapping[str, Any], proxy: str | None) -> None:
        try:
            if proxy:
                with httpx.Client(proxy=proxy, timeout=self._timeout) as client:
                    response = client.post(url, json=body)
            else:
                response = self._endpoints.request("POST", url, json=body, timeout=self._timeout)
        except httpx.TimeoutException:
            raise _DeliveryError(f"timed out after {self._timeout:g}s") from None
        except Exception as error:  # only the type: messages of URL errors quote the URL
            raise _DeliveryError(f"not delivered ({type(error).__name__})") from None
        if not response.is_success:
            raise _DeliveryError(f"answered {response.status_code}")
