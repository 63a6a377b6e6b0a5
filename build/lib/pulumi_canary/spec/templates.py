"""Flagger's `MetricTemplate` and `AlertProvider`, with credentials kept out of the spec text."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from .base import Secret, SpecModel
from .canary import ObjectMeta


class SecretRef(SpecModel):
    name: str = Field(min_length=1)


class Credentials(SpecModel):
    """Read from a Kubernetes Secret (`secretRef`) or given in Python as secret values."""

    token: Secret | None = None
    username: Secret | None = None
    password: Secret | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Credentials:
        if self.token is not None and (self.username is not None or self.password is not None):
            raise ValueError("use a token or a username and password, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both username and password")
        return self


class MetricProvider(SpecModel):
    type: Literal["prometheus"] = Field(
        description="Only Prometheus: the other providers of Flagger's schema are not supported."
    )
    address: str | None = None
    headers: dict[str, list[str]] | None = None
    secret_ref: SecretRef | None = None
    insecure_skip_verify: bool = False
    region: str | None = None


class MetricTemplateSpec(SpecModel):
    provider: MetricProvider
    query: str = Field(min_length=1)


class MetricTemplate(SpecModel):
    """A reusable PromQL query; `credentials` is this project's addition for secrets from Pulumi."""

    api_version: Literal["flagger.app/v1beta1"] = "flagger.app/v1beta1"
    kind: Literal["MetricTemplate"] = "MetricTemplate"
    metadata: ObjectMeta
    spec: MetricTemplateSpec
    credentials: Credentials | None = Field(default=None, exclude=True)

    @property
    def name(self) -> str:
        return self.metadata.name


AlertProviderType = Literal["slack", "msteams", "discord", "rocket", "gchat", "webhook"]


class AlertProviderSpec(SpecModel):
    type: AlertProviderType
    address: Secret | None = Field(
        default=None, description="The hook URL: a secret, because it embeds its own credential."
    )
    secret_ref: SecretRef | None = None
    channel: str = "general"
    username: str = "flagger"
    proxy: str | None = None

    @model_validator(mode="after")
    def _addressed(self) -> AlertProviderSpec:
        if self.address is None and self.secret_ref is None:
            raise ValueError("set address or secretRef")
        return self


class AlertProvider(SpecModel):
    api_version: Literal["flagger.app/v1beta1"] = "flagger.app/v1beta1"
    kind: Literal["AlertProvider"] = "AlertProvider"
    metadata: ObjectMeta
    spec: AlertProviderSpec
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.metadata.name
