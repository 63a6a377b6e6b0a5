"""`pulumi up` of a stack whose podinfo reads a tracked ConfigMap, run after run, on the test bed.

The program is tests/e2e/programs/configs.py (the example stack plus the ConfigMap). A change of
the ConfigMap alone is a release: the canary, which reads the ConfigMap as given, is analysed,
while the primary keeps reading its `-primary` copy until the promotion; a config that breaks
the canary (podinfo's `PODINFO_RANDOM_ERROR`, which the mesh turns into 5xx) is rolled back, and
the primary keeps the old copy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.provider.rollout import has_unknown
from components.rehearse.testbed import Fault, TestBed
from tests.e2e.engine import Engine, EngineError, Run
from tests.e2e.test_example_stack import (
    AT_REST,
    FIRST_CHECK,
    deployment_path,
    inputs_of,
    planned,
    record,
    weights,
)

pytestmark = pytest.mark.testbed

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "tests" / "e2e" / "programs" / "configs.py"
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
NS = "default"
ORIGINAL = f"/api/v1/namespaces/{NS}/configmaps/podinfo-config"
COPY = f"/api/v1/namespaces/{NS}/configmaps/podinfo-config-primary"
RECORD = f"/api/v1/namespaces/{NS}/configmaps/podinfo-canary-release"
# podinfo answers a third of its requests with errors when this is set; the mesh plays it.
BROKEN = {"PODINFO_UI_MESSAGE": "bonjour", "PODINFO_RANDOM_ERROR": "true"}


@pytest.fixture(scope="module")
def bed() -> Iterator[TestBed]:
    faults = {"PODINFO_RANDOM_ERROR=true": Fault(error_rate=0.5)}
    with TestBed(namespace=NS, faults=faults) as running:
        yield running


@pytest.fixture(scope="module")
def engine(bed: TestBed) -> Engine:
    return Engine(bed.kube, PROJECT)


def settings(bed: TestBed, data: dict[str, str]) -> dict[str, str]:
    return {
        "settings": json.dumps(data),
        "interval": "2s",
        "kubeconfig": bed.kubeconfig.read_text(),
    }


def up(engine: Engine, bed: TestBed, **data: str) -> Run:
    return engine.up(PROGRAM, settings(bed, data), secrets=("kubeconfig",))


def data_of(bed: TestBed, path: str) -> dict[str, str]:
    config_map = bed.kube.get(path)
    assert config_map is not None, path
    data: dict[str, str] = config_map.get("data") or {}
    return data


def pod_spec(bed: TestBed, name: str) -> dict[str, Any]:
    deployment = bed.kube.get(deployment_path(name))
    assert deployment is not None
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


class Watch:
    """What the copy held at each moment of the analysis, sampled while `up` runs."""

    def __init__(self, bed: TestBed) -> None:
        self.bed = bed
        self.seen: list[tuple[str, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            if self.bed.kube.get(RECORD) is not None:
                self.seen.append((record(self.bed)["phase"], data_of(self.bed, COPY)))

    def during(self, action: Callable[[], Any]) -> Any:
        self._thread.start()
        try:
            return action()
        finally:
            self._stop.set()
            self._thread.join()

    def while_analysed(self) -> list[dict[str, str]]:
        """The copy's data at the samples where the release record said Progressing."""
        return [data for phase, data in self.seen if phase == "Progressing"]


def test_1_the_first_up_copies_the_config_and_points_the_primary_at_the_copy(
    engine: Engine, bed: TestBed
) -> None:
    up(engine, bed, PODINFO_UI_MESSAGE="hello")
    assert data_of(bed, ORIGINAL) == {"PODINFO_UI_MESSAGE": "hello"}
    assert data_of(bed, COPY) == {"PODINFO_UI_MESSAGE": "hello"}
    (primary,) = pod_spec(bed, "podinfo-primary")["containers"]
    (canary,) = pod_spec(bed, "podinfo")["containers"]
    assert primary["envFrom"] == [{"configMapRef": {"name": "podinfo-config-primary"}}]
    assert canary["envFrom"] == [{"configMapRef": {"name": "podinfo-config"}}]
    assert bed.mesh.environment("podinfo-primary")["PODINFO_UI_MESSAGE"] == "hello"
    assert record(bed)["phase"] == "Succeeded"


def test_2_a_preview_of_a_config_change_reviews_its_keys_and_shows_the_copy_may_change(
    engine: Engine, bed: TestBed
) -> None:
    run = engine.preview(PROGRAM, settings(bed, {"PODINFO_UI_MESSAGE": "bonjour"}), ("kubeconfig",))
    assert (
        "podinfo: ConfigMap podinfo-config changed (keys: PODINFO_UI_MESSAGE); "
        "canary 10% -> 50% in 5 steps every 2s" in run.output
    )
    assert "bonjour" not in run.output
    assert planned(run, "podinfo-rollout") == "update"
    assert planned(run, "podinfo-podinfo-config-primary-configmap") == "update"
    assert has_unknown(inputs_of(run, "podinfo-podinfo-config-primary-configmap")["data"])
    assert data_of(bed, COPY) == {"PODINFO_UI_MESSAGE": "hello"}


def test_3_a_config_change_alone_is_analysed_and_reaches_the_primary_on_promotion(
    engine: Engine, bed: TestBed
) -> None:
    watch = Watch(bed)
    run = watch.during(lambda: up(engine, bed, PODINFO_UI_MESSAGE="bonjour"))
    assert FIRST_CHECK in run.output
    analysed = watch.while_analysed()
    assert analysed, "no sample of the analysis"
    assert all(data == {"PODINFO_UI_MESSAGE": "hello"} for data in analysed)
    assert data_of(bed, COPY) == {"PODINFO_UI_MESSAGE": "bonjour"}
    # The primary rolled onto the new copy: its pods started with the new value.
    assert bed.mesh.environment("podinfo-primary")["PODINFO_UI_MESSAGE"] == "bonjour"
    assert weights(bed) == AT_REST
    assert record(bed)["phase"] == "Succeeded"


def test_4_a_config_that_breaks_the_canary_is_rolled_back_and_the_primary_keeps_the_copy(
    engine: Engine, bed: TestBed
) -> None:
    watch = Watch(bed)
    with pytest.raises(EngineError) as raised:
        watch.during(lambda: up(engine, bed, **BROKEN))
    message = str(raised.value)
    assert "ConfigMap podinfo-config" in message
    assert "rolled back, the primary is unchanged" in message
    assert watch.while_analysed(), "no sample of the analysis"
    assert all(data == {"PODINFO_UI_MESSAGE": "bonjour"} for data in watch.while_analysed())
    assert data_of(bed, ORIGINAL) == BROKEN
    assert data_of(bed, COPY) == {"PODINFO_UI_MESSAGE": "bonjour"}
    assert "PODINFO_RANDOM_ERROR" not in bed.mesh.environment("podinfo-primary")
    assert weights(bed) == AT_REST
    assert record(bed)["phase"] == "Failed"


def test_5_the_same_broken_config_fails_fast_and_the_promoted_one_releases_nothing(
    engine: Engine, bed: TestBed
) -> None:
    with pytest.raises(EngineError, match="already failed"):
        up(engine, bed, **BROKEN)
    run = up(engine, bed, PODINFO_UI_MESSAGE="bonjour")
    assert FIRST_CHECK not in run.output
    assert not [urn for urn in run.updated if "Rollout" in urn]
    assert data_of(bed, COPY) == {"PODINFO_UI_MESSAGE": "bonjour"}
    assert data_of(bed, ORIGINAL) == {"PODINFO_UI_MESSAGE": "bonjour"}
