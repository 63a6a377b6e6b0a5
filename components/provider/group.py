"""The dynamic resources of a canary group (`CanaryGroup`), one provider thread per wave.

- `Wave`: its Update runs the release of every canary of the wave whose template changed,
  all at once on the one server thread it holds (`scheduler.multiplex`), each exactly as a
  Rollout runs it (`rollout.released`: its record, lines, alerts, metrics), over clients
  shared per cluster. It returns every canary's outcome and raises for none of them.
- `GroupRollout`, one per canary: carries its canary's outcome to its primary and finaliser.
  At preview the engine shows a changed resource's outputs that are not inputs as unknown, so
  primaries declared from the wave itself would all read "may change"; the GroupRollout's diff
  looks at its own canary's template only, so only a canary with a new one does.
- `GroupVerdict`, one per wave, after the wave's finalisers: fails `pulumi up` naming every
  canary that did not promote. Why a step of its own: the engine keeps no output of a step that
  raised, and starts no step after one failed (`step_executor.go`, `cancelDueToError`); a wave
  that raised would lose the promotions that passed. The next wave depends on this verdict, so
  a raising one also keeps later waves from starting.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi.dynamic as dyn
from pulumi.output import Unknown

from ..adapters.kube import ConnectionPool
from ..adapters.records import RecordPhase
from ..errors import ReleaseFailed
from ..scheduler import print_progress
from ..scheduler.multiplex import Finished, run_all
from ..spec import integral
from ..spec.group import FailurePolicy
from . import rollout
from .rollout import (
    HISTORY_OUTPUT_LINES,
    INPUT_KEYS,
    OUTPUT_KEYS,
    STATE_KEYS,
    GateInputs,
    Rollout,
    RolloutProvider,
    _echo,
    _inputs_changed,
    _options,
    has_unknown,
    record_id,
    released,
    revision_of,
)

# A wave's inputs: its group, its number, its canaries in order, each canary's Rollout inputs
# by name, and the failure policy.
WAVE_KEYS = ("group", "wave", "canaries", "members", "policy")


def _members(props: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each canary's Rollout inputs, in the wave's order (a protobuf Struct keeps none)."""
    members = props.get("members") or {}
    return {name: dict(members[name]) for name in props.get("canaries") or members}


class WaveProvider(dyn.ResourceProvider):
    """Runs a wave's releases side by side on one thread; see the module docstring."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        """Each canary as its Rollout would check it (a new one's review printed), with the
        canary's name in each failing path."""
        members = news.get("members")
        if isinstance(members, Unknown):
            return dyn.CheckResult(news, [])
        failures = []
        known = olds.get("members") or {}
        for name, props in _members(news).items():
            checked = RolloutProvider().check(known.get(name) or {}, props)
            failures += [
                dyn.CheckFailure(f"members.{name}.{failure.property}", failure.reason)
                for failure in checked.failures
            ]
        policy = news.get("policy")
        if not isinstance(policy, Unknown) and policy not in set(FailurePolicy):
            failures.append(dyn.CheckFailure("policy", f"not a failure policy: {policy!r}"))
        return dyn.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        """Changed when a canary has a new template (reviewed as its Rollout reviews it), a
        canary joined or left, or one did not promote last time: it runs again (and fails fast
        on a known failure), so the verdict never reads a stale failure."""
        if isinstance(news.get("members"), Unknown):
            return dyn.DiffResult(changes=True, replaces=[])
        outcomes = olds.get("outcomes") or {}
        inputs = olds.get("members") or {}
        members = _members(news)
        changed = set(members) != set(outcomes) or news.get("canaries") != olds.get("canaries")
        for name, props in members.items():
            outcome = outcomes.get(name)
            if outcome is None:
                continue  # joined: its check printed the review
            before = {
                **(inputs.get(name) or {}),
                "revision": outcome.get("revision"),
                "podTemplate": outcome.get("promotedTemplate"),
                "promotedConfigs": outcome.get("promotedConfigs"),
            }
            changed = RolloutProvider().diff(_id, before, props).changes or changed
            changed = changed or bool(outcome.get("failure"))
        return dyn.DiffResult(changes=changed, replaces=[])

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        wave_id = f"{props.get('group')}-wave-{integral(props.get('wave'))}"
        return dyn.CreateResult(wave_id, _run(props, {}))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(_run(news, olds.get("outcomes") or {}))


def _run(props: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    """The wave's outputs: its inputs, and each canary's outcome: a Rollout's outputs (carried
    for an unchanged template) and `failure`, the revision tried and why it did not promote
    (None when it did). A canary that did not promote keeps the template promoted before."""
    policy = FailurePolicy(props.get("policy") or FailurePolicy.STOP)
    outcomes: dict[str, dict[str, Any]] = {}
    runs, tried = {}, {}
    with ConnectionPool() as pool, contextlib.ExitStack() as schedulers:
        for name, member in _members(props).items():
            gate, old = GateInputs.of(member), before.get(name)
            if old is not None and old.get("revision") == gate.revision:
                outcomes[name] = {**old, "failure": None}
                continue
            rollout_id = str((old or {}).get("rolloutId") or "") or uuid.uuid4().hex[:16]
            scheduler = schedulers.enter_context(rollout._scheduler(member, gate, rollout_id, pool))
            # Never promoted (its first release failed): created again, as a lone Rollout is.
            first = old is None or not old.get("promotedTemplate")
            runs[name] = released(scheduler, gate, member, rollout_id, created=first)
            tried[name] = (gate, scheduler.lines, rollout_id)
        ended = run_all(runs, rollout.CLOCK, roll_back_others=policy is FailurePolicy.ROLLBACK)
    for name, finished in ended.items():
        gate, lines, rollout_id = tried[name]
        outcomes[name] = _outcome(finished, before.get(name), gate, lines, rollout_id)
    _summarise(props, outcomes, list(runs))
    return {
        **_echo(props, WAVE_KEYS),
        "outcomes": {name: outcomes[name] for name in _members(props)},
    }


def _outcome(
    finished: Finished[dict[str, Any]],
    before: Mapping[str, Any] | None,
    gate: GateInputs,
    lines: Sequence[str],
    rollout_id: str,
) -> dict[str, Any]:
    if finished.error is None:
        assert finished.value is not None
        return {**{key: finished.value[key] for key in OUTPUT_KEYS}, "failure": None}
    error = finished.error
    verdict = isinstance(error, ReleaseFailed)
    reason = str(error) or type(error).__name__
    prefix = f"{gate.release.name}: "
    return {
        **dict.fromkeys(OUTPUT_KEYS),
        **(before or {}),
        "phase": str(RecordPhase.FAILED if verdict else RecordPhase.INTERRUPTED),
        "history": list(lines[-HISTORY_OUTPUT_LINES:]),
        "rolloutId": str((before or {}).get("rolloutId") or rollout_id),
        "failure": {
            "revision": gate.revision,
            "reason": reason.removeprefix(prefix),
            "verdict": verdict,
        },
    }


def _summarise(
    props: Mapping[str, Any], outcomes: Mapping[str, Any], released: Sequence[str]
) -> None:
    if not released:
        return
    failed = [name for name in released if outcomes[name].get("failure")]
    promoted = [name for name in released if name not in failed]
    print_progress(
        f"{props.get('group')} wave {integral(props.get('wave'))}: "
        f"promoted {', '.join(promoted) or 'none'}; did not promote {', '.join(failed) or 'none'}"
    )


class GroupRolloutProvider(RolloutProvider):
    """A Rollout whose analysis its wave ran: it takes the outcome (`outcome` input) and
    deletes as a Rollout does. Its check and diff print nothing: the wave's printed the review."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        return dyn.CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        """Its own canary's template only (whatever the wave's outcome, unknown at preview),
        or a changed `STATE_KEYS`."""
        revision = revision_of(news)
        changed = revision is None or revision != olds.get("revision")
        return dyn.DiffResult(
            changes=changed or _inputs_changed(olds, news, STATE_KEYS), replaces=[]
        )

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        return dyn.CreateResult(record_id(GateInputs.of(props).release), _adopted(props))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(_adopted(news))


def _adopted(props: Mapping[str, Any]) -> dict[str, Any]:
    """A Rollout's outputs from the wave's outcome; a canary never promoted (its first
    release's analysis failed) has no template for its primary, and fails here, as its
    Rollout's create would."""
    outcome = props.get("outcome") or {}
    if not outcome.get("promotedTemplate"):
        failure = outcome.get("failure") or {}
        name = GateInputs.of(props).release.name
        raise ReleaseFailed(f"{name}: never promoted: {failure.get('reason', 'no outcome')}")
    return {
        **_echo(props, (*INPUT_KEYS, "outcome")),
        **{key: outcome.get(key) for key in OUTPUT_KEYS},
    }


class VerdictProvider(dyn.ResourceProvider):
    """Fails `pulumi up` naming every canary that did not promote, when `final`."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        outcomes = news.get("outcomes")
        changed = has_unknown(outcomes) or bool(_failures(news))
        return dyn.DiffResult(
            changes=changed or integral(outcomes) != integral(olds.get("outcomes")), replaces=[]
        )

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        _judge(props)
        verdict_id = f"{props.get('group')}-verdict-{integral(props.get('wave'))}"
        return dyn.CreateResult(verdict_id, props)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        _judge(news)
        return dyn.UpdateResult(news)


def _failures(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (name, str(outcome["failure"].get("reason")))
        for wave in props.get("outcomes") or []
        for name, outcome in (wave or {}).items()
        if (outcome or {}).get("failure")
    ]


def _judge(props: Mapping[str, Any]) -> None:
    failed = _failures(props)
    if not failed or not props.get("final"):
        return
    total = sum(len(wave or {}) for wave in props.get("outcomes") or [])
    lines = "".join(f"\n  - {name}: {reason}" for name, reason in failed)
    later = list(props.get("later") or [])
    skipped = (
        f"\n  not started, as the group's policy is {props.get('policy')}: {', '.join(later)}"
        if later
        else ""
    )
    raise ReleaseFailed(
        f"{props.get('group')}: {len(failed)} of {total} canaries did not promote "
        f"({', '.join(name for name, _ in failed)}); the others are promoted or unchanged:"
        f"{lines}{skipped}"
    )


# -- the resources --------------------------------------------------------------------------


class Wave(dyn.Resource, module="canary", name="Wave"):
    """`pulumi-python:dynamic/canary:Wave`: one wave's releases, on one provider thread."""

    outcomes: pulumi.Output[dict[str, Any]]

    def __init__(
        self,
        name: str,
        *,
        group: str,
        number: int,
        members: Mapping[str, Mapping[str, Any]],
        policy: FailurePolicy,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "group": group,
            "wave": number,
            "canaries": list(members),
            "members": {name: dict(member) for name, member in members.items()},
            "policy": str(policy),
            "outcomes": None,
        }
        # The members' inputs hold their credentials, and the outcomes their promoted configs
        # (a Secret's content among them): only part of them would be re-marked.
        secret = pulumi.ResourceOptions(additional_secret_outputs=["members", "outcomes"])
        super().__init__(WaveProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret))


class GroupRollout(Rollout, module="canary", name="GroupRollout"):
    """A canary's Rollout in a group: the outcome its wave decided (`outcome`), as a Rollout's
    outputs, so the primary and the finaliser are declared as for a lone canary."""

    def __init__(
        self,
        name: str,
        release: rollout.ReleaseInputs,
        gate: rollout.GateOptions | None,
        declared: rollout.Declared | None,
        *,
        outcome: pulumi.Input[Mapping[str, Any] | None],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {**self._inputs(release, gate, declared), "outcome": outcome}
        dyn.Resource.__init__(self, GroupRolloutProvider(), name, props, _options(opts, release))


class GroupVerdict(dyn.Resource, module="canary", name="GroupVerdict"):
    """After a wave's finalisers: fails `pulumi up` naming every canary that did not promote,
    when `final` (the group stops at a failure, or this is its last wave)."""

    def __init__(
        self,
        name: str,
        *,
        group: str,
        number: int,
        outcomes: Sequence[pulumi.Input[Any]],
        final: bool,
        policy: FailurePolicy,
        later: Sequence[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "group": group,
            "wave": number,
            "outcomes": list(outcomes),
            "final": final,
            "policy": str(policy),
            "later": list(later),
        }
        super().__init__(VerdictProvider(), name, props, opts)
