"""`CanaryGroup`: several canaries of one stack released in one `pulumi up`, wave after wave,
each wave on one provider thread (the Python dynamic server has four for the whole stack).

Each canary is a `CanaryDeployment` declared as a lone one is, its Kubernetes objects named as
Flagger names them, its guard before its canary Deployment and its finaliser after its primary;
only its gate differs. Per wave:

```
guards, canary Deployments -> Wave (every release of the wave, side by side)
  -> each canary's GroupRollout -> primary, Services, VirtualService, finaliser
  -> GroupVerdict (fails `pulumi up` naming every canary that did not promote)
  -> the next wave's guards
```

so a wave starts only once the previous one is promoted and finalised, and a canary that
passed gets its primary even when another failed (see provider/group.py for why).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pulumi

from .component import CanaryDeployment, CanaryDeploymentArgs
from .provider.group import GroupRollout, GroupVerdict, Wave
from .provider.rollout import gate_props
from .spec import Problem, SpecError
from .spec.group import FailurePolicy, GroupPlan

GROUP_TYPE_TOKEN = "canary:index:CanaryGroup"


@dataclass
class CanaryGroupArgs:
    """The canaries of a group, the waves they are released in, and what a failure stops."""

    canaries: Mapping[str, CanaryDeploymentArgs]
    """Each canary's manifests and gate options, by the name of its CanaryDeployment."""
    waves: Sequence[Sequence[str]] | None = None
    """The order of release, e.g. `[["cart", "catalog"], ["checkout"]]`: a wave starts once
    the previous one is promoted and finalised. Default: one wave with every canary."""
    on_failure: FailurePolicy | str = FailurePolicy.STOP
    """`rollback`, `finish` or `stop` (`FailurePolicy`): what a canary that did not promote
    does to the rest of the group. `pulumi up` fails naming it whatever the policy."""


class _Member(CanaryDeployment):
    """A group's canary, declared up to its gate; the group finishes it from its wave."""

    def __init__(
        self,
        name: str,
        args: CanaryDeploymentArgs,
        opts: pulumi.ResourceOptions,
        after: Sequence[pulumi.Resource],
    ) -> None:
        self._declare_until_gate(name, args, opts, after)

    def finish(self, wave: Wave, key: str) -> None:
        outcome = wave.outcomes.apply(lambda outcomes: (outcomes or {}).get(key))
        self._declare_from_gate(
            GroupRollout(
                self._names.rollout,
                self._inputs,
                self._gate_options,
                self._declared,
                outcome=outcome,
                opts=pulumi.ResourceOptions.merge(
                    self._child, pulumi.ResourceOptions(depends_on=[wave])
                ),
            )
        )

    @property
    def gate_inputs(self) -> dict[str, Any]:
        """What this canary's Rollout would take as inputs: its wave takes them instead."""
        return gate_props(self._inputs, self._gate_options, self._declared)


class CanaryGroup(pulumi.ComponentResource):
    """Canaries released together: one `Wave` gate per wave runs all its analyses at once."""

    plan: GroupPlan
    canaries: dict[str, CanaryDeployment]
    waves: list[Wave]
    verdicts: list[GroupVerdict]

    def __init__(
        self, name: str, args: CanaryGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Validate everything before registering anything: bad input declares nothing.
        plan = _validated(args)
        super().__init__(GROUP_TYPE_TOKEN, name, {}, opts)
        self.plan = plan
        child = pulumi.ResourceOptions(parent=self)
        self.canaries, self.waves, self.verdicts = {}, [], []
        after: list[pulumi.Resource] = []
        for number, keys in enumerate(plan.waves, start=1):
            members = {key: _Member(key, args.canaries[key], child, after) for key in keys}
            wave = Wave(
                f"{name}-wave-{number}",
                group=name,
                number=number,
                members={key: member.gate_inputs for key, member in members.items()},
                policy=plan.policy,
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        depends_on=[
                            resource
                            for member in members.values()
                            for resource in (member.canary_deployment, *member.metric_templates)
                        ]
                    ),
                ),
            )
            for key, member in members.items():
                member.finish(wave, key)
            self.canaries.update(members)
            self.waves.append(wave)
            later = [key for wave_keys in plan.waves[number:] for key in wave_keys]
            verdict = GroupVerdict(
                f"{name}-wave-{number}-verdict",
                group=name,
                number=number,
                outcomes=[_failures_of(each) for each in self.waves],
                final=plan.stops_at_a_failure or not later,
                policy=plan.policy,
                later=later if plan.stops_at_a_failure else [],
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(
                        depends_on=[member.finaliser for member in members.values()]
                    ),
                ),
            )
            self.verdicts.append(verdict)
            after = [verdict]
        self.register_outputs(
            {
                "waves": [list(keys) for keys in plan.waves],
                "policy": str(plan.policy),
                "revisions": {
                    key: member.rollout.revision for key, member in self.canaries.items()
                },
            }
        )


def _validated(args: CanaryGroupArgs) -> GroupPlan:
    """The plan, once the waves, the policy and every canary's manifests are valid; else one
    SpecError with every problem, each canary's under `canaries.<name>.`."""
    problems: list[Problem] = []
    try:
        plan = GroupPlan.of(list(args.canaries), args.waves, args.on_failure)
    except SpecError as error:
        problems += error.problems
    for key, canary in args.canaries.items():
        try:
            canary.release()
        except SpecError as error:
            problems += [replace(p, path=f"canaries.{key}.{p.path}") for p in error.problems]
    if problems:
        raise SpecError(problems, source="canary group")
    return plan


def _failures_of(wave: Wave) -> pulumi.Output[dict[str, Any]]:
    """What a verdict reads of a wave: each canary's failure (None when it promoted)."""
    return wave.outcomes.apply(
        lambda outcomes: {
            key: {"failure": (outcome or {}).get("failure")}
            for key, outcome in (outcomes or {}).items()
        }
    )
