"""Flagger's event webhooks: every event of a release, posted as it happens.

Flagger posts each event it records to the canary's `type: event` hooks, or, when it has none,
to its `-event-webhook`. A receiver that fails must never fail or stall the release: a failed
post is one warning line, and a hook that gave no answer at all (down, or silent until its
timeout) gets no more events in this run, so it costs the release one timeout at most.
"""

from __future__ import annotations

from collections.abc import Callable

from ..adapters.alerts import Severity
from ..adapters.bundle import Adapters
from ..spec import HookType, ReleaseSpec


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
        self._silent: set[str] = set()

    def post(self, severity: Severity, message: str, phase: str, at: float) -> None:
        """`phase` is the canary's at the event, as Flagger reports it; `at`, the event's time."""
        for hook in self._targets:
            if hook.name in self._silent:
                continue
            result = self._hooks.event(hook, phase, severity, message, at)
            if result.passed:
                continue
            if result.status is None:
                self._silent.add(hook.name)
                self._warn(
                    f"event not delivered: event webhook {hook.name}: {result.reason}; "
                    "it gets no more events in this run"
                )
            else:
                self._warn(f"event not delivered: event webhook {hook.name}: {result.reason}")
