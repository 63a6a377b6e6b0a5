"""Flagger's webhooks: the JSON payload, POSTed with a timeout and retries, judged by status.

A hook passes when it answers with a status of 202 or lower: the loadtester's `cmd` hooks run
asynchronously and answer 202 at once. Anything above 202 fails with the response body as the
reason, so a gate's or a test's own message reaches the operator.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..spec import HookType, Webhook
from .endpoints import Endpoints
from .retry import RetryCounter, transport_transient

PASSING_STATUS = 202
EXCERPT_LIMIT = 300

# Flagger sends "Progressing" to every hook except these, which get the canary's actual phase.
_ACTUAL_PHASE_HOOKS = frozenset(
    {HookType.CONFIRM_ROLLOUT, HookType.POST_ROLLOUT, HookType.ROLLBACK}
)
_PROGRESSING = "Progressing"
_MAX_BACKOFF = 5.0


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """One line of at most `limit` characters, so a HTML error page cannot flood a message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[: limit - 3]}..."


def transport_failure(error: httpx.HTTPError, timeout: float) -> str:
    """Why a request got no answer; the URL is not repeated (callers name the endpoint)."""
    if isinstance(error, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    detail = str(error)
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


def phase_for(hook_type: HookType, phase: str) -> str:
    """The phase Flagger reports to a hook of this type; callers pass the result to `call`."""
    return phase if hook_type in _ACTUAL_PHASE_HOOKS else _PROGRESSING


def payload(
    name: str,
    namespace: str,
    phase: str,
    checksum: str,
    metadata: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Flagger's body; like its `omitempty`, `metadata` is left out when there is none."""
    body: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "phase": phase,
        "checksum": checksum,
    }
    if metadata:
        body["metadata"] = dict(metadata)
    return body


def event_payload(
    name: str,
    namespace: str,
    phase: str,
    checksum: str,
    metadata: Mapping[str, Any] | None,
    *,
    message: str,
    event_type: str,
    now: float | None = None,
) -> dict[str, Any]:
    """An event hook's body: the message, its type (Normal/Warning) and a ms timestamp string."""
    moment = time.time() if now is None else now
    extra = {
        "eventMessage": message,
        "eventType": event_type,
        "timestamp": str(int(moment * 1000)),
    }
    return payload(name, namespace, phase, checksum, {**(metadata or {}), **extra})


@dataclass(frozen=True)
class WebhookResult:
    """The outcome of one hook; `attempts` counts the first try plus retries."""

    name: str
    type: HookType
    passed: bool
    status: int | None
    reason: str | None
    elapsed: float
    attempts: int

    def describe(self, width: int = 70) -> str:
        """`load-test (rollout) -> 202 in 12 ms`; a failure adds its reason, cut to keep the
        line within `width` columns (the reason is given whole where the release fails)."""
        answer = "no answer" if self.status is None else str(self.status)
        tries = f", {self.attempts} attempts" if self.attempts > 1 else ""
        line = f"{self.name} ({self.type}) -> {answer} in {self.elapsed * 1000:.0f} ms{tries}"
        if self.passed or not self.reason:
            return line
        room = max(width - len(line) - 2, 20)
        return f"{line}: {excerpt(self.reason, room)}"


class WebhookCaller:
    """POSTs hooks through `Endpoints`, so in-cluster loadtester URLs work from a laptop.

    `timeout` applies to each attempt (Flagger bounds the whole call); with `retries`, a
    connection error, a timeout, a 429 or a 5xx is retried after `backoff` seconds, doubling.
    A 4xx other than 429 is final, like Flagger's retrying client, so a closed gate's 403
    does not wait for retries.

    `disableTLS` can only skip certificate checks for URLs that are sent direct: a hook
    reached through the API server's service proxy is verified by the API server, not here.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        name: str,
        namespace: str,
        checksum: str,
        backoff: float = 0.5,
        retries: RetryCounter | None = None,
    ) -> None:
        self._endpoints = endpoints
        self.name, self.namespace, self.checksum = name, namespace, checksum
        self._backoff = backoff
        self.retries = retries

    def call(self, hook: Webhook, phase: str) -> WebhookResult:
        """Sends `phase` as given: the caller picks it, usually with `phase_for`."""
        return self.send(
            hook, payload(self.name, self.namespace, phase, self.checksum, hook.metadata)
        )

    def send(self, hook: Webhook, body: Mapping[str, Any]) -> WebhookResult:
        """POSTs a prepared body (e.g. from `event_payload`) with the hook's timeout and retries.

        Besides the hook's own `retries`, a request the receiver never took (a refused
        connection, 429, 503) is sent again while the hook's timeout lasts: it ran nothing, so
        sending it again cannot run a load test twice.
        """
        timeout = hook.timeout_seconds
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            status, reason, retriable, taken = self._attempt(hook, body, timeout)
            if not retriable:
                break
            wait = min(self._backoff * 2 ** (attempts - 1), _MAX_BACKOFF)
            own_retry_left = attempts <= hook.retries
            never_taken = not taken and time.monotonic() - started + wait < timeout
            if not (own_retry_left or never_taken):
                break
            if self.retries is not None:
                self.retries.add()
            time.sleep(wait)
        return WebhookResult(
            name=hook.name,
            type=hook.hook_type,
            passed=reason is None,
            status=status,
            reason=reason,
            elapsed=time.monotonic() - started,
            attempts=attempts,
        )

    def _attempt(
        self, hook: Webhook, body: Mapping[str, Any], timeout: float
    ) -> tuple[int | None, str | None, bool, bool]:
        """(status, failure reason or None, whether another attempt may help, whether the
        receiver took the request in)."""
        try:
            response = self._post(hook, body, timeout)
        except httpx.ConnectError as error:
            return None, transport_failure(error, timeout), transport_transient(error), False
        except httpx.HTTPError as error:
            return None, transport_failure(error, timeout), True, True
        status = response.status_code
        if status <= PASSING_STATUS:
            return status, None, False, True
        text = excerpt(response.text)
        reason = f"answered {status}: {text}" if text else f"answered {status}"
        return status, reason, status == 429 or status >= 500, status not in (429, 503)

    def _post(self, hook: Webhook, body: Mapping[str, Any], timeout: float) -> httpx.Response:
        return self._endpoints.request(
            "POST", hook.url, verify=not hook.disable_tls, json=body, timeout=timeout
        )
