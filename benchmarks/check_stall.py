"""Prints how long a passed release's canary waits at maxWeight when other releases of the same
stack hold the dynamic server's four threads.

Not a test: the numbers are measurements. The engine calls Check and Diff inline in its step
generator, one registration at a time, and the Python dynamic server answers on four threads,
each held by a Rollout's Update for its whole analysis. So once four releases run, the next
dynamic resource's Check waits for one of them to end, and no later registration of the stack
is processed meanwhile: a release whose analysis passed waits for its primary Deployment and
its finaliser with its canary at maxWeight.

The stack is played by `tests/e2e/steps.py` over the real `python -m pulumi.dynamic` server and
the test bed, each release as the component declares it (ReleaseGuard, canary Deployment,
Rollout, primary Deployment from the Rollout's `promoted_template`, the unchanged Services and
VirtualService, RolloutFinaliser). A short release (2 steps) is declared first, and the long
ones (5 steps) depend on its canary Deployment, so that its gate takes the first thread. From
the short release's Rollout returning (analysis passed, canary at maxWeight), it prints when
its primary's step started, when its finaliser's Check was sent (the generator got to it) and
answered (a server thread took it), and when the finaliser returned (traffic back on the
primary), in four stacks: the short release alone, with 3 long ones (4 in all), with 5 long
ones (6 in all), and 6 again with Check and Diff handed to the step executor (no engine does
this: it shows where the wait goes without the generator's). Which long release gets a thread
when varies from run to run (the canary Deployments' awaits order the registrations).
Run as `PYTHONPATH=. venv/bin/python benchmarks/check_stall.py` (about two minutes).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi.dynamic.dynamic import serialize_provider

from components.provider.rollout import FinaliserProvider, GuardProvider
from components.rehearse import declare_at_rest
from components.rehearse.testbed import TestBed
from components.routing import canary_deployment, primary_deployment
from components.spec import ReleaseSpec
from tests.conftest import load_yaml
from tests.e2e.engine import await_deployment
from tests.e2e.steps import Dynamic, Other, Outputs, Registration, StepGenerator, Trace
from tests.provider.dynamic_server import DynamicServer, renamed, rollout_props, urn

INTERVAL = "2s"
OLD_IMAGE = "ghcr.io/stefanprodan/podinfo:6.3.0"
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.3.1"
SHORT_STEP_WEIGHT = 25  # 25%, 50%: two steps to maxWeight
LONG_STEP_WEIGHT = 10  # 10% .. 50%: five steps
# The bed's request rate is per VirtualService; six workloads at the default would be costly.
RPS = 300.0
GUARD = serialize_provider(GuardProvider())
FINALISER = serialize_provider(FinaliserProvider())


def k8s_urn(name: str) -> str:
    return f"urn:pulumi:dev::canary::kubernetes:apps/v1:Deployment::{name}"


@dataclass(frozen=True)
class Release:
    """One CanaryDeployment of the stack: the tutorial's podinfo under another name."""

    name: str
    step_weight: int

    def manifests(self, image: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Its Canary and Deployment, releasing `image`."""
        tutorial = load_yaml("canary.yaml"), load_yaml("deployment.yaml")
        canary, deployment = renamed(*tutorial, self.name)
        canary["spec"]["analysis"]["stepWeight"] = self.step_weight
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image
        return canary, deployment

    def spec(self, image: str) -> ReleaseSpec:
        canary, deployment = self.manifests(image)
        return ReleaseSpec.parse(canary=canary, deployment=deployment)

    @property
    def rollout(self) -> str:
        return urn(f"{self.name}-rollout")

    @property
    def canary(self) -> str:
        return k8s_urn(self.name)

    @property
    def primary(self) -> str:
        return k8s_urn(f"{self.name}-primary")

    @property
    def finaliser(self) -> str:
        return urn(f"{self.name}-finaliser", "RolloutFinaliser")

    def registrations(
        self, bed: TestBed, image: str, after: tuple[str, ...] = ()
    ) -> list[Registration]:
        """What the component registers, in its order, each after what it depends on, the
        first also after `after` (a `depends_on` of the component)."""
        release = self.spec(image)
        gate = rollout_props(*self.manifests(image), bed.kubeconfig.read_text(), interval=INTERVAL)
        guard = urn(f"{self.name}-guard", "ReleaseGuard")
        routes = f"urn:pulumi:dev::canary::kubernetes:core/v1:Service::{self.name}"

        def apply(manifest: dict[str, Any]) -> dict[str, Any]:
            bed.kube.apply_object(manifest, field_manager="pulumi-kubernetes")
            live = await_deployment(bed.kube, manifest)
            return {"id": f"{release.namespace}/{live['metadata']['name']}"}

        def promoted(outputs: Outputs) -> dict[str, Any]:
            template = outputs[self.rollout]["promotedTemplate"]
            return apply(primary_deployment(release, template, release.primary_replicas))

        def finaliser(outputs: Outputs) -> dict[str, Any]:
            rollout: Mapping[str, Any] = outputs[self.rollout]
            return {
                **gate,
                "__provider": FINALISER,
                "promotion": rollout["promotion"],
                "phase": rollout["phase"],
                "primary": outputs[self.primary]["id"],
            }

        return [
            Dynamic(guard, lambda _: {**gate, "__provider": GUARD}, after=after),
            Other(self.canary, lambda _: apply(canary_deployment(release, 0)), after=(guard,)),
            Dynamic(self.rollout, lambda _: copy.deepcopy(gate), after=(self.canary,)),
            Other(self.primary, promoted, after=(self.rollout,)),
            # The Services and the VirtualService, unchanged: same steps (one stands for all).
            Other(routes, lambda _: {}, after=(self.primary,)),
            Dynamic(self.finaliser, finaliser, after=(routes,)),
        ]


def program(bed: TestBed, short: Release, others: list[Release], image: str) -> list[Registration]:
    """The short release first; the others depend on its canary Deployment, so its gate takes
    the first thread (else which four go first is up to the canary Deployments' awaits)."""
    return [
        *short.registrations(bed, image),
        *(r for other in others for r in other.registrations(bed, image, (short.canary,))),
    ]


@dataclass(frozen=True)
class Measured:
    """For the short release, seconds from its Rollout's Update returning (analysis passed)."""

    label: str
    wall: float
    primary: float  # its primary Deployment's step started
    check_sent: float  # its finaliser's Check sent (the generator got to it)
    check_answered: float  # that Check answered (a server thread took it)
    finalised: float  # its finaliser's Update returned: traffic back on the primary
    long_ends: list[float]  # each long release's Rollout returned


def measure(label: str, longs: int, *, inline_checks: bool = True) -> Measured:
    """Two `up`s of a fresh stack on a fresh bed and server: created, then released."""
    short = Release("short", SHORT_STEP_WEIGHT)
    others = [Release(f"long-{index}", LONG_STEP_WEIGHT) for index in range(1, longs + 1)]
    with TestBed(rps=RPS) as bed, DynamicServer() as server:
        server.configure()
        for release in [short, *others]:
            declare_at_rest(bed, release.spec(OLD_IMAGE))
        generator = StepGenerator(server, inline_checks=inline_checks)
        for image in (OLD_IMAGE, NEW_IMAGE):
            trace = generator.up(program(bed, short, others, image))
            if trace.errors:
                raise RuntimeError(f"{label}: the up of {image} failed: {trace.errors}")
    return _measured(label, trace, short, others)


def _measured(label: str, trace: Trace, short: Release, others: list[Release]) -> Measured:
    passed = trace.at(short.rollout, "done")
    return Measured(
        label,
        wall=trace.events[-1].at - trace.events[0].at,
        primary=trace.at(short.primary, "step") - passed,
        check_sent=trace.at(short.finaliser, "check") - passed,
        check_answered=trace.at(short.finaliser, "checked") - passed,
        finalised=trace.at(short.finaliser, "done") - passed,
        long_ends=sorted(trace.at(other.rollout, "done") - passed for other in others),
    )


def main() -> None:
    runs = [
        measure("short release alone", 0),
        measure("with 3 long (4 in all)", 3),
        measure("with 5 long (6 in all)", 5),
        measure("with 5 long, Check off the generator", 5, inline_checks=False),
    ]
    alone = runs[0]
    print(f"steps: short {SHORT_STEP_WEIGHT}%, long {LONG_STEP_WEIGHT}%, every {INTERVAL}")
    for run in runs:
        ends = ", ".join(f"{end:+.1f}s" for end in run.long_ends) or "none"
        print(
            f"{run.label}: up {run.wall:.1f}s\n"
            f"  after the short release passed, its primary's step +{run.primary:.1f}s, "
            f"its finaliser's Check sent +{run.check_sent:.1f}s, answered "
            f"+{run.check_answered:.1f}s; finalised +{run.finalised:.1f}s "
            f"({run.finalised / alone.finalised:.0f}x alone)\n"
            f"  the long releases passed at {ends}"
        )


if __name__ == "__main__":
    main()
