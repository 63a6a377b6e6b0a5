"""Shared fixtures and helpers: the tutorial's manifests, the corpus, schemas and echo mocks."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

# Imported here, at a shallow stack: Python 3.11.7's compiler fails to rewrite hypothesis's
# modules when its pytest plugin first imports them at session end (runs without a property test).
import hypothesis  # noqa: F401
import jsonschema
import kubernetes_validate
import pulumi
import pytest
import yaml

from components.spec import ReleaseSpec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "podinfo"
CORPUS = ROOT / "tests" / "corpus"
SCHEMAS = ROOT / "tests" / "schemas"
KUBERNETES_VERSION = "1.30"


def load_yaml(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return data


def config_manifest(
    kind: str, name: str, *, metadata: Mapping[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    """A ConfigMap or Secret as a stack declares it: `fields` beside `metadata`."""
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, **(metadata or {})},
        **fields,
    }


@pytest.fixture
def deployment() -> dict[str, Any]:
    return load_yaml("deployment.yaml")


@pytest.fixture
def canary() -> dict[str, Any]:
    return load_yaml("canary.yaml")


# --- Manifest bundles: a Canary with everything it refers to ----------------------------------


@dataclass(frozen=True)
class Bundle:
    """The manifests one Flagger user hands over for one canary, as `from_flagger` takes them."""

    name: str
    canary: dict[str, Any]
    deployment: dict[str, Any]
    metric_templates: tuple[dict[str, Any], ...] = ()
    alert_providers: tuple[dict[str, Any], ...] = ()
    autoscaler: dict[str, Any] | None = None
    configs: tuple[dict[str, Any], ...] = ()

    def kwargs(self) -> dict[str, Any]:
        """Fresh copies, so a test may mutate what it passes in."""
        return copy.deepcopy(
            {
                "canary": self.canary,
                "deployment": self.deployment,
                "metric_templates": list(self.metric_templates),
                "alert_providers": list(self.alert_providers),
                "autoscaler": self.autoscaler,
                "configs": list(self.configs),
            }
        )

    def release(self) -> ReleaseSpec:
        return ReleaseSpec.parse(**self.kwargs())


def bundle_of(name: str, documents: list[dict[str, Any]]) -> Bundle:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    (canary,) = by_kind["Canary"]
    (deployment,) = by_kind["Deployment"]
    autoscalers = by_kind.get("HorizontalPodAutoscaler", [])
    return Bundle(
        name=name,
        canary=canary,
        deployment=deployment,
        metric_templates=tuple(by_kind.get("MetricTemplate", [])),
        alert_providers=tuple(by_kind.get("AlertProvider", [])),
        autoscaler=autoscalers[0] if autoscalers else None,
        configs=tuple(by_kind.get("ConfigMap", []) + by_kind.get("Secret", [])),
    )


def corpus_names() -> list[str]:
    return sorted(path.stem for path in CORPUS.glob("*.yaml"))


def corpus_documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((CORPUS / f"{name}.yaml").read_text()) if doc]


def corpus_bundle(name: str) -> Bundle:
    """A corpus file holds the Canary and its Deployment, plus templates, providers, an HPA, or
    the ConfigMaps and Secrets the Deployment references."""
    return bundle_of(name, corpus_documents(name))


TUTORIAL_CANARIES = {
    "tutorial-canary": ("canary.yaml", ()),
    "tutorial-ab": ("canary-ab-testing.yaml", ()),
    "tutorial-metrics": ("canary-metrics.yaml", ("metric-template.yaml",)),
}


def tutorial_bundle(name: str) -> Bundle:
    canary, templates = TUTORIAL_CANARIES[name]
    return Bundle(
        name=name,
        canary=load_yaml(canary),
        deployment=load_yaml("deployment.yaml"),
        metric_templates=tuple(load_yaml(template) for template in templates),
    )


def all_bundles() -> list[Bundle]:
    return [*(tutorial_bundle(n) for n in TUTORIAL_CANARIES), *map(corpus_bundle, corpus_names())]


# --- Schemas ----------------------------------------------------------------------------------

_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(h|m|s|ms|us|µs|ns))+$")
_GO_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_CEL_DURATION_RULE = "duration(self) >= duration('1ms')"


def _go_duration_seconds(text: str) -> float | None:
    if not _GO_DURATION.match(text):
        return None
    parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us|µs|ns)", text)
    return sum(float(number) * _GO_UNIT_SECONDS[unit] for number, unit in parts)


def _cel_rules(
    validator: Any, rules: list[dict[str, Any]], instance: Any, schema: Any
) -> Iterator[jsonschema.ValidationError]:
    """The CEL rules this project's output can reach; any other rule fails loudly, not silently."""
    for rule in rules:
        if rule["rule"] == _CEL_DURATION_RULE:
            seconds = _go_duration_seconds(instance) if isinstance(instance, str) else None
            if seconds is None or seconds < 1e-3:
                yield jsonschema.ValidationError(f"{instance!r}: {rule.get('message')}")
        else:
            yield jsonschema.ValidationError(f"CEL rule not evaluated by the tests: {rule['rule']}")


_StructuralValidator = jsonschema.validators.extend(
    jsonschema.Draft7Validator, {"x-kubernetes-validations": _cel_rules}
)


def to_json_schema(node: Any) -> Any:
    """OpenAPI v3 of a CRD as a strict JSON schema, the way `kubectl --validate=strict` sees it.

    `x-kubernetes-int-or-string` becomes integer-or-string, `nullable` admits null, and an
    object with `properties` rejects unknown fields unless it preserves them (the API server
    would prune them: a silently dropped field is a bug in a manifest).
    """
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: to_json_schema(value)
        for key, value in node.items()
        if not key.startswith("x-kubernetes-") or key == "x-kubernetes-validations"
    }
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        out.pop("nullable")
        if "type" in out:
            out["type"] = [out["type"], "null"]
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


_OBJECT_FIELDS = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
}


@cache
def crd_validator(file: str, kind: str, version: str) -> Any:
    for document in yaml.safe_load_all((SCHEMAS / file).read_text()):
        if document and document["spec"]["names"]["kind"] == kind:
            for served in document["spec"]["versions"]:
                if served["name"] == version:
                    schema = to_json_schema(served["schema"]["openAPIV3Schema"])
                    # Every object has these, whether or not the CRD spells them out.
                    schema["properties"] = {**_OBJECT_FIELDS, **schema["properties"]}
                    return _StructuralValidator(schema)
    raise LookupError(f"{kind} {version} is not in {file}")


def schema_errors(file: str, manifest: Mapping[str, Any]) -> list[str]:
    """Every violation of the CRD schema of the manifest's own apiVersion and kind."""
    version = manifest["apiVersion"].split("/")[-1]
    validator = crd_validator(file, manifest["kind"], version)
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]


def flagger_schema_errors(manifest: Mapping[str, Any]) -> list[str]:
    return schema_errors("flagger-crds.yaml", manifest)


def istio_schema_errors(manifest: Mapping[str, Any]) -> list[str]:
    assert manifest["apiVersion"] == "networking.istio.io/v1", manifest["apiVersion"]
    return schema_errors("istio-networking-v1-crds.yaml", manifest)


def kubernetes_errors(manifest: Mapping[str, Any]) -> list[str]:
    """Kubernetes' own OpenAPI schema, strict: unknown fields are errors; for a Service, also
    the API server's port rules that no schema expresses."""
    try:
        kubernetes_validate.validate(dict(manifest), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [str(error).splitlines()[0]]
    if manifest["kind"] == "Service":
        return service_port_errors(manifest)
    return []


_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def service_port_errors(service: Mapping[str, Any]) -> list[str]:
    """ValidateService's port checks: with several ports each has a DNS-1123 label name, names
    and (port, protocol) pairs are unique, and a named targetPort is an IANA service name."""
    ports = service["spec"].get("ports") or []
    errors = []
    names: set[str] = set()
    numbers: set[tuple[int, str]] = set()
    for index, port in enumerate(ports):
        name = port.get("name") or ""
        where = f"spec.ports[{index}]"
        if len(ports) > 1 and not name:
            errors.append(f"{where}.name: required when a Service has several ports")
        elif name and (len(name) > 63 or not _DNS1123_LABEL.match(name)):
            errors.append(f"{where}.name: {name!r} is not a DNS-1123 label")
        if name in names:
            errors.append(f"{where}.name: duplicate {name!r}")
        names.add(name)
        number = (port["port"], port.get("protocol", "TCP"))
        if number in numbers:
            errors.append(f"{where}: duplicate port {number[0]}/{number[1]}")
        numbers.add(number)
        target = port.get("targetPort")
        if isinstance(target, str) and (len(target) > 15 or not _IANA_SVC_NAME.match(target)):
            errors.append(f"{where}.targetPort: {target!r} is not an IANA service name")
    return errors


# --- Pulumi echo mocks that also record what the engine is told -------------------------------


@dataclass(frozen=True)
class Registration:
    """One RegisterResource call: what `MockResourceArgs` shows, plus parent and options."""

    typ: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str
    provider: str
    ignore_changes: tuple[str, ...]
    dependencies: tuple[str, ...]
    additional_secret_outputs: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return str(self.inputs.get("kind") or self.typ.split(":")[-1])

    @property
    def k8s_name(self) -> str:
        return str(self.inputs["metadata"]["name"])


class EchoMocks(pulumi.runtime.Mocks):
    """What users write in their own unit tests: outputs are the inputs."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


class RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
    """The stock mock monitor, keeping the parts of each request `MockResourceArgs` omits."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    typ=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=pulumi.runtime.rpc.deserialize_properties(request.object),
                    parent=request.parent,
                    provider=request.provider,
                    ignore_changes=tuple(request.ignoreChanges),
                    dependencies=tuple(request.dependencies),
                    additional_secret_outputs=tuple(request.additionalSecretOutputs),
                )
            )
        return response


@pytest.fixture
def monitor() -> RecordingMonitor:
    recording = RecordingMonitor(EchoMocks())
    pulumi.runtime.set_mocks(recording.mocks, preview=False, monitor=recording)
    return recording
