"""Prints how fast the critical watch pulls a canary that turns clearly bad, on the test bed.

Not a test: the times are measurements. `PYTHONPATH=. venv/bin/python benchmarks/critical.py`
    clearly bad: the tutorial's spec at its real 1m interval; 60% errors injected in the middle
        of the first step; time until all traffic is on the primary, and its ratio to
        threshold x interval, when Flagger would roll back
    mildly bad: 2% errors at a 2s interval, which must still go through the normal threshold
    release_timing.py's promotion and rollback ratios, and what their fixed overhead is made of,
        from the timestamps of the progress lines
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks import release_timing
from components.adapters.manifests import read_release
from components.rehearse import rehearse
from components.rehearse.testbed import Fault, TestBed
from components.scheduler import ReleaseReport
from components.scheduler.driver import HOLD_POLL_SECONDS
from components.spec import ReleaseSpec, parse_seconds
from components.spec.critical import Critical
from components.spec.timing import Timing

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "podinfo"
POLL_SECONDS = 0.05


class StampedLines(io.TextIOBase):
    """A stdout that keeps each line with the time it was written, to time a release's
    phases from its progress lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        now = time.time()
        self.lines += [(now, line) for line in complete]
        return len(text)


@contextlib.contextmanager
def stamped() -> Iterator[StampedLines]:
    lines = StampedLines()
    with contextlib.redirect_stdout(lines):
        yield lines


@dataclass(frozen=True)
class Phases:
    """A release's time, as its progress lines split it."""

    scale_up: float
    """From the first line to the first weighted step: the canary scaled up and ready."""
    holds: int
    """Readiness looks that found the canary not ready yet, each followed by a hold."""
    analysis: float
    """From the first weighted step to the verdict."""
    checks: int

    @classmethod
    def of(cls, lines: list[tuple[float, str]]) -> Phases:
        said = [(at, line.split(": ", 1)[-1]) for at, line in lines]  # without "podinfo: "
        stepped = next(at for at, text in said if text.startswith("Advance "))
        verdict = next(
            at
            for at, text in said
            if text.startswith(("Copying the canary to the primary", "Canary failed"))
        )
        return cls(
            scale_up=stepped - said[0][0],
            holds=sum(1 for _, text in said if text.startswith("Waiting: canary not ready")),
            analysis=verdict - stepped,
            checks=sum(1 for _, text in said if text.startswith("weight ")),
        )

    def describe_scale_up(self, interval: float) -> str:
        took = f"canary scale-up and readiness {self.scale_up:.1f}s"
        if not self.holds:
            return f"{took}: ready at the first look"
        hold = min(interval, HOLD_POLL_SECONDS)
        return (
            f"{took}: {self.holds} look(s) found it not ready, each followed by a hold of "
            f"{hold:g}s (min(interval, {HOLD_POLL_SECONDS:g}s))"
        )

    def describe(self, interval: float) -> str:
        extra = self.analysis - self.checks * interval
        return (
            f"{self.describe_scale_up(interval)}; then {self.checks} checks in "
            f"{self.analysis:.1f}s = {self.checks} x {interval:g}s + {extra:.1f}s "
            f"({extra / max(self.checks, 1):.2f}s a check for hooks, queries and route writes)"
        )


@dataclass(frozen=True)
class TurnedBad:
    """A rehearsal whose canary turned bad while it ran."""

    report: ReleaseReport
    into_step: float
    """Seconds from the canary's first weighted step to the fault."""
    to_primary: float
    """Seconds from the fault to all traffic on the primary."""
    first_data: float
    """Seconds from the canary's first weighted step to a value of its success rate."""


def tutorial() -> ReleaseSpec:
    return read_release(
        canary=str(EXAMPLE / "canary.yaml"), deployment=str(EXAMPLE / "deployment.yaml")
    )


def until(condition: Callable[[], bool], timeout: float = 900.0) -> float:
    """Polls `condition`; the time it first held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the rehearsal did not get there")
        time.sleep(POLL_SECONDS)
    return time.time()


def turned_bad(release: ReleaseSpec, timing: Timing, error_rate: float, after: float) -> TurnedBad:
    """The release rehearsed with `error_rate` injected `after` seconds into its first step."""
    with TestBed(namespace=release.namespace) as bed, ThreadPoolExecutor(1) as pool:
        critical = Critical.of(release, scrape_interval=bed.prometheus.scrape_interval)
        (success_rate,) = [query.query.query for query in critical.queries(release)]
        running = pool.submit(rehearse, release, timing=timing, bed=bed)
        stepped = until(lambda: running.done() or bed.canary_weight(release) > 0)
        data = until(lambda: running.done() or bool(bed.prometheus.query(success_rate)))
        time.sleep(max(stepped + after - time.time(), 0.0))
        bed.mesh.set_fault(release.target, Fault(error_rate=error_rate))
        faulted = time.time()
        on_primary = until(lambda: running.done() or bed.canary_weight(release) == 0)
        return TurnedBad(running.result(), faulted - stepped, on_primary - faulted, data - stepped)


def turning_bad(label: str, timing: Timing, error_rate: float) -> None:
    """Prints how the tutorial's release ends when its canary turns bad mid-step."""
    release = tutorial()
    interval, threshold = timing.interval_seconds, release.spec.analysis.effective_threshold
    with stamped() as out:
        run = turned_bad(release, timing, error_rate, after=interval / 2)
    flagger = threshold * interval
    watched = "yes" if (run.report.reason or "").startswith("critical") else "no"
    print(
        f"{label}: {error_rate:.0%} errors {run.into_step:.1f}s into the first step, "
        f"interval {timing.interval}:"
    )
    print(
        f"  all traffic on the primary {run.to_primary:.1f}s after the fault: "
        f"{run.to_primary:.1f}s / ({threshold} x {interval:g}s) = {run.to_primary / flagger:.3f}"
    )
    print(
        f"  outcome {run.report.outcome} after {run.report.failed_checks} failed checks "
        f"(critical watch fired: {watched})"
    )
    print(f"  reason: {run.report.reason}")
    print(f"  before the fault: {Phases.of(out.lines).describe_scale_up(interval)}")
    print(
        f"  first data: Prometheus had the canary's success rate {run.first_data:.1f}s after "
        "its first step (the bed scrapes every 500ms; rate() needs two samples)"
    )


def release_timings() -> None:
    """release_timing.py's own runs, their progress lines timed."""
    print(f"release_timing.py (interval {release_timing.INTERVAL}):")
    with stamped() as out:
        release_timing.main()
    interval = parse_seconds(release_timing.INTERVAL)
    run: list[tuple[float, str]] = []
    for at, line in out.lines:
        if line.startswith(("promotion:", "rollback:")):
            print(f"  {line}")
            print(f"    {Phases.of(run).describe(interval)}")
            run = []
        elif line.startswith("podinfo: "):
            run.append((at, line))


def main() -> None:
    analysis = tutorial().spec.analysis
    turning_bad("clearly bad", Timing.of(analysis), 0.6)
    turning_bad("mildly bad", Timing.of(analysis, interval=release_timing.INTERVAL), 0.02)
    release_timings()


if __name__ == "__main__":
    main()
