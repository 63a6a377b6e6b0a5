"""The Rollout dynamic resource: `pulumi up` blocks on the release and fails when it fails.

The providers here are pickled by reference into Pulumi state (`__provider`), so they hold no
fields at all, build every client inside the method that needs it, and this module does
nothing on import. `check` and `diff` run at preview and must stay pure: no network, and
`pulumi.output.Unknown` values tolerated anywhere in the inputs.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.dynamic as dyn
from pulumi.output import Unknown
from pydantic import ValidationError

from ..adapters.bundle import Adapters
from ..adapters.cluster import ClusterError
from ..adapters.kube import ConnectionPool, Connections, KubeAccess
from ..adapters.records import RecordPhase, ReleaseRecord
from ..adapters.stop import stop_on_shutdown
from ..analysis import images_of, plan, review
from ..errors import PermanentError, ReleaseFailed
from ..routing import primary_deployment
from ..scheduler import SYSTEM_CLOCK, Clock, ReleaseReport, Scheduler, print_progress
from ..spec import Canary, ReleaseSpec, SpecError, integral
from ..spec.configs import SECRET, ConfigTracking, Contents, checksums, config_changes
from ..spec.critical import Critical
from ..spec.revision import release_revision
from ..spec.timing import Timing

# The inputs that make up the release spec, in the engine's camelCase spelling.
SPEC_KEYS = (
    "canary",
    "deployment",
    "metricTemplates",
    "alertProviders",
    "autoscaler",
    "judge",
    "configs",
)
# Every input the provider reads; `__provider` is the engine's and never compared.
# `podTemplate` in: the template to release; out: the template released (promoted).
INPUT_KEYS = (
    *SPEC_KEYS,
    "podTemplate",
    "kubeconfig",
    "context",
    "deadlineSeconds",
    "interval",
    "retryFailed",
    "pushgateway",
    "plan",
    "declaredUids",
    "critical",
    "scrapeInterval",
    "eventWebhook",
)
# The inputs `GateInputs` validates: while one is unknown, validation waits for `pulumi up`.
VALIDATED_KEYS = (*SPEC_KEYS, "interval", "deadlineSeconds", "critical", "scrapeInterval")
# Outputs a Rollout adds to its inputs. None of them is derived from `kubeconfig`: the engine
# re-marks as secret only outputs whose key matches a secret input. None of them is an input
# either: at preview the engine shows a changed Rollout's inputs as its outputs and these as
# unknown, so what depends on them (the primary, the finaliser) reads "may change", never the
# new template as if it had passed its analysis.
OUTPUT_KEYS = (
    "revision",
    "phase",
    "promotion",
    "promotedTemplate",
    "promotedConfigs",
    "history",
    "rolloutId",
)
# Inputs a later call reads back from state (delete, and each run's check of the cluster): a
# change to one is a diff even without a new template. The rest (the spec, interval, deadline,
# pushgateway, event webhook) take effect with the next release, read from its new inputs, so a
# change to them alone is no diff: at preview, a changed Rollout's outputs that are not inputs
# show as unknown, and the primary would read "may change" when nothing is to be released.
STATE_KEYS = ("kubeconfig", "context", "declaredUids")
# The promotion of a Rollout's first release, which needs no finalising.
INITIAL_PROMOTION = "initial"
# How many of the last release's progress lines the Rollout keeps as its `history` output.
HISTORY_OUTPUT_LINES = 40


class ClusterMismatch(PermanentError):
    """The gate's credentials reach another cluster than the stack's Kubernetes provider."""


# -- pure helpers -----------------------------------------------------------------------------


def has_unknown(value: Any) -> bool:
    """Whether a preview left any part of `value` unknown."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, Mapping):
        return any(has_unknown(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_unknown(item) for item in value)
    return False


def pod_template(props: Mapping[str, Any]) -> Any:
    """The `podTemplate` input (possibly Unknown at preview); {} when absent."""
    template = props.get("podTemplate")
    return {} if template is None else template


def tracked_contents(props: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The content of the configs the inputs track, by Flagger's key (known values only)."""
    template = integral(pod_template(props))
    return ConfigTracking.of(template, integral(props.get("configs") or [])).contents()


def revision_of(props: Mapping[str, Any]) -> str | None:
    """The revision of the release the inputs declare: the pod template and the tracked configs'
    content; None while a preview leaves part of either unknown."""
    if has_unknown(pod_template(props)) or has_unknown(props.get("configs")):
        return None
    return release_revision(integral(pod_template(props)), checksums(tracked_contents(props)))


@dataclass(frozen=True)
class GateInputs:
    """The Rollout's inputs, validated once: the release, its timing, its revision, its critical
    conditions and the content of its tracked configs."""

    release: ReleaseSpec
    timing: Timing
    template: Mapping[str, Any]
    revision: str
    critical: Critical
    configs: Contents

    @classmethod
    def of(cls, props: Mapping[str, Any]) -> GateInputs:
        """Raises SpecError naming every bad field, the gate's own options included."""
        interval, deadline = props.get("interval") or None, props.get("deadlineSeconds")
        critical, scrape = props.get("critical"), props.get("scrapeInterval")
        problems = Timing.problems(interval=interval, deadline_seconds=deadline)
        problems += Critical.problems(None, critical=critical, scrape_interval=scrape)
        try:
            release = ReleaseSpec.parse(
                canary=integral(props.get("canary") or {}),
                deployment=integral(props.get("deployment") or {}),
                metric_templates=integral(props.get("metricTemplates") or []),
                alert_providers=integral(props.get("alertProviders") or []),
                autoscaler=integral(props["autoscaler"]) if props.get("autoscaler") else None,
                judge=integral(props["judge"]) if props.get("judge") else None,
                configs=integral(props.get("configs") or []),
            )
        except SpecError as error:
            problems += error.problems
        if problems:
            raise SpecError(problems)
        timing = Timing.of(release.spec.analysis, interval=interval, deadline_seconds=deadline)
        if sampling := release.sampling_problems(timing):
            raise SpecError(sampling)
        template = integral(pod_template(props))
        # Also checks that the conditions name metrics of the release.
        conditions = Critical.of(release, critical=critical, scrape_interval=scrape)
        configs = tracked_contents(props)
        revision = release_revision(template, checksums(configs))
        return cls(release, timing, template, revision, conditions, configs)

    @property
    def what(self) -> str:
        """`podinfo: release of ghcr.io/...:6.3.1 (3f2a...)`, with its tracked configs
        (`ghcr.io/...:6.3.1, ConfigMap podinfo-config (3f2a...)`), to begin messages with."""
        configs = "".join(f", {config.ref}" for config in self.release.config_tracking.tracked)
        return (
            f"{self.release.name}: release of {images_of(self.template)}{configs} ({self.revision})"
        )


def _option_problems(props: Mapping[str, Any]) -> list[dyn.CheckFailure]:
    """The provider's own inputs that `GateInputs` does not validate; unknown ones are
    checked at `pulumi up`, not preview."""
    failures = []
    retry = props.get("retryFailed")
    if retry is not None and not isinstance(retry, (bool, Unknown)):
        failures.append(dyn.CheckFailure("retryFailed", f"must be true or false, not {retry!r}"))
    for key in ("kubeconfig", "context", "pushgateway", "eventWebhook"):
        value = props.get(key)
        if value is not None and not isinstance(value, (str, Unknown)):
            # Never echo the value: kubeconfig is a secret.
            failures.append(dyn.CheckFailure(key, "must be a string"))
    template = props.get("podTemplate")
    if template is not None and not isinstance(template, (Mapping, Unknown)):
        failures.append(dyn.CheckFailure("podTemplate", "must be a pod template object"))
    configs = props.get("configs")
    if configs is not None and not isinstance(configs, (list, Unknown)):
        failures.append(dyn.CheckFailure("configs", "must be a list of ConfigMaps and Secrets"))
    return failures


def outputs(
    props: Mapping[str, Any],
    *,
    phase: str,
    promotion: str,
    promoted: Mapping[str, Any],
    promoted_configs: Contents,
    history: Sequence[str],
    rollout_id: str,
) -> dict[str, Any]:
    """The inputs (kubeconfig under its own key only) plus what the release did: the revision
    of the input template and configs, the phase, the promotion (one id per promotion, so the
    finaliser acts once for each, even for a template promoted before), the template and the
    tracked configs' content the primary runs, the last release's lines, and the Rollout's own
    id (whose release record is whose)."""
    gate = GateInputs.of(props)
    outs = {key: props.get(key) for key in INPUT_KEYS}
    outs["retryFailed"] = bool(props.get("retryFailed") or False)
    outs.update(
        podTemplate=dict(gate.template),
        revision=gate.revision,
        phase=phase,
        promotion=promotion,
        promotedTemplate=integral(dict(promoted)),
        promotedConfigs=integral(dict(promoted_configs)),
        history=list(history),
        rolloutId=rollout_id,
    )
    return outs


def carried(olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs of a Rollout whose revision did not change: what it did stays."""
    return outputs(
        news,
        phase=str(olds.get("phase") or RecordPhase.SUCCEEDED),
        promotion=str(olds.get("promotion") or INITIAL_PROMOTION),
        promoted=olds.get("promotedTemplate") or pod_template(olds) or pod_template(news),
        # Before config tracking a Rollout had none: the same revision tracks nothing.
        promoted_configs=olds.get("promotedConfigs") or tracked_contents(news),
        history=olds.get("history") or [],
        rollout_id=str(olds.get("rolloutId") or ""),
    )


def record_id(release: ReleaseSpec) -> str:
    return f"{release.namespace}/{release.name}"


# -- I/O, built per call ------------------------------------------------------------------------


def access_of(props: Mapping[str, Any]) -> KubeAccess:
    return KubeAccess(kubeconfig=props.get("kubeconfig") or None, context=props.get("context"))


# The clock of every release this process runs; tests replace it with a fake one.
CLOCK: Clock = SYSTEM_CLOCK


@contextlib.contextmanager
def _adapters(
    props: Mapping[str, Any], gate: GateInputs, clock: Clock, pool: ConnectionPool | None = None
) -> Iterator[Adapters]:
    """The release's adapters over the clients `pool` shares for its cluster, or over fresh
    ones closed after. The one seam tests replace."""
    with contextlib.ExitStack() as owned:
        access = access_of(props)
        connections = pool.of(access) if pool else owned.enter_context(Connections(access))
        yield Adapters.connect(
            connections,
            gate.release,
            revision=gate.revision,
            now=clock.now,
            pushgateway=props.get("pushgateway") or None,
            event_webhook=props.get("eventWebhook") or None,
        )


@contextlib.contextmanager
def _scheduler(
    props: Mapping[str, Any],
    gate: GateInputs,
    rollout_id: str | None = None,
    pool: ConnectionPool | None = None,
) -> Iterator[Scheduler]:
    stop_on_shutdown()
    clock = CLOCK
    # A lone release passes no pool: the seam keeps its three-argument form for it.
    adapters_of = _adapters(props, gate, clock, pool) if pool else _adapters(props, gate, clock)
    with adapters_of as adapters:
        yield Scheduler(
            gate.release,
            adapters,
            revision=gate.revision,
            timing=gate.timing,
            clock=clock,
            gate=rollout_id or None,
            critical=gate.critical,
        )


# -- the providers --------------------------------------------------------------------------


class RolloutProvider(dyn.ResourceProvider):
    """Gates `pulumi up`: create promotes at once, update runs the analysis to its end.

    No fields: the instance is pickled into state, and clients (with credentials) must not be.
    """

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        """Validates the spec without the network; parts unknown at preview are skipped."""
        failures = _option_problems(news)
        if not any(has_unknown(news.get(key)) for key in VALIDATED_KEYS):
            try:
                gate = GateInputs.of(news)
            except SpecError as error:
                failures += [dyn.CheckFailure(p.path, str(p)) for p in error.problems]
            else:
                template = pod_template(news)
                if not olds and not failures and not has_unknown(template):
                    print_progress(
                        review(
                            gate.release.name,
                            gate.release.spec.analysis,
                            plan(gate.release.spec, gate.timing),
                            None,
                            gate.template,
                        )
                    )
                    _print_notes(gate)
        return dyn.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        """A new revision (pod template or tracked configs) is a release, reviewed in one line;
        else only `STATE_KEYS` count. Printed at preview and again in `pulumi up`'s own pass:
        the engine calls Diff in both, in separate processes, and tells neither which it is."""
        revision = revision_of(news)
        if revision is None:
            return dyn.DiffResult(changes=True, replaces=[])
        if revision != olds.get("revision"):
            if not any(has_unknown(news.get(key)) for key in VALIDATED_KEYS):
                gate = GateInputs.of(news)
                print_progress(
                    review(
                        gate.release.name,
                        gate.release.spec.analysis,
                        plan(gate.release.spec, gate.timing),
                        integral(pod_template(olds)),
                        gate.template,
                        config_changes=config_changes(
                            olds.get("promotedConfigs") or {}, gate.configs
                        ),
                    )
                )
                watch = gate.critical.announcement()
                if watch and not gate.release.spec.skip_analysis:
                    print_progress(f"{gate.release.name}: {watch}")
                _print_notes(gate)
            return dyn.DiffResult(changes=True, replaces=[])
        return dyn.DiffResult(changes=_inputs_changed(olds, news, STATE_KEYS), replaces=[])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        """A first release promotes without analysis, as Flagger initialises; but a Rollout
        created over a cluster whose primary already runs another template (state lost, a
        renamed component, an imported stack) analyses the new one first: re-creation is not
        promotion."""
        gate = GateInputs.of(props)
        rollout_id = uuid.uuid4().hex[:16]
        with _scheduler(props, gate, rollout_id) as scheduler:
            outs = scheduler.drive(released(scheduler, gate, props, rollout_id, created=True))
        return dyn.CreateResult(record_id(gate.release), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        """Runs the analysis of a new template; raises, with the reason, when it fails."""
        gate = GateInputs.of(news)
        if gate.revision == olds.get("revision"):
            return dyn.UpdateResult(carried(olds, news))
        rollout_id = str(olds.get("rolloutId") or "")
        with _scheduler(news, gate, rollout_id) as scheduler:
            outs = scheduler.drive(released(scheduler, gate, news, rollout_id, created=False))
        return dyn.UpdateResult(outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Removes the release record, unless another Rollout owns it now (a renamed
        component's new Rollout, created before this one is deleted); gone is fine."""
        gate = GateInputs.of(props)
        with _scheduler(props, gate, str(props.get("rolloutId") or "")) as scheduler:
            _verify_cluster(scheduler, props)
            record = scheduler.io.records.load()
            if record is not None and record.gate not in (None, "", props.get("rolloutId")):
                print_progress(
                    f"{gate.release.name}: its release record belongs to another Rollout now; "
                    "left in place"
                )
                return
            scheduler.io.records.delete()


def _fail_fast_on_a_known_failure(
    scheduler: Scheduler, gate: GateInputs, props: Mapping[str, Any]
) -> None:
    """A template whose release failed is not analysed again (unless `retryFailed`); whatever
    a killed rollback left on the canary still goes back to rest first."""
    record = scheduler.io.records.load()
    if record is None or not record.failed_verdict(gate.revision) or props.get("retryFailed"):
        return
    scheduler.settle("before failing fast")
    raise ReleaseFailed(
        f"{gate.what} already failed: {record.reason}; set retryFailed to analyse it again"
    )


def released(
    scheduler: Scheduler,
    gate: GateInputs,
    props: Mapping[str, Any],
    rollout_id: str,
    *,
    created: bool,
) -> Generator[float, None, dict[str, Any]]:
    """What a Rollout's create (`created`) or its update to a new template does, as the
    generator of the waits between its ticks: a Rollout drives it alone, a wave of a group
    runs it beside its other canaries'. Returns the outputs; raises as the Rollout fails."""
    _verify_cluster(scheduler, props)
    _fail_fast_on_a_known_failure(scheduler, gate, props)
    if created:
        if not _primary_runs_another_template(scheduler, gate):
            first = ReleaseRecord(
                gate.revision, RecordPhase.SUCCEEDED, settled=True, gate=rollout_id
            )
            scheduler.io.records.load()
            scheduler.io.records.save(first)
            print_progress(
                f"{gate.release.name}: initial release {gate.revision} promoted without analysis"
            )
            return outputs(
                props,
                phase=str(RecordPhase.SUCCEEDED),
                promotion=INITIAL_PROMOTION,
                promoted=gate.template,
                promoted_configs=gate.configs,
                history=[],
                rollout_id=rollout_id,
            )
        print_progress(
            f"{gate.release.name}: {gate.release.primary} already runs another template; "
            f"analysing {images_of(gate.template)} before it takes over"
        )
    report = yield from scheduler.run()
    return _analysed(scheduler, gate, props, rollout_id, report)


def _analysed(
    scheduler: Scheduler,
    gate: GateInputs,
    props: Mapping[str, Any],
    rollout_id: str,
    report: ReleaseReport,
) -> dict[str, Any]:
    """The outputs of a promoted analysis; raises ReleaseFailed, with the checks, if not."""
    history = scheduler.lines[-HISTORY_OUTPUT_LINES:]
    if not report.promoted:
        left = f"; {report.cleanup}" if report.cleanup else ""
        raise ReleaseFailed(
            f"{gate.what} rolled back, the primary is unchanged: "
            f"{report.reason or 'the analysis failed'} ({report.failed_checks} failed checks); "
            f"checks: {report.checks_line() or 'none'}{left}"
        )
    return outputs(
        props,
        phase=str(RecordPhase.PROMOTING),
        promotion=uuid.uuid4().hex[:16],
        promoted=gate.template,
        promoted_configs=gate.configs,
        history=history,
        rollout_id=rollout_id,
    )


def _primary_runs_another_template(scheduler: Scheduler, gate: GateInputs) -> bool:
    """Whether a primary Deployment exists and runs other than what the release declares."""
    try:
        running = scheduler.io.cluster.pod_template(gate.release.primary)
    except ClusterError as error:
        if error.code == 404:
            return False
        raise
    declared = primary_deployment(
        gate.release, gate.template, None, configs=checksums(gate.configs)
    )["spec"]["template"]
    return not declared_in(declared, running)


def declared_in(declared: Any, live: Any) -> bool:
    """Whether everything `declared` sets is so in `live` (which the API server filled with
    defaults): the same template, as far as a declaration can say."""
    if isinstance(declared, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and declared_in(value, live[key]) for key, value in declared.items()
        )
    if isinstance(declared, (list, tuple)):
        return (
            isinstance(live, (list, tuple))
            and len(declared) == len(live)
            and all(declared_in(item, other) for item, other in zip(declared, live, strict=True))
        )
    return bool(integral(declared) == integral(live))


def _verify_cluster(scheduler: Scheduler, props: Mapping[str, Any]) -> None:
    """Refuses to move traffic on a cluster other than the one the stack declared the release
    on: the gate has its own credentials, which can point elsewhere than the stack's provider.
    Uids unknown (a preview, echo mocks) are not checked."""
    declared = props.get("declaredUids")
    if not isinstance(declared, Mapping):
        return
    for key, uid in declared.items():
        if not uid or isinstance(uid, Unknown):
            continue
        kind, _, name = str(key).partition("/")
        live = scheduler.io.cluster.uid_of(kind, name)
        if live != uid:
            raise ClusterMismatch(
                f"{scheduler.name}: the gate reaches {access_of(props).server()}, where {kind} "
                f"{scheduler.release.namespace}/{name} has uid "
                f"{live or 'none (it does not exist)'}, but the stack's Kubernetes provider "
                f"declared it with uid {uid}: give the gate that cluster's credentials "
                "(GateOptions.kubeconfig and context)"
            )


def _print_notes(gate: GateInputs) -> None:
    for note in gate.release.notes:
        print_progress(f"{gate.release.name}: note: {note}")


def _inputs_changed(olds: Mapping[str, Any], news: Mapping[str, Any], keys: Sequence[str]) -> bool:
    return any(
        has_unknown(news.get(key)) or integral(news.get(key)) != integral(olds.get(key))
        for key in keys
    )


class GuardProvider(dyn.ResourceProvider):
    """Runs before the canary Deployment, or a config it reads, takes a new revision, and takes
    any traffic an earlier release left on the canary (interrupted, or promoted without
    finishing) back to the primary: the new revision never serves users before its analysis
    routes them to it.
    """

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        """Changed for a new revision (or one unknown yet), or a changed `STATE_KEYS`."""
        revision = revision_of(news)
        changed = revision is None or revision != revision_of(olds)
        return dyn.DiffResult(
            changes=changed or _inputs_changed(olds, news, STATE_KEYS), replaces=[]
        )

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        """Also on create: a stack adopting a canary that already carries traffic."""
        gate = GateInputs.of(props)
        self._clear_way(gate, props)
        return dyn.CreateResult(record_id(gate.release), _echo(props, INPUT_KEYS))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        if revision_of(news) != revision_of(olds):
            self._clear_way(GateInputs.of(news), news)
        return dyn.UpdateResult(_echo(news, INPUT_KEYS))

    def _clear_way(self, gate: GateInputs, props: dict[str, Any]) -> None:
        with _scheduler(props, gate) as scheduler:
            _verify_cluster(scheduler, props)
            scheduler.settle("before the canary takes the new template")


# The finaliser acts on a new promotion once the primary (`primary`) has it.
FINALISER_KEYS = (*INPUT_KEYS, "promotion", "phase", "primary")
_FINALISER_TRIGGERS = ("promotion", "phase", "primary", *STATE_KEYS)


class FinaliserProvider(dyn.ResourceProvider):
    """After the primary runs the promoted template: traffic to it, canary to zero, hooks.

    Ordered after the primary Deployment by a dependency input (`primary`), so Pulumi has
    already applied and awaited the promotion when this runs. It acts once per promotion (the
    Rollout's `promotion` output); a rerun after a failed or interrupted finalise acts again,
    as its state did not move on.
    """

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        return dyn.DiffResult(changes=_inputs_changed(olds, news, _FINALISER_TRIGGERS), replaces=[])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        outs = self._finalise(None, props)
        return dyn.CreateResult(record_id(GateInputs.of(props).release), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(self._finalise(olds, news))

    def _finalise(self, olds: dict[str, Any] | None, news: dict[str, Any]) -> dict[str, Any]:
        outs = _echo(news, FINALISER_KEYS)
        fresh = olds is None or olds.get("promotion") != news.get("promotion")
        if not fresh or news.get("phase") != RecordPhase.PROMOTING:
            return outs
        gate = GateInputs.of(news)
        with _scheduler(news, gate) as scheduler:
            _verify_cluster(scheduler, news)
            scheduler.finalise()
        print_progress(f"{gate.release.name}: promotion {news.get('promotion')} finalised")
        return outs


def _echo(props: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {key: props.get(key) for key in keys}


# -- the resources --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseInputs:
    """The manifests of one release, camelCase as in Flagger's YAML; any part may be an Input."""

    canary: pulumi.Input[Mapping[str, Any]]
    deployment: pulumi.Input[Mapping[str, Any]]
    """The target Deployment; its `spec.template` is what gets released."""
    metric_templates: Sequence[pulumi.Input[Mapping[str, Any]]] = ()
    alert_providers: Sequence[pulumi.Input[Mapping[str, Any]]] = ()
    """Kept secret in state: an inline address is a credential (a Slack webhook URL)."""
    autoscaler: pulumi.Input[Mapping[str, Any]] | None = None
    judge: pulumi.Input[Mapping[str, Any]] | None = None
    """The statistical judge's `Judge` document, beside the Canary so it stays Flagger's."""
    configs: Sequence[pulumi.Input[Mapping[str, Any]]] = ()
    """The ConfigMaps and Secrets the template references; kept secret in state, with the
    content the Rollout promotes, when a Secret is among them or a value may be a secret."""

    @property
    def secret_outputs(self) -> list[str]:
        """The outputs, besides the credentials, that state must keep secret: the configs and
        their promoted content, which the engine would not re-mark (no secret input of that
        name) when they hold a secret."""
        return ["configs", "promotedConfigs"] if _may_hold_secrets(list(self.configs)) else []

    def props(self) -> dict[str, Any]:
        template = pulumi.Output.from_input(self.deployment).apply(
            lambda deployment: deployment["spec"]["template"]
        )
        return {
            "canary": pulumi.Output.from_input(self.canary).apply(_secret_if_notifying_slack),
            "deployment": self.deployment,
            "podTemplate": template,
            "metricTemplates": _secret_if(list(self.metric_templates), _has_credentials),
            "alertProviders": _secret_if(list(self.alert_providers), bool),
            "autoscaler": self.autoscaler,
            "judge": self.judge,
            "configs": _secret_if(list(self.configs), _may_hold_secrets),
        }


@dataclass(frozen=True)
class GateOptions:
    """How the gate runs releases."""

    kubeconfig: pulumi.Input[str] | None = None
    """Kubeconfig text, kept secret. Without it: KUBECONFIG or ~/.kube/config, then in-cluster."""
    context: pulumi.Input[str] | None = None
    """A kubeconfig context other than the current one."""
    deadline_seconds: pulumi.Input[float] | None = None
    """Where a release gives up and rolls back; Pulumi ignores customTimeouts on dynamic
    resources. Default: the worst-case analysis time plus the progress deadline."""
    interval: pulumi.Input[str] | None = None
    """Overrides `analysis.interval`, e.g. `10s` for a fast pre-production stack."""
    retry_failed: pulumi.Input[bool] = False
    """Analyse again a pod template whose release already failed, instead of failing fast."""
    pushgateway: pulumi.Input[str] | None = None
    """A Prometheus Pushgateway that receives the release's metrics in Flagger's names, e.g.
    `http://prometheus-pushgateway.monitoring:9091` (in-cluster, through the API server)."""
    critical: pulumi.Input[str] | None = None
    """Critical conditions, watched between checks, that roll back at once when breached:
    `request-success-rate < 50, request-duration > 2000`, or `off`. Overrides the Canary's
    `canary.pulumi.com/critical` annotation; default `request-success-rate < 50`."""
    scrape_interval: pulumi.Input[str] | None = None
    """How often Prometheus scrapes the mesh: the watch runs each critical query once per
    scrape. Overrides `canary.pulumi.com/scrape-interval`; default 15s, as Istio's."""
    event_webhook: pulumi.Input[str] | None = None
    """Flagger's `-event-webhook`: a URL that gets every event of a canary without
    `type: event` webhooks of its own."""

    def props(self) -> dict[str, Any]:
        return {
            "kubeconfig": _secret_if(self.kubeconfig, lambda value: value is not None),
            "context": self.context,
            "deadlineSeconds": self.deadline_seconds,
            "interval": self.interval,
            "retryFailed": self.retry_failed,
            "pushgateway": self.pushgateway,
            "critical": self.critical,
            "scrapeInterval": self.scrape_interval,
            "eventWebhook": self.event_webhook,
        }


def _has_credentials(templates: list[Any]) -> bool:
    """Whether a metric template carries inline credentials (else its queries stay readable)."""
    return any(
        not isinstance(template, Mapping) or template.get("credentials") is not None
        for template in templates
    )


def _secret_if_notifying_slack(canary: Any) -> Any:
    """Secret when a webhook notifies Slack, as its URL is a credential; otherwise the canary
    stays readable in previews. One that does not validate is kept secret to be safe."""
    try:
        notifies = bool(Canary.model_validate(canary).spec.analysis.slack_notifications)
    except ValidationError:
        notifies = True
    return pulumi.Output.secret(canary) if notifies else canary


def _may_hold_secrets(configs: list[Any]) -> bool:
    """Whether a config is a Secret, or holds an Input that may be secret (a stack config value
    read with `require_secret`): known only once resolved, so it counts as one."""
    return any(
        _holds_input(config) or not isinstance(config, Mapping) or config.get("kind") == SECRET
        for config in configs
    )


def _holds_input(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_holds_input(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_input(item) for item in value)
    return isinstance(value, pulumi.Output) or hasattr(value, "__await__")


def _secret_if(value: Any, predicate: Callable[[Any], bool]) -> Any:
    return pulumi.Output.secret(value) if predicate(value) else value


_SECRET_KEYS = ["kubeconfig", "alertProviders", "metricTemplates"]


def gate_props(
    release: ReleaseInputs, gate: GateOptions | None, declared: Declared | None
) -> dict[str, Any]:
    """The inputs every gate resource shares: the release's manifests, the gate's options and
    what the stack declared."""
    return {
        **release.props(),
        **(gate or GateOptions()).props(),
        **(declared or Declared()).props(),
    }


def _options(opts: pulumi.ResourceOptions | None, release: ReleaseInputs) -> pulumi.ResourceOptions:
    """Keeps credentials and secret configs secret in state even when a caller passed them as
    plain strings."""
    secret = [*_SECRET_KEYS, *release.secret_outputs]
    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(additional_secret_outputs=secret)
    )


@dataclass(frozen=True)
class Declared:
    """What the stack declared, for the gate to hold to: the uids its own Kubernetes provider
    saw on the release's objects (`"Deployment/podinfo": uid`), so the gate, with its own
    credentials, refuses any other cluster; and the plan line, known at preview."""

    uids: Mapping[str, pulumi.Input[str | None]] = field(default_factory=dict)
    plan: pulumi.Input[str] | None = None

    def props(self) -> dict[str, Any]:
        return {"declaredUids": dict(self.uids), "plan": self.plan}


# The engine's camelCase property names, by the Python attribute the SDK resolves them into.
_ATTRIBUTES = {
    "pod_template": "podTemplate",
    "promoted_template": "promotedTemplate",
    "promoted_configs": "promotedConfigs",
    "rollout_id": "rolloutId",
}


class Rollout(dyn.Resource, module="canary", name="Rollout"):
    """`pulumi-python:dynamic/canary:Rollout`, the gate: `pulumi up` blocks on the release.

    Declare the primary Deployment from `promoted_template`: the template last promoted, so
    Pulumi applies a promotion, a failed release leaves the primary as it was, and a preview
    shows the primary as possibly changing (unknown) while a release is pending, never as if
    the new template had already passed. The tracked configs' `-primary` copies are declared
    from `promoted_configs` alike (their content by Flagger's key, secret in state when a
    Secret is among them).
    """

    pod_template: pulumi.Output[dict[str, Any]]
    promoted_template: pulumi.Output[dict[str, Any]]
    promoted_configs: pulumi.Output[dict[str, dict[str, Any]]]
    revision: pulumi.Output[str]
    phase: pulumi.Output[str]
    promotion: pulumi.Output[str]
    plan: pulumi.Output[str]
    history: pulumi.Output[list[str]]
    rollout_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        release: ReleaseInputs,
        gate: GateOptions | None = None,
        declared: Declared | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            RolloutProvider(), name, self._inputs(release, gate, declared), _options(opts, release)
        )

    @staticmethod
    def _inputs(
        release: ReleaseInputs, gate: GateOptions | None, declared: Declared | None
    ) -> dict[str, Any]:
        props = gate_props(release, gate, declared)
        # Keyed by attribute name: the SDK makes one Output attribute per key, then translates
        # the names to the engine's spelling. The rest are placeholders for the outputs.
        props.update(dict.fromkeys(OUTPUT_KEYS))
        by_attribute = {value: key for key, value in _ATTRIBUTES.items()}
        return {by_attribute.get(key, key): value for key, value in props.items()}

    def translate_output_property(self, prop: str) -> str:
        return {value: key for key, value in _ATTRIBUTES.items()}.get(prop, prop)

    def translate_input_property(self, prop: str) -> str:
        return _ATTRIBUTES.get(prop, prop)


class ReleaseGuard(dyn.Resource, module="canary", name="ReleaseGuard"):
    """Clears the canary's traffic before the canary Deployment is given a new template."""

    def __init__(
        self,
        name: str,
        release: ReleaseInputs,
        gate: GateOptions | None = None,
        declared: Declared | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = gate_props(release, gate, declared)
        super().__init__(GuardProvider(), name, props, _options(opts, release))


class RolloutFinaliser(dyn.Resource, module="canary", name="RolloutFinaliser"):
    """Finishes a promoted release once the primary Deployment (`primary`) is up to date."""

    def __init__(
        self,
        name: str,
        release: ReleaseInputs,
        gate: GateOptions | None,
        declared: Declared | None = None,
        *,
        promotion: pulumi.Input[str],
        phase: pulumi.Input[str],
        primary: pulumi.Input[Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = gate_props(release, gate, declared)
        props.update(promotion=promotion, phase=phase, primary=primary)
        super().__init__(FinaliserProvider(), name, props, _options(opts, release))
