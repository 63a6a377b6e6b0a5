"""Time for a release: the scheduler reads it and sleeps through one injectable clock.

The system clock's sleep wakes early when the process is told to stop (`stop_all`), so a
release in its interval between checks aborts at once instead of after the interval.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from ..errors import ReleaseInterrupted


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float, *, interruptible: bool = True) -> None:
        """Waits; raises ReleaseInterrupted when the release must stop instead, unless the
        wait is part of returning traffic to rest (`interruptible=False`)."""
        ...


class _Stop:
    """The process-wide request to stop every release: set once, never cleared."""

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


class SystemClock:
    """Wall-clock time; sleeps that end early, with ReleaseInterrupted, on `stop_all`."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, *, interruptible: bool = True) -> None:
        if not interruptible:
            time.sleep(max(seconds, 0.0))
        elif STOP.event.wait(max(seconds, 0.0)):
            raise ReleaseInterrupted(STOP.reason)


SYSTEM_CLOCK = SystemClock()
