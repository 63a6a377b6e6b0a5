"""The import file names exactly what the component declares.

The component runs under Pulumi's mocks; every Kubernetes object it registers must be one the
migration knows, under the same name, type, parent and Kubernetes identity, and every entry of
the import file must resolve to the URN the component registers (resolved as `pulumi import`
does: an entry's parent prefixes its type chain, pkg/cmd/pulumi/operations/import.go).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import jsonschema
import pulumi
import pytest

from components import CanaryDeployment
from components.component import TYPE_TOKEN
from components.migrate import Adoption, declared_objects, exists_under_flagger, import_file
from tests.component.test_component_graph import after_declared
from tests.conftest import Bundle, RecordingMonitor, Registration, all_bundles

BUNDLES = {bundle.name: bundle for bundle in all_bundles()}

# The documented shape of the file (`pulumi import --help`, and importSpec in import.go).
IMPORT_FILE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["resources"],
    "properties": {
        "nameTable": {"type": "object", "additionalProperties": {"type": "string"}},
        "resources": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "name"],
                "properties": {
                    "type": {"type": "string", "pattern": "^[^:]+:[^:]+:[^:]+$"},
                    "name": {"type": "string", "minLength": 1},
                    "id": {"type": "string", "pattern": "^[^/]+/[^/]+$"},
                    "parent": {"type": "string"},
                    "provider": {"type": "string"},
                    "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+"},
                    "component": {"const": True},
                },
                "oneOf": [
                    {"required": ["component"], "not": {"required": ["id"]}},
                    {"required": ["id"], "not": {"required": ["component"]}},
                ],
            },
        },
    },
}


def flagger_cluster(bundle: Bundle, component: str) -> dict[str, Any]:
    declared = declared_objects(component, bundle.release())
    return import_file(component, declared, {o.name: exists_under_flagger(o) for o in declared})


def resolved_urns(document: dict[str, Any], stack: str, project: str) -> dict[str, str]:
    """Each entry's URN, as `pulumi import` builds it from names, parents and types."""
    entries = {entry["name"]: entry for entry in document["resources"]}

    def urn(entry: dict[str, Any]) -> str:
        chain = entry["type"]
        if "parent" in entry:
            parent_type = urn(entries[entry["parent"]]).split("::")[2]
            chain = f"{parent_type}${chain}"
        return f"urn:pulumi:{stack}::{project}::{chain}::{entry['name']}"

    return {name: urn(entry) for name, entry in entries.items()}


def engine_urn(mock_urn: str) -> str:
    """The URN the engine gives: the mock monitor also chains the root stack's type, which the
    engine leaves out of every URN (a child of the stack is a top-level resource)."""
    return mock_urn.replace("::pulumi:pulumi:Stack$", "::", 1)


@pytest.mark.parametrize("name", sorted(BUNDLES))
@pulumi.runtime.test
def test_the_file_imports_what_the_component_registers(
    name: str, monitor: RecordingMonitor
) -> None:
    bundle = BUNDLES[name]
    component = CanaryDeployment.from_flagger("shop", **bundle.kwargs())
    document = flagger_cluster(bundle, "shop")
    declared = {item.name: item for item in declared_objects("shop", bundle.release())}

    def check(registrations: list[Registration]) -> None:
        (root,) = [r for r in registrations if r.typ == TYPE_TOKEN]
        kubernetes = {r.name: r for r in registrations if r.typ.startswith("kubernetes:")}
        assert sorted(kubernetes) == sorted(declared)
        for registration in kubernetes.values():
            item = declared[registration.name]
            assert item.type == registration.typ
            metadata = registration.inputs["metadata"]
            assert item.id == f"{metadata['namespace']}/{metadata['name']}"
            assert registration.parent == root.urn

        first, *entries = document["resources"]
        assert first == {"type": TYPE_TOKEN, "name": "shop", "component": True}
        imported = {entry["name"] for entry in entries}
        # Flagger created all of these (the configs' `-primary` copies too), and the user the
        # target Deployment, its HPA and its configs; the Services are taken over by the first
        # `pulumi up`, the metric-template ConfigMaps are new.
        assert imported == {
            r.name
            for r in kubernetes.values()
            if r.kind != "Service" and not r.name.endswith("-metric-template")
        }
        urns = resolved_urns(document, pulumi.get_stack(), pulumi.get_project())
        assert urns["shop"] == engine_urn(root.urn)
        for entry in entries:
            registration = kubernetes[entry["name"]]
            assert entry["parent"] == "shop"
            assert entry["type"] == registration.typ
            assert urns[entry["name"]] == engine_urn(registration.urn)
            metadata = registration.inputs["metadata"]
            assert entry["id"] == f"{metadata['namespace']}/{metadata['name']}"

    return after_declared(component, check, monitor)


@pytest.mark.parametrize("name", ["tutorial-metrics", "autoscaler", "session-affinity"])
def test_the_file_has_the_documented_shape(name: str) -> None:
    document = flagger_cluster(BUNDLES[name], "shop")
    jsonschema.validate(document, IMPORT_FILE_SCHEMA)
    assert "nameTable" not in document
    entries = document["resources"][1:]
    # The version picks the default provider the program's resources use, default_<version>.
    assert {entry["version"] for entry in entries} == {version("pulumi_kubernetes")}


def test_an_explicit_provider_is_named_in_the_name_table() -> None:
    bundle = BUNDLES["tutorial-canary"]
    declared = declared_objects("shop", bundle.release())
    urn = "urn:pulumi:dev::web::pulumi:providers:kubernetes::prod"
    document = import_file(
        "shop", declared, {o.name: True for o in declared}, provider=("prod", urn)
    )
    jsonschema.validate(document, IMPORT_FILE_SCHEMA)
    assert document["nameTable"] == {"prod": urn}
    for entry in document["resources"][1:]:
        assert entry["provider"] == "prod"
        assert "version" not in entry


def test_only_existing_objects_are_imported() -> None:
    bundle = BUNDLES["tutorial-metrics"]
    declared = declared_objects("shop", bundle.release())
    existing = {o.name: o.name != "shop-primary-destinationrule" for o in declared}
    names = [entry["name"] for entry in import_file("shop", declared, existing)["resources"]]
    assert "shop-primary-destinationrule" not in names
    # A metric-template ConfigMap left by an earlier attempt is imported like the rest.
    assert "shop-error-rate-metric-template" in names
    adoptions = {o.name: o.adoption(existing[o.name]) for o in declared}
    assert adoptions["shop-primary-destinationrule"] is Adoption.CREATE
    assert adoptions["shop-apex-service"] is Adoption.UPSERT
