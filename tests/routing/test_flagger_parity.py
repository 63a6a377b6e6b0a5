"""What Flagger generates, item by item, from Flagger's own fixtures and e2e manifests.

Each test names the Flagger source it translates (fluxcd/flagger at 15bd6ad5); the inputs are
Flagger-shaped manifests and the outputs go through the public API only.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components import routing
from components.spec import ReleaseSpec, SpecError
from tests.conftest import corpus_bundle, kubernetes_errors, service_port_errors


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
