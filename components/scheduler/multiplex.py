"""Many releases on one thread: each is a generator of the seconds it waits between ticks
(`Scheduler.run`), and the one whose wake-up comes first is resumed next.

Why: the Python dynamic-provider server answers every call on four worker threads, and the
engine's step generator waits for one to check any later resource of the stack. A wave of
canaries run here holds one thread for all of them, and what a release costs is its sleeping
time (a heap entry), not a thread or a connection of its own.

Two ways releases end early:
- the process is told to stop (`adapters.stop`): the clock's sleep raises ReleaseInterrupted,
  which is thrown into every release still running. Their clean-ups (traffic to the primary,
  canary to zero, record) run on a few threads at once, so that a hundred fit in the seconds the
  engine gives between its SIGINT and its SIGKILL;
- `roll_back_others`: once a release fails, every other one still running is thrown a
  ReleaseInterrupted naming it (and returns its traffic to the primary), and those not started
  yet never start.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..adapters.stop import stopping
from ..errors import ReleaseInterrupted
from .clock import Clock

T = TypeVar("T")
Waits = Generator[float, None, T]
# How many releases' clean-ups run at once when they are stopped together.
CLEANUP_THREADS = 16


@dataclass(frozen=True)
class Finished(Generic[T]):
    """How one release ended: what its generator returned, or what it raised."""

    value: T | None = None
    error: Exception | None = None


def raised(finished: Finished[T]) -> bool:
    """The default test of a failed release: it raised."""
    return finished.error is not None


def run_all(
    runs: Mapping[str, Waits[T]],
    clock: Clock,
    *,
    roll_back_others: bool = False,
    failed: Callable[[Finished[T]], bool] = raised,
) -> dict[str, Finished[T]]:
    """Runs every release to its end on this thread, started in the order given; returns how
    each ended, by name. `failed` tells which endings make `roll_back_others` act."""
    return _Multiplexer(clock, roll_back_others, failed).run(runs)


class _Multiplexer(Generic[T]):
    def __init__(
        self, clock: Clock, roll_back_others: bool, failed: Callable[[Finished[T]], bool]
    ) -> None:
        self.clock = clock
        self.roll_back_others = roll_back_others
        self.failed = failed
        self.live: dict[str, Waits[T]] = {}
        self.ended: dict[str, Finished[T]] = {}
        self._wakes: list[tuple[float, int, str]] = []
        self._order = itertools.count()

    def run(self, runs: Mapping[str, Waits[T]]) -> dict[str, Finished[T]]:
        pending = list(runs.items())
        while pending:
            name, waits = pending.pop(0)
            reason = stopping() or self._failure()
            if reason is not None:  # never started: nothing of it has moved
                waits.close()
                self.ended[name] = Finished(error=ReleaseInterrupted(f"not started: {reason}"))
                continue
            self.live[name] = waits
            self._resumed(name, _resume(waits))
        while self._wakes:
            at, _, name = heapq.heappop(self._wakes)
            try:
                self.clock.sleep(max(at - self.clock.now(), 0.0))
            except ReleaseInterrupted as interrupted:
                self._stop_all(str(interrupted))
                continue
            self._resumed(name, _resume(self.live[name]))
        return {name: self.ended[name] for name in runs}

    def _resumed(self, name: str, resumed: float | Finished[T]) -> None:
        """Queues the next wake-up of a release that waits, or keeps how it ended."""
        if not isinstance(resumed, Finished):
            self._wake(name, resumed)
            return
        del self.live[name]
        self.ended[name] = resumed
        if self.roll_back_others and self.failed(resumed) and self.live:
            self._stop_all(self._failure() or "")

    def _wake(self, name: str, delay: float) -> None:
        heapq.heappush(self._wakes, (self.clock.now() + max(delay, 0.0), next(self._order), name))

    def _failure(self) -> str | None:
        """Why the others roll back, once one release failed under `roll_back_others`."""
        if not self.roll_back_others:
            return None
        first = next((name for name, end in self.ended.items() if self.failed(end)), None)
        if first is None:
            return None
        return f"{first} did not promote and the group's policy rolls back its wave"

    def _stop_all(self, reason: str) -> None:
        """Throws ReleaseInterrupted into every live release, several at once; each returns
        its traffic to the primary and ends (or waits again, and is queued as before)."""
        self._wakes.clear()
        stopped, self.live = self.live, {}
        for name, resumed in _throw_into(stopped, reason).items():
            if isinstance(resumed, Finished):
                self.ended[name] = resumed
            else:
                self.live[name] = stopped[name]
                self._wake(name, resumed)


def _resume(waits: Waits[T], thrown: str | None = None) -> float | Finished[T]:
    """Runs a release to its next wait (thrown a ReleaseInterrupted with reason `thrown`, if
    given): the seconds it waits now, or how it ended."""
    try:
        if thrown is None:
            return next(waits)
        # One exception each: a traceback is written into the exception object raised.
        return waits.throw(ReleaseInterrupted(thrown))
    except StopIteration as done:
        return Finished(value=done.value)
    except Exception as error:
        return Finished(error=error)


def _throw_into(live: Mapping[str, Waits[T]], reason: str) -> dict[str, float | Finished[T]]:
    """Each live release thrown its own ReleaseInterrupted, on up to CLEANUP_THREADS threads.

    Plain threads, not an executor: this runs while the interpreter shuts down (the engine's
    SIGINT), when executors refuse new work but threads still start and are waited for.
    """
    queue = list(live.items())
    resumed: dict[str, float | Finished[T]] = {}
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                name, waits = queue.pop(0)
            outcome: float | Finished[T] = _resume(waits, reason)
            with lock:
                resumed[name] = outcome

    threads = [
        threading.Thread(target=work, name=f"release-stop-{index}")
        for index in range(min(CLEANUP_THREADS, len(queue)) - 1)
    ]
    for thread in threads:
        thread.start()
    work()
    for thread in threads:
        thread.join()
    return {name: resumed[name] for name in live}
