"""Webhook calls against a recording stub: Flagger's payload, pass/fail rules, retries."""

from __future__ import annotations

from typing import Any

import pytest
from http_stub import Reply, Stub

from components.adapters.alerts import Severity
from components.adapters.endpoints import Endpoints
from components.adapters.webhooks import (
    WebhookCaller,
    event_payload,
    payload,
    phase_for,
)
from components.spec import HookType, Webhook, checksum

CHECKSUM = checksum("6d4cf56db6", "podinfo-config=abc")


def hook(url: str, **fields: Any) -> Webhook:
    return Webhook.model_validate({"name": "load-test", "url": url, **fields})


def call(caller: WebhookCaller, target: Webhook, phase: str = "Progressing") -> Any:
    return caller.call(target, phase)


@pytest.fixture
def caller(endpoints: Endpoints) -> WebhookCaller:
    return WebhookCaller(
        endpoints, name="podinfo", namespace="test", checksum=CHECKSUM, backoff=0.01
    )


def test_payload_is_flaggers_json() -> None:
    assert payload("podinfo", "test", "Progressing", "abc", {"cmd": "hey"}) == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "abc",
        "metadata": {"cmd": "hey"},
    }
    assert "metadata" not in payload("podinfo", "test", "Progressing", "abc", None)


def test_event_payload_adds_message_type_and_ms_timestamp() -> None:
    body = event_payload(
        "podinfo",
        "test",
        "Failed",
        "abc",
        {"team": "a"},
        message="Rolling back",
        event_type="Warning",
        now=1700000000.1234,
    )

    assert body["phase"] == "Failed"
    assert body["metadata"] == {
        "team": "a",
        "eventMessage": "Rolling back",
        "eventType": "Warning",
        "timestamp": "1700000000123",
    }


def test_checksum_is_stable_hex_and_tracks_both_inputs() -> None:
    assert checksum("abc") == checksum("abc")
    assert int(checksum("abc"), 16) >= 0
    assert len({checksum("abc"), checksum("abd"), checksum("abc", "cfg")}) == 3


@pytest.mark.parametrize(
    ("hook_type", "sent"),
    [
        (HookType.PRE_ROLLOUT, "Progressing"),
        (HookType.ROLLOUT, "Progressing"),
        (HookType.CONFIRM_PROMOTION, "Progressing"),
        (HookType.CONFIRM_ROLLOUT, "Waiting"),
        (HookType.POST_ROLLOUT, "Waiting"),
        (HookType.ROLLBACK, "Waiting"),
    ],
)
def test_phase_for(hook_type: HookType, sent: str) -> None:
    assert phase_for(hook_type, "Waiting") == sent


@pytest.mark.parametrize("status", [200, 202])
def test_loadtester_cmd_hook_passes_with_payload_sent(
    stub: Stub, caller: WebhookCaller, status: int
) -> None:
    stub.default = Reply(status, "")
    metadata = {"type": "cmd", "cmd": "hey -z 1m -q 10 http://podinfo-canary.test:9898/"}

    result = call(caller, hook(f"{stub.url}/", metadata=metadata), phase="Failed")

    assert (result.passed, result.status, result.reason, result.attempts) == (True, status, None, 1)
    assert (result.name, result.type) == ("load-test", HookType.ROLLOUT)
    assert stub.seen[0].method == "POST"
    assert stub.seen[0].headers["content-type"] == "application/json"
    assert stub.seen[0].body == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Failed",
        "checksum": CHECKSUM,
        "metadata": metadata,
    }


@pytest.mark.parametrize(("status", "body"), [(403, "Forbidden"), (500, "hey: command failed")])
def test_status_above_202_fails_with_the_body(
    stub: Stub, caller: WebhookCaller, status: int, body: str
) -> None:
    stub.default = Reply(status, body)

    result = call(caller, hook(stub.url))

    assert (result.passed, result.status) == (False, status)
    assert result.reason == f"answered {status}: {body}"


def test_long_bodies_are_truncated(stub: Stub, caller: WebhookCaller) -> None:
    stub.default = Reply(400, "x" * 10_000)

    result = call(caller, hook(stub.url))

    assert result.reason is not None
    assert result.reason.endswith("...")
    assert len(result.reason) < 400


def test_timeout_fails_with_the_hooks_timeout(stub: Stub, caller: WebhookCaller) -> None:
    stub.default = Reply(delay=1.5)

    result = call(caller, hook(stub.url, timeout="1s"))

    assert (result.passed, result.status) == (False, None)
    assert result.reason == "timed out after 1s"
    assert 1.0 <= result.elapsed < 1.5


def test_server_errors_are_retried_until_one_passes(stub: Stub, caller: WebhookCaller) -> None:
    stub.queued = [Reply(503, "busy"), Reply(502, "busy")]

    result = call(caller, hook(stub.url, retries=3))

    assert (result.passed, result.attempts, len(stub.seen)) == (True, 3, 3)


def test_retries_run_out_with_the_last_reason(stub: Stub, caller: WebhookCaller) -> None:
    stub.default = Reply(500, "still broken")

    result = call(caller, hook(stub.url, retries=2))

    assert (result.passed, result.attempts, result.reason) == (
        False,
        3,
        "answered 500: still broken",
    )


def test_a_closed_gate_is_not_retried(stub: Stub, caller: WebhookCaller) -> None:
    stub.default = Reply(403, "gate closed")

    result = call(caller, hook(stub.url, retries=3, type="confirm-promotion"))

    assert (result.passed, result.attempts, result.type) == (
        False,
        1,
        HookType.CONFIRM_PROMOTION,
    )


def test_connection_refused_fails_with_reason(caller: WebhookCaller) -> None:
    result = call(caller, hook("http://127.0.0.1:1/"))

    assert not result.passed
    assert result.reason is not None
    assert result.reason.startswith("ConnectError")


def test_disable_tls_skips_certificate_checks(tls_stub: Stub, caller: WebhookCaller) -> None:
    verified = call(caller, hook(tls_stub.url))
    assert not verified.passed
    assert "CERTIFICATE_VERIFY_FAILED" in (verified.reason or "")

    result = call(caller, hook(tls_stub.url, disableTLS=True))
    assert result.passed
    assert len(tls_stub.seen) == 1


def test_a_hook_the_receiver_did_not_take_is_sent_again(stub: Stub, caller: WebhookCaller) -> None:
    """503 and 429 mean nothing ran: sending again cannot run a load test twice."""
    stub.queued = [Reply(503, "unavailable"), Reply(429, "later")]
    result = call(caller, hook(stub.url, timeout="5s"))
    assert (result.passed, result.attempts) == (True, 3)


def test_a_hook_that_ran_and_failed_is_retried_only_as_the_hook_asks(
    stub: Stub, caller: WebhookCaller
) -> None:
    stub.default = Reply(500, "test failed")
    once = call(caller, hook(stub.url, timeout="5s"))
    assert (once.passed, once.attempts) == (False, 1)
    twice = call(caller, hook(stub.url, timeout="5s", retries=1))
    assert (twice.passed, twice.attempts) == (False, 2)


# -- event webhooks ---------------------------------------------------------------------------


def event_hook(url: str, **fields: Any) -> Webhook:
    return Webhook.model_validate({"name": "audit", "url": url, "type": "event", **fields})


@pytest.mark.parametrize(
    ("severity", "event_type"), [("info", "Normal"), ("warn", "Warning"), ("error", "Warning")]
)
def test_an_event_is_posted_with_flaggers_event_payload(
    stub: Stub, caller: WebhookCaller, severity: Severity, event_type: str
) -> None:
    metadata = {"team": "shop", "eventType": "the event's own wins"}
    target = event_hook(f"{stub.url}/events", metadata=metadata)

    result = caller.event(target, "Failed", severity, "Canary failed", 1700000000.1234)

    assert (result.passed, result.status, result.attempts) == (True, 200, 1)
    (seen,) = stub.seen
    assert (seen.method, seen.path) == ("POST", "/events")
    assert seen.headers["content-type"] == "application/json"
    assert seen.body == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Failed",
        "checksum": CHECKSUM,
        "metadata": {
            "team": "shop",
            "eventMessage": "Canary failed",
            "eventType": event_type,
            "timestamp": "1700000000123",
        },
    }


def test_an_event_to_a_receiver_that_is_not_there_is_tried_once(caller: WebhookCaller) -> None:
    """A gate's request is sent again while its timeout lasts; an event's is not."""
    result = caller.event(
        event_hook("http://127.0.0.1:1/", timeout="5s"), "Progressing", "info", "x", 0
    )

    assert (result.passed, result.status, result.attempts) == (False, None, 1)
    assert (result.reason or "").startswith("ConnectError")


def test_an_event_keeps_to_the_hooks_timeout_and_retries(stub: Stub, caller: WebhookCaller) -> None:
    stub.queued = [Reply(delay=1.5)]
    slow = caller.event(event_hook(stub.url, timeout="1s"), "Progressing", "info", "x", 0)
    assert (slow.passed, slow.reason) == (False, "timed out after 1s")

    stub.queued = [Reply(503, "busy")]
    retried = caller.event(event_hook(stub.url, retries=1), "Progressing", "info", "x", 0)
    assert (retried.passed, retried.attempts) == (True, 2)
