"""Which events reach event webhooks, in which order, and what a failed delivery costs; and
that an undeliverable Slack notification never fails the release.

Over in-memory adapters: `FakeHooks` records every event post; the payload itself is the
webhook adapter's (tests/adapters/test_webhooks.py).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from components.adapters.alerts import Notifier
from components.adapters.bundle import Adapters
from components.adapters.endpoints import Endpoints, HttpClients
from components.adapters.webhooks import WebhookResult
from components.errors import ReleaseInterrupted
from components.scheduler import Scheduler
from components.spec import HookType, ReleaseSpec, Webhook, template_revision
from components.spec.timing import Timing
from tests.conftest import load_yaml
from tests.fakes import FakeClock, FakeCluster, FakeHooks, FakeMetrics, fake_adapters

AUDIT = {"name": "audit", "type": "event", "url": "http://audit.example/"}
STARTED = "New revision detected, starting canary 10% -> 50% in 5 steps every 1m"
COMPLETED = "Promotion completed! Scaling down Deployment/podinfo.default"


def tutorial(*hooks: dict[str, Any], **analysis: Any) -> ReleaseSpec:
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"].update(analysis)
    canary["spec"]["analysis"]["webhooks"] += list(hooks)
    return ReleaseSpec.parse(canary=canary, deployment=load_yaml("deployment.yaml"))


class Bench:
    """One release over fakes; `lines` is what `pulumi up` would print."""

    def __init__(
        self,
        release: ReleaseSpec,
        adapters: Adapters | None = None,
        silent_receivers: set[str] | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.cluster = FakeCluster(release)
        self.adapters = adapters or fake_adapters(release, self.clock, self.cluster)
        if silent_receivers is not None:  # shared with other releases, as in a group's wave
            self.adapters = replace(self.adapters, silent_receivers=silent_receivers)
        self.lines: list[str] = []
        self.scheduler = Scheduler(
            release,
            self.adapters,
            revision=template_revision(release.deployment["spec"]["template"]),
            timing=Timing.of(release.spec.analysis),
            progress=self.lines.append,
            clock=self.clock,
        )

    @property
    def hooks(self) -> FakeHooks:
        assert isinstance(self.adapters.hooks, FakeHooks)
        return self.adapters.hooks

    def posted(self) -> list[tuple[str, str, str]]:
        return [(event.severity, event.phase, event.message) for event in self.hooks.events]

    def warnings(self) -> list[str]:
        return [line for line in self.lines if "not delivered" in line]


def test_a_promotion_posts_flaggers_events_in_order() -> None:
    bench = Bench(tutorial(AUDIT))
    started = bench.clock.now()

    assert bench.scheduler.analyse().outcome == "promoted"
    bench.scheduler.finalise()

    assert bench.posted() == [
        ("info", "Progressing", STARTED),
        *(("info", "Progressing", f"Advance canary weight {w}") for w in (10, 20, 30, 40, 50)),
        ("info", "Promoting", "Copying the canary to the primary: analysis passed"),
        ("info", "Promoting", "primary weight 100"),
        ("info", "Succeeded", COMPLETED),
    ]
    assert {event.hook for event in bench.hooks.events} == {"audit"}
    assert "audit" not in {name for name, _ in bench.hooks.calls}  # never called as a gate
    # Each event carries the time it happened: the first step at once, then one per interval.
    analysis = [event.at - started for event in bench.hooks.events[:7]]
    assert analysis == [0, 0, 60, 120, 180, 240, 300]
    assert bench.warnings() == []


def test_a_rollback_posts_the_halts_and_the_failure_as_warnings_and_errors() -> None:
    bench = Bench(tutorial(AUDIT, threshold=2))
    bench.adapters.metrics.value = 90.0  # type: ignore[attr-defined]

    assert bench.scheduler.analyse().outcome == "rolled_back"

    posted = bench.posted()
    assert posted[:2] == [
        ("info", "Progressing", STARTED),
        ("info", "Progressing", "Advance canary weight 10"),
    ]
    (severity, phase, message) = posted[2]
    assert (severity, phase) == ("warn", "Progressing")
    assert message.startswith("Halt advancement (1/2)")
    (severity, phase, message) = posted[3]
    assert (severity, phase) == ("error", "Failed")
    assert message.startswith("Canary failed, rolling back: failed checks threshold reached 2")
    assert len(posted) == 4


def test_a_confirm_gate_closed_posts_each_wait() -> None:
    gate = {"name": "gate", "type": "confirm-rollout", "url": "http://gate.example/"}
    bench = Bench(tutorial(AUDIT, gate))
    bench.hooks.failing.add("gate")
    bench.clock.interrupt_at = bench.clock.now() + 12.0

    with pytest.raises(ReleaseInterrupted):
        bench.scheduler.analyse()

    posted = bench.posted()
    waits = [event for event in posted if event[2].startswith("Waiting: confirm-rollout")]
    assert len(waits) == 3 and all(event[:2] == ("info", "Waiting") for event in waits)
    assert posted[-1] == (
        "warn",
        "Waiting",
        "interrupted (SIGINT): all traffic is on the primary; "
        "the next pulumi up starts the release over",
    )


def test_a_failed_post_rollout_hook_is_a_warning_event() -> None:
    hook = {"name": "notify-ci", "type": "post-rollout", "url": "http://ci.example/"}
    bench = Bench(tutorial(AUDIT, hook))
    bench.hooks.failing.add("notify-ci")

    bench.scheduler.analyse()
    bench.scheduler.finalise()

    assert ("warn", "Succeeded", "post-rollout hook notify-ci: answered 500") in bench.posted()
    assert bench.posted()[-1] == ("info", "Succeeded", COMPLETED)


def test_an_error_that_stops_the_release_is_posted() -> None:
    bench = Bench(tutorial(AUDIT))
    real = bench.adapters.metrics.evaluate

    def broken(query: Any) -> Any:
        if bench.adapters.metrics.calls >= 2:  # type: ignore[attr-defined]
            raise RuntimeError("the metrics adapter broke")
        return real(query)

    bench.adapters.metrics.evaluate = broken  # type: ignore[method-assign]

    with pytest.raises(RuntimeError):
        bench.scheduler.analyse()

    assert bench.posted()[-1] == (
        "warn",
        "Progressing",
        "stopped by an error: the metrics adapter broke",
    )


def test_a_receiver_that_answers_with_an_error_costs_one_line_per_event() -> None:
    bench = Bench(tutorial(AUDIT))
    bench.hooks.failing.add("audit")

    assert bench.scheduler.analyse().outcome == "promoted"

    assert len(bench.hooks.events) == 7  # every event still tried
    assert bench.warnings() == [
        "podinfo: event not delivered: event webhook audit: answered 500"
    ] * len(bench.hooks.events)


def test_a_receiver_that_never_answers_gets_one_attempt_and_one_line() -> None:
    other = {**AUDIT, "name": "archive", "url": "http://archive.example/"}
    bench = Bench(tutorial(AUDIT, other))
    bench.hooks.unreachable.add("audit")

    assert bench.scheduler.analyse().outcome == "promoted"

    assert [event.hook for event in bench.hooks.events].count("audit") == 1
    assert [event.hook for event in bench.hooks.events].count("archive") == 7
    assert bench.warnings() == [
        "podinfo: event not delivered: event webhook audit: ConnectError; "
        "it gets no more events in this run"
    ]


def test_the_gates_event_webhook_gets_the_events_of_a_canary_without_its_own() -> None:
    release = tutorial()
    clock = FakeClock()
    fallback = Webhook(name="events", url="http://events.example/", type=HookType.EVENT)
    adapters = replace(fake_adapters(release, clock), event_webhook=fallback)
    bench = Bench(release, adapters)

    bench.scheduler.analyse()

    assert {event.hook for event in bench.hooks.events} == {"events"}
    assert bench.posted()[0] == ("info", "Progressing", STARTED)


def test_a_canary_with_event_hooks_overrides_the_gates_event_webhook() -> None:
    release = tutorial(AUDIT)
    clock = FakeClock()
    fallback = Webhook(name="events", url="http://events.example/", type=HookType.EVENT)
    bench = Bench(release, replace(fake_adapters(release, clock), event_webhook=fallback))

    bench.scheduler.analyse()

    assert {event.hook for event in bench.hooks.events} == {"audit"}


def test_no_event_hooks_means_no_posts() -> None:
    bench = Bench(tutorial())

    bench.scheduler.analyse()

    assert bench.hooks.events == []


# -- the tutorial's Slack webhook, delivered as alerts -----------------------------------------


@pytest.fixture
def endpoints() -> Iterator[Endpoints]:
    with HttpClients() as clients:
        yield Endpoints(clients)


def test_a_slack_notification_that_cannot_be_delivered_does_not_fail_the_release(
    endpoints: Endpoints,
) -> None:
    secret = "T0/B0/XyZ-s3cret"
    slack = {
        "name": "slack",
        "url": f"http://127.0.0.1:1/services/{secret}",  # nothing listens there
        "metadata": {"type": "slack", "channel": "deployments", "username": "flagger"},
    }
    release = tutorial(slack)
    clock = FakeClock()
    adapters = replace(
        fake_adapters(release, clock),
        metrics=FakeMetrics(),
        alerts=Notifier(endpoints, release, timeout=1.0),
    )
    bench = Bench(release, adapters)

    assert bench.scheduler.analyse().outcome == "promoted"
    bench.scheduler.finalise()

    warnings = bench.warnings()
    assert len(warnings) == 8  # one per alert: the start, five steps, the copy, the completion
    assert all(
        line.startswith(
            "podinfo: alert not delivered: webhook slack (Slack notification): "
            "not delivered (ConnectError)"
        )
        for line in warnings
    )
    assert secret not in " ".join(bench.lines)
    assert "slack" not in {name for name, _ in bench.hooks.calls}  # not called as a gate


def test_a_rollback_moves_traffic_back_before_its_event_is_posted() -> None:
    """A slow receiver must not keep users on a failed canary."""
    bench = Bench(tutorial(AUDIT, threshold=2))
    bench.adapters.metrics.value = 90.0  # type: ignore[attr-defined]
    weights_at_post: dict[str, int] = {}
    post = bench.hooks.event

    def recording(hook: Webhook, phase: str, *args: Any) -> Any:
        weights_at_post[phase] = bench.cluster.read_routes().canary
        return post(hook, phase, *args)

    bench.hooks.event = recording  # type: ignore[method-assign]

    assert bench.scheduler.analyse().outcome == "rolled_back"

    assert weights_at_post["Failed"] == 0
    assert weights_at_post["Progressing"] == 10  # a halt is posted at the weight it holds


def test_an_event_hook_that_raises_is_named_by_type_and_the_release_goes_on() -> None:
    bench = Bench(tutorial(AUDIT))

    def broken(hook: Webhook, *_: Any) -> Any:
        raise httpx.InvalidURL("Invalid port: '80x'")

    bench.hooks.event = broken  # type: ignore[method-assign]

    assert bench.scheduler.analyse().outcome == "promoted"
    assert bench.warnings() == [
        "podinfo: event not delivered: event webhook audit: InvalidURL; "
        "it gets no more events in this run"
    ]


def test_no_event_is_posted_once_the_process_is_stopping(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seconds before the engine's SIGKILL belong to the clean-up."""
    bench = Bench(tutorial(AUDIT))
    monkeypatch.setattr("components.scheduler.events.stopping", lambda: "SIGINT")
    bench.clock.interrupt_at = bench.clock.now() + 12.0

    with pytest.raises(ReleaseInterrupted):
        bench.scheduler.analyse()

    assert bench.posted() == []
    assert bench.cluster.read_routes().canary == 0


def test_a_receiver_that_errs_only_after_its_timeout_gets_no_more_events() -> None:
    """A gateway answering 504 once the hook's time is up costs the release that one post."""
    bench = Bench(tutorial({**AUDIT, "timeout": "10ms"}))

    def late(hook: Webhook, *_: Any) -> WebhookResult:
        time.sleep(0.02)
        return WebhookResult(hook.name, hook.hook_type, False, 504, "answered 504", 0.02, 1)

    bench.hooks.event = late  # type: ignore[method-assign]

    assert bench.scheduler.analyse().outcome == "promoted"
    assert bench.warnings() == [
        "podinfo: event not delivered: event webhook audit: answered 504; "
        "it gets no more events in this run"
    ]


def test_a_receiver_silenced_by_one_release_gets_nothing_from_the_others_of_its_wave() -> None:
    """A group's wave shares its clients, and with them which receivers gave no answer: a dead
    `-event-webhook` costs the wave one post, not one per canary, on the wave's one thread."""
    shared: set[str] = set()
    first, second = (Bench(tutorial(AUDIT), silent_receivers=shared) for _ in range(2))
    for bench in (first, second):
        bench.hooks.unreachable.add("audit")

    assert first.scheduler.analyse().outcome == "promoted"
    assert second.scheduler.analyse().outcome == "promoted"

    assert len(first.hooks.events) == 1 and second.hooks.events == []
    assert shared == {AUDIT["url"]}
