"""Migrating a canary whose configs Flagger tracks: the configs and Flagger's `-primary` copies
are imported, and `--from-cluster` compares them without ever showing a Secret's value."""

from __future__ import annotations

import base64
import copy
from typing import Any

from components.migrate import declared_objects, exists_under_flagger, import_file
from components.migrate._live import LiveState
from components.migrate._run import _report
from components.routing import CONFIGS_ANNOTATION
from components.spec import ReleaseSpec
from tests.conftest import corpus_bundle

BUNDLE = corpus_bundle("config-tracking")
OWNED = [{"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "podinfo", "uid": "1"}]


def test_the_import_file_has_the_configs_and_flaggers_copies_of_the_tracked_ones() -> None:
    declared = declared_objects("podinfo", BUNDLE.release())
    document = import_file("podinfo", declared, {o.name: exists_under_flagger(o) for o in declared})
    ids = {entry["id"]: entry["type"] for entry in document["resources"][1:]}
    assert ids["default/podinfo-config-env"] == "kubernetes:core/v1:ConfigMap"
    assert ids["default/podinfo-config-env-primary"] == "kubernetes:core/v1:ConfigMap"
    assert ids["default/podinfo-secret-vol-primary"] == "kubernetes:core/v1:Secret"
    assert ids["default/podinfo-secret-projected-primary"] == "kubernetes:core/v1:Secret"
    # Opted out: Flagger made no copy; the original is the user's, imported like the rest.
    assert "default/podinfo-config-tracker-disabled" in ids
    assert "default/podinfo-config-tracker-disabled-primary" not in ids
    names = {entry["name"] for entry in document["resources"]}
    assert {
        "podinfo-podinfo-config-env-configmap",
        "podinfo-podinfo-config-env-primary-configmap",
    } <= names


def flagger_copy(release: ReleaseSpec, name: str, **data: str) -> tuple[Any, dict[str, Any]]:
    """A declared copy, and the live one Flagger left: its data, labels and owner reference."""
    (item,) = [o for o in declared_objects("podinfo", release) if o.k8s_name == name]
    live = copy.deepcopy(dict(item.manifest))
    live["metadata"] = {**live["metadata"], "ownerReferences": OWNED, "resourceVersion": "7"}
    live["data"] = {**live.get("data", {}), **data}
    return item, live


def test_a_secret_copy_as_flagger_left_it_has_no_change() -> None:
    item, live = flagger_copy(BUNDLE.release(), "podinfo-secret-env-primary")
    assert LiveState(item, live).changes(BUNDLE.release()) == []
    assert LiveState(item, live).owners() == ["podinfo"]


def test_a_secret_holding_another_value_live_is_named_by_its_key_only() -> None:
    kwargs = BUNDLE.kwargs()
    for config in kwargs["configs"]:
        if config["metadata"]["name"] == "podinfo-secret-env":
            del config["data"]
            config["stringData"] = {"apiKey": "declared-s3cret"}
    release = ReleaseSpec.parse(**kwargs)
    (item,) = [
        o for o in declared_objects("podinfo", release) if o.k8s_name == "podinfo-secret-env"
    ]
    live = {**copy.deepcopy(dict(item.manifest)), "data": {"apiKey": "bGl2ZS1zM2NyZXQ="}}
    del live["stringData"]
    changes = LiveState(item, live).changes(release)
    assert changes == ["data.apiKey: another value live (not shown)"]
    shown = " ".join(changes)
    assert (
        "declared-s3cret" not in shown
        and base64.b64decode("bGl2ZS1zM2NyZXQ=").decode() not in shown
    )


def test_a_flagger_primary_on_the_copies_is_restarted_once_not_rolled_unanalysed() -> None:
    """Flagger's primary already runs the copies; what the component adds is the checksum."""
    release = BUNDLE.release()
    declared = declared_objects("podinfo", release)
    (primary,) = [
        o for o in declared if o.id == "default/podinfo-primary" and o.kind == "Deployment"
    ]
    live = copy.deepcopy(dict(primary.manifest))
    live["spec"]["template"]["metadata"]["annotations"] = {"flagger-id": "5b8c2c0e"}
    state = LiveState(primary, live)
    (change,) = state.changes(release)
    assert change.startswith(f"spec.template.metadata.annotations.{CONFIGS_ANNOTATION}: not set")
    report = _report([state], release)
    assert "runs another pod template" not in report
    assert "restarts the pods of podinfo-primary once, in a rolling update" in report
