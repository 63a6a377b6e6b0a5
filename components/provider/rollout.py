"""The Rollout dynamic resource: `pulumi up` blocks on the release and fails when it fails.

The providers here are pickled by reference into Pulumi state (`__provider`), so they hold no
fields at all, build every client inside the method that needs it, and this module does
nothing on import. `check` and `diff` run at preview and must stay pure: no network, and
`pulumi.output.Unknown` values tolerated anywhere in the inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic as dyn
from pulumi.output import Unknown

from ..adapters.alerts import Notifier
from ..adapters.cluster import Cluster
from ..adapters.endpoints import Endpoints
from ..adapters.kube import KubeAccess
from ..adapters.prometheus import DEFAULT_ADDRESS, PrometheusClient
from ..adapters.webhooks import WebhookCaller
from ..analysis.engine import Phase
from ..analysis.plan import plan
from ..scheduler import Adapters, Scheduler
from ..spec import ReleaseSpec, SpecError, parse_seconds

# The inputs that make up the release spec, in the engine's camelCase spelling.
SPEC_KEYS = ("canary", "deployment", "metricTemplates", "alertProviders", "autoscaler")
# Every input the provider reads; `__provider` is the engine's and never compared.
INPUT_KEYS = (
    *SPEC_KEYS,
    "kubeconfig",
    "context",
    "deadlineSeconds",
    "interval",
    "retryFailed",
)
# Outputs a Rollout adds to its inputs. None of them is derived from `kubeconfig`: the engine
# re-marks as secret only outputs whose key matches a secret input.
OUTPUT_KEYS = ("podTemplate", "revision", "phase", "plan")


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


def plain(value: Any) -> Any:
    """Integral floats back to ints, recursively.

    The engine turns every number into a float (replicas 2 arrives as 2.0); without this the
    models would see floats and the same template would hash differently at create and diff.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def pod_template(props: Mapping[str, Any]) -> Any:
    """`deployment.spec.template`, possibly Unknown; {} when absent."""
    deployment = props.get("deployment")
    if isinstance(deployment, Unknown):
        return deployment
    spec = (deployment or {}).get("spec") if isinstance(deployment, Mapping) else None
    if isinstance(spec, Unknown):
        return spec
    template = (spec or {}).get("template") if isinstance(spec, Mapping) else None
    return {} if template is None else template


def revision_of(template: Any) -> str:
    """A stable hash of the pod template: sha256 of its canonical JSON, first 16 hex digits."""
    text = json.dumps(plain(template), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def release_of(props: Mapping[str, Any]) -> ReleaseSpec:
    """The validated release; raises SpecError naming every bad field."""
    return ReleaseSpec.parse(
        canary=plain(props.get("canary") or {}),
        deployment=plain(props.get("deployment") or {}),
        metric_templates=plain(props.get("metricTemplates") or []),
        alert_providers=plain(props.get("alertProviders") or []),
        autoscaler=plain(props["autoscaler"]) if props.get("autoscaler") else None,
    )


def _option_problems(props: Mapping[str, Any]) -> list[dyn.CheckFailure]:
    """The provider's own inputs; unknown ones are checked at `pulumi up`, not preview."""
    failures = []
    deadline = props.get("deadlineSeconds")
    if (
        deadline is not None
        and not isinstance(deadline, Unknown)
        and (isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or deadline <= 0)
    ):
        failures.append(dyn.CheckFailure("deadlineSeconds", "must be a positive number"))
    interval = props.get("interval")
    if interval is not None and not isinstance(interval, Unknown):
        try:
            parse_seconds(interval)
        except (SpecError, ValueError, TypeError) as error:
            failures.append(dyn.CheckFailure("interval", f"not a duration: {error}"))
    retry = props.get("retryFailed")
    if retry is not None and not isinstance(retry, (bool, Unknown)):
        failures.append(dyn.CheckFailure("retryFailed", "must be true or false"))
    for key in ("kubeconfig", "context"):
        value = props.get(key)
        if value is not None and not isinstance(value, (str, Unknown)):
            # Never echo the value: kubeconfig is a secret.
            failures.append(dyn.CheckFailure(key, "must be a string"))
    return failures


def outputs(props: Mapping[str, Any], *, phase: str, revision: str | None = None) -> dict[str, Any]:
    """The inputs (kubeconfig under its own key only) plus the promoted template and plan."""
    template = plain(pod_template(props))
    outs = {key: props.get(key) for key in INPUT_KEYS}
    outs["retryFailed"] = bool(props.get("retryFailed") or False)
    outs.update(
        podTemplate=template,
        revision=revision or revision_of(template),
        phase=phase,
        plan=plan(release_of(props).spec.analysis).describe(),
    )
    return outs


def record_id(release: ReleaseSpec) -> str:
    return f"{release.namespace}/{release.name}"


# -- I/O, built per call ------------------------------------------------------------------------


def access_of(props: Mapping[str, Any]) -> KubeAccess:
    return KubeAccess(kubeconfig=props.get("kubeconfig") or None, context=props.get("context"))


def _adapters(access: KubeAccess, release: ReleaseSpec) -> Adapters:
    """Every client a release needs. The one seam tests replace (monkeypatch this name)."""
    cluster = Cluster(access, release)
    endpoints = Endpoints(api=access.http, default_namespace=release.namespace)
    return Adapters(
        cluster=cluster,
        prometheus=PrometheusClient(
            endpoints,
            release.spec.metrics_server or DEFAULT_ADDRESS,
            secrets=cluster.read_secret,
        ),
        webhooks=WebhookCaller(endpoints),
        notifier=Notifier(endpoints, cluster.read_secret),
    )


def _close(adapters: Adapters) -> None:
    """Best effort: `Adapters` exposes no close of its own (the Endpoints' clients leak to GC)."""
    for part in (adapters.cluster, adapters.webhooks):
        close = getattr(part, "close", None)
        if callable(close):
            close()


def _scheduler(release: ReleaseSpec, adapters: Adapters, props: Mapping[str, Any]) -> Scheduler:
    deadline = props.get("deadlineSeconds")
    return Scheduler(
        release,
        adapters,
        revision=revision_of(pod_template(props)),
        interval=props.get("interval") or None,
        deadline_seconds=float(deadline) if deadline else None,
    )


def _mark_failed(cluster: Cluster, revision: str, reason: str) -> None:
    """Makes sure the record says Failed, for this revision, with the reason a rerun reports."""
    record, version = cluster.load_record()
    wanted = {**(record or {}), "phase": str(Phase.FAILED), "revision": revision, "reason": reason}
    if record != wanted:
        cluster.save_record(wanted, version)


# -- the providers --------------------------------------------------------------------------


class RolloutProvider(dyn.ResourceProvider):
    """Gates `pulumi up`: create promotes at once, update runs the analysis to its end.

    No fields: the instance is pickled into state, and clients (with credentials) must not be.
    """

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        """Validates the spec without the network; parts unknown at preview are skipped."""
        failures = _option_problems(news)
        if not any(has_unknown(news.get(key)) for key in SPEC_KEYS):
            try:
                release_of(news)
            except SpecError as error:
                failures += [dyn.CheckFailure(p.path, str(p)) for p in error.problems]
        return dyn.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        """A new pod template is a release; any other input change only rewrites state."""
        template = pod_template(news)
        if has_unknown(template):
            return dyn.DiffResult(changes=True, replaces=[])
        if revision_of(template) != olds.get("revision"):
            return dyn.DiffResult(changes=True, replaces=[])
        changed = any(
            has_unknown(news.get(key)) or plain(news.get(key)) != plain(olds.get(key))
            for key in INPUT_KEYS
            if key != "retryFailed"
        ) or bool(news.get("retryFailed")) != bool(olds.get("retryFailed"))
        return dyn.DiffResult(changes=changed, replaces=[])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        """The initial release promotes without analysis, as Flagger initialises."""
        release = release_of(props)
        revision = revision_of(pod_template(props))
        adapters = _adapters(access_of(props), release)
        try:
            _, version = adapters.cluster.load_record()
            adapters.cluster.save_record(
                {"phase": str(Phase.SUCCEEDED), "revision": revision, "reason": None}, version
            )
        finally:
            _close(adapters)
        print(f"{release.name}: initial release {revision} promoted without analysis", flush=True)
        return dyn.CreateResult(
            record_id(release), outputs(props, phase=str(Phase.SUCCEEDED), revision=revision)
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        """Runs the analysis of a new template; raises, with the reason, when it fails."""
        revision = revision_of(pod_template(news))
        if revision == olds.get("revision"):
            phase = str(olds.get("phase") or Phase.SUCCEEDED)
            return dyn.UpdateResult(outputs(news, phase=phase, revision=revision))
        release = release_of(news)
        adapters = _adapters(access_of(news), release)
        try:
            record, _ = adapters.cluster.load_record()
            if (
                record
                and record.get("phase") == Phase.FAILED
                and record.get("revision") == revision
                and not news.get("retryFailed")
            ):
                raise RolloutFailed(
                    f"release of {revision} already failed: {record.get('reason')}; "
                    "set retryFailed to try again"
                )
            report = _scheduler(release, adapters, news).analyse()
            if report.outcome != "promoted":
                reason = report.reason or "the analysis failed"
                _mark_failed(adapters.cluster, revision, reason)
                raise RolloutFailed(
                    f"{release.name}: release of {revision} rolled back: {reason} "
                    f"({report.failed_checks} failed checks)"
                )
        finally:
            _close(adapters)
        return dyn.UpdateResult(outputs(news, phase=str(Phase.PROMOTING), revision=revision))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Removes the release record; one already gone is fine."""
        release = release_of(props)
        adapters = _adapters(access_of(props), release)
        try:
            adapters.cluster.delete_record()
        finally:
            _close(adapters)


class FinaliserProvider(dyn.ResourceProvider):
    """After the primary runs the promoted template: traffic to it, canary to zero, hooks.

    Ordered after the primary Deployment by a dependency input (`primary`), so Pulumi has
    already applied and awaited the promotion when this runs.
    """

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        changed = any(
            has_unknown(news.get(key)) or plain(news.get(key)) != plain(olds.get(key))
            for key in (*INPUT_KEYS, "revision", "phase", "primary")
        )
        return dyn.DiffResult(changes=changed, replaces=[])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        outs = self._finalise(None, props)
        return dyn.CreateResult(record_id(release_of(props)), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(self._finalise(olds, news))

    def _finalise(self, olds: dict[str, Any] | None, news: dict[str, Any]) -> dict[str, Any]:
        outs = {key: news.get(key) for key in (*INPUT_KEYS, "revision", "phase", "primary")}
        fresh = olds is None or olds.get("revision") != news.get("revision")
        if not fresh or news.get("phase") != Phase.PROMOTING:
            return outs
        release = release_of(news)
        adapters = _adapters(access_of(news), release)
        try:
            scheduler = _scheduler(release, adapters, news)
            # Scheduler.finalise saves the record against the version it last read, which a
            # fresh Scheduler has not: without it the save would try to create the record.
            _, scheduler._record_version = adapters.cluster.load_record()
            scheduler.finalise()
        finally:
            _close(adapters)
        return outs


# -- the resources --------------------------------------------------------------------------

_OUTPUT_NAMES = {
    "podTemplate": "pod_template",
    "revision": "revision",
    "phase": "phase",
    "plan": "plan",
}

_INPUT_NAMES = {python: engine for engine, python in _OUTPUT_NAMES.items()}


def _spec_props(
    *,
    canary: pulumi.Input[Mapping[str, Any]],
    deployment: pulumi.Input[Mapping[str, Any]],
    metric_templates: pulumi.Input[list[Any]] | None,
    alert_providers: pulumi.Input[list[Any]] | None,
    autoscaler: pulumi.Input[Mapping[str, Any]] | None,
    kubeconfig: pulumi.Input[str] | None,
    context: pulumi.Input[str] | None,
    deadline_seconds: pulumi.Input[float] | None,
    interval: pulumi.Input[str] | None,
    retry_failed: pulumi.Input[bool],
) -> dict[str, Any]:
    return {
        "canary": canary,
        "deployment": deployment,
        "metricTemplates": metric_templates or [],
        "alertProviders": alert_providers or [],
        "autoscaler": autoscaler,
        "kubeconfig": kubeconfig,
        "context": context,
        "deadlineSeconds": deadline_seconds,
        "interval": interval,
        "retryFailed": retry_failed,
    }


def _secret_opts(opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """Keeps `kubeconfig` secret in state even if a caller passed it as a plain string."""
    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(additional_secret_outputs=["kubeconfig"])
    )


class Rollout(dyn.Resource, module="canary", name="Rollout"):
    """`pulumi-python:dynamic/canary:Rollout`: the gate. Declare the primary from `pod_template`."""

    pod_template: pulumi.Output[dict[str, Any]]
    revision: pulumi.Output[str]
    phase: pulumi.Output[str]
    plan: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        canary: pulumi.Input[Mapping[str, Any]],
        deployment: pulumi.Input[Mapping[str, Any]],
        metric_templates: pulumi.Input[list[Any]] | None = None,
        alert_providers: pulumi.Input[list[Any]] | None = None,
        autoscaler: pulumi.Input[Mapping[str, Any]] | None = None,
        kubeconfig: pulumi.Input[str] | None = None,
        context: pulumi.Input[str] | None = None,
        deadline_seconds: pulumi.Input[float] | None = None,
        interval: pulumi.Input[str] | None = None,
        retry_failed: pulumi.Input[bool] = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = _spec_props(
            canary=canary,
            deployment=deployment,
            metric_templates=metric_templates,
            alert_providers=alert_providers,
            autoscaler=autoscaler,
            kubeconfig=kubeconfig,
            context=context,
            deadline_seconds=deadline_seconds,
            interval=interval,
            retry_failed=retry_failed,
        )
        # Keyed by the attribute names: the SDK creates one Output per key before translating
        # the names to the engine's spelling.
        props.update(dict.fromkeys(_OUTPUT_NAMES.values()))
        super().__init__(RolloutProvider(), name, props, _secret_opts(opts))

    def translate_output_property(self, prop: str) -> str:
        """`podTemplate` from the engine resolves the `pod_template` attribute."""
        return _OUTPUT_NAMES.get(prop, prop)

    def translate_input_property(self, prop: str) -> str:
        """The placeholder `pod_template` goes to the engine as `podTemplate`."""
        return _INPUT_NAMES.get(prop, prop)


class RolloutFinaliser(dyn.Resource, module="canary", name="RolloutFinaliser"):
    """Finishes a promoted release once the primary Deployment (`primary`) is up to date."""

    def __init__(
        self,
        name: str,
        *,
        canary: pulumi.Input[Mapping[str, Any]],
        deployment: pulumi.Input[Mapping[str, Any]],
        revision: pulumi.Input[str],
        phase: pulumi.Input[str],
        primary: pulumi.Input[Any],
        metric_templates: pulumi.Input[list[Any]] | None = None,
        alert_providers: pulumi.Input[list[Any]] | None = None,
        autoscaler: pulumi.Input[Mapping[str, Any]] | None = None,
        kubeconfig: pulumi.Input[str] | None = None,
        context: pulumi.Input[str] | None = None,
        interval: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = _spec_props(
            canary=canary,
            deployment=deployment,
            metric_templates=metric_templates,
            alert_providers=alert_providers,
            autoscaler=autoscaler,
            kubeconfig=kubeconfig,
            context=context,
            deadline_seconds=None,
            interval=interval,
            retry_failed=False,
        )
        props.update(revision=revision, phase=phase, primary=primary)
        super().__init__(FinaliserProvider(), name, props, _secret_opts(opts))
