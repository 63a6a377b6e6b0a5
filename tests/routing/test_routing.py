"""The pure routing builders: Flagger's Istio and Kubernetes objects, valid for every state."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components import routing
from components.routing import TrafficState
from components.spec import ReleaseSpec, Strategy
from tests.conftest import (
    Bundle,
    all_bundles,
    corpus_bundle,
    istio_schema_errors,
    kubernetes_errors,
    tutorial_bundle,
)

BUNDLES = {bundle.name: bundle for bundle in all_bundles()}
STATES = {
    "at-rest": TrafficState(),
    "w10": TrafficState(10),
    "w50": TrafficState(50),
    "w100": TrafficState(100),
    "mirror-w0": TrafficState(0, mirror=True),
    "mirror-w50": TrafficState(50, mirror=True),
    "sticky-w10": TrafficState(10, cookie="c0ffee"),
    "sticky-w100": TrafficState(100, cookie="c0ffee"),
    "sticky-expired": TrafficState(cookie="c0ffee", previous_cookie="bada55"),
    "sticky-expired-mirror": TrafficState(mirror=True, previous_cookie="bada55"),
}


def release_of(name: str) -> ReleaseSpec:
    return BUNDLES[name].release()


def with_analysis(bundle: Bundle, **fields: Any) -> ReleaseSpec:
    """The bundle with its analysis replaced (e.g. to try its service on another strategy)."""
    kwargs = bundle.kwargs()
    kwargs["canary"]["spec"]["analysis"] = {"interval": "1m", "threshold": 5, **fields}
    return ReleaseSpec.parse(**kwargs)


def http_routes(release: ReleaseSpec, state: TrafficState) -> list[dict[str, Any]]:
    return routing.routes(release, state)["http"]


def owned_routes(release: ReleaseSpec, state: TrafficState) -> list[dict[str, Any]]:
    return routing.routes(release, state)[routing.route_field(release)]


def weights(route: dict[str, Any]) -> dict[str, int]:
    return {d["destination"]["host"]: d["weight"] for d in route["route"]}


# --- Schemas: Istio networking v1 and Kubernetes ------------------------------------------------


@pytest.mark.parametrize("state", STATES.values(), ids=list(STATES))
@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_istio_objects_are_valid_networking_v1(name: str, state: TrafficState) -> None:
    release = release_of(name)
    for manifest in (routing.virtual_service(release, state), *routing.destination_rules(release)):
        assert manifest["apiVersion"] == "networking.istio.io/v1"
        assert istio_schema_errors(manifest) == [], manifest["kind"]


@pytest.mark.parametrize("strategy", ["ab", "bluegreen", "canary-step-weights"])
@pytest.mark.parametrize("state", STATES.values(), ids=list(STATES))
def test_route_options_are_valid_for_every_strategy(strategy: str, state: TrafficState) -> None:
    analysis = {
        "ab": {"iterations": 5, "match": [{"headers": {"x-canary": {"exact": "on"}}}]},
        "bluegreen": {"iterations": 5, "mirror": True, "mirrorWeight": 20},
        "canary-step-weights": {"stepWeights": [5, 50], "sessionAffinity": {"cookieName": "c"}},
    }[strategy]
    release = with_analysis(BUNDLES["route-options"], **analysis)
    assert istio_schema_errors(routing.virtual_service(release, state)) == []


@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_kubernetes_objects_are_valid(name: str) -> None:
    release = release_of(name)
    manifests = [
        *routing.services(release),
        routing.primary_deployment(release, release.deployment["spec"]["template"], 2),
        routing.canary_deployment(release, replicas=0),
    ]
    autoscaler = routing.primary_autoscaler(release)
    if autoscaler is not None:
        manifests.append(autoscaler)
    for manifest in manifests:
        assert kubernetes_errors(manifest) == [], (manifest["kind"], manifest["metadata"]["name"])


def test_the_istio_schema_check_rejects_a_broken_route() -> None:
    """Guards the schema tests: Istio's schema with its CEL duration rule is really applied."""
    vs = routing.virtual_service(release_of("route-options"))
    vs["spec"]["http"][0]["timeout"] = "0s"
    vs["spec"]["http"][0]["route"][0]["wieght"] = 1
    errors = istio_schema_errors(vs)
    assert any("timeout" in error for error in errors)
    assert any("wieght" in error for error in errors)


# --- Weights --------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", STATES.values(), ids=list(STATES))
@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_every_split_sums_to_100_and_a_sole_destination_is_the_primary(
    name: str, state: TrafficState
) -> None:
    """A sole destination gets all traffic whatever its weight (Flagger writes the primary's)."""
    release = release_of(name)
    for route in owned_routes(release, state):
        if len(route["route"]) == 1:
            assert weights(route) == {release.primary_service: state.primary_weight}, route
        else:
            assert sum(weights(route).values()) == 100, route


@given(weight=st.integers(0, 100), mirror=st.booleans())
def test_weights_read_back_as_written(weight: int, mirror: bool) -> None:
    release = tutorial_bundle("tutorial-canary").release()
    routes = http_routes(release, TrafficState(weight, mirror=mirror))
    assert len(routes) == 1
    assert weights(routes[0]) == {"podinfo-primary": 100 - weight, "podinfo-canary": weight}
    assert routing.route_weights({"http": routes}, release) == (100 - weight, weight, mirror)


@given(weight=st.integers(0, 100), cookie=st.sampled_from([None, "c0ffee"]))
def test_sticky_weights_read_back_as_written(weight: int, cookie: str | None) -> None:
    """The engine reads weights back from the cluster; the cookie route must not fool it."""
    release = BUNDLES["session-affinity"].release()
    routes = http_routes(release, TrafficState(weight, cookie=cookie))
    assert routing.route_weights({"http": routes}, release) == (100 - weight, weight, False)


@pytest.mark.parametrize("weight", [-1, 101])
def test_traffic_state_rejects_weights_outside_0_to_100(weight: int) -> None:
    with pytest.raises(ValueError, match=str(weight)):
        TrafficState(weight)


def test_canary_at_rest_is_one_route_all_to_the_primary() -> None:
    (route,) = http_routes(release_of("tutorial-canary"), TrafficState())
    assert route["route"] == [
        {"destination": {"host": "podinfo-primary"}, "weight": 100},
        {"destination": {"host": "podinfo-canary"}, "weight": 0},
    ]
    assert "match" not in route
    assert "mirror" not in route


# --- A/B --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tutorial-ab", "ab-service-match"])
def test_ab_sends_the_match_to_the_canary_and_the_rest_to_the_primary(name: str) -> None:
    release = release_of(name)
    assert release.spec.analysis.strategy is Strategy.AB
    canary, primary = release.canary_service, release.primary_service
    matched, default = http_routes(release, TrafficState(100))
    assert weights(matched) == {primary: 0, canary: 100}
    assert weights(default) == {primary: 0}  # Flagger's primary weight; Istio sends it all
    rest_matched, rest_default = http_routes(release, TrafficState())
    assert weights(rest_matched) == {primary: 100, canary: 0}
    assert weights(rest_default) == {primary: 100}
    assert rest_default | {"route": default["route"]} == default  # only the weight moves
    assert routing.route_weights({"http": [matched, default]}, release) == (0, 100, False)


def test_ab_without_service_match_uses_the_analysis_match_unchanged() -> None:
    matched, default = http_routes(release_of("tutorial-ab"), TrafficState(100))
    assert matched["match"] == [{"headers": {"x-user-type": {"exact": "beta"}}}]
    assert "match" not in default


def test_ab_merges_service_match_with_each_analysis_condition() -> None:
    """flagger.md §2 mergeMatchConditions: each condition narrows a copy of the service match."""
    matched, default = http_routes(release_of("ab-service-match"), TrafficState(100))
    tenant = {"x-tenant": {"exact": "acme"}}
    api = {"prefix": "/api"}
    assert matched["match"] == [
        {"uri": api, "headers": {**tenant, "x-canary": {"exact": "insider"}}},
        {"uri": api, "headers": {**tenant, "cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
        {"uri": api, "headers": tenant, "sourceLabels": {"app": "frontend"}},
    ]
    assert default["match"] == [{"uri": api, "headers": tenant}]


def test_ab_merge_is_the_cross_product_of_both_lists() -> None:
    bundle = BUNDLES["ab-service-match"]
    kwargs = bundle.kwargs()
    kwargs["canary"]["spec"]["service"]["match"] = [
        {"uri": {"prefix": "/api"}},
        {"uri": {"prefix": "/v2"}},
    ]
    matched, _ = http_routes(ReleaseSpec.parse(**kwargs), TrafficState(100))
    uris = [condition["uri"]["prefix"] for condition in matched["match"]]
    assert uris == ["/api", "/v2"] * 3


def test_ab_header_suffix_becomes_an_anchored_regex_istio_accepts() -> None:
    """Flagger's schema admits `suffix` in A/B headers; Istio v1 has no suffix match."""
    release = with_analysis(
        tutorial_bundle("tutorial-ab"),
        iterations=5,
        match=[{"headers": {"user-agent": {"suffix": "(Mobile)"}}}],
    )
    vs = routing.virtual_service(release, TrafficState(100))
    assert istio_schema_errors(vs) == []
    pattern = vs["spec"]["http"][0]["match"][0]["headers"]["user-agent"]["regex"]
    assert re.fullmatch(pattern, "Mozilla/5.0 (Mobile)")
    assert not re.fullmatch(pattern, "Mozilla/5.0 (Mobile) Safari")
    assert not re.fullmatch(pattern, "Mozilla/5.0 XMobileX")


# --- Hosts, gateways, delegation ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_hosts_include_the_apex_and_gateways_default_to_mesh(name: str) -> None:
    release = release_of(name)
    spec = routing.virtual_service(release)["spec"]
    service = release.spec.service
    if service.delegation:
        assert spec["hosts"] == []
        assert "gateways" not in spec
        return
    assert release.service in spec["hosts"]
    assert spec["hosts"][: len(service.hosts)] == service.hosts
    assert spec["gateways"] == (service.gateways or ["mesh"])


def test_user_hosts_come_first_and_the_apex_is_appended_once() -> None:
    spec = routing.virtual_service(release_of("session-affinity"))["spec"]
    assert spec["hosts"] == ["sticky.example.com", "sticky"]
    assert spec["gateways"] == ["istio-system/public-gateway"]
    kwargs = BUNDLES["session-affinity"].kwargs()
    kwargs["canary"]["spec"]["service"]["hosts"] = ["sticky", "sticky.example.com"]
    again = routing.virtual_service(ReleaseSpec.parse(**kwargs))["spec"]
    assert again["hosts"] == ["sticky", "sticky.example.com"]


def test_delegation_routes_to_the_service_port() -> None:
    """makeDestination adds the port with portDiscovery when delegating (flagger.md §2)."""
    release = release_of("delegation")
    (route,) = http_routes(release, TrafficState(20))
    assert [d["destination"].get("port") for d in route["route"]] == [{"number": 9898}] * 2


def test_port_discovery_on_the_mesh_gateway_routes_without_a_port() -> None:
    (route,) = http_routes(release_of("traffic-policy"), TrafficState(20))
    assert all("port" not in d["destination"] for d in route["route"])


def test_delegation_with_hosts_is_rejected() -> None:
    kwargs = BUNDLES["delegation"].kwargs()
    kwargs["canary"]["spec"]["service"]["hosts"] = ["delegate.example.com"]
    with pytest.raises(ValueError, match=r"spec\.service: delegation"):
        ReleaseSpec.parse(**kwargs)


# --- Route options, mirroring, session affinity ---------------------------------------------------

ROUTE_OPTIONS = ("timeout", "retries", "headers", "corsPolicy", "rewrite")


@pytest.mark.parametrize(
    "analysis",
    [
        {"stepWeight": 5},
        {"iterations": 5},
        {"iterations": 5, "match": [{"headers": {"x-canary": {"exact": "on"}}}]},
        {"stepWeight": 5, "sessionAffinity": {"cookieName": "c"}},
    ],
    ids=["canary", "bluegreen", "ab", "session-affinity"],
)
@pytest.mark.parametrize("state", STATES.values(), ids=list(STATES))
def test_route_options_are_copied_onto_every_route(
    analysis: dict[str, Any], state: TrafficState
) -> None:
    release = with_analysis(BUNDLES["route-options"], **analysis)
    expected = {
        key: value
        for key, value in BUNDLES["route-options"].canary["spec"]["service"].items()
        if key in ROUTE_OPTIONS
    }
    assert set(expected) == set(ROUTE_OPTIONS)
    routes = http_routes(release, state)
    for route in routes:
        options = copy.deepcopy({key: route[key] for key in ROUTE_OPTIONS})
        # The expiring cookie route adds its Set-Cookie to the service's response headers.
        options["headers"]["response"].get("add", {}).pop("Set-Cookie", None)
        options["headers"]["response"] = {
            k: v for k, v in options["headers"]["response"].items() if v
        }
        assert options == expected
        assert {"uri": {"prefix": "/shop"}} in route["match"] or all(
            condition["uri"] == {"prefix": "/shop"} for condition in route["match"]
        )


@pytest.mark.parametrize(("mirror_weight", "percentage"), [(50, {"value": 50}), (None, None)])
def test_mirror_targets_the_canary_with_a_percentage_only_when_set(
    mirror_weight: int | None, percentage: dict[str, int] | None
) -> None:
    fields: dict[str, Any] = {"iterations": 5, "mirror": True}
    if mirror_weight is not None:
        fields["mirrorWeight"] = mirror_weight
    release = with_analysis(BUNDLES["mirror"], **fields)
    (route,) = http_routes(release, TrafficState(0, mirror=True))
    assert route["mirror"] == {"host": "mirrored-canary"}
    assert route.get("mirrorPercentage") == percentage
    assert weights(route) == {"mirrored-primary": 100, "mirrored-canary": 0}


def test_mirror_weight_zero_adds_no_percentage() -> None:
    release = with_analysis(BUNDLES["mirror"], iterations=5, mirror=True, mirrorWeight=0)
    (route,) = http_routes(release, TrafficState(0, mirror=True))
    assert route["mirror"] == {"host": "mirrored-canary"}
    assert "mirrorPercentage" not in route


def test_no_mirror_outside_a_mirror_step() -> None:
    release = release_of("mirror")
    for weight in (0, 100):
        (route,) = http_routes(release, TrafficState(weight))
        assert "mirror" not in route
        assert "mirrorPercentage" not in route


def test_session_affinity_pins_cookie_holders_to_their_side() -> None:
    release = release_of("session-affinity")
    sticky, primary_sticky, weighted = http_routes(release, TrafficState(10, cookie="c0ffee"))
    assert sticky["match"] == [
        {"headers": {"Cookie": {"regex": r"(.*;\s*)?flagger\-cookie=c0ffee(;.*)?"}}}
    ]
    assert weights(sticky) == {"sticky-primary": 0, "sticky-canary": 100}
    assert primary_sticky["match"] == [
        {"headers": {"Cookie": {"regex": r"(.*;\s*)?primary\-cookie=c0ffee\-primary(;.*)?"}}}
    ]
    assert weights(primary_sticky) == {"sticky-primary": 100, "sticky-canary": 0}
    assert weights(weighted) == {"sticky-primary": 90, "sticky-canary": 10}
    primary_cookie = weighted["route"][0]["headers"]["response"]["add"]["Set-Cookie"]
    assert primary_cookie.startswith("primary-cookie=c0ffee-primary; Max-Age=15;")  # interval
    canary_destination = weighted["route"][1]
    cookie = canary_destination["headers"]["response"]["add"]["Set-Cookie"]
    assert cookie.split("; ") == [  # Flagger's BuildCookie order
        "flagger-cookie=c0ffee",
        "Max-Age=21600",
        "Domain=example.com",
        "HttpOnly",
        "Path=/",
        "SameSite=Strict",
        "Secure",
    ]
    assert routing.route_weights({"http": [sticky, primary_sticky, weighted]}, release) == (
        90,
        10,
        False,
    )


@pytest.mark.parametrize(
    ("header", "side"),
    [
        ("flagger-cookie=c0ffee", "canary"),
        ("theme=dark; flagger-cookie=c0ffee; lang=en", "canary"),
        ("primary-flagger-cookie=c0ffee-primary", "primary"),
        ("flagger-cookie=c0ffee-old", None),
        ("theme=dark", None),
    ],
)
def test_sticky_cookies_with_flaggers_names_each_match_their_own_side(
    header: str, side: str | None
) -> None:
    """Flagger's documented pair, where one cookie name contains the other."""
    release = with_analysis(
        BUNDLES["session-affinity"],
        stepWeight=10,
        sessionAffinity={
            "cookieName": "flagger-cookie",
            "primaryCookieName": "primary-flagger-cookie",
        },
    )
    canary_route, primary_route, _ = http_routes(release, TrafficState(20, cookie="c0ffee"))
    matched = [
        route_side
        for route, route_side in ((canary_route, "canary"), (primary_route, "primary"))
        if re.fullmatch(route["match"][0]["headers"]["Cookie"]["regex"], header)
    ]
    assert matched == ([side] if side else [])


def test_session_affinity_without_a_primary_cookie_pins_only_the_canary() -> None:
    release = with_analysis(
        BUNDLES["session-affinity"], stepWeight=10, sessionAffinity={"cookieName": "c"}
    )
    sticky, weighted = http_routes(release, TrafficState(10, cookie="c0ffee"))
    assert weights(sticky) == {"sticky-primary": 0, "sticky-canary": 100}
    assert "headers" not in weighted["route"][0]


def test_session_affinity_at_rest_is_the_plain_canary_route() -> None:
    release = release_of("session-affinity")
    assert http_routes(release, TrafficState(0, cookie="c0ffee")) == http_routes(
        release, TrafficState()
    )


# --- DestinationRules -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_destination_rules_are_flaggers(name: str) -> None:
    release = release_of(name)
    policy = BUNDLES[name].canary["spec"]["service"].get("trafficPolicy")
    rules = routing.destination_rules(release)
    assert [rule["metadata"]["name"] for rule in rules] == [
        release.primary_service,
        release.canary_service,
    ]
    for rule in rules:
        assert rule["metadata"]["namespace"] == release.namespace
        assert rule["spec"]["host"] == rule["metadata"]["name"]
        assert "subsets" not in rule["spec"]
        assert rule["spec"].get("trafficPolicy") == policy


# --- Services, Deployments, HPA -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "label", "value", "service"),
    [
        ("tutorial-canary", "app", "podinfo", "podinfo"),
        ("blue-green", "name", "bluegreen", "checkout"),
        ("ab-service-match", "app.kubernetes.io/name", "abtest", "abtest"),
    ],
)
def test_selectors_use_flaggers_label_and_primary_value(
    name: str, label: str, value: str, service: str
) -> None:
    release = release_of(name)
    apex, primary, canary = routing.services(release)
    assert [s["metadata"]["name"] for s in (apex, primary, canary)] == [
        service,
        f"{service}-primary",
        f"{service}-canary",
    ]
    assert apex["spec"]["selector"] == {label: f"{value}-primary"}
    assert primary["spec"]["selector"] == {label: f"{value}-primary"}
    assert canary["spec"]["selector"] == {label: value}
    deployment = routing.primary_deployment(release, release.deployment["spec"]["template"], 2)
    assert deployment["metadata"]["name"] == f"{value}-primary"
    assert deployment["spec"]["selector"] == {"matchLabels": {label: f"{value}-primary"}}
    assert deployment["spec"]["template"]["metadata"]["labels"][label] == f"{value}-primary"


def test_service_ports_follow_port_name_and_target_port() -> None:
    (port,) = routing.services(release_of("blue-green"))[0]["spec"]["ports"]
    assert port == {"name": "http-web", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    (default,) = routing.services(release_of("tutorial-canary"))[0]["spec"]["ports"]
    assert default == {"name": "http", "port": 9898, "targetPort": 9898, "protocol": "TCP"}


def test_port_discovery_adds_the_container_ports() -> None:
    ports = routing.services(release_of("traffic-policy"))[1]["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in ports] == [("http", 9898), ("grpc", 9999)]


def test_canary_deployment_is_the_users_deployment_at_zero_replicas() -> None:
    release = release_of("tutorial-canary")
    canary = routing.canary_deployment(release, replicas=0)
    assert canary["metadata"]["name"] == "podinfo"
    assert canary["spec"]["replicas"] == 0
    assert canary["spec"]["selector"] == {"matchLabels": {"app": "podinfo"}}
    assert release.deployment["spec"]["replicas"] == 2  # the input is not mutated


def test_primary_autoscaler_targets_the_primary() -> None:
    release = corpus_bundle("autoscaler").release()
    hpa = routing.primary_autoscaler(release)
    assert hpa is not None
    assert hpa["metadata"] == {"name": "scaled-hpa-primary", "namespace": "test"}
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "scaled-primary",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["metrics"] == release.autoscaler["spec"]["metrics"]  # type: ignore[index]
    assert routing.primary_autoscaler(release_of("tutorial-canary")) is None
