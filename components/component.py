"""`CanaryDeployment`: every Kubernetes and Istio object of one Flagger-style canary, and the
gate that releases it during `pulumi up` (guard, Rollout, finaliser; see provider/rollout.py).

Field ownership, decided once: a release changes the VirtualService's `spec.http` (weights,
mirror, sticky routes; `spec.tcp` for a TCP service) and the canary Deployment's
`spec.replicas`. Both are declared with `ignore_changes`, so pulumi-kubernetes relinquishes them
in server-side apply and the release engine owns them under its own field manager.
`pulumi.com/patchForce` was rejected: it would make every `pulumi up` take the fields back and
reset traffic in the middle of a release.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from . import routing
from .analysis import plan
from .provider.rollout import (
    Declared,
    GateOptions,
    ReleaseGuard,
    ReleaseInputs,
    Rollout,
    RolloutFinaliser,
)
from .routing.children import (
    ROLES,
    TYPE_TOKEN,
    ChildNames,
    given_config,
    metric_template_config_map,
    target_autoscaler,
)
from .spec import AlertProvider, Canary, MetricTemplate, ReleaseSpec
from .spec.base import SpecModel
from .spec.configs import SECRET, Config, checksums
from .spec.judge import Judge
from .spec.timing import Timing

# Fields a running release writes, besides its routes (routing.owned_route_field); Pulumi must
# not fight over them (see the module docstring).
RELEASE_OWNED_REPLICAS = ["spec.replicas"]


@dataclass
class CanaryDeploymentArgs:
    """Flagger's manifests, as dicts (camelCase, straight from YAML) or as validated models."""

    canary: Mapping[str, Any] | Canary
    """The `Canary` manifest."""
    deployment: Mapping[str, Any]
    """The target Deployment manifest; its pod template may hold Pulumi Inputs."""
    metric_templates: Sequence[Mapping[str, Any] | MetricTemplate] = field(default_factory=list)
    alert_providers: Sequence[Mapping[str, Any] | AlertProvider] = field(default_factory=list)
    autoscaler: Mapping[str, Any] | None = None
    """The HPA named by `autoscalerRef`: the component declares it and `<hpa>-primary`."""
    gate: GateOptions = field(default_factory=GateOptions)
    """How `pulumi up` runs the release: credentials, deadline, interval, retries."""
    judge: Mapping[str, Any] | Judge | None = None
    """A `Judge` document (docs/judge.md): the statistical judge, in every metrics check."""

    configs: Sequence[Mapping[str, Any]] = field(default_factory=list)
    """The ConfigMaps and Secrets the pod template references (manifests, values may be Pulumi
    Inputs), tracked as Flagger tracks them: the component declares each as given (the canary
    reads them) and a `<name>-primary` copy the primary reads, written only on promotion."""

    def release(self) -> ReleaseSpec:
        """The manifests validated; SpecError naming every bad field."""
        return ReleaseSpec.parse(
            canary=self.canary,
            deployment=self.deployment,
            metric_templates=self.metric_templates,
            alert_providers=self.alert_providers,
            autoscaler=self.autoscaler,
            judge=self.judge,
            configs=self.configs,
        )


class CanaryDeployment(pulumi.ComponentResource):
    """Primary and canary Deployments, apex/primary/canary Services, DestinationRules and the
    VirtualService of one workload, named exactly as Flagger names them."""

    release: ReleaseSpec
    canary_deployment: k8s.apps.v1.Deployment
    primary_deployment: k8s.apps.v1.Deployment
    services: list[k8s.core.v1.Service]
    destination_rules: list[k8s.apiextensions.CustomResource]
    virtual_service: k8s.apiextensions.CustomResource
    autoscalers: list[k8s.autoscaling.v2.HorizontalPodAutoscaler]
    metric_templates: list[k8s.core.v1.ConfigMap]
    configs: list[k8s.core.v1.ConfigMap | k8s.core.v1.Secret]
    config_copies: list[k8s.core.v1.ConfigMap | k8s.core.v1.Secret]
    guard: ReleaseGuard
    rollout: Rollout
    finaliser: RolloutFinaliser

    def __init__(
        self, name: str, args: CanaryDeploymentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        self._declare_until_gate(name, args, opts)
        self._declare_from_gate(
            Rollout(
                self._names.rollout,
                self._inputs,
                args.gate,
                self._declared,
                pulumi.ResourceOptions.merge(
                    self._child,
                    pulumi.ResourceOptions(
                        depends_on=[self.canary_deployment, *self.metric_templates, *self.configs]
                    ),
                ),
            )
        )

    def _declare_until_gate(
        self,
        name: str,
        args: CanaryDeploymentArgs,
        opts: pulumi.ResourceOptions | None,
        after: Sequence[pulumi.Resource] = (),
    ) -> None:
        """Everything before the gate: metric templates, DestinationRules, the guard (after
        `after` too: a group's previous wave) and the canary Deployment. A group declares its
        wave's gate between this and `_declare_from_gate`."""
        # Validate before registering anything: bad input declares nothing.
        release = args.release()
        super().__init__(TYPE_TOKEN, name, {}, opts)
        self.release = release
        child = pulumi.ResourceOptions(parent=self)
        names = ChildNames(name)

        self.metric_templates = [
            _metric_template(names, release, template, child)
            for template in release.metric_templates
        ]
        inputs = ReleaseInputs(
            canary=_manifest(args.canary),
            deployment=args.deployment,
            metric_templates=[_manifest(template) for template in args.metric_templates],
            alert_providers=[_manifest(provider) for provider in args.alert_providers],
            autoscaler=args.autoscaler,
            judge=None if args.judge is None else _manifest(args.judge),
            configs=list(args.configs),
        )
        rule_manifests = routing.destination_rules(release)
        self.destination_rules = [
            _istio(names.destination_rule(role), rule, child)
            for role, rule in zip(ROLES[1:], rule_manifests, strict=True)
        ]
        # The gate, with its own credentials, holds to the cluster of the stack's provider: the
        # uids of the objects that provider declared. The plan line is known at preview.
        rules = {
            f"DestinationRule/{manifest['metadata']['name']}": _uid_of(rule)
            for manifest, rule in zip(rule_manifests, self.destination_rules, strict=True)
        }
        plan_line = pulumi.Output.from_input(args.gate.interval).apply(
            lambda interval: plan(
                release.spec, Timing.of(release.spec.analysis, interval=interval)
            ).describe()
        )
        # Before the canary Deployment changes: no traffic left on the canary from before.
        self.guard = ReleaseGuard(
            names.guard,
            inputs,
            args.gate,
            Declared(rules, plan_line),
            pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[*self.destination_rules, *after])
            ),
        )
        # The canary reads the configs as given: they change after the guard, too.
        after_guard = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[self.guard])
        )
        self.configs = [
            _config(names.config(config.ref), given_config(release, config), after_guard)
            for config in release.config_tracking.configs
        ]
        self.canary_deployment = _deployment(
            names.canary,
            routing.canary_deployment(release, replicas=0),
            pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    ignore_changes=RELEASE_OWNED_REPLICAS, depends_on=[self.guard, *self.configs]
                ),
            ),
        )
        # The gate runs once the canary runs the new template; its output is the template the
        # primary gets, so a failed analysis stops `pulumi up` before the primary changes.
        self._declared = Declared(
            {
                **rules,
                f"Deployment/{release.target}": _uid_of(self.canary_deployment),
            },
            plan_line,
        )
        self._names, self._child, self._inputs = names, child, inputs
        self._gate_options, self._plan_line = args.gate, plan_line

    def _declare_from_gate(self, rollout: Rollout) -> None:
        """The primary from the gate's promoted template, then the Services, VirtualService,
        autoscalers and finaliser, and the component's outputs."""
        release, names, child = self.release, self._names, self._child
        self.rollout = rollout
        promoted = _promoted_configs(rollout, release)
        self.config_copies = _config_copies(names, release, promoted, child)
        # Which copies the primary runs, and their checksums: no secret, though what they
        # derive from may be, and the primary's spec must stay readable in previews.
        running = pulumi.Output.unsecret(promoted.apply(checksums))
        replicas = release.primary_replicas
        template = release.deployment["spec"]["template"]
        at_rest = routing.primary_deployment(release, template, replicas)
        self.primary_deployment = k8s.apps.v1.Deployment(
            names.primary,
            metadata=at_rest["metadata"],
            spec=pulumi.Output.all(self.rollout.promoted_template, running).apply(
                # No template yet only under test mocks that echo inputs: the first release's.
                lambda promotion: routing.primary_deployment(
                    release, promotion[0] or template, replicas, promotion[1]
                )["spec"]
            ),
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    ignore_changes=RELEASE_OWNED_REPLICAS if release.autoscaler else None,
                    depends_on=self.config_copies,
                ),
            ),
        )
        service_opts = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[self.primary_deployment])
        )
        self.services = [
            k8s.core.v1.Service(
                names.service(role),
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=service_opts,
            )
            for role, manifest in zip(ROLES, routing.services(release), strict=True)
        ]
        self.virtual_service = _istio(
            names.virtual_service,
            routing.virtual_service(release),
            pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    ignore_changes=[routing.owned_route_field(release)],
                    depends_on=[*self.services, *self.destination_rules],
                ),
            ),
        )
        self.autoscalers = _autoscalers(names, release, child)
        self.finaliser = RolloutFinaliser(
            names.finaliser,
            self._inputs,
            self._gate_options,
            self._declared,
            promotion=self.rollout.promotion,
            phase=self.rollout.phase,
            primary=self.primary_deployment.id,
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(depends_on=[self.virtual_service, *self.autoscalers]),
            ),
        )
        self.register_outputs(
            {
                "primary": release.primary,
                "canary": release.target,
                "service": release.service,
                "namespace": release.namespace,
                "strategy": str(release.spec.analysis.strategy),
                "revision": self.rollout.revision,
                "plan": self._plan_line,
            }
        )

    @classmethod
    def from_flagger(
        cls,
        name: str,
        *,
        canary: Mapping[str, Any],
        deployment: Mapping[str, Any],
        metric_templates: Sequence[Mapping[str, Any]] = (),
        alert_providers: Sequence[Mapping[str, Any]] = (),
        autoscaler: Mapping[str, Any] | None = None,
        gate: GateOptions | None = None,
        opts: pulumi.ResourceOptions | None = None,
        judge: Mapping[str, Any] | None = None,
        configs: Sequence[Mapping[str, Any]] = (),
    ) -> CanaryDeployment:
        """A Flagger user's YAML, unchanged: `yaml.safe_load` each manifest and pass it here;
        `judge` is a `Judge` document, kept beside the Canary (docs/judge.md); `configs` are the
        ConfigMaps and Secrets the pod template references."""
        args = CanaryDeploymentArgs(
            canary=canary,
            deployment=deployment,
            metric_templates=list(metric_templates),
            alert_providers=list(alert_providers),
            autoscaler=autoscaler,
            gate=gate or GateOptions(),
            judge=judge,
            configs=list(configs),
        )
        return cls(name, args, opts)


def _uid_of(resource: pulumi.CustomResource) -> pulumi.Output[str | None]:
    """`metadata.uid` of a Kubernetes resource's live object; None under echo mocks. (The SDK
    sets a CustomResource's `metadata` output at runtime, unseen by the type checker.)"""
    metadata: pulumi.Output[Any] = resource.metadata  # type: ignore[attr-defined]
    return metadata.apply(
        lambda meta: (
            (meta.get("uid") if isinstance(meta, Mapping) else getattr(meta, "uid", None)) or None
        )
    )


def _manifest(value: Mapping[str, Any] | SpecModel) -> Mapping[str, Any]:
    """A manifest for the gate's inputs: as given, or a model back in its YAML shape with its
    secrets (the gate keeps them secret in state)."""
    if not isinstance(value, SpecModel):
        return value
    manifest = value.to_manifest(reveal_secrets=True)
    if isinstance(value, MetricTemplate) and value.credentials is not None:
        # Excluded from every manifest written to the cluster; the gate needs them.
        manifest["credentials"] = value.credentials.to_manifest(reveal_secrets=True)
    return manifest


def _deployment(
    resource_name: str, manifest: Mapping[str, Any], opts: pulumi.ResourceOptions
) -> k8s.apps.v1.Deployment:
    return k8s.apps.v1.Deployment(
        resource_name, metadata=manifest["metadata"], spec=manifest["spec"], opts=opts
    )


def _istio(
    resource_name: str, manifest: Mapping[str, Any], opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        metadata=manifest["metadata"],
        spec=manifest["spec"],
        opts=opts,
    )


def _autoscalers(
    names: ChildNames, release: ReleaseSpec, opts: pulumi.ResourceOptions
) -> list[k8s.autoscaling.v2.HorizontalPodAutoscaler]:
    primary = routing.primary_autoscaler(release)
    target = target_autoscaler(release)
    if primary is None or target is None:
        return []
    return [
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            names.autoscaler(role), metadata=manifest["metadata"], spec=manifest["spec"], opts=opts
        )
        for role, manifest in (("canary", target), ("primary", primary))
    ]


def _metric_template(
    names: ChildNames, release: ReleaseSpec, template: MetricTemplate, opts: pulumi.ResourceOptions
) -> k8s.core.v1.ConfigMap:
    manifest = metric_template_config_map(release, template)
    return k8s.core.v1.ConfigMap(
        names.metric_template(template.name),
        metadata=manifest["metadata"],
        data=manifest["data"],
        opts=opts,
    )


# The arguments of pulumi-kubernetes' ConfigMap and Secret, by manifest field.
_CONFIG_ARGUMENTS = {
    "data": "data",
    "binaryData": "binary_data",
    "stringData": "string_data",
    "type": "type",
    "immutable": "immutable",
}


def _config(
    resource_name: str, manifest: Mapping[str, Any], opts: pulumi.ResourceOptions
) -> k8s.core.v1.ConfigMap | k8s.core.v1.Secret:
    kind = k8s.core.v1.Secret if manifest["kind"] == SECRET else k8s.core.v1.ConfigMap
    arguments = {arg: manifest[key] for key, arg in _CONFIG_ARGUMENTS.items() if key in manifest}
    return kind(resource_name, metadata=manifest["metadata"], opts=opts, **arguments)


def _promoted_configs(rollout: Rollout, release: ReleaseSpec) -> pulumi.Output[Any]:
    """The tracked configs' content the Rollout last promoted, by Flagger's key. None only under
    test mocks that echo inputs: then the content given, as for the template."""
    tracked = release.config_tracking.tracked
    given = pulumi.Output.from_input([config.manifest for config in tracked]).apply(
        lambda manifests: {
            config.ref.key: Config(manifest, config.path).content()
            for config, manifest in zip(tracked, manifests, strict=True)
        }
    )
    return pulumi.Output.all(rollout.promoted_configs, given).apply(
        lambda found: found[0] if found[0] is not None else found[1]
    )


def _config_copies(
    names: ChildNames,
    release: ReleaseSpec,
    promoted: pulumi.Output[Any],
    opts: pulumi.ResourceOptions,
) -> list[k8s.core.v1.ConfigMap | k8s.core.v1.Secret]:
    """The `-primary` copy of each tracked config, its content the promoted one, so it changes
    only when a release promotes and a rollback leaves it."""
    copies = []
    for config in release.config_tracking.tracked:
        manifest = routing.primary_config(release, config, {})
        content = _copied_content(config, promoted)
        parts = ("data",) if config.kind == SECRET else ("data", "binaryData")
        for part in parts:
            manifest[part] = content.apply(_part(part))
        copies.append(_config(names.config_copy(config.ref), manifest, opts))
    return copies


def _copied_content(config: Config, promoted: pulumi.Output[Any]) -> pulumi.Output[Any]:
    """A copy's content, as secret as its original: a Secret's always, a ConfigMap's when a
    value given was (the promoted content is secret as a whole once one Secret is tracked)."""
    key = config.ref.key
    content = pulumi.Output.unsecret(promoted.apply(lambda found: found[key]))
    if config.kind == SECRET:
        return pulumi.Output.secret(content)
    return pulumi.Output.all(content, config.manifest).apply(lambda both: both[0])


def _part(part: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda content: content.get(part)
