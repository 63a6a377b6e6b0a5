"""`pulumi up` of a group of three canaries on the test bed (tests/e2e/group_stack.py), run
after run through the engine stand-in, its dynamic resources in the real `python -m
pulumi.dynamic` server over gRPC, as the engine runs them.

One bad image among three; the waves in order; a preview that says "may change" only for the
canary with a template to release; and a kill mid-wave (SIGKILL of the server, as after a
second Ctrl-C or a CI timeout) after which the next `up` restarts every canary from primary
100% and promotes them all.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.rehearse.testbed import Fault, TestBed
from components.rehearse.testbed.faults import Fault as ApiFault
from components.rehearse.testbed.faults import FaultKind, Request, Rule
from tests.e2e.engine import Engine, EngineError, Run
from tests.provider.dynamic_server import DynamicServer
from tests.safety.requests import body, ours

pytestmark = pytest.mark.testbed

PROGRAM = Path(__file__).with_name("group_stack.py")
IMAGE = "ghcr.io/stefanprodan/podinfo"
NAMES = ("cart", "catalog", "checkout")
NS = "default"


def image_of(bed: TestBed, name: str) -> str:
    deployment = bed.kube.get(f"/apis/apps/v1/namespaces/{NS}/deployments/{name}")
    assert deployment is not None
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def record(bed: TestBed, name: str) -> dict[str, Any]:
    stored = bed.kube.get(f"/api/v1/namespaces/{NS}/configmaps/{name}-canary-release")
    assert stored is not None
    loaded: dict[str, Any] = yaml.safe_load(stored["data"]["release.json"])
    return loaded


def at_rest(bed: TestBed, name: str) -> bool:
    service = bed.kube.get(f"/apis/networking.istio.io/v1/namespaces/{NS}/virtualservices/{name}")
    assert service is not None
    weights = {
        destination["destination"]["host"]: destination.get("weight", 0)
        for route in service["spec"]["http"]
        for destination in route["route"]
    }
    canary = bed.kube.get(f"/apis/apps/v1/namespaces/{NS}/deployments/{name}")
    assert canary is not None
    return weights.get(f"{name}-canary", 0) == 0 and canary["spec"]["replicas"] == 0


class Stack:
    """One bed, one engine state, a dynamic server per `up` (a new process each time, as the
    engine starts one per run)."""

    def __init__(self, bed: TestBed) -> None:
        self.bed = bed
        self.engine = Engine(bed.kube, "shop")
        self.server: DynamicServer | None = None

    def config(self, images: dict[str, str], **more: str) -> dict[str, str]:
        settings = {f"{name}Image": image for name, image in images.items()}
        kubeconfig = self.bed.kubeconfig.read_text()
        return {**settings, "interval": "2s", "kubeconfig": kubeconfig, **more}

    def start(self) -> DynamicServer:
        server = DynamicServer()
        server.configure()
        self.server = self.engine.server = server
        return server

    def stop(self) -> list[str]:
        """Ends the server; its output lines, as `pulumi up` printed them."""
        server = self.server
        assert server is not None
        server.kill()
        lines = [line.text for line in server.stdout]
        server.close()
        self.server = self.engine.server = None
        return lines

    def up(self, images: dict[str, str], **more: str) -> tuple[EngineError | None, list[str]]:
        self.start()
        try:
            self.engine.up(PROGRAM, self.config(images, **more), secrets=("kubeconfig",))
            error = None
        except EngineError as failed:
            error = failed
        return error, self.stop()

    def preview(self, images: dict[str, str], **more: str) -> Run:
        self.engine.server = None  # preview calls Check and Diff only, in-process
        return self.engine.preview(PROGRAM, self.config(images, **more), secrets=("kubeconfig",))


def images(tag: str, **tags: str) -> dict[str, str]:
    return {name: f"{IMAGE}:{tags.get(name, tag)}" for name in NAMES}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    faults = {f"{IMAGE}:6.4.{n}-broken": Fault(error_rate=0.5) for n in range(1, 5)}
    with TestBed(namespace=NS, faults=faults, rps=300.0) as bed:
        yield Stack(bed)


def first_line(lines: list[str], pattern: str) -> int:
    return next(index for index, line in enumerate(lines) if re.search(pattern, line))


# The runs share one bed and one engine state, in order, like consecutive `pulumi up`s.


def test_1_a_first_up_promotes_every_canary_without_analysis(stack: Stack) -> None:
    error, _ = stack.up(images("6.4.0"))
    assert error is None
    for name in NAMES:
        assert image_of(stack.bed, f"{name}-primary") == f"{IMAGE}:6.4.0"
        assert record(stack.bed, name)["phase"] == "Succeeded"
        assert at_rest(stack.bed, name)


def test_2_one_bad_image_rolls_back_alone_and_the_up_fails_naming_it(stack: Stack) -> None:
    error, lines = stack.up(
        images("6.4.1", catalog="6.4.1-broken"),
        waves=json.dumps([["cart", "catalog"], ["checkout"]]),
        onFailure="finish",
    )
    assert error is not None
    message = str(error)
    assert "shop: 1 of 3 canaries did not promote (catalog)" in message
    assert "catalog: release of ghcr.io/stefanprodan/podinfo:6.4.1-broken" in message
    assert "rolled back, the primary is unchanged" in message
    for name in ("cart", "checkout"):
        assert image_of(stack.bed, f"{name}-primary") == f"{IMAGE}:6.4.1", name
        assert record(stack.bed, name)["phase"] == "Succeeded", name
        assert at_rest(stack.bed, name), name
    assert image_of(stack.bed, "catalog-primary") == f"{IMAGE}:6.4.0"
    assert record(stack.bed, "catalog")["phase"] == "Failed"
    assert at_rest(stack.bed, "catalog")
    # The waves in order: checkout began once cart's promotion was finalised.
    finalised = first_line(lines, r"^cart: promotion \w+ finalised")
    assert first_line(lines, r"^checkout: New revision detected") > finalised
    # The first wave's two releases ran side by side on one thread.
    assert first_line(lines, r"^catalog: New revision detected") < first_line(lines, r"^cart: 25% ")


def test_3_a_preview_says_may_change_only_for_the_canary_with_a_template_to_release(
    stack: Stack,
) -> None:
    run = stack.preview(images("6.4.1", catalog="6.4.2"))
    planned = {urn.rsplit("::", 1)[1]: step for urn, step in run.planned.items()}
    assert planned["catalog-primary"] == "update"  # its spec unknown until the analysis ends
    assert planned["cart-primary"] == planned["checkout-primary"] == "same"
    assert planned["cart-rollout"] == planned["checkout-rollout"] == "same"
    assert "catalog: ghcr.io/stefanprodan/podinfo:6.4.0 -> 6.4.2" in run.output
    assert image_of(stack.bed, "catalog") == f"{IMAGE}:6.4.1-broken"  # touched nothing


def test_4_a_kill_mid_wave_recovers_every_canary_from_primary_100(stack: Stack) -> None:
    target = images("6.4.3")
    killed = threading.Event()
    stack.start()
    server = stack.server
    assert server is not None

    def catalog_at_50(request: Request) -> bool:
        if not (ours(request) and request.method == "PATCH"):
            return False
        if not request.path.endswith("/virtualservices/catalog"):
            return False
        routes = ((body(request) or {}).get("spec") or {}).get("http") or []
        return any(
            destination.get("weight") == 50
            for route in routes
            for destination in route.get("route") or []
            if destination["destination"]["host"] == "catalog-canary"
        )

    def kill() -> None:
        os.kill(server.pid, signal.SIGKILL)
        killed.set()

    fault = ApiFault(FaultKind.CALL, callback=kill, after=True)
    stack.bed.kube.api.faults.rules = [Rule(catalog_at_50, fault, nth=1)]
    try:
        with pytest.raises(EngineError):
            stack.engine.up(PROGRAM, stack.config(target), secrets=("kubeconfig",))
    finally:
        stack.bed.kube.api.faults.rules = []
        stack.stop()
    assert killed.is_set()
    # Killed with catalog just routed to 50%: its record says the release is in flight.
    assert record(stack.bed, "catalog")["phase"] == "Progressing"
    assert not at_rest(stack.bed, "catalog")

    error, lines = stack.up(target)
    assert error is None, error
    for name in NAMES:
        restarted = first_line(lines, rf"^{name}: an interrupted release was found")
        assert first_line(lines, rf"^{name}: 25% .*: pass") > restarted, name
        assert image_of(stack.bed, f"{name}-primary") == f"{IMAGE}:6.4.3", name
        assert record(stack.bed, name)["phase"] == "Succeeded", name
        assert at_rest(stack.bed, name), name
