"""The Istio route fields a Flagger `service` or `analysis.match` may carry, typed so typos fail."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from .base import SpecModel

_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


class StringMatch(SpecModel):
    """Istio's StringMatch: exactly one of exact, prefix or regex.

    Flagger's schema also admits `suffix` in A/B header matches, which Istio's v1 StringMatch
    lacks; it is read as the equivalent anchored RE2 regex, so the VirtualService stays valid.
    """

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _suffix_as_regex(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("suffix"), str):
            data = dict(data)
            suffix = data.pop("suffix")
            if "regex" not in data:
                data["regex"] = ".*" + _RE2_SPECIAL.sub(r"\\\1", suffix)
            else:
                data["suffix"] = suffix  # both given: let `extra="forbid"` name it
        return data

    @model_validator(mode="after")
    def _one_of(self) -> StringMatch:
        chosen = [k for k in ("exact", "prefix", "regex") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(f"set exactly one of exact, prefix or regex, not {chosen or 'none'}")
        return self


class HTTPMatchRequest(SpecModel):
    """Istio's HTTPMatchRequest as Flagger's CRD admits it."""

    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] | None = None
    query_params: dict[str, StringMatch] | None = None
    without_headers: dict[str, StringMatch] | None = None
    ignore_uri_case: bool | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    source_labels: dict[str, str] | None = None
    source_namespace: str | None = None
    gateways: list[str] | None = None


class HTTPRetry(SpecModel):
    attempts: int | None = Field(default=None, ge=0)
    per_try_timeout: str | None = None
    retry_on: str | None = None


class HeaderOperations(SpecModel):
    add: dict[str, str] | None = None
    set: dict[str, str] | None = None
    remove: list[str] | None = None


class Headers(SpecModel):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPRewrite(SpecModel):
    uri: str | None = None
    authority: str | None = None
    type: str | None = None


class CorsPolicy(SpecModel):
    allow_origin: list[str] | None = None
    allow_origins: list[StringMatch] | None = None
    allow_methods: list[str] | None = None
    allow_headers: list[str] | None = None
    expose_headers: list[str] | None = None
    max_age: str | None = None
    allow_credentials: bool | None = None


class TrafficPolicy(SpecModel):
    """The DestinationRule trafficPolicy; nested settings are Istio's own and passed through."""

    connection_pool: dict[str, Any] | None = None
    load_balancer: dict[str, Any] | None = None
    outlier_detection: dict[str, Any] | None = None
    tls: dict[str, Any] | None = None
    port_level_settings: list[dict[str, Any]] | None = None


class SessionAffinity(SpecModel):
    """Sticky canary sessions by cookie (Flagger's sessionAffinity)."""

    cookie_name: str
    primary_cookie_name: str | None = None
    max_age: int = Field(default=86400, ge=1)
    domain: str | None = None
    path: str | None = None
    http_only: bool | None = None
    secure: bool | None = None
    same_site: Literal["Strict", "Lax", "None"] | None = None
    partitioned: bool | None = None


__all__ = [
    "CorsPolicy",
    "HTTPMatchRequest",
    "HTTPRetry",
    "HTTPRewrite",
    "HeaderOperations",
    "Headers",
    "SessionAffinity",
    "StringMatch",
    "TrafficPolicy",
]
