"""Config tracking without a cluster: Flagger's config tracker tests, translated.

Each test names the Flagger test it translates (fluxcd/flagger at 15bd6ad5,
pkg/canary/config_tracker_test.go and deployment_*_test.go); the fixture is
tests/corpus/config-tracking.yaml. Where Flagger reads the cluster, the inputs here are the
manifests passed in `configs`; the primary is `routing.primary_deployment` given the checksums of
the promoted configs, and the copies are `routing.primary_config` of the tracked ones.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from components import routing
from components.spec import ReleaseSpec
from components.spec.configs import (
    TRACKING_ANNOTATION,
    Config,
    ConfigTracking,
    checksums,
    config_changes,
)
from components.spec.revision import release_revision, template_revision
from tests.conftest import corpus_bundle, kubernetes_errors

FIXTURE = "config-tracking"


def release() -> ReleaseSpec:
    return corpus_bundle(FIXTURE).release()


def primary_of(spec: ReleaseSpec) -> dict[str, Any]:
    """The primary at rest: the target's template, running the copies of the tracked configs."""
    promoted = checksums(spec.config_tracking.contents())
    template = spec.deployment["spec"]["template"]
    return routing.primary_deployment(spec, template, 1, configs=promoted)


def copies_of(spec: ReleaseSpec) -> dict[str, dict[str, Any]]:
    """The `-primary` copies a promotion writes, by name."""
    return {
        manifest["metadata"]["name"]: manifest
        for manifest in (
            routing.primary_config(spec, config, config.content())
            for config in spec.config_tracking.tracked
        )
    }


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def decoded(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


# --- TestConfigIsDisabled -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "opted_out"),
    [
        ({TRACKING_ANNOTATION: "disable"}, True),
        ({TRACKING_ANNOTATION: "disabled"}, True),
        ({TRACKING_ANNOTATION: "enabled"}, False),
        ({"app": "disable"}, False),
        ({}, False),
    ],
)
def test_the_opt_out_is_an_annotation_value_starting_with_disable(
    annotations: dict[str, str], opted_out: bool
) -> None:
    manifest = {"kind": "ConfigMap", "metadata": {"name": "c", "annotations": annotations}}
    assert Config(manifest, "configs[0]").opted_out is opted_out


# --- TestConfigTracker_ConfigMaps (deployment) ----------------------------------------------------


def test_config_maps_referenced_anywhere_are_copied_and_the_primary_runs_the_copies() -> None:
    spec = release()
    primary, copies = pod_spec(primary_of(spec)), copies_of(spec)
    assert primary["volumes"][0]["configMap"]["name"] == "podinfo-config-vol-primary"
    for name in (
        "podinfo-config-init-env",
        "podinfo-config-init-all-env",
        "podinfo-config-env",
        "podinfo-config-all-env",
        "podinfo-config-vol",
        "podinfo-config-projected",
    ):
        assert copies[f"{name}-primary"]["data"]["color"] == "red", name
    projected = primary["volumes"][2]["projected"]["sources"]
    assert projected[0]["configMap"]["name"] == "podinfo-config-projected-primary"
    (init,) = primary["initContainers"]
    assert init["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == (
        "podinfo-config-init-env-primary"
    )
    assert init["envFrom"][0]["configMapRef"]["name"] == "podinfo-config-init-all-env-primary"
    (container,) = primary["containers"]
    assert container["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == (
        "podinfo-config-env-primary"
    )
    assert container["envFrom"][0]["configMapRef"]["name"] == "podinfo-config-all-env-primary"


@pytest.mark.parametrize(
    ("kind", "field", "volume"),
    [("configMap", "name", "config"), ("secret", "secretName", "secret")],
)
def test_an_opted_out_config_is_not_copied_and_the_primary_keeps_the_original(
    kind: str, field: str, volume: str
) -> None:
    spec = release()
    copies = copies_of(spec)
    assert f"podinfo-{volume}-tracker-enabled-primary" in copies
    assert f"podinfo-{volume}-tracker-disabled-primary" not in copies
    names = [v[kind][field] for v in pod_spec(primary_of(spec))["volumes"] if kind in v]
    assert f"podinfo-{volume}-tracker-enabled-primary" in names
    assert f"podinfo-{volume}-tracker-disabled" in names
    assert f"podinfo-{volume}-tracker-enabled" not in names
    assert f"podinfo-{volume}-tracker-disabled-primary" not in names


# --- TestConfigTracker_Secrets (deployment) -------------------------------------------------------


def test_secrets_referenced_anywhere_are_copied_and_the_primary_runs_the_copies() -> None:
    spec = release()
    primary, copies = pod_spec(primary_of(spec)), copies_of(spec)
    assert primary["volumes"][1]["secret"]["secretName"] == "podinfo-secret-vol-primary"
    for name in (
        "podinfo-secret-init-env",
        "podinfo-secret-init-all-env",
        "podinfo-secret-env",
        "podinfo-secret-all-env",
        "podinfo-secret-vol",
        "podinfo-secret-projected",
    ):
        assert decoded(copies[f"{name}-primary"], "apiKey") == "test", name
        assert copies[f"{name}-primary"]["type"] == "Opaque"
    projected = primary["volumes"][2]["projected"]["sources"]
    assert projected[1]["secret"]["name"] == "podinfo-secret-projected-primary"
    (init,) = primary["initContainers"]
    assert init["env"][1]["valueFrom"]["secretKeyRef"]["name"] == "podinfo-secret-init-env-primary"
    assert init["envFrom"][1]["secretRef"]["name"] == "podinfo-secret-init-all-env-primary"


def test_status_keys_are_flaggers() -> None:
    """TestDeploymentController_SyncStatus: `secret/<name>` in `status.trackedConfigs`."""
    contents = release().config_tracking.contents()
    assert "secret/podinfo-secret-env" in contents
    assert "configmap/podinfo-config-env" in contents
    assert "configmap/podinfo-config-tracker-disabled" not in contents


def test_the_canary_runs_the_originals() -> None:
    """Only the primary is pointed at copies; the target (the canary) is the user's own."""
    spec = release()
    canary = routing.canary_deployment(spec, replicas=0)
    assert canary["spec"]["template"] == spec.deployment["spec"]["template"]


# --- Promotion: TestDeploymentController_Promote, TestScheduler_DeploymentNewRevision ------------


def with_config_v2(kwargs: dict[str, Any]) -> dict[str, Any]:
    """newDeploymentControllerTestConfigMapV2 and newDeploymentTestSecretV2."""
    for config in kwargs["configs"]:
        name = config["metadata"]["name"]
        if name == "podinfo-config-env":
            config["data"] = {"color": "blue", "output": "console"}
        if name == "podinfo-secret-env":
            config["data"] = {"apiKey": base64.b64encode(b"test2").decode()}
    return kwargs


def test_a_promotion_copies_the_new_content_and_changes_the_primary_template() -> None:
    before = release()
    after = ReleaseSpec.parse(**with_config_v2(corpus_bundle(FIXTURE).kwargs()))
    assert copies_of(after)["podinfo-config-env-primary"]["data"]["color"] == "blue"
    assert decoded(copies_of(after)["podinfo-secret-env-primary"], "apiKey") == "test2"
    # The same pod template, other configs: the primary's template changes (its checksum), so a
    # promotion of configs alone rolls the primary's pods onto the new copies.
    old, new = primary_of(before)["spec"]["template"], primary_of(after)["spec"]["template"]
    assert old != new
    assert old["spec"] == new["spec"]
    assert old["metadata"]["annotations"].keys() == {routing.CONFIGS_ANNOTATION}


def test_the_review_names_the_changed_keys_never_the_values() -> None:
    before = release().config_tracking.contents()
    after = ReleaseSpec.parse(**with_config_v2(corpus_bundle(FIXTURE).kwargs()))
    changes = config_changes(before, after.config_tracking.contents())
    assert changes == [
        "ConfigMap podinfo-config-env changed (keys: color, output)",
        "Secret podinfo-secret-env changed (keys: apiKey)",
    ]
    assert not any(value in " ".join(changes) for value in ("blue", "console", "dGVzdDI="))


def test_the_review_of_configs_newly_tracked_or_dropped() -> None:
    contents = release().config_tracking.contents()
    old = {key: contents[key] for key in ("configmap/podinfo-config-env",)}
    new = {key: contents[key] for key in ("secret/podinfo-secret-env",)}
    assert config_changes(old, new) == [
        "ConfigMap podinfo-config-env no longer tracked",
        "Secret podinfo-secret-env tracked (keys: apiKey)",
    ]


# --- The checksum: the content, and only the content ----------------------------------------------


def revision_of(manifests: list[dict[str, Any]]) -> str:
    template = corpus_bundle(FIXTURE).deployment["spec"]["template"]
    tracking = ConfigTracking.of(template, manifests)
    return release_revision(template, checksums(tracking.contents()))


def edited(name: str, edit: Any) -> list[dict[str, Any]]:
    manifests = copy.deepcopy(list(corpus_bundle(FIXTURE).configs))
    for manifest in manifests:
        if manifest["metadata"]["name"] == name:
            edit(manifest)
    return manifests


BASE = list(corpus_bundle(FIXTURE).configs)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["data"].update(color="blue"),
        lambda m: m["data"].update(output="console"),
        lambda m: m.update(binaryData={"logo": "iVBORw0K"}),
    ],
    ids=["value", "new key", "binaryData"],
)
def test_a_change_of_a_tracked_configs_data_is_a_new_revision(edit: Any) -> None:
    assert revision_of(edited("podinfo-config-env", edit)) != revision_of(BASE)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["metadata"].setdefault("labels", {}).update(team="shop"),
        lambda m: m["metadata"]["annotations"].update({"unrelated-annotation-1": ":("}),
        lambda m: m["metadata"].update(resourceVersion="42"),
    ],
    ids=["label", "annotation", "server field"],
)
def test_a_change_of_a_tracked_configs_metadata_is_not(edit: Any) -> None:
    assert revision_of(edited("podinfo-config-tracker-enabled", edit)) == revision_of(BASE)


def test_a_change_of_an_opted_out_config_is_not() -> None:
    changed = edited("podinfo-config-tracker-disabled", lambda m: m["data"].update(color="blue"))
    assert revision_of(changed) == revision_of(BASE)


def test_string_data_and_data_spelling_the_same_secret_are_the_same_content() -> None:
    def as_string_data(manifest: dict[str, Any]) -> None:
        manifest["stringData"] = {"apiKey": "test"}
        del manifest["data"]

    assert revision_of(edited("podinfo-secret-env", as_string_data)) == revision_of(BASE)
    changed = edited("podinfo-secret-env", lambda m: m.update(stringData={"apiKey": "other"}))
    assert revision_of(changed) != revision_of(BASE)


def test_without_tracked_configs_the_revision_is_the_templates() -> None:
    """Stacks that track nothing keep the revision recorded before config tracking existed."""
    template = corpus_bundle(FIXTURE).deployment["spec"]["template"]
    assert release_revision(template, {}) == template_revision(template)
    assert revision_of(BASE) != template_revision(template)


# --- Schemas ------------------------------------------------------------------------------------


def test_the_copies_and_the_primary_are_valid_kubernetes_objects() -> None:
    spec = release()
    for manifest in [primary_of(spec), *copies_of(spec).values()]:
        assert kubernetes_errors(manifest) == [], manifest["metadata"]["name"]


def test_a_copy_keeps_the_labels_the_primary_copies_and_no_annotation() -> None:
    kwargs = corpus_bundle(FIXTURE).kwargs()
    (config,) = [c for c in kwargs["configs"] if c["metadata"]["name"] == "podinfo-config-env"]
    config["metadata"]["labels"] = {"app.kubernetes.io/part-of": "shop", "team": "a"}
    config["metadata"]["annotations"] = {TRACKING_ANNOTATION: "enabled"}
    config["immutable"] = True
    copy_ = copies_of(ReleaseSpec.parse(**kwargs))["podinfo-config-env-primary"]
    assert copy_["metadata"] == {
        "name": "podinfo-config-env-primary",
        "namespace": "default",
        "labels": {"app.kubernetes.io/part-of": "shop"},
    }
    assert "immutable" not in copy_
