"""The DestinationRules and VirtualService that Flagger's Istio router generates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..spec import ReleaseSpec
from ..spec.base import SpecModel
from ..spec.istio import HTTPMatchRequest, SessionAffinity, StringMatch
from .metadata import FLUX_OPT_OUT, object_metadata

ISTIO_API_VERSION = "networking.istio.io/v1"

RouteField = Literal["http", "tcp"]


@dataclass(frozen=True)
class TrafficState:
    """Where traffic goes at one moment of a release; the default is the at-rest state.

    `canary_weight` is the canary's share of the weighted route: all traffic for the canary
    strategy, only the matched segment for A/B. With session affinity:

    - `cookie` is this run's cookie value. While the canary has weight, canary responses set
      it, primary responses set `<cookie>-primary` (with `primaryCookieName`), and requests
      carrying either stay on their side.
    - `previous_cookie` is the value a finished run set. While the canary has no weight,
      requests carrying it get it back expired, so browsers drop it (Flagger keeps this route
      until the next run sets a cookie).
    - `interval_seconds` is the analysis interval the release runs with: the primary cookie's
      lifetime, so that primary holders are dealt again at each step. Unset, the spec's.
    """

    canary_weight: int = 0
    mirror: bool = False
    cookie: str | None = None
    previous_cookie: str | None = None
    interval_seconds: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.canary_weight <= 100:
            raise ValueError(f"canary weight {self.canary_weight} is outside 0 to 100")

    @property
    def primary_weight(self) -> int:
        return 100 - self.canary_weight


def destination_rules(release: ReleaseSpec) -> list[dict[str, Any]]:
    """One rule per workload Service, without subsets, carrying `service.trafficPolicy`."""
    policy = release.spec.service.traffic_policy
    rules = []
    for host in (release.primary_service, release.canary_service):
        spec: dict[str, Any] = {"host": host}
        if policy is not None:
            spec["trafficPolicy"] = policy.to_manifest()
        rules.append(
            _istio_object("DestinationRule", object_metadata(host, release.namespace), spec)
        )
    return rules


def virtual_service(release: ReleaseSpec, state: TrafficState | None = None) -> dict[str, Any]:
    service = release.spec.service
    if service.delegation:
        # No hosts or gateways; Flagger's Go type writes the empty hosts all the same.
        spec: dict[str, Any] = {"hosts": []}
    else:
        hosts = list(service.hosts)
        if release.service not in hosts and "*" not in hosts:
            hosts.append(release.service)
        spec = {"hosts": hosts, "gateways": list(service.gateways) or ["mesh"]}
    spec.update(routes(release, state or TrafficState()))
    metadata = object_metadata(
        release.service, release.namespace, *_virtual_service_metadata(release)
    )
    return _istio_object("VirtualService", metadata, spec)


def route_field(release: ReleaseSpec) -> RouteField:
    """The VirtualService route list a release owns: `tcp` for a TCP service, else `http`."""
    return "tcp" if release.spec.service.is_tcp else "http"


def owned_route_field(release: ReleaseSpec) -> str:
    """The path of that list in the VirtualService, for `ignore_changes`."""
    return f"spec.{route_field(release)}"


def routes(release: ReleaseSpec, state: TrafficState) -> dict[str, list[dict[str, Any]]]:
    """The one field of the VirtualService a release rewrites, keyed by its name in `spec`."""
    field = route_field(release)
    build = _tcp_routes if field == "tcp" else _http_routes
    return {field: build(release, state)}


def route_weights(spec: Mapping[str, Any], release: ReleaseSpec) -> tuple[int, int, bool]:
    """Reads (primary, canary, mirrored) back from the weighted route of the list the release
    owns in a VirtualService's `spec`, as Flagger's GetRoutes."""
    canary_host = release.canary_service
    primary_host = release.primary_service
    for route in spec.get(route_field(release)) or []:
        if _is_sticky(route, release):
            continue  # a cookie's route (sticky or expiring); the split is in the last one
        hosts = {d["destination"]["host"]: d.get("weight", 0) for d in route.get("route", [])}
        if canary_host in hosts and primary_host in hosts:
            mirrored = route.get("mirror", {}).get("host") == canary_host
            return int(hosts[primary_host]), int(hosts[canary_host]), mirrored
    return 100, 0, False


def _http_routes(release: ReleaseSpec, state: TrafficState) -> list[dict[str, Any]]:
    service = release.spec.service
    analysis = release.spec.analysis
    if analysis.match:
        # A/B replaces cookies and mirroring. Everyone else stays on the primary: Istio sends a
        # sole destination all traffic, so its weight (the primary's, as Flagger writes it)
        # has no effect.
        rest = [_destination(release, release.primary_service, state.primary_weight)]
        return [
            _route(
                release, _merge(analysis.match, service.match), _split(release, state.canary_weight)
            ),
            _route(release, service.match, rest),
        ]
    weighted = _destinations(release, state)
    if analysis.session_affinity and state.cookie and state.canary_weight:
        return _sticky_routes(release, state, weighted)
    http = [_route(release, service.match, weighted, mirror=state.mirror)]
    if analysis.session_affinity and state.previous_cookie and not state.canary_weight:
        http.insert(0, _expiring_route(release, state.previous_cookie))
    return http


def _tcp_routes(release: ReleaseSpec, state: TrafficState) -> list[dict[str, Any]]:
    """One weighted route that matches the ports of `service.match` only (Flagger's
    canaryToL4Match); TCP has no mirroring, cookies or A/B match."""
    route: dict[str, Any] = {}
    match = [{"port": m.port} if m.port else {} for m in release.spec.service.match]
    if match:
        route["match"] = match
    route["route"] = _split(release, state.canary_weight)
    return [route]


def _is_sticky(route: dict[str, Any], release: ReleaseSpec) -> bool:
    affinity = release.spec.analysis.session_affinity
    if affinity is None:
        return False
    names = [name for name in (affinity.cookie_name, affinity.primary_cookie_name) if name]
    cookies = [(m.get("headers") or {}).get("Cookie") or {} for m in route.get("match") or []]
    return any(
        re.escape(name) in str(cookie.get("regex", "")) for cookie in cookies for name in names
    )


def _route(
    release: ReleaseSpec,
    match: list[HTTPMatchRequest],
    destinations: list[dict[str, Any]],
    *,
    mirror: bool = False,
) -> dict[str, Any]:
    route: dict[str, Any] = {}
    if match:
        route["match"] = [_go_shape(condition) for condition in match]
    route.update(_route_options(release))
    route["route"] = destinations
    if mirror:
        route["mirror"] = {"host": release.canary_service}
        weight = release.spec.analysis.mirror_weight
        if weight:
            route["mirrorPercentage"] = {"value": weight}
    return route


def _route_options(release: ReleaseSpec) -> dict[str, Any]:
    """The `service` settings Flagger copies onto every HTTP route, as its Istio types write
    them: `rewrite` without `type` (Gateway API's), `retries` always with `attempts`."""
    service = release.spec.service
    options: dict[str, Any] = {}
    if service.rewrite is not None:
        rewrite = service.rewrite.to_manifest()
        options["rewrite"] = {key: rewrite[key] for key in ("uri", "authority") if key in rewrite}
    if service.timeout:
        options["timeout"] = service.timeout
    if service.retries is not None:
        options["retries"] = {"attempts": 0, **service.retries.to_manifest()}
    if service.cors_policy is not None:
        options["corsPolicy"] = _go_shape(service.cors_policy)
    if service.headers is not None:
        options["headers"] = service.headers.to_manifest()
    return options


def _go_shape(model: SpecModel) -> dict[str, Any]:
    """The model as Flagger's Go types serialise it: a false flag (`ignoreUriCase`,
    `allowCredentials`) is left out, as `omitempty` does; Istio reads both as false."""
    return {key: value for key, value in model.to_manifest().items() if value is not False}


def _destinations(release: ReleaseSpec, state: TrafficState) -> list[dict[str, Any]]:
    """The weighted split; with sticky sessions each side sets the cookie that keeps a user on
    it (the primary's only when `primaryCookieName` is given)."""
    primary, canary = _split(release, state.canary_weight)
    affinity = release.spec.analysis.session_affinity
    if affinity and state.cookie and state.canary_weight:
        for cookie in _sticky_cookies(release, state):
            destination = canary if cookie.canary_weight else primary
            destination["headers"] = {"response": {"add": {"Set-Cookie": cookie.set_cookie}}}
    return [primary, canary]


def _sticky_routes(
    release: ReleaseSpec, state: TrafficState, weighted: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Users who got the canary cookie stay on the canary, those who got the primary cookie (if
    named) on the primary; the rest are split by weight."""
    service = release.spec.service
    routes = [
        _route(
            release,
            _merge([_cookie_match(cookie.name, cookie.value)], service.match),
            _split(release, cookie.canary_weight),
        )
        for cookie in _sticky_cookies(release, state)
    ]
    return [*routes, _route(release, service.match, weighted)]


def _expiring_route(release: ReleaseSpec, previous_cookie: str) -> dict[str, Any]:
    """The weighted route again, for requests carrying the previous run's canary cookie, and
    answering them with that cookie expired (`Max-Age=-1`). Flagger's `Set-Cookie` has no other
    attribute; this one repeats those it was set with, since a browser only drops the cookie of
    the same domain, path and partition."""
    affinity = release.spec.analysis.session_affinity
    assert affinity is not None
    match = _merge(
        [_cookie_match(affinity.cookie_name, previous_cookie)], release.spec.service.match
    )
    route = _route(release, match, _split(release, 0))
    expired = _set_cookie(affinity.cookie_name, previous_cookie, -1, affinity)
    response = route.setdefault("headers", {}).setdefault("response", {})
    response.setdefault("add", {})["Set-Cookie"] = expired
    return route


@dataclass(frozen=True)
class _StickyCookie:
    name: str
    value: str
    canary_weight: int
    set_cookie: str


def _sticky_cookies(release: ReleaseSpec, state: TrafficState) -> list[_StickyCookie]:
    """The canary's cookie, for `maxAge`, and the primary's, for one analysis interval. Their
    values differ, so one side's cookie never matches the other's route, even when one name
    contains the other (Flagger's `flagger-cookie` and `primary-flagger-cookie`)."""
    affinity = release.spec.analysis.session_affinity
    assert affinity is not None and state.cookie is not None
    sides = [(affinity.cookie_name, state.cookie, 100, affinity.max_age)]
    if affinity.primary_cookie_name:
        interval = state.interval_seconds or release.spec.analysis.interval_seconds
        sides.append((affinity.primary_cookie_name, f"{state.cookie}-primary", 0, int(interval)))
    return [
        _StickyCookie(name, value, weight, _set_cookie(name, value, max_age, affinity))
        for name, value, weight, max_age in sides
    ]


def _cookie_match(name: str, value: str) -> HTTPMatchRequest:
    """The whole Cookie header (Istio's RE2 regex matches whole values) holding `name=value`
    as one of its cookies, not as the tail of another cookie's name or value."""
    regex = f"(.*;\\s*)?{re.escape(name)}={re.escape(value)}(;.*)?"
    return HTTPMatchRequest(headers={"Cookie": StringMatch(regex=regex)})


def _set_cookie(name: str, value: str, max_age: int, affinity: SessionAffinity) -> str:
    """A `Set-Cookie` value with its attributes in Flagger's order (SessionAffinity.BuildCookie)."""
    parts = [f"{name}={value}", f"Max-Age={max_age}"]
    for attribute, setting in (
        ("Domain", affinity.domain),
        ("HttpOnly", affinity.http_only),
        ("Partitioned", affinity.partitioned),
        ("Path", affinity.path),
        ("SameSite", affinity.same_site),
        ("Secure", affinity.secure),
    ):
        if setting is True:
            parts.append(attribute)
        elif setting:
            parts.append(f"{attribute}={setting}")
    return "; ".join(parts)


def _split(release: ReleaseSpec, canary_weight: int) -> list[dict[str, Any]]:
    """The primary and the canary destinations, weighted; Flagger writes a weight of 0 too."""
    return [
        _destination(release, release.primary_service, 100 - canary_weight),
        _destination(release, release.canary_service, canary_weight),
    ]


def _destination(release: ReleaseSpec, host: str, weight: int) -> dict[str, Any]:
    service = release.spec.service
    destination: dict[str, Any] = {"host": host}
    gateways = service.gateways or ["mesh"]
    if service.port_discovery and (gateways[0] != "mesh" or service.delegation):
        destination["port"] = {"number": service.port}
    return {"destination": destination, "weight": weight}


def _merge(
    analysis_match: list[HTTPMatchRequest], service_match: list[HTTPMatchRequest]
) -> list[HTTPMatchRequest]:
    """Flagger's mergeMatchConditions: each service match narrowed by each analysis condition.

    Flagger replaces the service match's headers and sourceLabels; query parameters are carried
    too here, and keys of both sides are kept, so an A/B condition never widens a service match.
    """
    if not service_match:
        return list(analysis_match)
    return [
        base.model_copy(
            update={
                field: {**(getattr(base, field) or {}), **(getattr(condition, field) or {})} or None
                for field in ("headers", "query_params", "source_labels")
            }
        )
        for condition in analysis_match
        for base in service_match
    ]


def _istio_object(kind: str, metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": ISTIO_API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def _virtual_service_metadata(release: ReleaseSpec) -> tuple[dict[str, str], dict[str, str]]:
    """`service.apex` metadata and Flux's opt-out annotations. Flagger's VirtualService shares
    the apex Service's metadata object, so with `service.apex` set it also carries the apex
    Service's `<selector label>: <apex>` label."""
    apex = release.spec.service.apex
    labels = {**(apex.labels or {}), release.selector_label: release.service} if apex else {}
    annotations = {**((apex and apex.annotations) or {}), **FLUX_OPT_OUT}
    return labels, annotations
