"""The kill sweep: `pulumi up` killed (SIGKILL of its provider process) at points spread over a
release's whole life, each followed by the next `pulumi up`.

The program is a real stack (sweep_stack.py) run by the engine stand-in, its dynamic resources
in a real `python -m pulumi.dynamic` server over gRPC, as the engine runs them. The API emulator
kills that server right after it served the request named by each point, so the kill lands
between two API calls of the gate, where a second Ctrl-C or a CI timeout can land.

After each rerun: all traffic on the primary, the canary at zero replicas, the primary on the
last verified template, the record settled, and a promotion only ever after a complete
analysis in one run.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from components.rehearse.testbed import Fault, TestBed
from components.rehearse.testbed.faults import Fault as ApiFault
from components.rehearse.testbed.faults import FaultKind, Request, Rule
from tests.e2e.engine import Engine, EngineError
from tests.provider.dynamic_server import DynamicServer
from tests.safety.requests import record_saved, routed, scaled

pytestmark = [pytest.mark.testbed, pytest.mark.alone]

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = Path(__file__).with_name("sweep_stack.py")
PROJECT = "sweep"
IMAGE = "ghcr.io/stefanprodan/podinfo"
NS = "default"
VS_PATH = f"/apis/networking.istio.io/v1/namespaces/{NS}/virtualservices/podinfo"
RECORD = "podinfo-canary-release"


def canary_status(request: Request) -> bool:
    return request.method == "GET" and request.path.endswith("/deployments/podinfo")


@dataclass(frozen=True)
class Point:
    name: str
    healthy: bool
    matches: Callable[[Request], bool]
    nth: int = 1
    """The nth matching request of the killed `up`, counted from its start."""
    rerun_fails: str = ""
    """For a bad canary: what the rerun's failure says (a known verdict, or a new rollback)."""


SUCCEEDED, PROMOTING, FAILED = "Succeeded", "Promoting", "Failed"
KNOWN, ROLLED_BACK = "already failed", "rolled back, the primary is unchanged"
POINTS = [
    Point("create: the first record", True, record_saved(SUCCEEDED)),
    Point("analysis: the canary's scale-up", True, scaled(2)),
    Point("analysis: the route to 25%", True, routed(25)),
    Point("analysis: the route to 50%", True, routed(50)),
    Point("analysis: between two checks", True, canary_status, nth=4),
    Point("promotion: the Promoting record", True, record_saved(PROMOTING)),
    Point("finalising: the route back to the primary", True, routed(0), nth=3),
    Point("finalising: the canary's scale-down", True, scaled(0)),
    Point("finalising: the Succeeded record", True, record_saved(SUCCEEDED)),
    Point("rollback: a bad canary at 25%, before its check", False, routed(25), 1, ROLLED_BACK),
    Point(
        "rollback: the Failed record, before traffic moves", False, record_saved(FAILED), 1, KNOWN
    ),
    Point("rollback: the route back, before the scale-down", False, routed(0), 3, KNOWN),
    Point("rollback: the canary's scale-down", False, scaled(0), 1, KNOWN),
]


@dataclass
class Outcome:
    point: str
    problems: list[str]


class Sweep:
    """One bed, one engine state, one provider server at a time: consecutive `pulumi up`s."""

    def __init__(self, bed: TestBed) -> None:
        self.bed = bed
        self.engine = Engine(bed.kube, PROJECT)
        self.server: DynamicServer | None = None
        self.outputs: list[list[str]] = []  # each server's progress lines, in order
        self.primary_image = ""
        self.releases = 0

    def start(self) -> DynamicServer:
        server = DynamicServer()
        server.configure()
        self.server = self.engine.server = server
        return server

    def stop(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.outputs.append([line.text for line in self.server.stdout])
            self.server.close()
            self.server = None

    def up(self, image: str) -> EngineError | None:
        config = {"image": image, "interval": "2s", "kubeconfig": self.bed.kubeconfig.read_text()}
        try:
            self.engine.up(PROGRAM, config, secrets=("kubeconfig",))
        except EngineError as error:
            return error
        return None

    def kill_at(self, point: Point) -> threading.Event:
        """Arms the emulator to SIGKILL the current server after it served the request."""
        server = self.server
        assert server is not None
        killed = threading.Event()

        def kill() -> None:
            os.kill(server.pid, signal.SIGKILL)
            killed.set()

        fault = ApiFault(FaultKind.CALL, callback=kill, after=True)
        self.bed.kube.api.faults.rules = [Rule(point.matches, fault, nth=point.nth)]
        return killed

    def new_image(self, healthy: bool) -> str:
        self.releases += 1
        tag = f"6.4.{self.releases}" + ("" if healthy else "-broken")
        return f"{IMAGE}:{tag}"

    # -- what must hold after every rerun ------------------------------------------------------

    def problems(self, image: str, healthy: bool, *, initial: bool = False) -> list[str]:
        """What is wrong after the rerun; `initial` for the first release, which (as Flagger's
        initialisation) is promoted without analysis."""
        found = []
        service = self.bed.kube.get(VS_PATH) or {}
        weights = {
            destination["destination"]["host"]: destination.get("weight", 0)
            for route in (service.get("spec") or {}).get("http") or []
            for destination in route.get("route") or []
        }
        if weights.get("podinfo-canary", 0) != 0:
            found.append(f"canary weight {weights}")
        canary = self.bed.kube.get(f"/apis/apps/v1/namespaces/{NS}/deployments/podinfo") or {}
        if (canary.get("spec") or {}).get("replicas") != 0:
            found.append(f"canary replicas {(canary.get('spec') or {}).get('replicas')}")
        primary = self.bed.kube.get(f"/apis/apps/v1/namespaces/{NS}/deployments/podinfo-primary")
        running = (primary or {})["spec"]["template"]["spec"]["containers"][0]["image"]
        expected = image if healthy else self.primary_image
        if running != expected:
            found.append(f"primary runs {running}, not {expected}")
        if healthy and not initial and running == image and not self.analysed_completely():
            found.append("promoted without a complete analysis in one run")
        stored = self.bed.kube.get(f"/api/v1/namespaces/{NS}/configmaps/{RECORD}") or {}
        record = yaml.safe_load((stored.get("data") or {}).get("release.json", "{}"))
        if not record.get("settled"):
            found.append(f"record not settled: {record.get('phase')} {record.get('reason')}")
        self.primary_image = running
        return found

    def analysed_completely(self) -> bool:
        """Some server's output holds this release's checks at 25% and 50% and its promotion,
        after its last start (a release restarted in a later run counts from that start)."""
        for lines in self.outputs:
            starts = [i for i, line in enumerate(lines) if "New revision detected" in line]
            if not starts:
                continue
            tail = lines[starts[-1] :]
            checked = {
                weight
                for weight in (25, 50)
                for line in tail
                if f": {weight}% " in line and ": pass" in line
            }
            promoted = any("Copying the canary to the primary" in line for line in tail)
            if checked == {25, 50} and promoted:
                return True
        return False


@pytest.fixture(scope="module")
def sweep() -> Iterator[Sweep]:
    broken = {f"{IMAGE}:6.4.{n}-broken": Fault(error_rate=0.5) for n in range(1, 40)}
    with TestBed(namespace=NS, faults=broken) as bed:
        running = Sweep(bed)
        yield running
        running.stop()


@pytest.mark.timeout(900)  # a hang guard: a dozen kills and reruns take a few minutes
def test_every_kill_point_recovers_on_the_next_up(sweep: Sweep) -> None:
    outcomes: list[Outcome] = []
    first = sweep.new_image(healthy=True)
    for index, point in enumerate(POINTS):
        image = first if index == 0 else sweep.new_image(point.healthy)
        sweep.start()
        killed = sweep.kill_at(point)
        interrupted = sweep.up(image)
        sweep.bed.kube.api.faults.rules = []
        sweep.stop()
        problems = []
        if not killed.is_set():
            problems.append(f"the kill point was never reached ({interrupted})")
        sweep.start()
        rerun = sweep.up(image)
        sweep.stop()
        if point.healthy and rerun is not None:
            problems.append(f"the rerun failed: {rerun}")
        if not point.healthy and (rerun is None or point.rerun_fails not in str(rerun)):
            problems.append(f"the rerun did not say {point.rerun_fails!r}: {rerun}")
        problems += sweep.problems(image, point.healthy, initial=index == 0)
        outcomes.append(Outcome(point.name, problems))
    summary = "\n".join(
        f"  {'MISS' if outcome.problems else 'ok  '} {outcome.point}"
        + "".join(f"\n       {problem}" for problem in outcome.problems)
        for outcome in outcomes
    )
    recovered = sum(not outcome.problems for outcome in outcomes)
    print(f"kill sweep: {recovered}/{len(outcomes)} recovered\n{summary}")
    assert recovered == len(outcomes) >= 12, summary


def test_a_canary_left_with_traffic_is_cleared_by_the_guard_even_if_killed_there(
    sweep: Sweep,
) -> None:
    """A killed analysis leaves the canary at 25%; the next `up` brings another image, and is
    killed in the guard itself, while it routes back; the one after must still end at rest."""
    left = sweep.new_image(healthy=True)
    sweep.start()
    killed = sweep.kill_at(Point("", True, routed(25)))
    sweep.up(left)
    sweep.bed.kube.api.faults.rules = []
    sweep.stop()
    assert killed.is_set()
    image = sweep.new_image(healthy=True)
    sweep.start()
    in_guard = sweep.kill_at(Point("", True, routed(0)))  # the guard routes first
    assert sweep.up(image) is not None
    sweep.bed.kube.api.faults.rules = []
    sweep.stop()
    assert in_guard.is_set()
    sweep.start()
    assert sweep.up(image) is None
    sweep.stop()
    assert sweep.problems(image, healthy=True) == []
