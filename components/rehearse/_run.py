"""`python -m components.rehearse`: a release rehearsed end to end, with no cluster.

It starts the local test bed (a Kubernetes API emulator, a simulated Istio mesh, a real
Prometheus, a loadtester and an alert receiver), declares the canary's objects there, and runs
the same scheduler `pulumi up` runs. Exit status: 0 when the rehearsal reached an outcome,
2 on invalid input.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from ..adapters.bundle import Adapters
from ..adapters.cluster import Cluster
from ..adapters.kube import Connections, KubeAccess
from ..adapters.manifests import read_release
from ..analysis import readiness
from ..errors import ReleaseInterrupted
from ..routing import (
    canary_deployment,
    destination_rules,
    primary_deployment,
    services,
    virtual_service,
)
from ..scheduler import SYSTEM_CLOCK, ReleaseReport, Scheduler, stop_all
from ..spec import ReleaseSpec, SpecError, Strategy, template_revision
from ..spec.critical import Critical
from ..spec.timing import Timing
from .testbed import Fault, RequestClass, TestBed

EXIT_INVALID = 2
EXIT_INTERRUPTED = 130
# Share of simulated users who send the A/B match headers.
MATCHED_SHARE = 0.2
# Requests a second a blue/green load test sends straight to the canary Service.
DIRECT_RPS = 200.0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        release = read_release(
            canary=args.canary,
            deployment=args.deployment,
            metric_templates=args.metric_template,
        )
        timing = Timing.of(
            release.spec.analysis, interval=args.interval, interval_field="--interval"
        )
        if args.report:
            _check_writable(Path(args.report))
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except (OSError, yaml.YAMLError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    canary_fault = Fault(error_rate=args.canary_error_rate, latency_ms=args.canary_latency_ms)
    signal.signal(signal.SIGINT, _stop_on_first_interrupt)
    try:
        report = rehearse(release, canary_fault, timing=timing)
    except ReleaseInterrupted:
        print("interrupted: the rehearsal stopped and its test bed is gone", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(json.dumps({"outcome": report.outcome, "reason": report.reason}), flush=True)
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return 0


def _stop_on_first_interrupt(signum: int, frame: object) -> None:
    """Ctrl-C ends the release the way `pulumi up`'s provider does (traffic back to the
    primary), then the bed is torn down; a second Ctrl-C interrupts at once."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stop_all("Ctrl-C")


def _check_writable(path: Path) -> None:
    """Refuses a report path before the release runs, not after."""
    if path.is_dir():
        raise OSError(f"--report {path}: is a directory")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OSError(f"--report {path}: folder {folder} does not exist")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise OSError(f"--report {path}: not writable")


def rehearse(
    release: ReleaseSpec,
    canary_fault: Fault | None = None,
    *,
    timing: Timing | None = None,
    no_telemetry: bool = False,
    bed: TestBed | None = None,
    pushgateway: str | None = TestBed.PUSHGATEWAY_ADDRESS,
) -> ReleaseReport:
    """One release on a fresh test bed (or the one given), from at-rest to its outcome; its
    metrics go to `pushgateway` (by default the bed's, which the bed's Prometheus scrapes)."""
    timing = timing or Timing.of(release.spec.analysis)
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
        revision = template_revision(release.deployment["spec"]["template"])
        with Connections(KubeAccess(kubeconfig=bed.kubeconfig.read_text())) as connections:
            adapters = Adapters.connect(
                connections,
                release,
                revision=revision,
                now=SYSTEM_CLOCK.now,
                pushgateway=pushgateway,
            )
            # Watched at the cadence the bed's Prometheus scrapes, whatever the Canary says.
            critical = Critical.of(release, scrape_interval=bed.prometheus.scrape_interval)
            scheduler = Scheduler(
                release, adapters, revision=revision, timing=timing, critical=critical
            )
            report = scheduler.analyse()
            if report.promoted:
                _promote(Cluster(connections, release), release, timing.interval_seconds)
                scheduler.finalise()
            return report
    finally:
        if own_bed:
            bed.__exit__(None, None, None)


def declare_at_rest(bed: TestBed, release: ReleaseSpec) -> None:
    """The objects `pulumi up` would declare, at rest: primary serving, canary at zero."""
    template = release.deployment["spec"]["template"]
    for manifest in [
        primary_deployment(release, template, release.primary_replicas),
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
    while not (
        ready := readiness(
            cluster.workload_status(release.primary),
            100,
            since=since,
            now=time.time(),
            deadline_seconds=deadline,
        )
    ).ready:
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


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 to 1 (got {text})")
    return value


def _milliseconds(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 ms (got {text})")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components.rehearse",
        description=(
            "Rehearse a Flagger canary release locally, with no cluster: a Kubernetes API "
            "emulator, a simulated Istio mesh and a real Prometheus, driven by the same "
            "scheduler `pulumi up` runs."
        ),
        epilog="Exit status: 0 when the rehearsal reached an outcome, 2 on invalid input, "
        "130 when interrupted.",
    )
    parser.add_argument("--canary", required=True, metavar="FILE", help="the Flagger Canary")
    parser.add_argument(
        "--deployment", required=True, metavar="FILE", help="the Canary's target Deployment"
    )
    parser.add_argument(
        "--metric-template",
        action="append",
        default=[],
        metavar="FILE",
        help="a MetricTemplate the Canary refers to (repeat for several)",
    )
    parser.add_argument(
        "--interval",
        metavar="DURATION",
        help="override the analysis interval and every metric's window, e.g. 2s",
    )
    parser.add_argument(
        "--canary-error-rate",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="share of the canary's requests answered with 5xx, from 0 to 1 (default 0)",
    )
    parser.add_argument(
        "--canary-latency-ms",
        type=_milliseconds,
        default=20.0,
        metavar="MS",
        help="the canary's p99 latency in milliseconds (default 20)",
    )
    parser.add_argument("--report", metavar="FILE", help="write the JSON report here")
    return parser
