"""`--from-cluster` on the test bed: what exists is imported, and what the first `pulumi up`
would change is listed before it runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.migrate import main
from components.rehearse import declare_at_rest
from components.rehearse.testbed import TestBed
from components.rehearse.testbed.kube import api_path
from components.routing import TrafficState, primary_deployment, virtual_service
from components.spec import ReleaseSpec
from tests.conftest import Bundle, tutorial_bundle
from tests.migrate.manifests import bundle_argv

pytestmark = pytest.mark.testbed

BUNDLE = tutorial_bundle("tutorial-canary")


@pytest.fixture
def bed() -> Iterator[TestBed]:
    with TestBed(namespace=BUNDLE.release().namespace) as running:
        declare_at_rest(running, BUNDLE.release())
        yield running


def migrate(
    bed: TestBed, bundle: Bundle, folder: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[str, list[str]]:
    out = folder / "import.json"
    argv = [*bundle_argv(bundle, folder), "--name", "podinfo", "--out", str(out)]
    code = main([*argv, "--from-cluster", "--kubeconfig", str(bed.kubeconfig)])
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, "")
    imported = [entry["name"] for entry in json.loads(out.read_text())["resources"][1:]]
    return captured.out, imported


def flagger_primary(release: ReleaseSpec, **container: Any) -> dict[str, Any]:
    """The primary as Flagger leaves it: its own `flagger-id` on the pod template, owned by the
    Canary; `container` overrides fields of the first container."""
    manifest = primary_deployment(release, release.deployment["spec"]["template"], None)
    manifest["metadata"]["ownerReferences"] = [
        {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": release.name, "uid": "1"}
    ]
    template = manifest["spec"]["template"]
    template["metadata"]["annotations"] = {"flagger-id": "5b8c2c0e-0d9c-4e0e-9a47-0c1f6e1c2d3a"}
    template["spec"]["containers"][0].update(container)
    return manifest


def test_a_cluster_at_rest_imports_everything_and_changes_nothing(
    bed: TestBed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = BUNDLE.release()
    bed.kube.apply_object(flagger_primary(release), field_manager="flagger")
    printed, imported = migrate(bed, BUNDLE, tmp_path, capsys)
    assert imported == [
        "podinfo-canary",
        "podinfo-primary",
        "podinfo-primary-destinationrule",
        "podinfo-canary-destinationrule",
        "podinfo-virtualservice",
    ]
    assert "podinfo-apex-service: Service default/podinfo: exists, taken over" in printed
    assert "      changes " not in printed  # Flagger's own annotation is not a change
    assert (
        "warning: Deployment podinfo-primary is still owned by Canary podinfo: delete the Canary "
        "with --cascade=orphan" in printed
    )
    assert "runs another pod template" not in printed


def test_what_the_first_up_would_change_is_listed(
    bed: TestBed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = BUNDLE.release()
    bed.kube.apply_object(
        flagger_primary(release, image="ghcr.io/stefanprodan/podinfo:6.2.0"),
        field_manager="flagger",
    )
    bed.kube.apply_object(virtual_service(release, TrafficState(30)), field_manager="flagger")
    bed.kube.http.patch(
        api_path(release_deployment(release)),
        json={"spec": {"replicas": 2}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    rule = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule"}
    rule["metadata"] = {"name": "podinfo-canary", "namespace": release.namespace}
    bed.kube.request("DELETE", api_path(rule)).raise_for_status()

    printed, imported = migrate(bed, BUNDLE, tmp_path, capsys)
    assert "podinfo-canary-destinationrule" not in imported
    assert (
        "podinfo-canary-destinationrule: DestinationRule default/podinfo-canary: missing, "
        "created by the first `pulumi up`" in printed
    )
    assert (
        "changes spec.template.spec.containers[0].image: 'ghcr.io/stefanprodan/podinfo:6.2.0' "
        "live, 'ghcr.io/stefanprodan/podinfo:6.3.0' declared" in printed
    )
    assert (
        "warning: podinfo-primary runs another pod template than --deployment declares" in printed
    )
    assert "warning: VirtualService podinfo routes 30% to the canary" in printed
    assert "warning: Deployment podinfo runs 2 replicas" in printed
    # The routes and the canary's replicas are the release's: reported above, not as changes.
    assert "changes spec.http" not in printed
    assert "changes spec.replicas" not in printed


def release_deployment(release: ReleaseSpec) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": release.target, "namespace": release.namespace},
    }
