"""Runs one release: the pure engine's decisions carried out through the I/O adapters.

The Pulumi gate and the rehearsal both drive releases through this class, so a rehearsal
exercises the very code path `pulumi up` runs, against a real Prometheus.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .adapters.alerts import AlertMessage, Notifier, Severity
from .adapters.cluster import Cluster, ReleaseConflict
from .adapters.endpoints import Endpoints
from .adapters.kube import KubeAccess
from .adapters.prometheus import MetricResult, PrometheusClient
from .adapters.webhooks import WebhookCaller, phase_for
from .analysis import CheckResult, Decision, Gate, GateKind, Phase, Release, advance, begin, gates
from .analysis.engine import finalising_weights
from .analysis.plan import plan
from .routing import TrafficState
from .spec import HookType, ReleaseSpec, checksum

# A record whose heartbeat is older than this many intervals belongs to an interrupted run.
STALE_HEARTBEATS = 3
# Phases of a release still under way: its canary may have traffic.
IN_FLIGHT = (Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION, Phase.PROMOTING)


@dataclass(frozen=True)
class Adapters:
    """The I/O a release needs; built per run, never pickled."""

    cluster: Cluster
    prometheus: PrometheusClient
    webhooks: WebhookCaller
    notifier: Notifier

    @classmethod
    @contextlib.contextmanager
    def connect(cls, access: KubeAccess, release: ReleaseSpec) -> Iterator[Adapters]:
        """Every client of one release, all closed when the release is done with them."""
        with (
            Cluster(access, release) as cluster,
            Endpoints(access.http, release.namespace) as endpoints,
        ):
            yield cls(
                cluster=cluster,
                prometheus=PrometheusClient(
                    endpoints, release.spec.metrics_address, secrets=cluster.read_secret
                ),
                webhooks=WebhookCaller(endpoints),
                notifier=Notifier(endpoints, secrets=cluster.read_secret),
            )


def this_process() -> dict[str, Any]:
    """Who drives a release, so the next run can tell a dead owner from a live one."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def owner_is_dead(owner: Any) -> bool:
    """True only when the owner ran on this host and its process is gone: Ctrl-C, a kill."""
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


_OUTPUT_LOCK = threading.Lock()


def print_progress(line: str) -> None:
    """Pulumi (3.146+) forwards a dynamic provider's stdout line by line to `pulumi up`.

    One write per line, under a lock: `print` writes the text and the newline separately, so
    releases running on the provider's other threads could splice their lines together.
    """
    with _OUTPUT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@dataclass
class Check:
    """One analysis tick as the report shows it."""

    weight: int
    iteration: int
    metrics: dict[str, float | None]
    passed: bool


@dataclass
class ReleaseReport:
    outcome: str
    strategy: str
    canary_weights: list[int] = field(default_factory=list)
    iterations: int = 0
    failed_checks: int = 0
    reason: str | None = None
    checks: list[Check] = field(default_factory=list)
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Scheduler:
    """Carries out a release tick by tick; `clock` and `sleep` are injectable for replays."""

    def __init__(
        self,
        release: ReleaseSpec,
        adapters: Adapters,
        *,
        revision: str,
        interval: str | None = None,
        deadline_seconds: float | None = None,
        progress: Callable[[str], None] = print_progress,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.release = release
        self.io = adapters
        self.revision = revision
        self.checksum = checksum(revision)
        self.interval_override = interval
        # The spec the engine decides on: the override is the analysis interval, so the plan,
        # the events and the deadlines all speak of the interval actually used.
        self.spec = (
            release.spec.model_copy(
                update={"analysis": release.spec.analysis.model_copy(update={"interval": interval})}
            )
            if interval
            else release.spec
        )
        self.interval = self.spec.analysis.interval_seconds
        self.plan = plan(self.spec.analysis)
        self.deadline_seconds = deadline_seconds or self.default_deadline()
        self.progress = progress
        self.clock = clock
        self.sleep = sleep
        self._record_version: str | None = None
        self._traffic = TrafficState()

    def default_deadline(self) -> float:
        """Worst-case analysis time plus the progress deadline for the canary to come up."""
        ticks = self.plan.checks_to_promote + self.plan.threshold
        return ticks * self.interval + self.release.spec.progress_deadline_seconds

    # -- the analysis --------------------------------------------------------------------------

    def analyse(self) -> ReleaseReport:
        """Runs until the canary is verified (Promoting) or rolled back (Failed)."""
        started = self.clock()
        report = ReleaseReport(outcome="", strategy=str(self.plan.strategy))
        self._take_over()
        try:
            release = self._run(report, started + self.deadline_seconds)
        except ReleaseConflict:
            raise  # another run holds the release now: its traffic is not ours to move
        except Exception as error:
            self._abandon(error)
            raise
        report.outcome = "promoted" if release.phase is Phase.PROMOTING else "rolled_back"
        report.failed_checks = release.failed_checks
        report.iterations = release.iterations
        report.reason = release.reason if release.phase is Phase.FAILED else None
        report.duration_s = round(self.clock() - started, 3)
        return report

    def _run(self, report: ReleaseReport, deadline: float) -> Release:
        decision = begin(self.spec)
        scaled_at = self.clock()
        while True:
            if decision.scale_canary_up:
                scaled_at = self.clock()
                self._scale_canary_up()
            release = self._carry_out(decision, report)
            if release.done:
                break
            if release.phase is not Phase.WAITING and release.step >= 0:
                self.sleep(self.interval)
            elif release.held_since is not None:
                self.sleep(min(self.interval, 5.0))
            results = self._run_gates(release, scaled_at, report)
            decision = advance(self.spec, release, results, self.clock(), deadline)
        return release

    def clear_way(self) -> None:
        """Before the canary Deployment takes a new template: no traffic may reach it.

        A release left at some weight (interrupted, or promoted without finishing) is ended:
        all traffic to the primary, canary to zero. A release another run is driving stops
        this one instead (ReleaseConflict).
        """
        record, _ = self.io.cluster.load_record()
        _, weight, mirrored = self.io.cluster.read_routes()
        if not weight and not mirrored and not (record and record.get("phase") in IN_FLIGHT):
            return
        self._take_over()
        self.io.cluster.scale(self.release.target, 0)
        self.progress(
            f"{self.release.name}: the canary is at zero before it takes the new template"
        )
        reason = f"ended at canary weight {weight} before the next release"
        self._save({"phase": Phase.FAILED, "retryable": True, "weight": 0, "reason": reason})

    def _abandon(self, error: Exception) -> None:
        """An error stopped the analysis: back to rest as far as the cluster lets us, and a
        record that lets the next run start over (the failure was not the canary's)."""
        steps: list[tuple[str, Callable[[], object]]] = [
            ("route all traffic to the primary", lambda: self._route(TrafficState())),
            ("scale the canary to zero", lambda: self.io.cluster.scale(self.release.target, 0)),
            (
                "record the interruption",
                lambda: self._save(
                    {
                        "phase": Phase.FAILED,
                        "retryable": True,
                        "weight": 0,
                        "reason": f"stopped by an error: {error}",
                    }
                ),
            ),
        ]
        for what, step in steps:
            try:
                step()
            except Exception as cleanup_error:  # best effort: report, and try the next step
                self.progress(f"{self.release.name}: could not {what}: {cleanup_error}")

    def finalise(self, succeeded_at: str = "Succeeded") -> None:
        """After promotion: traffic back to the (new) primary, canary to zero, hooks, alert."""
        analysis = self.release.spec.analysis
        if self._record_version is None:  # finalising a release another process analysed
            _, self._record_version = self.io.cluster.load_record()
            _, canary_weight, mirror = self.io.cluster.read_routes()
            self._traffic = TrafficState(canary_weight, mirror)
        weights = finalising_weights(analysis, self._traffic.canary_weight)
        for index, weight in enumerate(weights):
            if index:
                self.sleep(self.interval)
            self._route(TrafficState(canary_weight=weight))
            self.progress(f"{self.release.name}: primary weight {100 - weight}")
        self.io.cluster.scale(self.release.target, 0)
        self._run_hooks(HookType.POST_ROLLOUT, succeeded_at)
        self._alert("info", "Promotion completed! Scaling down " + self._target_name())
        self._save({"phase": Phase.SUCCEEDED, "weight": 0})

    # -- one decision ---------------------------------------------------------------------------

    def _carry_out(self, decision: Decision, report: ReleaseReport) -> Release:
        release = decision.release
        traffic = decision.traffic if decision.traffic is not None else self._traffic
        # The record first: its write fails if another run took the release over, and then
        # this one must not move that run's traffic.
        self._save(
            {
                "phase": release.phase,
                "step": release.step,
                "weight": traffic.canary_weight,
                "failedChecks": release.failed_checks,
                "iterations": release.iterations,
                "reason": release.reason,
            }
        )
        if decision.traffic is not None:
            self._route(decision.traffic)
        for event in decision.events:
            self.progress(f"{self.release.name}: {event.message}")
            if event.severity != "info" or release.phase is not Phase.WAITING:
                self._alert(event.severity, event.message)
        if release.phase is Phase.FAILED:
            self.io.cluster.scale(self.release.target, 0)
        for hook_type in decision.hooks:
            self._run_hooks(hook_type, str(release.phase))
        if release.step >= 0 and release.applied_weights != tuple(report.canary_weights):
            report.canary_weights = list(release.applied_weights)
        return release

    def _run_gates(
        self, release: Release, scaled_at: float, report: ReleaseReport
    ) -> list[CheckResult]:
        """Runs the tick's gates in order, stopping at the first that blocks the analysis."""
        results = []
        for gate in gates(self.spec, release):
            result = self._check(gate, scaled_at)
            results.append(result)
            if gate.kind is GateKind.METRICS:
                report.checks.append(
                    Check(
                        self._traffic.canary_weight,
                        release.iterations,
                        result.metrics,
                        result.passed,
                    )
                )
                self.progress(self._metrics_line(result))
            blocks = not result.passed if gate.hook_type is not HookType.ROLLBACK else result.passed
            if blocks:
                break
        return results

    def _check(self, gate: Gate, scaled_at: float) -> CheckResult:
        if gate.kind is GateKind.READINESS:
            readiness = self.io.cluster.readiness(
                self.release.target,
                self.release.spec.analysis.canary_ready_threshold,
                self.release.spec.progress_deadline_seconds,
                scaled_at,
            )
            return CheckResult(
                gate,
                readiness.ready,
                readiness.message,
                pending=not readiness.ready and not readiness.failed,
            )
        if gate.kind is GateKind.METRICS:
            return self._check_metrics(gate)
        assert gate.hook_type is not None
        hooks = self.release.spec.analysis.hooks(gate.hook_type)
        if not hooks:
            # No rollback hook means nobody asked for a rollback; other gates pass when empty.
            return CheckResult(gate, passed=gate.hook_type is not HookType.ROLLBACK)
        outcomes = self.io.webhooks.call_all(
            hooks,
            name=self.release.name,
            namespace=self.release.namespace,
            phase=phase_for(gate.hook_type, str(Phase.PROGRESSING)),
            checksum=self.checksum,
        )
        last = outcomes[-1]
        passed = all(outcome.passed for outcome in outcomes)
        reason = f"{last.name}: " + (last.reason or f"answered {last.status}")
        return CheckResult(gate, passed, reason)

    def _check_metrics(self, gate: Gate) -> CheckResult:
        results: list[MetricResult] = [
            self.io.prometheus.evaluate(query, self.release.namespace)
            for query in self.release.metric_queries(self.interval_override)
        ]
        failed = [result for result in results if not result.passed]
        reason = "; ".join(result.reason or result.name for result in failed) or None
        metrics = {result.name: result.value for result in results}
        return CheckResult(gate, not failed, reason, metrics=metrics)

    # -- side effects ---------------------------------------------------------------------------

    def _take_over(self) -> None:
        """Claims the release record; a live run elsewhere stops this one, a dead one is reset.

        An interrupted release restarts from primary 100%: its canary was never verified, so
        traffic leaves it before anything else happens.
        """
        record, version = self.io.cluster.load_record()
        self._record_version = version
        if record and record.get("phase") in IN_FLIGHT:
            age = self.clock() - float(record.get("heartbeat", 0))
            stale_after = STALE_HEARTBEATS * max(self.interval, 10.0)
            if age < stale_after and not owner_is_dead(record.get("owner")):
                raise ReleaseConflict(
                    "take over",
                    "ConfigMap",
                    self.release.namespace,
                    self.io.cluster.record_name,
                    f"another release of {self.release.name} is running (heartbeat {age:.0f}s "
                    f"ago, owner {record.get('owner')}); it counts as interrupted once its "
                    f"heartbeat is {stale_after:.0f}s old",
                )
            self.progress(
                f"{self.release.name}: an interrupted release was found at canary weight "
                f"{record.get('weight')}; routing all traffic to the primary and starting over"
            )
        self._route(TrafficState())

    def _scale_canary_up(self) -> None:
        replicas = max(self.io.cluster.replicas(self.release.primary), 1)
        self.progress(f"{self.release.name}: scaling {self._target_name()} to {replicas} replicas")
        self.io.cluster.scale(self.release.target, replicas)

    def _route(self, state: TrafficState) -> None:
        if self.release.spec.analysis.session_affinity and state.canary_weight:
            state = TrafficState(state.canary_weight, state.mirror, cookie=self.checksum)
        self.io.cluster.set_routes(state)
        self._traffic = state

    def _run_hooks(self, hook_type: HookType, phase: str) -> None:
        for hook in self.release.spec.analysis.hooks(hook_type):
            outcome = self.io.webhooks.call(
                hook,
                name=self.release.name,
                namespace=self.release.namespace,
                phase=phase_for(hook_type, phase),
                checksum=self.checksum,
            )
            if not outcome.passed:
                self.progress(
                    f"{self.release.name}: {hook_type} hook {hook.name}: {outcome.reason}"
                )

    def _alert(self, severity: Severity, text: str) -> None:
        analysis = self.release.spec.analysis
        fields = {
            "Target": self._target_name(),
            "Failed checks threshold": str(analysis.effective_threshold),
            "Progress deadline": f"{self.release.spec.progress_deadline_seconds}s",
            "Traffic routing": self.plan.describe(),
        }
        message = AlertMessage(
            self.release.name,
            self.release.namespace,
            text,
            severity,
            fields,
        )
        for warning in self.io.notifier.notify(self.release, message):
            self.progress(f"{self.release.name}: alert not delivered: {warning}")

    def _save(self, fields: dict[str, Any]) -> None:
        record = {
            "revision": self.revision,
            "heartbeat": self.clock(),
            "owner": this_process(),
            **fields,
        }
        self._record_version = self.io.cluster.save_record(record, self._record_version)

    def _metrics_line(self, result: CheckResult) -> str:
        parts = []
        for query in self.release.metric_queries(self.interval_override):
            value = result.metrics.get(query.metric.name)
            bounds = query.metric.bounds
            shown = "no data" if value is None else f"{value:.4g}"
            parts.append(f"{query.metric.name} {shown} ({bounds.describe() if bounds else 'any'})")
        verdict = "pass" if result.passed else "FAIL"
        weight = self._traffic.canary_weight
        return f"{self.release.name}: weight {weight}%: {', '.join(parts)} -> {verdict}"

    def _target_name(self) -> str:
        return f"Deployment/{self.release.target}.{self.release.namespace}"
