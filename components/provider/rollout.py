"""The Rollout dynamic resource: `pulumi up` blocks on the release and fails when it fails.

The providers here are pickled by reference into Pulumi state (`__provider`), so they hold no
fields at all, build every client inside the method that needs it, and this module does
nothing on import. `check` and `diff` run at preview and must stay pure: no network, and
`pulumi.output.Unknown` values tolerated anywhere in the inputs.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic as dyn
from pulumi.output import Unknown

from ..adapters.bundle import Adapters
from ..adapters.kube import Connections, KubeAccess
from ..adapters.records import RecordPhase, ReleaseRecord
from ..adapters.stop import stop_on_shutdown
from ..analysis import images_of, plan, review
from ..errors import ReleaseFailed
from ..scheduler import SYSTEM_CLOCK, Clock, Scheduler, print_progress
from ..spec import ReleaseSpec, SpecError, integral, template_revision
from ..spec.timing import Timing

# The inputs that make up the release spec, in the engine's camelCase spelling.
SPEC_KEYS = ("canary", "deployment", "metricTemplates", "alertProviders", "autoscaler")
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
)
# Outputs a Rollout adds to its inputs. None of them is derived from `kubeconfig`: the engine
# re-marks as secret only outputs whose key matches a secret input.
OUTPUT_KEYS = ("revision", "phase", "promotion", "plan")
# The promotion of a Rollout's first release, which needs no finalising.
INITIAL_PROMOTION = "initial"


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


@dataclass(frozen=True)
class GateInputs:
    """The Rollout's inputs, validated once: the release, its timing and its revision."""

    release: ReleaseSpec
    timing: Timing
    template: Mapping[str, Any]
    revision: str

    @classmethod
    def of(cls, props: Mapping[str, Any]) -> GateInputs:
        """Raises SpecError naming every bad field, the gate's own options included."""
        interval, deadline = props.get("interval") or None, props.get("deadlineSeconds")
        problems = Timing.problems(interval=interval, deadline_seconds=deadline)
        try:
            release = ReleaseSpec.parse(
                canary=integral(props.get("canary") or {}),
                deployment=integral(props.get("deployment") or {}),
                metric_templates=integral(props.get("metricTemplates") or []),
                alert_providers=integral(props.get("alertProviders") or []),
                autoscaler=integral(props["autoscaler"]) if props.get("autoscaler") else None,
            )
        except SpecError as error:
            problems += error.problems
        if problems:
            raise SpecError(problems)
        timing = Timing.of(release.spec.analysis, interval=interval, deadline_seconds=deadline)
        template = integral(pod_template(props))
        return cls(release, timing, template, template_revision(template))

    @property
    def what(self) -> str:
        """`podinfo: release of ghcr.io/...:6.3.1 (3f2a...)`, to begin messages with."""
        return f"{self.release.name}: release of {images_of(self.template)} ({self.revision})"


def _option_problems(props: Mapping[str, Any]) -> list[dyn.CheckFailure]:
    """The provider's own inputs that `GateInputs` does not validate; unknown ones are
    checked at `pulumi up`, not preview."""
    failures = []
    retry = props.get("retryFailed")
    if retry is not None and not isinstance(retry, (bool, Unknown)):
        failures.append(dyn.CheckFailure("retryFailed", f"must be true or false, not {retry!r}"))
    for key in ("kubeconfig", "context", "pushgateway"):
        value = props.get(key)
        if value is not None and not isinstance(value, (str, Unknown)):
            # Never echo the value: kubeconfig is a secret.
            failures.append(dyn.CheckFailure(key, "must be a string"))
    template = props.get("podTemplate")
    if template is not None and not isinstance(template, (Mapping, Unknown)):
        failures.append(dyn.CheckFailure("podTemplate", "must be a pod template object"))
    return failures


def outputs(props: Mapping[str, Any], *, phase: str, promotion: str) -> dict[str, Any]:
    """The inputs (kubeconfig under its own key only) plus the revision, phase, promotion and
    plan. `promotion` identifies one promotion, so the finaliser acts once for each, even for
    a template promoted before."""
    gate = GateInputs.of(props)
    outs = {key: props.get(key) for key in INPUT_KEYS}
    outs["retryFailed"] = bool(props.get("retryFailed") or False)
    outs.update(
        podTemplate=dict(gate.template),
        revision=gate.revision,
        phase=phase,
        promotion=promotion,
        plan=plan(gate.release.spec, gate.timing).describe(),
    )
    return outs


def record_id(release: ReleaseSpec) -> str:
    return f"{release.namespace}/{release.name}"


# -- I/O, built per call ------------------------------------------------------------------------


def access_of(props: Mapping[str, Any]) -> KubeAccess:
    return KubeAccess(kubeconfig=props.get("kubeconfig") or None, context=props.get("context"))


# The clock of every release this process runs; tests replace it with a fake one.
CLOCK: Clock = SYSTEM_CLOCK


@contextlib.contextmanager
def _adapters(props: Mapping[str, Any], gate: GateInputs, clock: Clock) -> Iterator[Adapters]:
    """The release's adapters over fresh clients, closed after. The one seam tests replace."""
    with Connections(access_of(props)) as connections:
        yield Adapters.connect(
            connections,
            gate.release,
            revision=gate.revision,
            now=clock.now,
            pushgateway=props.get("pushgateway") or None,
        )


@contextlib.contextmanager
def _scheduler(props: Mapping[str, Any], gate: GateInputs) -> Iterator[Scheduler]:
    stop_on_shutdown()
    clock = CLOCK
    with _adapters(props, gate, clock) as adapters:
        yield Scheduler(
            gate.release, adapters, revision=gate.revision, timing=gate.timing, clock=clock
        )


# -- the providers --------------------------------------------------------------------------


class RolloutProvider(dyn.ResourceProvider):
    """Gates `pulumi up`: create promotes at once, update runs the analysis to its end.

    No fields: the instance is pickled into state, and clients (with credentials) must not be.
    """

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        """Validates the spec without the network; parts unknown at preview are skipped."""
        failures = _option_problems(news)
        if not any(
            has_unknown(news.get(key)) for key in (*SPEC_KEYS, "interval", "deadlineSeconds")
        ):
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
        """A new pod template is a release, reviewed in one line; other inputs rewrite state."""
        template = pod_template(news)
        if has_unknown(template):
            return dyn.DiffResult(changes=True, replaces=[])
        if template_revision(template) != olds.get("revision"):
            if not any(
                has_unknown(news.get(key)) for key in (*SPEC_KEYS, "interval", "deadlineSeconds")
            ):
                gate = GateInputs.of(news)
                print_progress(
                    review(
                        gate.release.name,
                        gate.release.spec.analysis,
                        plan(gate.release.spec, gate.timing),
                        integral(pod_template(olds)),
                        gate.template,
                    )
                )
                _print_notes(gate)
            return dyn.DiffResult(changes=True, replaces=[])
        changed = any(
            has_unknown(news.get(key)) or integral(news.get(key)) != integral(olds.get(key))
            for key in INPUT_KEYS
            if key != "retryFailed"
        ) or bool(news.get("retryFailed")) != bool(olds.get("retryFailed"))
        return dyn.DiffResult(changes=changed, replaces=[])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        """The initial release promotes without analysis, as Flagger initialises."""
        gate = GateInputs.of(props)
        with _scheduler(props, gate) as scheduler:
            scheduler.io.records.load()
            scheduler.io.records.save(
                ReleaseRecord(gate.revision, RecordPhase.SUCCEEDED, settled=True)
            )
        print_progress(
            f"{gate.release.name}: initial release {gate.revision} promoted without analysis"
        )
        outs = outputs(props, phase=str(RecordPhase.SUCCEEDED), promotion=INITIAL_PROMOTION)
        return dyn.CreateResult(record_id(gate.release), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        """Runs the analysis of a new template; raises, with the reason, when it fails."""
        gate = GateInputs.of(news)
        if gate.revision == olds.get("revision"):
            phase = str(olds.get("phase") or RecordPhase.SUCCEEDED)
            promotion = str(olds.get("promotion") or INITIAL_PROMOTION)
            return dyn.UpdateResult(outputs(news, phase=phase, promotion=promotion))
        with _scheduler(news, gate) as scheduler:
            record = scheduler.io.records.load()
            if (
                record is not None
                and record.failed_verdict(gate.revision)
                and not news.get("retryFailed")
            ):
                scheduler.settle("before failing fast")
                raise ReleaseFailed(
                    f"{gate.what} already failed: {record.reason}; "
                    "set retryFailed to analyse it again"
                )
            report = scheduler.analyse()
        if not report.promoted:
            left = f"; {report.cleanup}" if report.cleanup else ""
            raise ReleaseFailed(
                f"{gate.what} rolled back, the primary is unchanged: "
                f"{report.reason or 'the analysis failed'} ({report.failed_checks} failed checks)"
                f"{left}"
            )
        promotion = uuid.uuid4().hex[:16]
        return dyn.UpdateResult(
            outputs(news, phase=str(RecordPhase.PROMOTING), promotion=promotion)
        )

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Removes the release record; one already gone is fine."""
        gate = GateInputs.of(props)
        with _scheduler(props, gate) as scheduler:
            scheduler.io.records.delete()


def _print_notes(gate: GateInputs) -> None:
    for note in gate.release.notes:
        print_progress(f"{gate.release.name}: note: {note}")


def _inputs_changed(olds: Mapping[str, Any], news: Mapping[str, Any], keys: Sequence[str]) -> bool:
    return any(
        has_unknown(news.get(key)) or integral(news.get(key)) != integral(olds.get(key))
        for key in keys
    )


class GuardProvider(dyn.ResourceProvider):
    """Runs before the canary Deployment takes a new template, and takes any traffic an
    earlier release left on the canary (interrupted, or promoted without finishing) back to
    the primary: the new template never serves users before its analysis routes them to it.
    """

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        return dyn.DiffResult(changes=_inputs_changed(olds, news, INPUT_KEYS), replaces=[])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        """Also on create: a stack adopting a canary that already carries traffic."""
        gate = GateInputs.of(props)
        self._clear_way(gate, props)
        return dyn.CreateResult(record_id(gate.release), _echo(props, INPUT_KEYS))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        if template_revision(pod_template(news)) != template_revision(pod_template(olds)):
            self._clear_way(GateInputs.of(news), news)
        return dyn.UpdateResult(_echo(news, INPUT_KEYS))

    def _clear_way(self, gate: GateInputs, props: dict[str, Any]) -> None:
        with _scheduler(props, gate) as scheduler:
            scheduler.settle("before the canary takes the new template")


FINALISER_KEYS = (*INPUT_KEYS, "promotion", "phase", "primary")


class FinaliserProvider(dyn.ResourceProvider):
    """After the primary runs the promoted template: traffic to it, canary to zero, hooks.

    Ordered after the primary Deployment by a dependency input (`primary`), so Pulumi has
    already applied and awaited the promotion when this runs. It acts once per promotion (the
    Rollout's `promotion` output); a rerun after a failed or interrupted finalise acts again,
    as its state did not move on.
    """

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        return dyn.DiffResult(changes=_inputs_changed(olds, news, FINALISER_KEYS), replaces=[])

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

    def props(self) -> dict[str, Any]:
        template = pulumi.Output.from_input(self.deployment).apply(
            lambda deployment: deployment["spec"]["template"]
        )
        return {
            "canary": self.canary,
            "deployment": self.deployment,
            "podTemplate": template,
            "metricTemplates": _secret_if(list(self.metric_templates), _has_credentials),
            "alertProviders": _secret_if(list(self.alert_providers), bool),
            "autoscaler": self.autoscaler,
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

    def props(self) -> dict[str, Any]:
        return {
            "kubeconfig": _secret_if(self.kubeconfig, lambda value: value is not None),
            "context": self.context,
            "deadlineSeconds": self.deadline_seconds,
            "interval": self.interval,
            "retryFailed": self.retry_failed,
            "pushgateway": self.pushgateway,
        }


def _has_credentials(templates: list[Any]) -> bool:
    """Whether a metric template carries inline credentials (else its queries stay readable)."""
    return any(
        not isinstance(template, Mapping) or template.get("credentials") is not None
        for template in templates
    )


def _secret_if(value: Any, predicate: Callable[[Any], bool]) -> Any:
    return pulumi.Output.secret(value) if predicate(value) else value


_SECRET_KEYS = ["kubeconfig", "alertProviders", "metricTemplates"]


def _props(release: ReleaseInputs, gate: GateOptions | None) -> dict[str, Any]:
    """The inputs every gate resource shares: the release's manifests and the gate's options."""
    return {**release.props(), **(gate or GateOptions()).props()}


def _options(opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """Keeps credentials secret in state even when a caller passed them as plain strings."""
    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(additional_secret_outputs=_SECRET_KEYS)
    )


class Rollout(dyn.Resource, module="canary", name="Rollout"):
    """`pulumi-python:dynamic/canary:Rollout`, the gate: `pulumi up` blocks on the release.

    Declare the primary Deployment from `pod_template`: it is the template last promoted, so
    Pulumi applies a promotion, and a failed release leaves the primary as it was.
    """

    pod_template: pulumi.Output[dict[str, Any]]
    revision: pulumi.Output[str]
    phase: pulumi.Output[str]
    promotion: pulumi.Output[str]
    plan: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        release: ReleaseInputs,
        gate: GateOptions | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = _props(release, gate)
        # Keyed by attribute name: the SDK makes one Output attribute per key, then translates
        # the names to the engine's spelling. The rest are placeholders for the outputs.
        props["pod_template"] = props.pop("podTemplate")
        props.update(dict.fromkeys(OUTPUT_KEYS))
        super().__init__(RolloutProvider(), name, props, _options(opts))

    def translate_output_property(self, prop: str) -> str:
        """`podTemplate` from the engine resolves the `pod_template` attribute."""
        return "pod_template" if prop == "podTemplate" else prop

    def translate_input_property(self, prop: str) -> str:
        return "podTemplate" if prop == "pod_template" else prop


class ReleaseGuard(dyn.Resource, module="canary", name="ReleaseGuard"):
    """Clears the canary's traffic before the canary Deployment is given a new template."""

    def __init__(
        self,
        name: str,
        release: ReleaseInputs,
        gate: GateOptions | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = _props(release, gate)
        super().__init__(GuardProvider(), name, props, _options(opts))


class RolloutFinaliser(dyn.Resource, module="canary", name="RolloutFinaliser"):
    """Finishes a promoted release once the primary Deployment (`primary`) is up to date."""

    def __init__(
        self,
        name: str,
        release: ReleaseInputs,
        gate: GateOptions | None,
        *,
        promotion: pulumi.Input[str],
        phase: pulumi.Input[str],
        primary: pulumi.Input[Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = _props(release, gate)
        props.update(promotion=promotion, phase=phase, primary=primary)
        super().__init__(FinaliserProvider(), name, props, _options(opts))
