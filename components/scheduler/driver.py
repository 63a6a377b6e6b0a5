"""Runs one release: the pure engine's decisions carried out through the I/O adapters.

The Pulumi gate and the rehearsal both drive releases through this class, so a rehearsal
exercises the very code path `pulumi up` runs, against a real Prometheus.

Two rules keep traffic safe whatever happens to the process:
- the cluster is the truth and the record the intent: every run first compares the live routes
  and canary replicas with a release at rest and returns them to rest, saying what it found;
- the record never claims what is not yet true: the intended state is saved before the cluster
  is changed, the reached state only once the cluster confirmed it, and a verdict (a failed
  analysis) is never overwritten by a later error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import TypeVar

from ..adapters.alerts import AlertMessage, Severity
from ..adapters.bundle import Adapters
from ..adapters.cluster import ClusterError
from ..adapters.pushgateway import AnalysisStatus, MetricCheck, MetricsState, ReleaseMetrics
from ..adapters.records import (
    LABELS as RECORD_LABELS,
)
from ..adapters.records import (
    CheckValue,
    HistoryEntry,
    RecordPhase,
    ReleaseConflict,
    ReleaseRecord,
)
from ..adapters.stop import STOPPING_CLEANUP_SECONDS, stopping
from ..adapters.webhooks import WebhookResult, phase_for
from ..analysis import (
    Check,
    CheckKind,
    CheckResult,
    Decision,
    Phase,
    ReleaseState,
    advance,
    begin,
    checks,
    critical_rollback,
    plan,
    readiness,
    value_text,
)
from ..errors import ReleaseInterrupted, TemporaryError
from ..routing import TrafficState
from ..spec import HookType, ReleaseSpec, Strategy, format_seconds
from ..spec.critical import Critical
from ..spec.judge import JUDGE_METRIC
from ..spec.timing import Timing
from .clock import SYSTEM_CLOCK, Clock
from .events import EventPoster
from .judging import Judged, judge_check
from .progress import print_progress
from .report import CheckEntry, MetricEntry, PlanEntry, ReleaseReport
from .watch import CriticalWatch

# How long a clean-up keeps retrying a step that does not hold (three intervals if longer).
CLEANUP_SECONDS = 30.0
# How long holds (closed gates, unready canaries) wait between looks at most.
HOLD_POLL_SECONDS = 5.0

T = TypeVar("T")


class CleanupIncomplete(TemporaryError):
    """Traffic or replicas could not be returned to rest; the message says what is left, and
    the next run finishes it."""


class Scheduler:
    """Carries out a release tick by tick; `clock` is injectable for replays and tests."""

    def __init__(
        self,
        release: ReleaseSpec,
        adapters: Adapters,
        *,
        revision: str,
        timing: Timing,
        progress: Callable[[str], None] = print_progress,
        clock: Clock = SYSTEM_CLOCK,
        cleanup_seconds: float = CLEANUP_SECONDS,
        gate: str | None = None,
        critical: Critical | None = None,
    ) -> None:
        self.release = release
        self.io = adapters
        self.revision = revision
        self.timing = timing
        self.plan = plan(release.spec, timing)
        self.progress = progress
        self.clock = clock
        self.cleanup_seconds = cleanup_seconds
        self.gate = gate
        self.lines: list[str] = []
        """Every progress line of this scheduler's runs, without the release's name."""
        # Watched between checks; by default as the Canary's annotations say.
        self.critical = critical if critical is not None else Critical.of(release)
        self._watch = CriticalWatch(
            self.critical.queries(release),
            adapters.critical_metrics,
            clock,
            self.critical.scrape_seconds,
        )
        # Each run deals its own sticky cookie: a retry of the same template must not send the
        # holders of a failed run's cookie straight back to the canary.
        self._cookie = uuid.uuid4().hex[:16]
        self._record: ReleaseRecord | None = None
        self._traffic = TrafficState()
        self._said: list[HistoryEntry] = []
        self._last_check: dict[str, CheckValue] = {}
        self._judged: Judged | None = None
        self._deadline: float | None = None
        self._metrics = MetricsState()
        self.report: ReleaseReport | None = None
        """The last analysis's report; a promotion's finalising adds its webhook calls."""
        self._events = EventPoster(release, adapters, warn=self._say)

    @property
    def name(self) -> str:
        return self.release.name

    # -- the analysis --------------------------------------------------------------------------

    def analyse(self) -> ReleaseReport:
        """Runs until the canary is verified (Promoting) or rolled back (Failed)."""
        return self.drive(self.run())

    def drive(self, waits: Generator[float, None, T]) -> T:
        """Sleeps through a generator's waits on this scheduler's clock; an interruption of a
        sleep is thrown into the generator, which returns traffic to the primary and re-raises."""
        try:
            delay = next(waits)
            while True:
                try:
                    self.clock.sleep(delay)
                except ReleaseInterrupted as interrupted:
                    delay = waits.throw(interrupted)
                else:
                    delay = next(waits)
        except StopIteration as finished:
            result: T = finished.value
            return result

    def run(self) -> Generator[float, None, ReleaseReport]:
        """The analysis as a generator of waits (seconds), so that one thread can drive many
        releases; `analyse` drives it alone."""
        started = self.clock.now()
        self._deadline = started + self.plan.deadline_seconds
        report = ReleaseReport(
            outcome="",
            strategy=str(self.plan.strategy),
            name=self.name,
            namespace=self.release.namespace,
            revision=self.revision,
            started_at=started,
            plan=PlanEntry.of(self.plan),
        )
        self.report = report
        self._adopt(self.io.records.claim(self.timing.stale_after_seconds))
        self._start_from_rest()
        try:
            state = yield from self._ticks(report, started + self.plan.deadline_seconds)
        except ReleaseConflict:
            raise  # another run holds the release now: its traffic is not ours to move
        except Exception as error:
            self._abandon(error)
            raise
        report.outcome = "promoted" if state.phase is Phase.PROMOTING else "rolled_back"
        report.failed_checks = state.failed_checks
        report.steps_run = state.step + 1
        report.reason = state.reason if state.phase is Phase.FAILED else None
        report.ended_at = self.clock.now()
        report.duration_s = report.since_start(report.ended_at)
        return report

    def _ticks(
        self, report: ReleaseReport, deadline: float
    ) -> Generator[float, None, ReleaseState]:
        decision = begin(self.plan)
        scaled_at = self.clock.now()
        announcement = self.critical.announcement()
        if self._watch.active and announcement and not self.plan.skip_analysis:
            self._say(announcement)
        while True:
            if decision.scale_canary_up:
                scaled_at = self.clock.now()
                self._scale_canary_up()
            state = self._carry_out(decision, report)
            if state.done:
                return state
            if state.phase is not Phase.WAITING and state.step >= 0:
                breach = yield from self._watch.wait(self.plan.interval_seconds)
                if breach is not None:
                    decision = critical_rollback(state, breach)
                    continue
            elif state.held_since is not None:
                yield min(self.plan.interval_seconds, HOLD_POLL_SECONDS)
            ticked = self.clock.now()
            results = self._run_checks(state, scaled_at, report)
            decision = advance(self.plan, state, results, self.clock.now(), deadline)
            self._metrics = self._metrics.after_tick(self.clock.now() - ticked)

    # -- rest: before, after and instead of an analysis ------------------------------------------

    def settle(self, context: str) -> bool:
        """Returns the cluster to rest if an earlier release left anything on the canary.

        Run before the canary Deployment takes a new template (the guard) and before a known
        failure fails fast: failing fast means "do not analyse again", never "leave it as it is".
        A verdict in the record is kept; anything else in flight becomes Interrupted. Returns
        whether anything had to move. ReleaseConflict if another run is driving the release.
        """
        record = self._adopt(self.io.records.claim(self.timing.stale_after_seconds))
        routes = self.io.cluster.read_routes()
        replicas = self.io.cluster.replicas(self.release.target, missing_ok=True)
        unsettled = record is not None and (record.in_flight or not record.settled)
        if routes.at_rest and replicas == 0 and not unsettled:
            return False
        self._traffic = TrafficState(routes.canary, routes.mirrored)
        self._say(
            f"found canary weight {routes.canary}"
            f"{' mirrored' if routes.mirrored else ''} and {replicas} canary replicas"
            f"{self._record_note(record)}; returning them to rest {context}"
        )
        if record is not None and record.phase is RecordPhase.FAILED:
            self._save(replace(record, weight=routes.canary, settled=False))
        else:
            reason = f"ended at canary weight {routes.canary} {context}"
            self._save(self._intent(RecordPhase.INTERRUPTED, reason=reason))
        self._to_rest()
        self._say(f"all traffic on the primary and the canary at zero {context}")
        self._push()
        return True

    def _start_from_rest(self) -> None:
        """The analysis starts from primary 100%: an interrupted release's checks ran against
        traffic and a canary that are gone, so it restarts instead of resuming. The intent is
        saved first, which also takes the record over from the dead run."""
        record = self._record
        live = self.io.cluster.read_routes()
        self._traffic = TrafficState(live.canary, live.mirrored)
        if record is not None and record.in_flight:
            self._say(
                "an interrupted release was found at canary weight "
                f"{live.canary}; routing all traffic to the primary and starting over"
            )
        self._save(
            self._intent(
                RecordPhase.PROGRESSING,
                step=-1,
                failed_checks=0,
                iterations=0,
                threshold=self.plan.threshold,
                deadline=self._deadline,
                interval_seconds=self.plan.interval_seconds,
                last_check={},
            )
        )
        self._route(TrafficState())
        self._save_reached(weight=0)

    def _abandon(self, error: Exception) -> None:
        """An error or an interruption stopped the analysis: back to rest as far as the cluster
        lets us. The record says so first (Interrupted, so the next run analyses again), unless
        the canary had already failed: that verdict stays."""
        record = self._record
        phase = str(record.phase if record is not None else Phase.PROGRESSING)
        if record is not None and record.phase is RecordPhase.FAILED:
            intent = replace(record, weight=self._traffic.canary_weight, settled=False)
        elif isinstance(error, ReleaseInterrupted):
            intent = self._intent(RecordPhase.INTERRUPTED, reason=f"interrupted: {error}")
        else:
            intent = self._intent(RecordPhase.INTERRUPTED, reason=f"stopped by an error: {error}")
        try:
            self._save(intent)
        except ReleaseConflict:
            return  # another run owns the release: its traffic is not ours to move
        except Exception as save_error:  # traffic first: move it even if the record cannot say so
            self._say(f"could not record the interruption: {save_error}")
        try:
            self._to_rest()
        except CleanupIncomplete as incomplete:
            self._say(str(incomplete))
        self._push()
        if isinstance(error, ReleaseInterrupted):
            self._event(
                "warn",
                f"interrupted ({error}): all traffic is on the primary; "
                "the next pulumi up starts the release over",
                phase,
            )
        else:  # not said: the error is what `pulumi up` prints
            self._events.post("warn", f"stopped by an error: {error}", phase, self.clock.now())

    def _to_rest(self) -> None:
        """All traffic to the primary, confirmed, and only then the canary to zero, confirmed:
        a canary scaled down while it still has traffic answers that traffic with 503s."""
        budget = max(self.cleanup_seconds, 3 * self.plan.interval_seconds)
        if stopping():  # the engine's SIGKILL follows its SIGINT within seconds
            budget = min(budget, STOPPING_CLEANUP_SECONDS)
        deadline = self.clock.now() + budget

        def routes_at_rest() -> bool:
            self._route(TrafficState())
            return True

        self._until("route all traffic to the primary", routes_at_rest, deadline)

        def canary_at_zero() -> bool:
            if self.io.cluster.replicas(self.release.target, missing_ok=True) == 0:
                return True  # also when the canary Deployment does not exist (yet)
            self.io.cluster.scale(self.release.target, 0)
            return self.io.cluster.replicas(self.release.target, missing_ok=True) == 0

        scale_down = f"scale {self._target_name()} to zero"
        try:
            self._save_reached(weight=0)
        except ReleaseConflict:
            raise  # another run owns the release now: its canary is not ours to scale
        except Exception:  # the canary has no traffic left: scale it down, then say why not saved
            self._until(scale_down, canary_at_zero, deadline)
            raise
        self._until(scale_down, canary_at_zero, deadline)
        self._save_reached(settled=True)

    def _until(self, what: str, attempt: Callable[[], bool], deadline: float) -> None:
        """Retries a clean-up step until it holds; past `deadline`, says what is left."""
        delay = 0.5
        while True:
            try:
                if attempt():
                    return
                problem = "the cluster did not confirm it"
            except ClusterError as error:
                problem = str(error)
            if self.clock.now() + delay > deadline:
                raise CleanupIncomplete(
                    f"could not {what} ({problem}); left: {self._what_is_left()}; "
                    "the next pulumi up finishes the clean-up"
                )
            self.clock.sleep(delay, interruptible=False)
            delay = min(delay * 2, HOLD_POLL_SECONDS)

    def finalise(self) -> None:
        """After promotion: traffic back to the (new) primary, canary to zero, hooks, alert.

        Once is enough: a rerun after a finalise whose end was lost finds the record Succeeded
        and the cluster at rest, and does nothing again (no second alert).
        """
        record = self._adopt(self.io.records.load())
        routes = self.io.cluster.read_routes()
        if (
            record is not None
            and record.revision == self.revision
            and record.phase is RecordPhase.SUCCEEDED
            and record.settled
            and routes.at_rest
            and self.io.cluster.replicas(self.release.target, missing_ok=True) == 0
        ):
            self._say("the promotion was already finalised")
            return
        self._traffic = TrafficState(routes.canary, routes.mirrored)
        self._save(self._intent(RecordPhase.PROMOTING, weight=routes.canary))
        for index, weight in enumerate(self.plan.finalising_weights(self._traffic.canary_weight)):
            if index:
                self.clock.sleep(self.plan.interval_seconds, interruptible=False)
            self._route(TrafficState(canary_weight=weight))
            self._save_reached(weight=weight)
            self._event("info", f"primary weight {100 - weight}", str(Phase.PROMOTING))
        self._to_rest()
        skipped = AnalysisStatus.SKIPPED if self.plan.skip_analysis else AnalysisStatus.COMPLETED
        self._metrics = self._metrics.after_outcome(self.plan.strategy, True, skipped)
        self._save(self._intent(RecordPhase.SUCCEEDED, settled=True))
        self._push()
        self._run_hooks(HookType.POST_ROLLOUT, str(Phase.SUCCEEDED))
        completed = "Promotion completed! Scaling down " + self._target_name()
        self._event("info", completed, str(Phase.SUCCEEDED))
        self._alert("info", completed)

    # -- one decision ---------------------------------------------------------------------------

    def _carry_out(self, decision: Decision, report: ReleaseReport) -> ReleaseState:
        state = decision.state
        if state.phase is Phase.FAILED:
            self._metrics = self._metrics.after_outcome(self.plan.strategy, succeeded=False)
        decided = self.clock.now()
        for event in decision.events:  # said first, so the intent's write carries them
            self._say(event.message)
        # The intent first: its write fails if another run took the release over, and then
        # this run must not move that run's traffic.
        self._save(
            self._intent(
                RecordPhase(str(state.phase)),
                step=state.step,
                failed_checks=state.failed_checks,
                iterations=state.iterations,
                reason=state.reason,
            )
        )
        if self._sticky and decision.traffic is not None and decision.traffic.canary_weight:
            self._save_reached(cookie=self._cookie)  # before any user gets it
        if state.phase is Phase.FAILED:
            try:
                self._to_rest()
            except CleanupIncomplete as incomplete:  # the verdict stands; the next run finishes
                report.cleanup = str(incomplete)
                self._event("warn", report.cleanup, str(state.phase))
        elif decision.traffic is not None:
            self._route(decision.traffic)
            self._save_reached(weight=decision.traffic.canary_weight)
        # Posted once this run holds the release, and after the traffic moved: a slow receiver
        # must not keep users on a failed canary.
        for event in decision.events:
            self._events.post(event.severity, event.message, str(state.phase), decided)
        for event in decision.events:
            report.add_decision(event, state.phase, self._traffic.canary_weight, decided)
        for event in decision.events:
            if event.severity != "info" or state.phase is not Phase.WAITING:
                self._alert(event.severity, event.message)
        for hook_type in decision.hooks:
            self._run_hooks(hook_type, str(state.phase))
        if state.step >= 0 and state.applied_weights != tuple(report.canary_weights):
            report.canary_weights = list(state.applied_weights)
        self._push()
        return state

    def _run_checks(
        self, state: ReleaseState, scaled_at: float, report: ReleaseReport
    ) -> list[CheckResult]:
        """Runs the tick's checks in order, stopping at the first that blocks the analysis."""
        results = []
        for check in checks(self.plan, state):
            result = self._check(check, scaled_at)
            results.append(result)
            if check.kind is CheckKind.METRICS:
                report.checks.append(self._check_entry(state, result, report))
                self._say(self._metrics_line(state, result))
            if result.blocks:
                break
        return results

    def _check_entry(
        self, state: ReleaseState, result: CheckResult, report: ReleaseReport
    ) -> CheckEntry:
        now = self.clock.now()
        metrics = {
            name: MetricEntry(value.value, *self._bounds(name), value.passed)
            for name, value in self._last_check.items()
        }
        return CheckEntry(
            at=now,
            since_start_s=report.since_start(now),
            step=state.step + 1,
            weight=self._traffic.canary_weight,
            routing=self.plan.routing(state.step),
            metrics=metrics,
            passed=result.passed,
            judge=self._judged.entry() if self._judged else None,
        )

    def _check(self, check: Check, scaled_at: float) -> CheckResult:
        if check.kind is CheckKind.READINESS:
            ready = readiness(
                self.io.cluster.workload_status(self.release.target),
                self.release.spec.analysis.canary_ready_threshold,
                since=scaled_at,
                now=self.clock.now(),
                deadline_seconds=self.plan.progress_deadline_seconds,
            )
            pending = not ready.ready and not ready.failed
            return CheckResult(check, ready.ready, ready.message, pending=pending)
        if check.kind is CheckKind.METRICS:
            return self._check_metrics(check)
        assert check.hook_type is not None
        if not self.plan.has_hooks(check.hook_type):
            # No rollback hook means nobody asked for a rollback; other checks pass when empty.
            return CheckResult(check, passed=check.hook_type is not HookType.ROLLBACK)
        outcomes = self._call_hooks(check.hook_type, str(Phase.PROGRESSING), stop_at_failure=True)
        last = outcomes[-1]
        passed = all(outcome.passed for outcome in outcomes)
        reason = f"{last.name}: " + (last.reason or f"answered {last.status}")
        return CheckResult(check, passed, reason)

    def _check_metrics(self, check: Check) -> CheckResult:
        results = [
            self.io.metrics.evaluate(query) for query in self.release.metric_queries(self.timing)
        ]
        judged = judge_check(
            self.release, self.io.metrics, self.clock.now(), self.timing.interval_seconds
        )
        self._judged = judged
        self._last_check = {
            result.name: CheckValue(result.value, result.bounds, result.passed)
            for result in results
        }
        if judged is not None:
            self._last_check[JUDGE_METRIC] = judged.check_value()
        failed = [result for result in results if not result.passed]
        reasons = [result.reason or result.name for result in failed]
        if judged is not None and not judged.passed:
            reasons.append(judged.reason)
        held = not failed and judged is not None and judged.pending
        metrics = {result.name: result.value for result in results}
        return CheckResult(
            check, not reasons, "; ".join(reasons) or None, pending=held, metrics=metrics
        )

    # -- side effects ---------------------------------------------------------------------------

    def _scale_canary_up(self) -> None:
        replicas = max(self.io.cluster.replicas(self.release.primary), 1)
        self._say(f"scaling {self._target_name()} to {replicas} replicas")
        self.io.cluster.scale(self.release.target, replicas)

    @property
    def _sticky(self) -> bool:
        return self.release.spec.analysis.session_affinity is not None

    def _route(self, state: TrafficState) -> None:
        """Writes the routes and confirms them by reading them back.

        With session affinity, weighted steps deal this run's cookie (the primary's lives one
        interval, as Flagger's), and at weight 0 the last run's cookie is answered expired.
        """
        if self._sticky and state.canary_weight:
            state = replace(state, cookie=self._cookie, interval_seconds=self.plan.interval_seconds)
        elif self._sticky and self._record is not None:
            state = replace(state, previous_cookie=self._record.cookie)
        self.io.cluster.set_routes(state)
        live = self.io.cluster.read_routes()
        if (live.canary, live.mirrored) != (state.canary_weight, state.mirror):
            raise ClusterError(
                "confirm",
                "VirtualService",
                self.release.namespace,
                self.release.service,
                f"routes read back as canary {live.canary}, not {state.canary_weight}",
            )
        self._traffic = state

    def _call_hooks(
        self, hook_type: HookType, phase: str, *, stop_at_failure: bool
    ) -> list[WebhookResult]:
        """Calls the hooks of one type in order; each says its outcome in one line
        (`load-test (rollout) -> 202 in 12 ms`) and goes into the report."""
        outcomes = []
        for hook in self.release.spec.analysis.hooks(hook_type):
            sent = phase_for(hook_type, phase)
            outcome = self.io.hooks.call(hook, sent)
            outcomes.append(outcome)
            self._say(outcome.describe())
            if self.report is not None:
                self.report.add_webhook(outcome, sent, self.clock.now())
            if not outcome.passed and stop_at_failure:
                break
        return outcomes

    def _run_hooks(self, hook_type: HookType, phase: str) -> None:
        """Hooks whose failure does not change the outcome (post-rollout): a reason cut short
        in the outcome line is said whole; each failure is a Warning event, as in Flagger."""
        for outcome in self._call_hooks(hook_type, phase, stop_at_failure=False):
            if outcome.passed:
                continue
            failed = f"{hook_type} hook {outcome.name}: {outcome.reason}"
            if outcome.reason and outcome.reason not in outcome.describe():
                self._say(failed)
            self._events.post("warn", failed, phase, self.clock.now())

    def _alert(self, severity: Severity, text: str) -> None:
        analysis = self.release.spec.analysis
        fields = {
            "Target": self._target_name(),
            "Failed checks threshold": str(analysis.effective_threshold),
            "Progress deadline": f"{self.release.spec.progress_deadline_seconds}s",
            "Traffic routing": self.plan.describe(),
        }
        message = AlertMessage(self.name, self.release.namespace, text, severity, fields)
        for warning in self.io.alerts.notify(message):
            self._say(f"alert not delivered: {warning}")

    # -- the record -----------------------------------------------------------------------------

    def _intent(self, phase: RecordPhase, **fields: object) -> ReleaseRecord:
        """The record this run is about to make true: the last one of this revision (or a new
        one carrying the cumulative metrics), moved to `phase`, at the weight last confirmed."""
        last = self._record
        if last is None or last.revision != self.revision:
            carried = (
                {"metrics": last.metrics, "cookie": last.cookie, "gate": last.gate} if last else {}
            )
            last = ReleaseRecord(self.revision, phase, **carried)  # type: ignore[arg-type]
        confirmed = {
            "weight": self._traffic.canary_weight,
            "settled": False,
            "last_check": self._last_check or last.last_check,
            "gate": self.gate or last.gate,
        }
        return replace(last, phase=phase, **{**confirmed, **fields})  # type: ignore[arg-type]

    def _adopt(self, record: ReleaseRecord | None) -> ReleaseRecord | None:
        """The record this run starts from, and the cumulative metrics it carries."""
        self._record = record
        self._metrics = MetricsState.from_json(record.metrics if record else {})
        return record

    def _save(self, record: ReleaseRecord) -> None:
        for entry in self._said:
            record = record.with_event(entry.at, entry.text)
        self._record = self.io.records.save(replace(record, metrics=self._metrics.to_json()))
        self._said.clear()

    def _save_reached(self, **reached: object) -> None:
        """What the cluster confirmed, on top of the intent saved before."""
        assert self._record is not None
        changed = {
            key: value for key, value in reached.items() if getattr(self._record, key) != value
        }
        if changed:
            self._save(replace(self._record, **changed))  # type: ignore[arg-type]

    def _push(self) -> None:
        """Flagger's metrics of the release as the record now says, if a Pushgateway is set;
        a failed push is one line, never an error."""
        sink, record = self.io.pushgateway, self._record
        if sink is None or record is None:
            return
        try:
            canaries = self.io.cluster.count_config_maps(RECORD_LABELS)
        except ClusterError:
            canaries = 1
        phase = Phase.FAILED if record.phase is RecordPhase.INTERRUPTED else Phase(record.phase)
        checks = {
            name: MetricCheck(value.value, value.passed, *self._bounds(name))
            for name, value in record.last_check.items()
        }
        warning = sink.push(
            ReleaseMetrics(
                target=self.release.target,
                namespace=self.release.namespace,
                strategy=self.plan.strategy,
                phase=phase,
                canary_weight=record.weight,
                primary_weight=100 - record.weight,
                state=self._metrics,
                checks=checks,
                failed_checks=record.failed_checks,
                deadline=self._deadline if record.in_flight else None,
                canaries_in_namespace=canaries,
            )
        )
        if warning is not None:
            self.progress(f"{self.name}: {warning}")

    def _bounds(self, metric: str) -> tuple[float | None, float | None]:
        if metric == JUDGE_METRIC and self.release.judge is not None:
            return self.release.judge.spec.thresholds.pass_score, None
        for query in self.release.metric_queries():
            bounds = query.metric.bounds
            if query.metric.name == metric and bounds is not None:
                return bounds.min, bounds.max
        return None, None

    def _say(self, line: str) -> None:
        """One progress line: printed now, and kept for the record's history (saved with the
        next write), so `python -m components.status` shows it from any machine."""
        self.progress(f"{self.name}: {line}")
        self.lines.append(line)
        self._said.append(HistoryEntry(self.clock.now(), line))

    def _event(self, severity: Severity, line: str, phase: str) -> None:
        """A line that is also one of Flagger's events: said, and posted to the event hooks."""
        self._say(line)
        self._events.post(severity, line, phase, self.clock.now())

    def _record_note(self, record: ReleaseRecord | None) -> str:
        if record is None:
            return ""
        owner = f", owner {record.owner}" if record.owner else ""
        return f" (record: {record.phase} at weight {record.weight}{owner})"

    # -- lines ----------------------------------------------------------------------------------

    def _metrics_line(self, state: ReleaseState, result: CheckResult) -> str:
        """`20% success-rate 99.93 >=99, duration 312 <=500ms: pass, 3m to go`: self-contained
        and, with the name, within 80 columns, as `pulumi up` shows one line at a time on the
        Stack row, cut to the terminal's width (a judge's part can take it past)."""
        values = [
            value_text(query.metric, result.metrics.get(query.metric.name))
            for query in self.release.metric_queries(self.timing)
        ]
        if self._judged is not None:
            values.append(self._judged.fragment())
        if result.pending:
            verdict = "hold"
        elif not result.passed:
            verdict = f"FAIL {state.failed_checks + 1}/{self.plan.threshold}"
        elif left := self.plan.seconds_to_promotion(state.step):
            verdict = f"pass, {format_seconds(left)} to go"
        else:
            verdict = "pass, promoting"
        retried = self.io.retries.take()
        retries = f" ({retried} retried)" if retried else ""
        return f"{self._where(state)} {', '.join(values)}: {verdict}{retries}"

    def _where(self, state: ReleaseState) -> str:
        """The step a check ran at: the canary's weight, or the iteration of one that holds."""
        if self.plan.strategy is not Strategy.CANARY:
            return f"check {state.step + 1}/{len(self.plan.steps)}"
        if 0 <= state.step < len(self.plan.steps) and self.plan.steps[state.step].mirror:
            return "mirrored"
        return f"{self._traffic.canary_weight}%"

    def _target_name(self) -> str:
        return f"Deployment/{self.release.target}.{self.release.namespace}"

    def _what_is_left(self) -> str:
        """The canary's weight and replicas as far as the cluster still answers."""
        try:
            weight: object = self.io.cluster.read_routes().canary
        except ClusterError:
            weight = "unknown"
        try:
            replicas: object = self.io.cluster.replicas(self.release.target, missing_ok=True)
        except ClusterError:
            replicas = "unknown"
        return f"canary weight {weight}, {replicas} canary replicas"
