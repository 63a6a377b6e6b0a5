"""Which request of the gate a fault or a kill waits for, told by what the request writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from components.rehearse.testbed.faults import Request

NS = "default"
RECORD = "podinfo-canary-release"
VS_PATH = f"/apis/networking.istio.io/v1/namespaces/{NS}/virtualservices/podinfo"


def ours(request: Request) -> bool:
    """A request of the gate (the release engine's field manager or its reads)."""
    return request.query.get("fieldManager", "pulumi-canary") == "pulumi-canary"


def body(request: Request) -> Any:
    try:
        return yaml.safe_load(request.body) if request.body else None
    except yaml.YAMLError:
        return None


def record_saved(phase: str) -> Callable[[Request], bool]:
    """A write of the release record that says `phase`."""

    def matches(request: Request) -> bool:
        if not (ours(request) and request.method in ("POST", "PATCH")):
            return False
        if not (
            request.path.endswith(f"/configmaps/{RECORD}") or request.path.endswith("/configmaps")
        ):
            return False
        text = ((body(request) or {}).get("data") or {}).get("release.json", "{}")
        return bool(yaml.safe_load(text).get("phase") == phase)

    return matches


def routed(canary_weight: int) -> Callable[[Request], bool]:
    """An apply of the routes that gives the canary `canary_weight`."""

    def matches(request: Request) -> bool:
        if not (ours(request) and request.method == "PATCH" and request.path == VS_PATH):
            return False
        weights = [
            destination.get("weight", 0)
            for route in ((body(request) or {}).get("spec") or {}).get("http") or []
            for destination in route.get("route") or []
            if destination["destination"]["host"] == "podinfo-canary"
        ]
        return canary_weight in weights

    return matches


def scaled(replicas: int) -> Callable[[Request], bool]:
    """A merge patch of the canary's replicas to `replicas`."""

    def matches(request: Request) -> bool:
        return (
            ours(request)
            and request.method == "PATCH"
            and request.path.endswith(f"/namespaces/{NS}/deployments/podinfo")
            and ((body(request) or {}).get("spec") or {}).get("replicas") == replicas
        )

    return matches
