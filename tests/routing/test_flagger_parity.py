"""What Flagger generates, item by item, from Flagger's own fixtures and e2e manifests.

Each test names the Flagger source it translates (fluxcd/flagger at 15bd6ad5); the inputs are
Flagger-shaped manifests and the outputs go through the public API only.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from components import routing
from components.spec import ReleaseSpec, SpecError
from tests.conftest import (
    corpus_bundle,
    istio_schema_errors,
    kubernetes_errors,
    service_port_errors,
)


def with_service(name: str, **fields: Any) -> ReleaseSpec:
    """A corpus bundle with fields of its `spec.service` replaced."""
    kwargs = corpus_bundle(name).kwargs()
    kwargs["canary"]["spec"]["service"].update(fields)
    return ReleaseSpec.parse(**kwargs)


def ports_of(release: ReleaseSpec) -> list[list[tuple[str, int, Any, str]]]:
    """(name, port, targetPort, protocol) of each Service's ports: apex, primary, canary."""
    return [
        [(p["name"], p["port"], p["targetPort"], p["protocol"]) for p in service["spec"]["ports"]]
        for service in routing.services(release)
    ]


# --- 1. Port discovery (pkg/canary/util.go getPorts, pkg/router/kubernetes_default.go) ----------

E2E_DISCOVERED = [("http-metrics", 9797, 9797, "TCP"), ("grpc", 9999, 9999, "TCP")]


@pytest.mark.parametrize(
    ("service", "main"),
    [
        # test/istio/test-canary.sh, first canary: no targetPort, so `port` is excluded.
        ({"port": 9898, "targetPort": None, "portName": None}, ("http", 9898, 9898, "TCP")),
        # The blue/green canary: targetPort by number.
        ({}, ("http-podinfo", 80, 9898, "TCP")),
        # The A/B canary: targetPort by name.
        ({"targetPort": "http"}, ("http-podinfo", 80, "http", "TCP")),
    ],
    ids=["port", "target-port-number", "target-port-name"],
)
def test_discovery_skips_the_target_port_and_every_service_gets_the_rest(
    service: dict[str, Any], main: tuple[str, int, Any, str]
) -> None:
    kwargs = corpus_bundle("port-discovery").kwargs()
    fields = kwargs["canary"]["spec"]["service"]
    for key, value in service.items():
        if value is None:
            fields.pop(key)
        else:
            fields[key] = value
    release = ReleaseSpec.parse(**kwargs)
    assert ports_of(release) == [[main, *E2E_DISCOVERED]] * 3


def test_discovery_keeps_names_and_names_unnamed_ports_by_container_and_index() -> None:
    kwargs = corpus_bundle("port-discovery").kwargs()
    (container,) = kwargs["deployment"]["spec"]["template"]["spec"]["containers"]
    container["name"] = "podinfo"
    del container["ports"][2]["name"]  # grpc, third in the list
    release = ReleaseSpec.parse(**kwargs)
    apex = ports_of(release)[0]
    assert apex[1:] == [("http-metrics", 9797, 9797, "TCP"), ("tcp-podinfo-2", 9999, 9999, "TCP")]


def test_the_brief_case_port_80_target_9898_and_a_port_named_http_is_valid() -> None:
    """Before: the target port was re-added under its name, next to `portName: http`."""
    release = with_service("port-discovery", portName="http")
    for service in routing.services(release):
        assert [p["name"] for p in service["spec"]["ports"]] == ["http", "http-metrics", "grpc"]
        assert kubernetes_errors(service) == []


def test_discovery_skips_mesh_sidecars_and_a_repeated_name_keeps_the_later_container() -> None:
    kwargs = corpus_bundle("port-discovery").kwargs()
    containers = kwargs["deployment"]["spec"]["template"]["spec"]["containers"]
    containers.append(
        {"name": "istio-proxy", "image": "istio/proxyv2", "ports": [{"containerPort": 15090}]}
    )
    containers.append(
        {
            "name": "exporter",
            "image": "exporter",
            "ports": [{"name": "grpc", "containerPort": 9100}],
        }
    )
    release = ReleaseSpec.parse(**kwargs)
    assert ports_of(release)[0][1:] == [
        ("http-metrics", 9797, 9797, "TCP"),
        ("grpc", 9100, 9100, "TCP"),
    ]


def test_discovered_ports_keep_their_protocol() -> None:
    """Divergence: Flagger writes TCP for every discovered port, UDP ones included."""
    kwargs = corpus_bundle("port-discovery").kwargs()
    (container,) = kwargs["deployment"]["spec"]["template"]["spec"]["containers"]
    container["ports"].append({"name": "dns", "containerPort": 53, "protocol": "UDP"})
    release = ReleaseSpec.parse(**kwargs)
    assert ports_of(release)[0][-1] == ("dns", 53, 53, "UDP")


def test_router_fixture_ports_carry_app_protocol_on_the_service_port_only() -> None:
    """pkg/router/router_test.go newTestCanary/newTestDeployment, TestServiceRouter_Create."""
    for service in routing.services(corpus_bundle("flagger-router").release()):
        assert service["spec"]["ports"] == [
            {
                "name": "http",
                "port": 9898,
                "targetPort": 9898,
                "protocol": "TCP",
                "appProtocol": "http",
            },
            {"name": "http-prom", "port": 9797, "targetPort": 9797, "protocol": "TCP"},
        ]


def test_without_discovery_the_services_have_one_port() -> None:
    release = with_service("port-discovery", portDiscovery=False)
    assert ports_of(release) == [[("http-podinfo", 80, 9898, "TCP")]] * 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"portName": "grpc"},
            "'grpc' (9999/TCP) to the Services, repeating the name of spec.service.portName",
        ),
        (
            {"port": 9797},
            "'http-metrics' (9797/TCP) to the Services, repeating the port of spec.service.port",
        ),
    ],
    ids=["name", "number"],
)
def test_a_discovered_port_repeating_the_service_port_is_a_spec_error(
    change: dict[str, Any], message: str
) -> None:
    """Flagger would generate Services the API server rejects, at every tick."""
    with pytest.raises(SpecError) as raised:
        with_service("port-discovery", **change)
    (problem,) = raised.value.problems
    assert problem.path == "spec.service.portDiscovery"
    assert message in problem.message


def test_the_service_port_check_catches_repeated_names_and_numbers() -> None:
    """Guards the schema tests: the API server's port rules are really applied."""
    service = copy.deepcopy(routing.services(corpus_bundle("port-discovery").release())[0])
    ports = service["spec"]["ports"]
    ports.append(dict(ports[1]))
    ports.append({"name": "Bad_Name", "port": 1, "targetPort": "a-very-long-port-name"})
    assert service_port_errors(service) == [
        "spec.ports[3].name: duplicate 'http-metrics'",
        "spec.ports[3]: duplicate port 9797/TCP",
        "spec.ports[4].name: 'Bad_Name' is not a DNS-1123 label",
        "spec.ports[4].targetPort: 'a-very-long-port-name' is not an IANA service name",
    ]


# --- 4, 5. Service and VirtualService metadata (kubernetes_default.go reconcileService,
# istio.go reconcileVirtualService, util.go filterMetadata) -------------------------------------

FLUX = {
    "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
    "helm.toolkit.fluxcd.io/driftDetection": "disabled",
}
TEST = {"test": "test"}


def metadata_by_name(release: ReleaseSpec) -> dict[str, dict[str, Any]]:
    return {s["metadata"]["name"]: s["metadata"] for s in routing.services(release)}


def test_canary_service_metadata_keeps_flaggers_label() -> None:
    """TestServiceRouter_InitializeMetadata."""
    release = with_service("flagger-router", canary={"labels": TEST, "annotations": TEST})
    services = metadata_by_name(release)
    assert services["podinfo-canary"]["labels"] == {"test": "test", "app": "podinfo-canary"}
    assert services["podinfo-canary"]["annotations"] == {**TEST, **FLUX}
    assert services["podinfo-primary"]["labels"] == {"app": "podinfo-primary"}
    assert services["podinfo-primary"]["annotations"] == FLUX


def test_apex_service_metadata_keeps_flaggers_label() -> None:
    """TestServiceRouter_ReconcileMetadata, and test/istio/test-canary.sh's apex check."""
    release = with_service("flagger-router", apex={"labels": TEST, "annotations": TEST})
    services = metadata_by_name(release)
    assert services["podinfo"]["labels"] == {"test": "test", "app": "podinfo"}
    assert services["podinfo"]["annotations"] == {**TEST, **FLUX}
    for name in ("podinfo-primary", "podinfo-canary"):
        assert services[name]["annotations"] == FLUX
        assert services[name]["labels"] == {"app": name}


def test_flaggers_label_wins_over_a_custom_label_of_the_same_key() -> None:
    release = with_service("flagger-router", primary={"labels": {"app": "mine", "tier": "1"}})
    assert metadata_by_name(release)["podinfo-primary"]["labels"] == {
        "app": "podinfo-primary",
        "tier": "1",
    }


def test_the_selector_label_key_is_the_targets() -> None:
    services = metadata_by_name(corpus_bundle("blue-green").release())
    assert services["checkout-canary"]["labels"] == {"name": "checkout-canary"}


def test_unmanaged_metadata_keys_are_not_declared() -> None:
    """TestServiceRouter_UnmanagedMetadata_AnnotationsAndLabels: Flagger keeps the live value
    of these keys; with server-side apply, keys Pulumi does not declare are left alone."""
    release = with_service(
        "flagger-router",
        apex={"labels": {"test": "v", "unmanaged": "x"}, "annotations": {"unmanaged": "x"}},
        unmanagedMetadata={"labels": ["unmanaged"], "annotations": ["unmanaged"]},
    )
    apex = metadata_by_name(release)["podinfo"]
    assert apex["labels"] == {"test": "v", "app": "podinfo"}
    assert apex["annotations"] == FLUX


def test_headless_applies_to_every_generated_service() -> None:
    """TestServiceRouter_Create: `reconcileService` sets clusterIP None for all three."""
    release = with_service("flagger-router", headless=True)
    assert [s["spec"].get("clusterIP") for s in routing.services(release)] == ["None"] * 3


def test_virtual_service_metadata_is_the_apex_metadata_and_flux_opt_out() -> None:
    """The apex metadata object is shared with the apex Service, which adds its label first."""
    metadata = routing.virtual_service(corpus_bundle("route-options").release())["metadata"]
    assert metadata == {
        "name": "frontend",
        "namespace": "test",
        "labels": {"team": "storefront", "app": "frontend"},
        "annotations": {"example.com/owner": "storefront", **FLUX},
    }
    plain = routing.virtual_service(corpus_bundle("flagger-router").release())["metadata"]
    assert plain == {"name": "podinfo", "namespace": "default", "annotations": FLUX}


def test_destination_rules_carry_no_metadata() -> None:
    for rule in routing.destination_rules(corpus_bundle("route-options").release()):
        assert set(rule["metadata"]) == {"name", "namespace"}


# --- 3, 5. The primary Deployment (pkg/canary/deployment_controller.go, pkg/canary/util.go) ------


def primary_of(release: ReleaseSpec) -> dict[str, Any]:
    deployment = routing.primary_deployment(release, release.deployment["spec"]["template"], 1)
    assert kubernetes_errors(deployment) == []
    return deployment


def test_primary_copies_only_app_kubernetes_io_metadata_and_never_fluxs() -> None:
    """TestDeploymentController_Sync_ConsistentNaming (no Flux checksum on the primary) and the
    e2e test/kubernetes/test-deployment.sh (the `app.kubernetes.io` label and annotation are),
    with kustomize/istio's `-include-label-prefix=app.kubernetes.io`."""
    fixture = primary_of(corpus_bundle("affinity").release())["metadata"]  # checksum dropped
    assert fixture == {
        "name": "podinfo-primary",
        "namespace": "default",
        "labels": {"name": "podinfo-primary"},
    }
    kwargs = corpus_bundle("port-discovery").kwargs()
    kwargs["deployment"]["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"
    ] = '{"kind": "Deployment"}'
    e2e = primary_of(ReleaseSpec.parse(**kwargs))["metadata"]
    assert e2e["labels"] == {
        "app.kubernetes.io/name": "podinfo",
        "app.kubernetes.io/managed-by": "test-label-prefix",
        "app": "podinfo-primary",
    }
    assert e2e["annotations"] == {"app.kubernetes.io/instance": "test-annotation-prefix"}


def test_primary_pod_template_keeps_its_metadata_but_fluxs() -> None:
    """makePrimaryLabels and makeAnnotations, without Flagger's random `flagger-id`."""
    kwargs = corpus_bundle("affinity").kwargs()
    metadata = kwargs["deployment"]["spec"]["template"]["metadata"]
    metadata["labels"]["kustomize.toolkit.fluxcd.io/name"] = "apps"
    metadata["annotations"]["kustomize.toolkit.fluxcd.io/checksum"] = "0a40893b"
    template = primary_of(ReleaseSpec.parse(**kwargs))["spec"]["template"]["metadata"]
    assert template == {
        "labels": {"name": "podinfo-primary", "test-label-1": "test-label-value-1"},
        "annotations": {"test-annotation-1": "test-annotation-value-1"},
    }


def scheduling_values(pod_spec: dict[str, Any]) -> dict[str, list[Any]]:
    """The first expression's values, or the matchLabels, of each term, by where it sits."""

    def values(selector: dict[str, Any]) -> Any:
        if "matchLabels" in selector:
            return selector["matchLabels"]
        return selector["matchExpressions"][0]["values"]

    found: dict[str, list[Any]] = {}
    for kind, terms in pod_spec.get("affinity", {}).items():
        for term in terms.get("requiredDuringSchedulingIgnoredDuringExecution", []):
            found.setdefault(f"{kind}.required", []).append(values(term["labelSelector"]))
        for term in terms.get("preferredDuringSchedulingIgnoredDuringExecution", []):
            found.setdefault(f"{kind}.preferred", []).append(
                values(term["podAffinityTerm"]["labelSelector"])
            )
    for constraint in pod_spec.get("topologySpreadConstraints", []):
        found.setdefault("topologySpread", []).append(values(constraint["labelSelector"]))
    return found


def set_term_key(pod_spec: dict[str, Any], key: str) -> None:
    for terms in pod_spec["affinity"].values():
        for term in terms["requiredDuringSchedulingIgnoredDuringExecution"]:
            term["labelSelector"]["matchExpressions"][0]["key"] = key
        for term in terms["preferredDuringSchedulingIgnoredDuringExecution"]:
            term["podAffinityTerm"]["labelSelector"]["matchExpressions"][0]["key"] = key
    for constraint in pod_spec["topologySpreadConstraints"]:
        constraint["labelSelector"]["matchExpressions"][0]["key"] = key


REWRITTEN = {
    "podAntiAffinity.required": [["podinfo-primary"], ["arbitrary-app"]],
    "podAntiAffinity.preferred": [["podinfo-primary"], ["arbitrary-app"]],
    "topologySpread": [["podinfo-primary"], ["arbitrary-app"]],
}


def test_terms_selecting_the_targets_pods_select_the_primarys() -> None:
    """TestDeploymentController_AntiAffinityAndTopologySpreadConstraints, with the terms on the
    fixture's selector label `name`: the term naming the target is rewritten, the other not."""
    kwargs = corpus_bundle("affinity").kwargs()
    set_term_key(kwargs["deployment"]["spec"]["template"]["spec"], "name")
    pod_spec = primary_of(ReleaseSpec.parse(**kwargs))["spec"]["template"]["spec"]
    assert scheduling_values(pod_spec) == REWRITTEN


def test_terms_on_a_label_the_primary_keeps_are_not_rewritten() -> None:
    """Divergence. The fixture's terms select `app`, a label its pods lack; Flagger rewrites
    any of its selector labels (app, name, app.kubernetes.io/name) whose value is the
    Deployment's name. Only the selector label differs between primary and canary pods, so only
    terms on it are rewritten here; a term on another label keeps selecting what it did."""
    release = corpus_bundle("affinity").release()
    pod_spec = primary_of(release)["spec"]["template"]["spec"]
    assert scheduling_values(pod_spec) == scheduling_values(
        release.deployment["spec"]["template"]["spec"]
    )


def test_match_labels_and_pod_affinity_are_rewritten_too() -> None:
    """matchLabels as Flagger rewrites them; podAffinity too (a divergence: Flagger rewrites
    podAntiAffinity only, so a required affinity to the app's own pods would wait for canary
    pods that are scaled to zero)."""
    kwargs = corpus_bundle("affinity").kwargs()
    pod_spec = kwargs["deployment"]["spec"]["template"]["spec"]
    set_term_key(pod_spec, "name")
    term = {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": {"name": "podinfo", "tier": "web"}},
    }
    pod_spec["affinity"]["podAffinity"] = {
        "requiredDuringSchedulingIgnoredDuringExecution": [term],
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": term}],
    }
    pod_spec = primary_of(ReleaseSpec.parse(**kwargs))["spec"]["template"]["spec"]
    rewritten = {"name": "podinfo-primary", "tier": "web"}
    assert scheduling_values(pod_spec) == {
        **REWRITTEN,
        "podAffinity.required": [rewritten],
        "podAffinity.preferred": [rewritten],
    }


def test_the_value_rewritten_is_the_selector_labels_not_the_deployment_name() -> None:
    """TestDeploymentController_Sync_InconsistentNaming's Deployment `podinfo-service` with
    `name: podinfo`: the primary's pods are `name: podinfo-primary`, so terms on `podinfo` are
    rewritten (a divergence: Flagger compares with the Deployment's name)."""
    kwargs = corpus_bundle("affinity").kwargs()
    kwargs["canary"]["spec"]["targetRef"]["name"] = "podinfo-service"
    kwargs["deployment"]["metadata"]["name"] = "podinfo-service"
    set_term_key(kwargs["deployment"]["spec"]["template"]["spec"], "name")
    pod_spec = primary_of(ReleaseSpec.parse(**kwargs))["spec"]["template"]["spec"]
    assert scheduling_values(pod_spec) == REWRITTEN


def test_the_targets_own_pod_template_is_left_as_it_is() -> None:
    release = corpus_bundle("affinity").release()
    before = copy.deepcopy(release.deployment)
    primary_of(release)
    assert routing.canary_deployment(release, 0)["spec"]["template"] == before["spec"]["template"]
    assert release.deployment == before


# --- 2. TCP services (pkg/router/istio.go isTcp, canaryToL4Match, SetRoutes, GetRoutes) --------


def tcp_destinations(primary: int, canary: int) -> list[dict[str, Any]]:
    """makeDestination: the service port, since port discovery meets an ingress gateway."""
    return [
        {"destination": {"host": "podinfo-primary", "port": {"number": 9898}}, "weight": primary},
        {"destination": {"host": "podinfo-canary", "port": {"number": 9898}}, "weight": canary},
    ]


@pytest.mark.parametrize("weight", [0, 40, 100])
def test_tcp_routes_are_one_weighted_route_matching_the_port(weight: int) -> None:
    """TestIstioRouter_SetRoutesTCP (60/40) and reconcileVirtualService's at-rest tcp route."""
    release = corpus_bundle("tcp").release()
    vs = routing.virtual_service(release, routing.TrafficState(weight))
    assert istio_schema_errors(vs) == []
    assert "http" not in vs["spec"]
    assert vs["spec"]["tcp"] == [
        {"match": [{"port": 9898}], "route": tcp_destinations(100 - weight, weight)}
    ]
    assert routing.route_weights(vs["spec"], release) == (100 - weight, weight, False)


def test_tcp_at_rest_reads_back_as_primary_100() -> None:
    """TestIstioRouter_GetRoutesTCP: 100/0, never mirrored."""
    release = corpus_bundle("tcp").release()
    assert routing.route_weights(routing.virtual_service(release)["spec"], release) == (
        100,
        0,
        False,
    )


@pytest.mark.parametrize(
    ("app_protocol", "field"),
    [("TCP", "tcp"), ("tcp", "tcp"), ("Tcp", "tcp"), ("http", "http"), (None, "http")],
)
def test_app_protocol_tcp_in_any_case_owns_spec_tcp(app_protocol: str | None, field: str) -> None:
    release = with_service("tcp", appProtocol=app_protocol)
    assert routing.route_field(release) == field
    assert routing.owned_route_field(release) == f"spec.{field}"
    assert list(routing.routes(release, routing.TrafficState(10))) == [field]


def test_a_tcp_service_without_match_routes_every_connection() -> None:
    release = with_service("tcp", match=[])
    (route,) = routing.routes(release, routing.TrafficState(10))["tcp"]
    assert route == {"route": tcp_destinations(90, 10)}


def test_tcp_services_keep_app_protocol_on_their_port() -> None:
    for service in routing.services(corpus_bundle("tcp").release()):
        assert service["spec"]["ports"][0]["appProtocol"] == "TCP"


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("analysis", "match", [{"headers": {"x-canary": {"exact": "on"}}}]),
        ("analysis", "mirror", True),
        ("analysis", "sessionAffinity", {"cookieName": "flagger-cookie"}),
        ("service", "timeout", "5s"),
        ("service", "retries", {"attempts": 3}),
        ("service", "headers", {"request": {"add": {"x-a": "b"}}}),
        ("service", "corsPolicy", {"allowMethods": ["GET"]}),
        ("service", "rewrite", {"uri": "/"}),
    ],
)
def test_http_only_settings_on_a_tcp_service_are_spec_errors(
    section: str, field: str, value: Any
) -> None:
    """Flagger drops them without a word; an A/B run would send every connection to the
    canary, since its TCP route has no match to hold the rest on the primary."""
    kwargs = corpus_bundle("tcp").kwargs()
    kwargs["canary"]["spec"][section][field] = value
    with pytest.raises(SpecError) as raised:
        ReleaseSpec.parse(**kwargs)
    (problem,) = raised.value.problems
    assert problem.path == f"spec.{section}.{field}"
    assert problem.message == "needs HTTP routes, and appProtocol 'TCP' routes TCP"


def test_a_tcp_match_other_than_port_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as raised:
        with_service("tcp", match=[{"port": 9898}, {"port": 80, "uri": {"prefix": "/"}}])
    (problem,) = raised.value.problems
    assert str(problem) == "spec.service.match[1]: a TCP route matches on port only; remove uri"


# --- 6. Whole objects, at rest and in every traffic state (pkg/router/istio_test.go) -----------

ROUTER_MATCH = {"name": "podinfo", "uri": {"prefix": "/podinfo"}, "method": {"exact": "GET"}}
ROUTER_OPTIONS = {
    "retries": {"attempts": 10, "perTryTimeout": "30s", "retryOn": "connect-failure,gateway-error"},
    "corsPolicy": {"allowMethods": ["GET", "POST"]},
    "headers": {
        "request": {"add": {"x-envoy-upstream-rq-timeout-ms": "15000"}, "remove": ["test"]},
        "response": {"remove": ["token"]},
    },
}


def router_destinations(primary: int, canary: int) -> list[dict[str, Any]]:
    """TestIstioRouter_GatewayPort: port discovery behind an ingress gateway adds the port."""
    return [
        {"destination": {"host": "podinfo-primary", "port": {"number": 9898}}, "weight": primary},
        {"destination": {"host": "podinfo-canary", "port": {"number": 9898}}, "weight": canary},
    ]


def router_route(primary: int, canary: int, **extra: Any) -> dict[str, Any]:
    match = {**ROUTER_MATCH, "ignoreUriCase": True}
    return {
        "match": [match],
        **ROUTER_OPTIONS,
        "route": router_destinations(primary, canary),
        **extra,
    }


@pytest.mark.parametrize(
    ("state", "route"),
    [
        (routing.TrafficState(), router_route(100, 0)),
        (routing.TrafficState(40), router_route(60, 40)),
        (
            routing.TrafficState(mirror=True),
            router_route(100, 0, mirror={"host": "podinfo-canary"}),
        ),
    ],
    ids=["reconcile", "set-routes-60-40", "mirror"],
)
def test_router_fixture_virtual_service(state: routing.TrafficState, route: dict[str, Any]) -> None:
    """TestIstioRouter_Sync, _SetRoutes ("normal", "mirror" without mirrorWeight),
    _HTTPRequestHeaders, _CORS, _GatewayPort: the whole object."""
    release = corpus_bundle("flagger-router").release()
    vs = routing.virtual_service(release, state)
    assert istio_schema_errors(vs) == []
    assert vs == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": "default", "annotations": FLUX},
        "spec": {
            "hosts": ["podinfo"],
            "gateways": ["istio/public-gateway", "mesh"],
            "http": [route],
        },
    }
    assert routing.route_weights(vs["spec"], release) == (
        state.primary_weight,
        state.canary_weight,
        state.mirror,
    )


@pytest.mark.parametrize(("mirror_weight", "percentage"), [(0, None), (10, 10), (50, 50)])
def test_mirror_percentage_only_with_a_mirror_weight(
    mirror_weight: int, percentage: int | None
) -> None:
    """TestIstioRouter_SetRoutes "mirror": mirrorWeight 0, 10, 50."""
    kwargs = corpus_bundle("flagger-router").kwargs()
    kwargs["canary"]["spec"]["analysis"].update(mirror=True, mirrorWeight=mirror_weight)
    release = ReleaseSpec.parse(**kwargs)
    (route,) = routing.routes(release, routing.TrafficState(mirror=True))["http"]
    assert route["mirror"] == {"host": "podinfo-canary"}
    assert route.get("mirrorPercentage") == (percentage and {"value": percentage})


def test_ab_fixture_at_rest_and_during_the_test() -> None:
    """TestIstioRouter_ABTest and _Match: the matched route, then the rest on the primary with
    the primary's weight (0 during the test; Istio sends a sole destination everything)."""
    release = corpus_bundle("flagger-abtest").release()
    matched = {"match": [{"headers": {"x-user-type": {"exact": "test"}}}]}

    def split(primary: int, canary: int) -> list[dict[str, Any]]:
        return [
            {"destination": {"host": "abtest-primary"}, "weight": primary},
            {"destination": {"host": "abtest-canary"}, "weight": canary},
        ]

    for state, primary in ((routing.TrafficState(), 100), (routing.TrafficState(100), 0)):
        vs = routing.virtual_service(release, state)
        assert istio_schema_errors(vs) == []
        assert vs["spec"] == {
            "hosts": ["abtest"],
            "gateways": ["mesh"],
            "http": [
                {**matched, "route": split(primary, 100 - primary)},
                {"route": [{"destination": {"host": "abtest-primary"}, "weight": primary}]},
            ],
        }
        assert routing.route_weights(vs["spec"], release) == (primary, 100 - primary, False)


def test_ab_fixture_merged_with_a_service_match() -> None:
    """TestIstioRouter_Match, second case: each analysis condition narrows a copy of the
    service match; the default route keeps the service match."""
    kwargs = corpus_bundle("flagger-abtest").kwargs()
    service_match = {**ROUTER_MATCH, "ignoreUriCase": True}
    kwargs["canary"]["spec"]["service"]["match"] = [service_match]
    kwargs["canary"]["spec"]["analysis"]["match"] = [
        {"headers": {"x-user-type": {"exact": "test"}, "x-auth-test": {"exact": "test"}}},
        {"headers": {"x-session-id": {"exact": "test"}}},
    ]
    matched, default = routing.routes(ReleaseSpec.parse(**kwargs), routing.TrafficState(100))[
        "http"
    ]
    assert matched["match"] == [
        {
            **service_match,
            "headers": {"x-user-type": {"exact": "test"}, "x-auth-test": {"exact": "test"}},
        },
        {**service_match, "headers": {"x-session-id": {"exact": "test"}}},
    ]
    assert default["match"] == [service_match]


def test_delegate_has_empty_hosts_no_gateways_and_routes_to_the_port() -> None:
    """TestIstioRouter_Delegate "ok": Flagger's type always writes `hosts`, empty here."""
    release = with_service("flagger-router", gateways=[], hosts=[], delegation=True)
    vs = routing.virtual_service(release, routing.TrafficState(10))
    assert istio_schema_errors(vs) == []
    assert vs["spec"] == {"hosts": [], "http": [router_route(90, 10)]}


def test_hosts_keep_the_users_and_append_the_apex() -> None:
    """TestIstioRouter_Sync's update: a host added to the Canary."""
    release = with_service("flagger-router", hosts=["test.example.com"])
    assert routing.virtual_service(release)["spec"]["hosts"] == ["test.example.com", "podinfo"]


def test_route_options_as_flaggers_istio_types_write_them() -> None:
    """`retries.attempts` has no omitempty (0 when unset), `rewrite.type` is Gateway API's only,
    and a false `ignoreUriCase` or `allowCredentials` is omitted."""
    release = with_service(
        "flagger-router",
        retries={"retryOn": "5xx"},
        rewrite={"uri": "/", "authority": "podinfo.internal", "type": "ReplacePrefixMatch"},
        corsPolicy={"allowMethods": ["GET"], "allowCredentials": False},
        match=[{"uri": {"prefix": "/"}, "ignoreUriCase": False}],
    )
    vs = routing.virtual_service(release)
    assert istio_schema_errors(vs) == []
    (route,) = vs["spec"]["http"]
    assert route["retries"] == {"attempts": 0, "retryOn": "5xx"}
    assert route["rewrite"] == {"uri": "/", "authority": "podinfo.internal"}
    assert route["corsPolicy"] == {"allowMethods": ["GET"]}
    assert route["match"] == [{"uri": {"prefix": "/"}}]


def test_destination_rules_are_host_and_traffic_policy_only() -> None:
    """reconcileDestinationRule: `{host, trafficPolicy}`, canary and primary."""
    release = corpus_bundle("traffic-policy").release()
    policy = corpus_bundle("traffic-policy").canary["spec"]["service"]["trafficPolicy"]
    assert routing.destination_rules(release) == [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": "test"},
            "spec": {"host": name, "trafficPolicy": policy},
        }
        for name in ("backend-primary", "backend-canary")
    ]


def test_router_fixture_services_and_primary() -> None:
    """TestServiceRouter_Create and the primary createPrimaryDeployment makes, whole."""
    release = corpus_bundle("flagger-router").release()
    apex, primary, canary = routing.services(release)
    ports = [
        {
            "name": "http",
            "port": 9898,
            "targetPort": 9898,
            "protocol": "TCP",
            "appProtocol": "http",
        },
        {"name": "http-prom", "port": 9797, "targetPort": 9797, "protocol": "TCP"},
    ]
    for service, name, selected in (
        (apex, "podinfo", "podinfo-primary"),
        (primary, "podinfo-primary", "podinfo-primary"),
        (canary, "podinfo-canary", "podinfo"),
    ):
        assert service == {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": "default",
                "labels": {"app": name},
                "annotations": FLUX,
            },
            "spec": {"type": "ClusterIP", "selector": {"app": selected}, "ports": ports},
        }
    deployment = routing.primary_deployment(release, release.deployment["spec"]["template"], 1)
    template = copy.deepcopy(release.deployment["spec"]["template"])
    template["metadata"]["labels"] = {"app": "podinfo-primary"}
    assert deployment == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo-primary",
            "namespace": "default",
            "labels": {"app": "podinfo-primary"},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "podinfo-primary"}},
            "template": template,
        },
    }


# --- 7. Sticky sessions (pkg/router/istio.go getSessionAffinityRouteRules, SessionAffinity
# BuildCookie in pkg/apis/flagger/v1beta1/canary.go) ---------------------------------------------

ROUTER_AFFINITY = {
    "cookieName": "flagger-cookie",
    "domain": "flagger.app",
    "httpOnly": True,
    "maxAge": 300,
    "partitioned": True,
    "path": "/app",
    "sameSite": "Strict",
    "secure": True,
}
ATTRIBUTES = "Domain=flagger.app; HttpOnly; Partitioned; Path=/app; SameSite=Strict; Secure"


def sticky_release(affinity: dict[str, Any], interval: str = "1m") -> ReleaseSpec:
    kwargs = corpus_bundle("flagger-router").kwargs()
    kwargs["canary"]["spec"]["analysis"].update(interval=interval, sessionAffinity=affinity)
    return ReleaseSpec.parse(**kwargs)


def set_cookies(route: dict[str, Any]) -> dict[str, str]:
    """The Set-Cookie each destination of a route adds, by host."""
    return {
        d["destination"]["host"]: d["headers"]["response"]["add"]["Set-Cookie"]
        for d in route["route"]
        if "headers" in d
    }


def cookie_regex(route: dict[str, Any]) -> str:
    (condition,) = route["match"]
    return str(condition["headers"]["Cookie"]["regex"])


def test_a_sticky_run_pins_cookie_holders_and_sets_the_cookie_on_canary_responses() -> None:
    """TestIstioRouter_SetRoutes "session affinity": at 10% and 50%, a cookie route to the
    canary, then the weighted route whose canary responses set the cookie, attributes in
    BuildCookie's order."""
    release = sticky_release(ROUTER_AFFINITY)
    for weight in (10, 50):
        state = routing.TrafficState(weight, cookie="c0ffee")
        vs = routing.virtual_service(release, state)
        assert istio_schema_errors(vs) == []
        sticky, weighted = vs["spec"]["http"]
        assert re.fullmatch(cookie_regex(sticky), "theme=dark; flagger-cookie=c0ffee")
        assert sticky["route"] == router_destinations(0, 100)
        assert set_cookies(weighted) == {
            "podinfo-canary": f"flagger-cookie=c0ffee; Max-Age=300; {ATTRIBUTES}"
        }
        assert {k: v for k, v in sticky.items() if k not in ("match", "route")} == ROUTER_OPTIONS
        assert routing.route_weights(vs["spec"], release) == (100 - weight, weight, False)


def test_after_the_run_the_previous_cookie_is_answered_expired() -> None:
    """TestIstioRouter_SetRoutes "session affinity", promotion (100/0): a route matching the
    previous cookie, routed as the weighted route, returns the cookie with Max-Age=-1 (and, a
    divergence, the attributes it was set with); the weighted route sets no cookie."""
    release = sticky_release(ROUTER_AFFINITY)
    vs = routing.virtual_service(release, routing.TrafficState(previous_cookie="c0ffee"))
    assert istio_schema_errors(vs) == []
    expiring, weighted = vs["spec"]["http"]
    assert re.fullmatch(cookie_regex(expiring), "flagger-cookie=c0ffee")
    assert not re.fullmatch(cookie_regex(expiring), "flagger-cookie=d00d")
    assert expiring["route"] == router_destinations(100, 0)
    assert expiring["headers"] == {
        "request": ROUTER_OPTIONS["headers"]["request"],
        "response": {
            "remove": ["token"],
            "add": {"Set-Cookie": f"flagger-cookie=c0ffee; Max-Age=-1; {ATTRIBUTES}"},
        },
    }
    assert weighted == router_route(100, 0)
    assert routing.route_weights(vs["spec"], release) == (100, 0, False)


def test_without_cookie_attributes_the_expired_cookie_is_flaggers() -> None:
    """TestIstioRouter_getSessionAffinityRoutes: `<cookie>; Max-Age=-1`."""
    release = sticky_release({"cookieName": "flagger-cookie", "maxAge": 300})
    expiring, _ = routing.routes(release, routing.TrafficState(previous_cookie="c0ffee"))["http"]
    assert expiring["headers"]["response"]["add"] == {
        "Set-Cookie": "flagger-cookie=c0ffee; Max-Age=-1"
    }


def test_the_primary_cookie_lives_one_analysis_interval() -> None:
    """TestIstioRouter_getSessionAffinityRoutes "with primary cookie": interval 15s gives
    Max-Age=15 on the primary's cookie, maxAge on the canary's; three routes."""
    release = sticky_release(
        {
            "cookieName": "canary-flagger-cookie",
            "primaryCookieName": "primary-flagger-cookie",
            "maxAge": 300,
        },
        interval="15s",
    )
    canary_sticky, primary_sticky, weighted = routing.routes(
        release, routing.TrafficState(10, cookie="c0ffee")
    )["http"]
    assert canary_sticky["route"] == router_destinations(0, 100)
    assert primary_sticky["route"] == router_destinations(100, 0)
    assert re.fullmatch(cookie_regex(primary_sticky), "primary-flagger-cookie=c0ffee-primary")
    assert set_cookies(weighted) == {
        "podinfo-primary": "primary-flagger-cookie=c0ffee-primary; Max-Age=15",
        "podinfo-canary": "canary-flagger-cookie=c0ffee; Max-Age=300",
    }


def test_the_primary_cookie_follows_the_interval_the_release_runs_with() -> None:
    release = sticky_release(
        {"cookieName": "c", "primaryCookieName": "p", "maxAge": 300}, interval="15s"
    )
    state = routing.TrafficState(10, cookie="c0ffee", interval_seconds=2.5)
    _, _, weighted = routing.routes(release, state)["http"]
    assert set_cookies(weighted)["podinfo-primary"] == "p=c0ffee-primary; Max-Age=2"


def test_e2e_cookie_cleanup_after_promotion() -> None:
    """test/istio/test-session-affinity.sh, "Verifying cookie cleanup": a request carrying the
    previous canary cookie gets that cookie back with Max-Age=-1."""
    kwargs = corpus_bundle("port-discovery").kwargs()
    kwargs["canary"]["spec"]["service"] = {
        "port": 80,
        "targetPort": 9898,
        "gateways": ["istio-system/istio-ingressgateway"],
        "hosts": ["*"],
    }
    kwargs["canary"]["spec"]["analysis"] = {
        "interval": "15s",
        "threshold": 15,
        "maxWeight": 30,
        "stepWeight": 10,
        "sessionAffinity": {
            "cookieName": "canary-flagger-cookie",
            "primaryCookieName": "primary-flagger-cookie",
        },
    }
    release = ReleaseSpec.parse(**kwargs)
    vs = routing.virtual_service(release, routing.TrafficState(previous_cookie="XyzAbcDefG"))
    assert istio_schema_errors(vs) == []
    assert vs["spec"]["hosts"] == ["*"]
    request = "canary-flagger-cookie=XyzAbcDefG"
    route = next(
        r for r in vs["spec"]["http"] if "match" not in r or re.fullmatch(cookie_regex(r), request)
    )
    response = route["headers"]["response"]["add"]["Set-Cookie"]
    assert request in response
    assert "Max-Age=-1" in response


def test_mirroring_after_a_sticky_run_mirrors_the_weighted_route() -> None:
    """Divergence: Flagger sets the mirror on the first route, which is then the expiring
    route, so only the previous cookie's holders would be mirrored."""
    release = sticky_release(ROUTER_AFFINITY)
    state = routing.TrafficState(mirror=True, previous_cookie="c0ffee")
    expiring, weighted = routing.routes(release, state)["http"]
    assert "mirror" not in expiring
    assert weighted["mirror"] == {"host": "podinfo-canary"}
    assert routing.route_weights({"http": [expiring, weighted]}, release) == (100, 0, True)


def test_a_b_routes_win_over_sticky_sessions() -> None:
    """SetRoutes builds the A/B routes last, replacing the cookie routes."""
    kwargs = corpus_bundle("flagger-abtest").kwargs()
    kwargs["canary"]["spec"]["analysis"]["sessionAffinity"] = {"cookieName": "flagger-cookie"}
    release = ReleaseSpec.parse(**kwargs)
    for state in (
        routing.TrafficState(100, cookie="c0ffee"),
        routing.TrafficState(previous_cookie="c0ffee"),
    ):
        assert routing.routes(release, state) == routing.routes(
            corpus_bundle("flagger-abtest").release(), state
        )
