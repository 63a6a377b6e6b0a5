"""The critical watch: between two checks, each critical condition's query once a scrape.

Checks come once an interval, so a canary that turns clearly bad just after one would keep its
users until `threshold` checks failed. The watch slices the wait between checks into scrape
intervals (Prometheus has nothing newer to say in between: one query per condition per scrape
is all the watch costs) and ends the wait at the first breach. The slices end where the wait
would have, so the checks keep their schedule.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

from ..adapters.ports import MetricsPort
from ..analysis import Breach, breach
from ..spec.critical import CriticalQuery
from .clock import Clock

# A remainder of a wait shorter than this is not worth a slice of its own.
SLICE_FLOOR_SECONDS = 0.01


class CriticalWatch:
    """Watches one release's critical conditions through `metrics` (None: not watched)."""

    def __init__(
        self,
        queries: Sequence[CriticalQuery],
        metrics: MetricsPort | None,
        clock: Clock,
        scrape_seconds: float,
    ) -> None:
        self.queries = tuple(queries)
        self.metrics = metrics
        self.clock = clock
        self.scrape_seconds = scrape_seconds

    @property
    def active(self) -> bool:
        return bool(self.queries) and self.metrics is not None

    def wait(self, seconds: float) -> Generator[float, None, Breach | None]:
        """Waits `seconds` (as a generator of waits), querying every condition after each
        scrape interval; returns the first breach, at once, or None once the time is up."""
        if not self.active:
            yield seconds
            return None
        assert self.metrics is not None
        end = self.clock.now() + seconds
        while True:
            yield min(self.scrape_seconds, max(end - self.clock.now(), 0.0))
            for critical in self.queries:
                found = breach(critical.condition, self.metrics.evaluate(critical.query).value)
                if found is not None:
                    return found
            if end - self.clock.now() <= SLICE_FLOOR_SECONDS:
                return None
