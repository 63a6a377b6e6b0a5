"""`configs` at validation: what the preview says about configs the release does not track, and
errors that name the field and the value, never a Secret's content."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from components.spec import ReleaseSpec, SpecError
from tests.conftest import config_manifest, corpus_bundle, load_yaml

PASSWORD = "hunter2-s3cret"


def secret(name: str, **fields: Any) -> dict[str, Any]:
    return config_manifest("Secret", name, **{"stringData": {"password": PASSWORD}, **fields})


def reading_secret(name: str) -> dict[str, Any]:
    """The tutorial's Deployment, its container reading the Secret `name` through env."""
    deployment = load_yaml("deployment.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["env"].append(
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": name, "key": "password"}}}
    )
    return deployment


def parse(deployment: dict[str, Any], configs: list[dict[str, Any]]) -> ReleaseSpec:
    return ReleaseSpec.parse(
        canary=load_yaml("canary.yaml"), deployment=deployment, configs=configs
    )


def test_a_referenced_config_made_elsewhere_is_used_as_it_is_with_a_note() -> None:
    """Flagger's own e2e Deployment reads a Secret; passed without it, nothing is tracked."""
    release = corpus_bundle("port-discovery").release()
    assert release.config_tracking.tracked == ()
    (note,) = release.notes
    assert note.startswith(
        "deployment.spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name: "
        "Secret podinfo-secret is not in configs, so it is not tracked: the primary uses it as "
        "it is"
    )
    assert note.endswith("pass its manifest in configs to track it")


def test_a_tracked_config_has_no_note() -> None:
    release = parse(reading_secret("db"), [secret("db")])
    assert [config.ref.key for config in release.config_tracking.tracked] == ["secret/db"]
    assert release.notes == []


def test_an_opted_out_config_has_no_note_and_is_not_tracked() -> None:
    opted_out = secret("db")
    opted_out["metadata"]["annotations"] = {"flagger.app/config-tracking": "disabled"}
    release = parse(reading_secret("db"), [opted_out])
    assert release.config_tracking.tracked == ()
    assert release.notes == []


def test_a_secret_of_a_type_flagger_does_not_track_is_used_as_it_is_with_a_note() -> None:
    """ConfigTracker.getRefFromSecret: registry credentials are the service account's business."""
    registry = secret("regcred", type="kubernetes.io/dockerconfigjson")
    del registry["stringData"]
    registry["data"] = {".dockerconfigjson": base64.b64encode(b"{}").decode()}
    release = parse(reading_secret("regcred"), [registry])
    assert release.config_tracking.tracked == ()
    assert release.notes == [
        "configs[0]: Secret regcred is of type kubernetes.io/dockerconfigjson, which Flagger "
        "does not track: the primary uses it as it is"
    ]


@pytest.mark.parametrize("kind", ["Opaque", "kubernetes.io/basic-auth", "kubernetes.io/tls"])
def test_secrets_of_the_types_flagger_tracks_are_tracked(kind: str) -> None:
    release = parse(reading_secret("db"), [secret("db", type=kind)])
    assert len(release.config_tracking.tracked) == 1


def test_an_unreferenced_secret_is_an_error_that_never_shows_its_content() -> None:
    with pytest.raises(SpecError) as raised:
        parse(reading_secret("db"), [secret("db"), secret("d8")])
    message = str(raised.value)
    assert (
        "configs[1].metadata.name: the pod template references no Secret of that name "
        "(it references: db) (got 'd8')"
    ) in message
    assert PASSWORD not in message


def test_a_bad_secret_value_is_named_by_its_key_only() -> None:
    bad = secret("db")
    bad["stringData"] = {"password": 12345678}
    with pytest.raises(SpecError) as raised:
        parse(reading_secret("db"), [bad])
    assert str(raised.value).endswith(
        "configs[0].stringData.password: must be a string (quote it in YAML)"
    )
    assert "12345678" not in str(raised.value)


def test_a_config_given_twice_is_an_error() -> None:
    with pytest.raises(SpecError, match=r"configs\[1\].metadata.name: another entry of configs"):
        parse(reading_secret("db"), [secret("db"), secret("db")])


def test_a_config_and_a_secret_may_share_a_name() -> None:
    deployment = reading_secret("db")
    deployment["spec"]["template"]["spec"]["volumes"] = [{"name": "c", "configMap": {"name": "db"}}]
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "db"}}
    release = parse(deployment, [secret("db"), config_map])
    assert {c.ref.key for c in release.config_tracking.tracked} == {"secret/db", "configmap/db"}
