"""The process-wide request to stop every release: Ctrl-C, SIGTERM or interpreter shutdown.

Set once, never cleared. The scheduler's sleeps wake on it, and the adapters then keep their
retries short: the engine kills a provider about 5 s after its SIGINT, and returning traffic to
the primary must fit in that.
"""

from __future__ import annotations

import threading

# How long a call may keep retrying once the process is stopping.
STOPPING_BUDGET_SECONDS = 1.5


class _Stop:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""

    def request(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()


STOP = _Stop()


def stop_all(reason: str) -> None:
    """Asks every release of this process to abort: traffic to the primary, record interrupted."""
    STOP.request(reason)


def stopping() -> str | None:
    """Why the process is stopping its releases, or None."""
    return STOP.reason if STOP.event.is_set() else None
