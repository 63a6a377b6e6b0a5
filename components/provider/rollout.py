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

from ..adapters.kube import KubeAccess
from ..analysis.engine import Phase
from ..analysis.plan import images_of, plan, review
from ..scheduler import Adapters, Scheduler, print_progress
from ..spec import ReleaseSpec, SpecError, integral, parse_seconds, template_revision

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
)
# Outputs a Rollout adds to its inputs. None of them is derived from `kubeconfig`: the engine
# re-marks as secret only outputs whose key matches a secret input.
OUTPUT_KEYS = ("revision", "phase", "promotion", "plan")
# The promotion of a Rollout's first release, which needs no finalising.
INITIAL_PROMOTION = "initial"


class RolloutFailed(Exception):  # noqa: N818 (reads as a sentence in `pulumi up` output)
    """A release that was rolled back, or one already known to fail; the message says why."""


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


def release_of(props: Mapping[str, Any]) -> ReleaseSpec:
    """The validated release; raises SpecError naming every bad field."""
    return ReleaseSpec.parse(
        canary=integral(props.get("canary") or {}),
        deployment=integral(props.get("deployment") or {}),
        metric_templates=integral(props.get("metricTemplates") or []),
        alert_providers=integral(props.get("alertProviders") or []),
        autoscaler=integral(props["autoscaler"]) if props.get("autoscaler") else None,
    )


def interval_of(props: Mapping[str, Any]) -> float | None:
    """The `interval` override in seconds, None when the analysis interval applies."""
    interval = props.get("interval")
    return parse_seconds(interval) if interval else None


def _option_problems(props: Mapping[str, Any]) -> list[dyn.CheckFailure]:
    """The provider's own inputs; unknown ones are checked at `pulumi up`, not preview."""
    failures = []
    deadline = props.get("deadlineSeconds")
    if (
        deadline is not None
        and not isinstance(deadline, Unknown)
        and (isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or deadline <= 0)
    ):
        failures.append(
            dyn.CheckFailure("deadlineSeconds", f"must be a positive number, not {deadline!r}")
        )
    interval = props.get("interval")
    if interval is not None and not isinstance(interval, Unknown):
        try:
            if parse_seconds(interval) <= 0:
                failures.append(dyn.CheckFailure("interval", f"must be positive, not {interval!r}"))
        except (SpecError, ValueError, TypeError) as error:
            failures.append(dyn.CheckFailure("interval", f"not a duration: {error}"))
    retry = props.get("retryFailed")
    if retry is not None and not isinstance(retry, (bool, Unknown)):
        failures.append(dyn.CheckFailure("retryFailed", f"must be true or false, not {retry!r}"))
    for key in ("kubeconfig", "context"):
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
    template = integral(pod_template(props))
    outs = {key: props.get(key) for key in INPUT_KEYS}
    outs["retryFailed"] = bool(props.get("retryFailed") or False)
    outs.update(
        podTemplate=template,
        revision=template_revision(template),
        phase=phase,
        promotion=promotion,
        plan=plan(release_of(props).spec.analysis, interval_of(props)).describe(),
    )
    return outs


def record_id(release: ReleaseSpec) -> str:
    return f"{release.namespace}/{release.name}"


# -- I/O, built per call ------------------------------------------------------------------------


def access_of(props: Mapping[str, Any]) -> KubeAccess:
    return KubeAccess(kubeconfig=props.get("kubeconfig") or None, context=props.get("context"))


@contextlib.contextmanager
def _connect(props: Mapping[str, Any], release: ReleaseSpec) -> Iterator[Adapters]:
    """Every client a release needs, closed after. The one seam tests replace."""
    with Adapters.connect(access_of(props), release) as adapters:
        yield adapters


def _scheduler(release: ReleaseSpec, adapters: Adapters, props: Mapping[str, Any]) -> Scheduler:
    deadline = props.get("deadlineSeconds")
    return Scheduler(
        release,
        adapters,
        revision=template_revision(pod_template(props)),
        interval=props.get("interval") or None,
        deadline_seconds=float(deadline) if deadline else None,
    )


def _mark_failed(adapters: Adapters, revision: str, reason: str) -> None:
    """Makes sure the record says Failed, for this revision, with the reason a rerun reports."""
    record, version = adapters.cluster.load_record()
    wanted = {
        **(record or {}),
        "phase": str(Phase.FAILED),
        "revision": revision,
        "reason": reason,
        "retryable": False,
    }
    if record != wanted:
        adapters.cluster.save_record(wanted, version)


# -- the providers --------------------------------------------------------------------------


class RolloutProvider(dyn.ResourceProvider):
    """Gates `pulumi up`: create promotes at once, update runs the analysis to its end.

    No fields: the instance is pickled into state, and clients (with credentials) must not be.
    """

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        """Validates the spec without the network; parts unknown at preview are skipped."""
        failures = _option_problems(news)
        if not any(has_unknown(news.get(key)) for key in SPEC_KEYS):
            try:
                release = release_of(news)
            except SpecError as error:
                failures += [dyn.CheckFailure(p.path, str(p)) for p in error.problems]
            else:
                template = pod_template(news)
                if not olds and not failures and not has_unknown(template):
                    print_progress(
                        review(release.name, release.spec.analysis, None, integral(template))
                    )
        return dyn.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        """A new pod template is a release, reviewed in one line; other inputs rewrite state."""
        template = pod_template(news)
        if has_unknown(template):
            return dyn.DiffResult(changes=True, replaces=[])
        if template_revision(template) != olds.get("revision"):
            if not any(has_unknown(news.get(key)) for key in (*SPEC_KEYS, "interval")):
                release = release_of(news)
                print_progress(
                    review(
                        release.name,
                        release.spec.analysis,
                        integral(pod_template(olds)),
                        integral(template),
                        interval_of(news),
                    )
                )
            return dyn.DiffResult(changes=True, replaces=[])
        changed = any(
            has_unknown(news.get(key)) or integral(news.get(key)) != integral(olds.get(key))
            for key in INPUT_KEYS
            if key != "retryFailed"
        ) or bool(news.get("retryFailed")) != bool(olds.get("retryFailed"))
        return dyn.DiffResult(changes=changed, replaces=[])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        """The initial release promotes without analysis, as Flagger initialises."""
        release = release_of(props)
        revision = template_revision(pod_template(props))
        with _connect(props, release) as adapters:
            _, version = adapters.cluster.load_record()
            adapters.cluster.save_record(
                {"phase": str(Phase.SUCCEEDED), "revision": revision, "reason": None}, version
            )
        print_progress(f"{release.name}: initial release {revision} promoted without analysis")
        outs = outputs(props, phase=str(Phase.SUCCEEDED), promotion=INITIAL_PROMOTION)
        return dyn.CreateResult(record_id(release), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        """Runs the analysis of a new template; raises, with the reason, when it fails."""
        revision = template_revision(pod_template(news))
        if revision == olds.get("revision"):
            phase = str(olds.get("phase") or Phase.SUCCEEDED)
            promotion = str(olds.get("promotion") or INITIAL_PROMOTION)
            return dyn.UpdateResult(outputs(news, phase=phase, promotion=promotion))
        release = release_of(news)
        what = f"{release.name}: release of {images_of(pod_template(news))} ({revision})"
        with _connect(news, release) as adapters:
            record, _ = adapters.cluster.load_record()
            if (
                record
                and record.get("phase") == Phase.FAILED
                and record.get("revision") == revision
                and not record.get("retryable")
                and not news.get("retryFailed")
            ):
                raise RolloutFailed(
                    f"{what} already failed: {record.get('reason')}; "
                    "set retryFailed to analyse it again"
                )
            report = _scheduler(release, adapters, news).analyse()
            if report.outcome != "promoted":
                reason = report.reason or "the analysis failed"
                _mark_failed(adapters, revision, reason)
                raise RolloutFailed(
                    f"{what} rolled back, the primary is unchanged: {reason} "
                    f"({report.failed_checks} failed checks)"
                )
        promotion = uuid.uuid4().hex[:16]
        return dyn.UpdateResult(outputs(news, phase=str(Phase.PROMOTING), promotion=promotion))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Removes the release record; one already gone is fine."""
        release = release_of(props)
        with _connect(props, release) as adapters:
            adapters.cluster.delete_record()


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
        release = release_of(props)
        self._clear_way(release, props)
        return dyn.CreateResult(record_id(release), _echo(props, INPUT_KEYS))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        if template_revision(pod_template(news)) != template_revision(pod_template(olds)):
            self._clear_way(release_of(news), news)
        return dyn.UpdateResult(_echo(news, INPUT_KEYS))

    def _clear_way(self, release: ReleaseSpec, props: dict[str, Any]) -> None:
        with _connect(props, release) as adapters:
            _scheduler(release, adapters, props).clear_way()


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
        return dyn.CreateResult(record_id(release_of(props)), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(self._finalise(olds, news))

    def _finalise(self, olds: dict[str, Any] | None, news: dict[str, Any]) -> dict[str, Any]:
        outs = _echo(news, FINALISER_KEYS)
        fresh = olds is None or olds.get("promotion") != news.get("promotion")
        if not fresh or news.get("phase") != Phase.PROMOTING:
            return outs
        release = release_of(news)
        with _connect(news, release) as adapters:
            _scheduler(release, adapters, news).finalise()
        print_progress(f"{release.name}: promotion {news.get('promotion')} finalised")
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

    def props(self) -> dict[str, Any]:
        return {
            "kubeconfig": _secret_if(self.kubeconfig, lambda value: value is not None),
            "context": self.context,
            "deadlineSeconds": self.deadline_seconds,
            "interval": self.interval,
            "retryFailed": self.retry_failed,
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
