"""`python -m components.rehearse`: a release rehearsed end to end, with no cluster.

It starts the local test bed (a Kubernetes API emulator, a simulated Istio mesh, a real
Prometheus, a loadtester and an alert receiver), declares the canary's objects there, and runs
the same scheduler `pulumi up` runs. Exit status: 0 when the rehearsal reached an outcome,
2 on invalid input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ..adapters.cluster import Cluster
from ..adapters.kube import KubeAccess
from ..routing import (
    canary_deployment,
    destination_rules,
    primary_deployment,
    services,
    virtual_service,
)
from ..scheduler import Adapters, ReleaseReport, Scheduler
from ..spec import ReleaseSpec, SpecError, Strategy, parse_seconds, template_revision
from .testbed import Fault, RequestClass, TestBed

EXIT_INVALID = 2
# Share of simulated users who send the A/B match headers.
MATCHED_SHARE = 0.2
# Requests a second a blue/green load test sends straight to the canary Service.
DIRECT_RPS = 200.0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        release = _load(args)
        if args.interval:
            parse_seconds(args.interval)
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except (OSError, yaml.YAMLError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    canary_fault = Fault(error_rate=args.canary_error_rate, latency_ms=args.canary_latency_ms)
    report = rehearse(release, canary_fault, interval=args.interval)
    print(json.dumps({"outcome": report.outcome, "reason": report.reason}), flush=True)
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return 0


def rehearse(
    release: ReleaseSpec,
    canary_fault: Fault | None = None,
    *,
    interval: str | None = None,
    no_telemetry: bool = False,
    deadline_seconds: float | None = None,
    bed: TestBed | None = None,
) -> ReleaseReport:
    """One release on a fresh test bed (or the one given), from at-rest to its outcome."""
    fault = canary_fault or Fault()
    if no_telemetry:
        fault = Fault(fault.error_rate, fault.latency_ms, no_telemetry=True)
    own_bed = bed is None
    bed = bed or TestBed(namespace=release.namespace, request_mix=_request_mix(release))
    if own_bed:
        bed.__enter__()
    try:
        bed.mesh.set_fault(release.target, fault)
        bed.mesh.direct_rps.update(_direct_traffic(release))
        declare_at_rest(bed, release)
        access = KubeAccess(kubeconfig=bed.kubeconfig.read_text())
        with Adapters.connect(access, release) as adapters:
            scheduler = Scheduler(
                release,
                adapters,
                revision=template_revision(release.deployment["spec"]["template"]),
                interval=interval,
                deadline_seconds=deadline_seconds,
            )
            report = scheduler.analyse()
            if report.outcome == "promoted":
                _promote(adapters.cluster, release, scheduler.interval)
                scheduler.finalise()
            return report
    finally:
        if own_bed:
            bed.__exit__(None, None, None)


def declare_at_rest(bed: TestBed, release: ReleaseSpec) -> None:
    """The objects `pulumi up` would declare, at rest: primary serving, canary at zero."""
    template = release.deployment["spec"]["template"]
    replicas = int(release.deployment["spec"].get("replicas", 1))
    for manifest in [
        primary_deployment(release, template, replicas),
        canary_deployment(release, replicas=0),
        *services(release),
        *destination_rules(release),
        virtual_service(release),
    ]:
        bed.kube.apply_object(manifest, field_manager="pulumi-kubernetes")


def _promote(cluster: Cluster, release: ReleaseSpec, interval: float) -> None:
    """What Pulumi does after the gate: roll the primary to the canary's template and wait."""
    template = primary_deployment(release, cluster.pod_template(release.target), None)
    cluster.set_pod_template(release.primary, template["spec"]["template"])
    since = time.time()
    deadline = release.spec.progress_deadline_seconds
    while not (ready := cluster.readiness(release.primary, 100, deadline, since)).ready:
        if ready.failed:
            raise RuntimeError(f"primary did not become ready: {ready.message}")
        time.sleep(min(interval, 0.5))


def _request_mix(release: ReleaseSpec) -> list[RequestClass]:
    """Plain users, plus a share that carries each A/B match's exact headers."""
    classes = []
    for index, condition in enumerate(release.spec.analysis.match):
        headers = {
            name: match.exact
            for name, match in (condition.headers or {}).items()
            if match.exact is not None
        }
        if headers:
            classes.append(RequestClass(f"match-{index}", headers, MATCHED_SHARE))
    plain = 1.0 - sum(request.share for request in classes)
    return [RequestClass("default", {}, plain), *classes]


def _direct_traffic(release: ReleaseSpec) -> dict[str, float]:
    """Blue/green tests hit the canary Service directly, as Flagger's docs describe."""
    if release.spec.analysis.strategy is Strategy.BLUEGREEN:
        return {release.canary_service: DIRECT_RPS}
    return {}


def _load(args: argparse.Namespace) -> ReleaseSpec:
    canary = _read(args.canary)
    release = ReleaseSpec.parse(
        canary=canary,
        deployment=_read(args.deployment),
        metric_templates=[_read(path) for path in args.metric_template],
    )
    if args.interval:
        # Every metric window follows the analysis interval in a rehearsal.
        parse_seconds(args.interval)
    return release


def _read(path: str) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected one YAML mapping")
    return data


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components.rehearse",
        description="Rehearse a Flagger canary release locally, with no cluster.",
    )
    parser.add_argument("--canary", required=True, help="the Flagger Canary manifest")
    parser.add_argument("--deployment", required=True, help="the target Deployment manifest")
    parser.add_argument("--metric-template", action="append", default=[], metavar="FILE")
    parser.add_argument("--interval", help="override the analysis interval and metric windows")
    parser.add_argument("--canary-error-rate", type=float, default=0.0, metavar="FRACTION")
    parser.add_argument("--canary-latency-ms", type=float, default=20.0, metavar="MS")
    parser.add_argument("--report", metavar="FILE", help="write the JSON report here")
    return parser
