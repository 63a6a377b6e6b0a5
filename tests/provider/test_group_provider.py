"""A group's dynamic providers called directly (Wave, GroupRollout, GroupVerdict), over
in-memory adapters per canary and one fake clock, as their wave shares one thread's.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi.output import Unknown

from components.adapters.bundle import Adapters
from components.adapters.records import RecordPhase
from components.errors import ReleaseFailed
from components.provider import rollout
from components.provider.group import (
    GroupRolloutProvider,
    VerdictProvider,
    WaveProvider,
)
from components.provider.rollout import GateInputs
from components.spec import template_revision
from tests.conftest import load_yaml
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, fake_adapters
from tests.provider.dynamic_server import renamed

NAMES = ("cart", "catalog", "checkout")


def member_props(name: str, image: str = "ghcr.io/stefanprodan/podinfo:6.3.0") -> dict[str, Any]:
    """One canary's Rollout inputs as the engine passes them (numbers as floats)."""
    canary, deployment = renamed(load_yaml("canary.yaml"), load_yaml("deployment.yaml"), name)
    canary["spec"]["analysis"]["webhooks"] = []
    canary["spec"]["analysis"]["threshold"] = 2.0
    deployment["spec"]["replicas"] = 2.0
    template = deployment["spec"]["template"]
    template["spec"]["containers"][0]["image"] = image
    return {
        "canary": canary,
        "deployment": deployment,
        "podTemplate": copy.deepcopy(template),
        "metricTemplates": [],
        "alertProviders": [],
        "kubeconfig": "apiVersion: v1\nkind: Config\n",
        "interval": "10s",
        "retryFailed": False,
    }


def wave_props(policy: str = "stop", **images: str) -> dict[str, Any]:
    members = {
        name: member_props(name, *([images[name]] if name in images else [])) for name in NAMES
    }
    return {
        "group": "shop",
        "wave": 1.0,
        "canaries": list(NAMES),
        "members": members,
        "policy": policy,
    }


class World:
    """Each canary's fake cluster and metrics, kept across calls, on one fake clock."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.clusters: dict[str, FakeCluster] = {}
        self.metrics = {name: FakeMetrics() for name in NAMES}
        self.pools: list[Any] = []

    def adapters(self, gate: GateInputs, pool: Any) -> Adapters:
        self.pools.append(pool)
        name = gate.release.name
        cluster = self.clusters.setdefault(name, FakeCluster(gate.release))
        adapters = fake_adapters(gate.release, self.clock, cluster)
        return Adapters(
            adapters.cluster, adapters.records, self.metrics[name], adapters.hooks, adapters.alerts
        )

    def at_rest(self, name: str) -> bool:
        return self.clusters[name].at_rest()

    def phase(self, name: str) -> RecordPhase | None:
        return self.clusters[name].phase()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    fake = World()

    @contextlib.contextmanager
    def adapters(props: Any, gate: GateInputs, clock: Any, pool: Any = None) -> Iterator[Adapters]:
        yield fake.adapters(gate, pool)

    monkeypatch.setattr(rollout, "_adapters", adapters)
    monkeypatch.setattr(rollout, "CLOCK", fake.clock)
    return fake


NEW = "ghcr.io/stefanprodan/podinfo:6.3.1"
BAD = "ghcr.io/stefanprodan/podinfo:6.3.2"


def created(world: World) -> dict[str, Any]:
    result = WaveProvider().create(wave_props())
    return dict(result.outs or {})


def test_a_first_wave_promotes_every_canary_without_analysis(world: World) -> None:
    outs = created(world)
    for name in NAMES:
        outcome = outs["outcomes"][name]
        assert outcome["failure"] is None and outcome["phase"] == "Succeeded", name
        assert outcome["promotedTemplate"] == member_props(name)["podTemplate"]
        assert world.phase(name) is RecordPhase.SUCCEEDED
    # One pool for the wave: the releases shared their cluster's clients.
    assert len({id(pool) for pool in world.pools}) == 1


def test_one_bad_canary_fails_alone_the_others_promote(world: World) -> None:
    state = created(world)
    world.metrics["catalog"].value = 50.0
    news = wave_props(cart=NEW, catalog=BAD)
    started = world.clock.now()
    outs = dict(WaveProvider().update("shop-wave-1", state, news).outs or {})
    cart, catalog, checkout = (outs["outcomes"][name] for name in NAMES)
    assert cart["failure"] is None and cart["phase"] == "Promoting"
    assert cart["revision"] == template_revision(news["members"]["cart"]["podTemplate"])
    assert catalog["failure"]["verdict"] is True
    assert catalog["failure"]["revision"] == template_revision(
        news["members"]["catalog"]["podTemplate"]
    )
    assert "rolled back, the primary is unchanged" in catalog["failure"]["reason"]
    assert not catalog["failure"]["reason"].startswith("catalog:")  # named once, by the verdict
    # A canary that did not promote keeps what it promoted before.
    assert catalog["promotedTemplate"] == state["outcomes"]["catalog"]["promotedTemplate"]
    assert catalog["revision"] == state["outcomes"]["catalog"]["revision"]
    assert checkout == {**state["outcomes"]["checkout"], "failure": None}  # carried
    assert world.phase("catalog") is RecordPhase.FAILED and world.at_rest("catalog")
    # Side by side: the two releases took the time of the longer, five 10 s steps.
    assert world.clock.now() - started == 50.0


def test_a_canary_whose_first_release_failed_starts_as_a_first_release_again(
    world: World,
) -> None:
    """As a lone Rollout whose create failed is created again: promoted without analysis, not
    analysed against a primary, Services and VirtualService that were never declared."""
    props = wave_props()
    cart = props["members"]["cart"]
    props["members"]["cart"] = {**cart, "declaredUids": {"DestinationRule/cart-canary": "other"}}
    first = dict(WaveProvider().create(props).outs or {})
    assert first["outcomes"]["cart"]["failure"] is not None
    assert first["outcomes"]["cart"]["promotedTemplate"] is None

    started = world.clock.now()
    outs = dict(WaveProvider().update("shop-wave-1", first, wave_props()).outs or {})
    again = outs["outcomes"]["cart"]
    assert again["failure"] is None and again["phase"] == "Succeeded"
    assert again["promotedTemplate"] == cart["podTemplate"]
    assert world.clock.now() == started  # no analysis ran


def test_rollback_policy_rolls_back_the_others_running_in_the_wave(world: World) -> None:
    state = created(world)
    world.metrics["catalog"].value = 50.0
    news = wave_props("rollback", cart=NEW, catalog=BAD, checkout=NEW)
    outs = dict(WaveProvider().update("shop-wave-1", state, news).outs or {})
    for name in ("cart", "checkout"):
        outcome = outs["outcomes"][name]
        assert outcome["failure"]["verdict"] is False, name
        assert "catalog did not promote" in outcome["failure"]["reason"]
        assert outcome["promotedTemplate"] == state["outcomes"][name]["promotedTemplate"]
        assert world.at_rest(name) and world.phase(name) is RecordPhase.INTERRUPTED


def test_the_next_run_fails_fast_on_a_known_failure_and_the_policy_rolls_back_the_rest(
    world: World,
) -> None:
    state = created(world)
    world.metrics["catalog"].value = 50.0
    news = wave_props("rollback", cart=NEW, catalog=BAD)
    first = dict(WaveProvider().update("shop-wave-1", state, news).outs or {})
    # Nothing changed, but a canary did not promote: the wave runs again.
    assert WaveProvider().diff("shop-wave-1", first, news).changes
    world.metrics["catalog"].value = 100.0
    again = dict(WaveProvider().update("shop-wave-1", first, news).outs or {})
    assert "already failed" in again["outcomes"]["catalog"]["failure"]["reason"]
    # cart started before catalog failed fast, and went back to rest at once.
    assert "catalog did not promote" in again["outcomes"]["cart"]["failure"]["reason"]
    assert world.at_rest("cart") and world.phase("cart") is RecordPhase.INTERRUPTED


def test_diff_reviews_each_changed_canary_and_only_those(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    state = created(world)
    capsys.readouterr()
    assert not WaveProvider().diff("shop-wave-1", state, wave_props()).changes
    assert WaveProvider().diff("shop-wave-1", state, wave_props(checkout=NEW)).changes
    printed = capsys.readouterr().out
    assert "checkout: ghcr.io/stefanprodan/podinfo:6.3.0 -> 6.3.1" in printed
    assert "cart:" not in printed and "catalog:" not in printed


def test_check_names_the_canary_in_each_failing_path() -> None:
    props = wave_props()
    props["members"]["catalog"]["canary"]["spec"]["analysis"]["stepWeight"] = 150.0
    props["policy"] = "abort"
    failures = {f.property: f.reason for f in WaveProvider().check({}, props).failures}
    assert failures["members.catalog.spec.analysis.stepWeight"] == (
        "spec.analysis.stepWeight: Input should be less than or equal to 100 (got 150)"
    )
    assert failures["policy"] == "not a failure policy: 'abort'"


# -- a canary's GroupRollout ----------------------------------------------------------------


def test_a_group_rollout_changes_with_its_own_template_whatever_the_wave(world: World) -> None:
    state = created(world)
    outcome = state["outcomes"]["cart"]
    props = {**member_props("cart"), "outcome": outcome}
    outs = dict(GroupRolloutProvider().create(props).outs or {})
    assert outs["promotedTemplate"] == outcome["promotedTemplate"]
    assert outs["revision"] == outcome["revision"]
    # At preview the wave's outcome is unknown: an unchanged canary stays as it is.
    preview = {**member_props("cart"), "outcome": Unknown()}  # type: ignore[no-untyped-call]
    assert not GroupRolloutProvider().diff("cart", outs, preview).changes
    changed = {**member_props("cart", NEW), "outcome": Unknown()}  # type: ignore[no-untyped-call]
    assert GroupRolloutProvider().diff("cart", outs, changed).changes


def test_a_canary_never_promoted_gives_its_primary_no_template() -> None:
    failure = {"revision": "r1", "reason": "release of ... rolled back", "verdict": True}
    props = {**member_props("cart"), "outcome": {"promotedTemplate": None, "failure": failure}}
    with pytest.raises(ReleaseFailed, match=r"^cart: never promoted: release of"):
        GroupRolloutProvider().create(props)


# -- the verdict ----------------------------------------------------------------------------


def verdict_props(final: bool, **failures: str) -> dict[str, Any]:
    wave = {
        name: {"failure": {"reason": failures[name]} if name in failures else None}
        for name in NAMES
    }
    return {
        "group": "shop",
        "wave": 1.0,
        "outcomes": [wave],
        "final": final,
        "policy": "stop",
        "later": ["payments"],
    }


def test_the_verdict_names_every_canary_that_did_not_promote() -> None:
    props = verdict_props(True, cart="rolled back: A", checkout="interrupted: B")
    with pytest.raises(ReleaseFailed) as raised:
        VerdictProvider().create(props)
    message = str(raised.value)
    assert message.startswith("shop: 2 of 3 canaries did not promote (cart, checkout)")
    assert "\n  - cart: rolled back: A" in message and "\n  - checkout: interrupted: B" in message
    assert "not started, as the group's policy is stop: payments" in message


def test_a_verdict_that_is_not_final_lets_later_waves_start() -> None:
    props = verdict_props(False, cart="rolled back")
    assert VerdictProvider().create(props).outs == props
    assert VerdictProvider().diff("v", props, props).changes  # a failure: it runs each time
    clean = verdict_props(True)
    assert not VerdictProvider().diff("v", clean, clean).changes
