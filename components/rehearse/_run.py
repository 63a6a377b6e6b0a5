"""`python -m components.rehearse`: a release rehearsed end to end, with no cluster.

It starts the local test bed (a Kubernetes API emulator, a simulated Istio mesh, a real
Prometheus and Pushgateway, a loadtester and an alert receiver), declares the canary's
objects there, and runs the same scheduler `pulumi up` runs. It says what it rehearses before
it starts, every step, webhook and decision as it goes, and a summary at the end; `--report`,
`--report-html` and `--report-png` keep it.

Offline and harmless: the loadtester records the commands it is asked to run and runs none
(a `hey` load test becomes the traffic it would send, in the simulated mesh), and every
request for an address outside the bed is answered by the bed's receiver and reported.

Exit status: 0 when the rehearsal reached an outcome (with `--expect`, only when it is the one
expected; 1 when it is not), 2 on invalid input, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import yaml

from ..adapters.alerts import AlertMessage, admits
from ..adapters.bundle import Adapters
from ..adapters.cluster import Cluster
from ..adapters.kube import Connections, KubeAccess
from ..adapters.manifests import read_release
from ..adapters.ports import AlertsPort
from ..analysis import plan, readiness
from ..errors import ReleaseInterrupted
from ..routing import (
    canary_deployment,
    destination_rules,
    primary_deployment,
    services,
    virtual_service,
)
from ..scheduler import SYSTEM_CLOCK, ReleaseReport, Scheduler, print_progress, stop_all
from ..spec import ReleaseSpec, SpecError, Strategy, template_revision
from ..spec.critical import Critical
from ..spec.timing import Timing
from . import _output
from .testbed import LOAD_TEST, Fault, LoadTest, RequestClass, TestBed

REPORT_VERSION = 1
"""Of the report file's shape, docs/rehearsal-report.schema.json."""
EXIT_UNEXPECTED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130
OUTCOMES = ("promoted", "rolled_back")
# Share of simulated users who send the A/B match headers.
MATCHED_SHARE = 0.2
# Requests a second a blue/green load test sends straight to the canary Service.
DIRECT_RPS = 200.0
# How long the end waits for the bed's Prometheus to scrape the last push.
QUERY_WAIT_SECONDS = 10.0

Progress = Callable[[str], None]


@dataclass
class AlertEntry:
    """One alert the release sent, and to which providers."""

    at: float
    since_start_s: float
    """Set once the release's start is known."""
    severity: str
    text: str
    providers: list[str]
    warnings: list[str]


@dataclass
class Rehearsal:
    """What one rehearsal did: the scheduler's report and what the test bed saw of it."""

    report: ReleaseReport
    fault: Fault
    bed_start_s: float | None = None
    answered_locally: dict[str, int] = field(default_factory=dict)
    load_tests: list[dict[str, Any]] = field(default_factory=list)
    load_test_requests: dict[str, int] = field(default_factory=dict)
    """Requests of the load tests that the mesh delivered, per workload."""
    alerts: list[AlertEntry] = field(default_factory=list)
    alerts_received: int = 0
    pushgateway: str | None = None
    queries: list[_output.QueryAnswer] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The rehearsal's part of the report (`rehearsal` in the JSON file)."""
        return {
            "fault": {"error_rate": self.fault.error_rate, "latency_ms": self.fault.latency_ms},
            "bed_start_s": self.bed_start_s,
            "answered_locally": [
                {"url": url, "calls": calls} for url, calls in self.answered_locally.items()
            ],
            "load_tests": self.load_tests,
            "load_test_requests": self.load_test_requests,
            "alerts": [vars(alert) for alert in self.alerts],
            "alerts_received": self.alerts_received,
            "pushgateway": self.pushgateway,
            "queries": [vars(query) for query in self.queries],
        }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        release = read_release(
            canary=args.canary,
            deployment=args.deployment,
            metric_templates=args.metric_template,
            alert_providers=args.alert_provider,
        )
        timing = Timing.of(
            release.spec.analysis, interval=args.interval, interval_field="--interval"
        )
        for option, path in (
            ("--report", args.report),
            ("--report-html", args.report_html),
            ("--report-png", args.report_png),
        ):
            if path:
                _check_writable(option, Path(path))
        if args.report_html or args.report_png:
            _check_picture_library()
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        if "no AlertProvider" in str(error):
            print("hint: pass each AlertProvider with --alert-provider FILE", file=sys.stderr)
        return EXIT_INVALID
    except (OSError, yaml.YAMLError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    fault = Fault(error_rate=args.canary_error_rate, latency_ms=args.canary_latency_ms)
    pushgateway = args.pushgateway or TestBed.PUSHGATEWAY_ADDRESS
    revision = template_revision(release.deployment["spec"]["template"])
    release_plan = plan(release.spec, timing)
    for line in _output.header(release, release_plan, revision, fault, args.pushgateway):
        print(line, flush=True)
    previous = signal.signal(signal.SIGINT, _stop_on_first_interrupt)
    try:
        rehearsal = run_rehearsal(release, fault, timing=timing, pushgateway=pushgateway)
    except ReleaseInterrupted:
        print("interrupted: the rehearsal stopped and its test bed is gone", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    written = _write_reports(args, release, rehearsal)
    terminal = sys.stdout.isatty()
    for line in _output.summary(release, rehearsal, written, terminal=terminal):
        print(line, flush=True)
    if args.expect is None:
        return 0
    if rehearsal.report.outcome == args.expect:
        return 0
    print(f"expected {args.expect}, the rehearsal ended {rehearsal.report.outcome}", flush=True)
    return EXIT_UNEXPECTED


def _write_reports(
    args: argparse.Namespace, release: ReleaseSpec, rehearsal: Rehearsal
) -> list[str]:
    document = report_document(release, rehearsal, options=_options(args))
    written = []
    if args.report:
        Path(args.report).write_text(json.dumps(document, indent=2) + "\n")
        written.append(args.report)
    if args.report_png or args.report_html:
        from . import _picture  # noqa: PLC0415 (matplotlib only when a picture is asked for)

        if args.report_png:
            Path(args.report_png).write_bytes(_picture.png(document))
            written.append(args.report_png)
        if args.report_html:
            Path(args.report_html).write_text(_picture.html(document))
            written.append(args.report_html)
    return written


def report_document(
    release: ReleaseSpec, rehearsal: Rehearsal, *, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The report file: the scheduler's report, with the rehearsal's own part under
    `rehearsal` (see docs/rehearsal-report.schema.json)."""
    images = _output.images(release)
    return {
        "report_version": REPORT_VERSION,
        **rehearsal.report.to_json(),
        "rehearsal": {"images": images, "options": options or {}, **rehearsal.to_json()},
    }


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {name: value for name, value in sorted(vars(args).items())}


def _stop_on_first_interrupt(signum: int, frame: object) -> None:
    """Ctrl-C ends the release the way `pulumi up`'s provider does (traffic back to the
    primary), then the bed is torn down; a second Ctrl-C interrupts at once."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stop_all("Ctrl-C")


def _check_writable(option: str, path: Path) -> None:
    """Refuses a report path before the release runs, not after."""
    if path.is_dir():
        raise OSError(f"{option} {path}: is a directory")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OSError(f"{option} {path}: folder {folder} does not exist")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise OSError(f"{option} {path}: not writable")


def _check_picture_library() -> None:
    try:
        import matplotlib  # noqa: F401, PLC0415 (only asked for with a picture option)
    except ImportError:
        raise ValueError(
            "--report-html/--report-png need matplotlib: pip install 'pulumi-canary[rehearse]'"
        ) from None


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
    return run_rehearsal(
        release,
        canary_fault,
        timing=timing,
        no_telemetry=no_telemetry,
        bed=bed,
        pushgateway=pushgateway,
    ).report


def run_rehearsal(
    release: ReleaseSpec,
    canary_fault: Fault | None = None,
    *,
    timing: Timing | None = None,
    no_telemetry: bool = False,
    bed: TestBed | None = None,
    pushgateway: str | None = TestBed.PUSHGATEWAY_ADDRESS,
    progress: Progress = print_progress,
) -> Rehearsal:
    """`rehearse`, returning what the bed saw too: load tests, answered calls, alerts and,
    when the release pushed to the bed's Pushgateway, the tutorial's queries."""
    timing = timing or Timing.of(release.spec.analysis)
    fault = canary_fault or Fault()
    if no_telemetry:
        fault = Fault(fault.error_rate, fault.latency_ms, no_telemetry=True)
    own_bed = bed is None
    if bed is None:
        progress("test bed: starting (Kubernetes API emulator, mesh, Prometheus, ...)")
        started = time.monotonic()
        bed = TestBed(namespace=release.namespace, request_mix=_request_mix(release))
        bed.__enter__()
        bed_start_s: float | None = round(time.monotonic() - started, 1)
        progress(f"test bed: ready in {bed_start_s:g} s")
    else:
        bed_start_s = None
    try:
        rehearsal = _on_bed(release, fault, timing, bed, pushgateway, progress)
    finally:
        if own_bed:
            bed.__exit__(None, None, None)
    rehearsal.bed_start_s = bed_start_s
    return rehearsal


def _on_bed(  # noqa: PLR0917 (run_rehearsal's arguments, passed on)
    release: ReleaseSpec,
    fault: Fault,
    timing: Timing,
    bed: TestBed,
    pushgateway: str | None,
    progress: Progress,
) -> Rehearsal:
    bed.mesh.set_fault(release.target, fault)
    bed.mesh.direct_rps.update(_direct_traffic(release))
    release = _offline_alerts(bed, release)
    declare_at_rest(bed, release)
    revision = template_revision(release.deployment["spec"]["template"])
    tests_before = len(bed.loadtester.load_tests)
    alerts_before = len(bed.alerts.requests)
    routed_before = _load_test_routed(bed, release)
    allowed = [pushgateway] if pushgateway and pushgateway != TestBed.PUSHGATEWAY_ADDRESS else []

    def answered(url: str) -> None:
        progress(f"{release.name}: would have called {url} — answered locally")

    def recorded(test: LoadTest) -> None:
        line = _output.load_test_line(test)
        if line is not None:
            progress(f"{release.name}: {line}")

    local = bed.local_only(allowed=allowed, on_answered=answered)
    bed.loadtester.on_command = recorded
    access = KubeAccess(kubeconfig=bed.kubeconfig.read_text())
    alerts: list[AlertEntry] = []
    with Connections(access, transports=local.transport) as connections:
        adapters = Adapters.connect(
            connections,
            release,
            revision=revision,
            now=SYSTEM_CLOCK.now,
            pushgateway=pushgateway,
        )
        adapters = replace(adapters, alerts=_AlertLog(adapters.alerts, release, alerts, progress))
        # Watched at the cadence the bed's Prometheus scrapes, whatever the Canary says.
        critical = Critical.of(release, scrape_interval=bed.prometheus.scrape_interval)
        scheduler = Scheduler(
            release, adapters, revision=revision, timing=timing, critical=critical
        )
        report = scheduler.analyse()
        if report.promoted:
            _promote(Cluster(connections, release), release, timing.interval_seconds)
            scheduler.finalise()
    bed.loadtester.on_command = None
    routed_after = _load_test_routed(bed, release)
    for alert in alerts:
        alert.since_start_s = report.since_start(alert.at)
    rehearsal = Rehearsal(
        report=scheduler.report or report,
        fault=fault,
        answered_locally=local.answered,
        load_tests=[
            _load_test_json(test, report) for test in bed.loadtester.load_tests[tests_before:]
        ],
        load_test_requests={
            workload: count - routed_before.get(workload, 0)
            for workload, count in routed_after.items()
        },
        alerts=alerts,
        alerts_received=len(bed.alerts.requests) - alerts_before,
        pushgateway=pushgateway,
    )
    if pushgateway == TestBed.PUSHGATEWAY_ADDRESS:
        rehearsal.queries = _tutorial_queries(bed, release, report)
    return rehearsal


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


def _offline_alerts(bed: TestBed, release: ReleaseSpec) -> ReleaseSpec:
    """Alert providers as the bed can deliver them: a provider's Secret is stood in for by one
    naming the bed's receiver, and a `proxy` is dropped (the request is answered locally)."""
    providers = []
    for provider in release.alert_providers:
        spec = provider.spec
        if spec.secret_ref is not None:
            namespace = provider.metadata.namespace or release.namespace
            bed.kube.apply_object(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": spec.secret_ref.name, "namespace": namespace},
                    "stringData": {"address": f"{bed.alerts.url}/{provider.name}"},
                    "type": "Opaque",
                }
            )
        if spec.proxy:
            unproxied = spec.model_copy(update={"proxy": None})
            providers.append(provider.model_copy(update={"spec": unproxied}))
        else:
            providers.append(provider)
    return replace(release, alert_providers=tuple(providers))


class _AlertLog:
    """The release's alerts as sent, kept for the summary and said in one line each."""

    def __init__(
        self,
        inner: AlertsPort,
        release: ReleaseSpec,
        log: list[AlertEntry],
        progress: Progress,
    ) -> None:
        self._inner = inner
        self._release = release
        self._log = log
        self._progress = progress

    def notify(self, message: AlertMessage) -> list[str]:
        warnings = self._inner.notify(message)
        providers = [
            alert.provider_ref.name
            for alert in self._release.spec.analysis.alerts
            if admits(alert.severity, message.severity)
        ]
        entry = AlertEntry(time.time(), 0.0, message.severity, message.text, providers, warnings)
        self._log.append(entry)
        if providers and not warnings:
            self._progress(
                f"{self._release.name}: alert ({message.severity}) delivered to "
                + ", ".join(providers)
            )
        return warnings


def _load_test_routed(bed: TestBed, release: ReleaseSpec) -> dict[str, int]:
    return {
        workload: bed.mesh.routed(workload, LOAD_TEST.name)
        for workload in (release.target, release.primary)
    }


def _load_test_json(test: LoadTest, report: ReleaseReport) -> dict[str, Any]:
    run = test.run
    traffic = None
    if run is not None:
        traffic = {
            "url": run.url,
            "host": run.host,
            "rps": run.rps,
            "seconds": run.seconds,
            "requests": run.requests,
        }
    return {
        "at": test.at,
        "since_start_s": report.since_start(test.at),
        "type": test.type,
        "command": test.command,
        "run": False,
        "traffic": traffic,
        "traffic_started": test.sent,
    }


def _tutorial_queries(
    bed: TestBed, release: ReleaseSpec, report: ReleaseReport
) -> list[_output.QueryAnswer]:
    """The tutorial's three queries, once the bed's Prometheus has scraped the last push: the
    outcome's status with all traffic back on the primary (a promotion reads 1 while it is
    still finalising, too)."""
    name = release.target
    status = 1 if report.promoted else 2
    final = (
        f'flagger_canary_status{{name="{name}"}} == {status} and on(name) '
        f'(flagger_canary_weight{{name="{name}",workload="{name}"}} == 0)'
    )
    deadline = time.monotonic() + QUERY_WAIT_SECONDS
    try:
        while not _query(bed, final) and time.monotonic() < deadline:
            time.sleep(0.25)
    except httpx.HTTPError:
        pass  # each query below says it got no answer
    answers = []
    for query in _output.tutorial_queries(name):
        metric, _, selector = query.partition("{")
        suffixes = ("_count", "_sum") if metric.endswith("_seconds") else ("",)
        try:
            series = {suffix: _query(bed, f"{metric}{suffix}{{{selector}") for suffix in suffixes}
            answers.append(_output.answer(query, series))
        except (httpx.HTTPError, KeyError, ValueError) as error:
            answers.append(_output.QueryAnswer(query, f"no answer ({type(error).__name__})"))
    return answers


def _query(bed: TestBed, promql: str) -> list[dict[str, object]]:
    return bed.prometheus.query(promql)


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


def _http_url(text: str) -> str:
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as error:
        raise argparse.ArgumentTypeError(f"not a URL ({error})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL (got {text!r})")
    return text.rstrip("/")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components.rehearse",
        description=(
            "Rehearse a Flagger canary release locally, with no cluster: a Kubernetes API "
            "emulator, a simulated Istio mesh and a real Prometheus, driven by the same "
            "scheduler `pulumi up` runs. Nothing leaves the machine: load tests are turned "
            "into simulated traffic, commands are recorded and never run, and every outside "
            "address (Slack, alert providers) is answered locally."
        ),
        epilog="Exit status: 0 when the rehearsal reached an outcome (with --expect, only the "
        "one expected), 1 when --expect was not met, 2 on invalid input, 130 when interrupted.",
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
        "--alert-provider",
        action="append",
        default=[],
        metavar="FILE",
        help="an AlertProvider the Canary's analysis.alerts refer to (repeat for several); "
        "its alerts go to the test bed's receiver, whatever its address",
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
    parser.add_argument(
        "--expect",
        choices=OUTCOMES,
        help="exit 0 only when the rehearsal ends this way, 1 otherwise (for CI)",
    )
    parser.add_argument(
        "--pushgateway",
        type=_http_url,
        metavar="URL",
        help="push Flagger's metrics to this Pushgateway instead of the test bed's (the "
        "only address outside the bed the rehearsal reaches)",
    )
    parser.add_argument("--report", metavar="FILE", help="write the JSON report here")
    parser.add_argument(
        "--report-html",
        metavar="FILE",
        help="write a self-contained HTML page here: the picture and the summary table",
    )
    parser.add_argument(
        "--report-png",
        metavar="FILE",
        help="write a PNG here: the canary weight over time, each metric against its "
        "threshold, every decision marked",
    )
    return parser
