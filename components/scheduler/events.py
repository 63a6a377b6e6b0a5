"""Flagger's event webhooks: every event of a release, posted as it happens.

Flagger posts each event it records to the canary's `type: event` hooks, or, when it has none,
to its `-event-webhook`. A receiver that fails must never fail or stall the release: a failed
post is one warning line, and a hook that gave no answer at all (down, silent until its
timeout, or answering an error only after its timeout) gets no more events in this run, from
this release or any other over the same clients (a group's wave), so it costs one post with
its retries at most. Events are posted after the traffic of their decision moved, and none once
the process is stopping, when the seconds before the engine's SIGKILL belong to the clean-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..adapters.alerts import Severity
from ..adapters.bundle import Adapters
from ..adapters.stop import stopping
from ..errors import ReleaseInterrupted
from ..spec import HookType, ReleaseSpec, Webhook


class EventPoster:
    """Posts one release's events to its event webhooks; never raises."""

    def __init__(
        self, release: ReleaseSpec, adapters: Adapters, warn: Callable[[str], None]
    ) -> None:
        own = release.spec.analysis.hooks(HookType.EVENT)
        fallback = [adapters.event_webhook] if adapters.event_webhook else []
        self._targets = own or fallback
        self._hooks = adapters.hooks
        self._warn = warn
        # Shared with the other releases over the same clients (a group's wave), by URL.
        self._silent = adapters.silent_receivers

    def post(self, severity: Severity, message: str, phase: str, at: float) -> None:
        """`phase` is the canary's at the event, as Flagger reports it; `at`, the event's time."""
        if stopping():
            return
        for hook in self._targets:
            if hook.url in self._silent:
                continue
            started = time.monotonic()
            try:
                result = self._hooks.event(hook, phase, severity, message, at)
            except ReleaseInterrupted:
                raise
            except Exception as error:  # e.g. a URL httpx cannot parse: named by type only
                self._silence(hook, type(error).__name__)
                continue
            if result.passed:
                continue
            if result.status is None or time.monotonic() - started >= hook.timeout_seconds:
                self._silence(hook, result.reason)
            else:
                self._warn(f"event not delivered: event webhook {hook.name}: {result.reason}")

    def _silence(self, hook: Webhook, reason: str | None) -> None:
        self._silent.add(hook.url)
        self._warn(
            f"event not delivered: event webhook {hook.name}: {reason}; "
            "it gets no more events in this run"
        )
