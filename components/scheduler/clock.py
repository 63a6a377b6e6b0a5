"""Time for a release: the scheduler reads it and sleeps through one injectable clock.

The system clock's sleep wakes early when the process is told to stop (`adapters.stop`), so
a release in its interval between checks aborts at once instead of after the interval.
"""

from __future__ import annotations

import time
from typing import Protocol

from ..adapters.stop import STOP
from ..errors import ReleaseInterrupted


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float, *, interruptible: bool = True) -> None:
        """Waits; raises ReleaseInterrupted when the release must stop instead, unless the
        wait is part of returning traffic to rest (`interruptible=False`)."""
        ...


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
