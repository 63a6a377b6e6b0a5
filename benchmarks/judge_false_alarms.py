"""Prints how often the statistical judge fails a healthy canary, on the local test bed.

Not a test: the counts are measurements. It rehearses the tutorial's canary (5 steps at a 2 s
interval) with examples/podinfo/judge.yaml, healthy, N times in one bed, each with its own
mesh seed, then once 40% slower (the canary's latency target 28 ms against the primary's
20 ms, far under the tutorial's `max: 500`) as the control that the judge does catch.

    python benchmarks/judge_false_alarms.py [REHEARSALS] [FIRST_SEED] [ALLOWED_INCREASE]

ALLOWED_INCREASE replaces the p99's `effectSize.allowedIncrease` (1.1 in the example; 1.0
leaves the Mann-Whitney interval alone to decide).

A seed fixes the mesh's random draws (counts, routes, latencies); the moments at which the
mesh ticks and Prometheus scrapes still vary from run to run. tests/integration/
test_judge_rehearsal.py runs three of these rehearsals as a test.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from components.rehearse import rehearse
from components.rehearse.testbed import Fault, TestBed, scrape_interval_for
from components.scheduler import ReleaseReport
from components.spec import ReleaseSpec
from components.spec.timing import Timing

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "podinfo"
INTERVAL = "2s"
REHEARSALS = 20
SLOWER = Fault(latency_ms=28.0)


def _manifest(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLE / name).read_text())
    return loaded


def _judge_failures(report: ReleaseReport) -> int:
    return sum(1 for check in report.checks if check.judge is not None and not check.judge.passed)


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else REHEARSALS
    first_seed = int(argv[1]) if len(argv) > 1 else 1
    judge = _manifest("judge.yaml")
    if len(argv) > 2:
        judge["spec"]["metrics"][0]["effectSize"]["allowedIncrease"] = float(argv[2])
    release = ReleaseSpec.parse(
        canary=_manifest("canary.yaml"), deployment=_manifest("deployment.yaml"), judge=judge
    )
    assert release.judge is not None
    timing = Timing.of(release.spec.analysis, interval=INTERVAL)
    samples = release.judge.spec.samples_per_check(timing.interval_seconds)
    scrape = scrape_interval_for(release.judge.spec.step)
    allowed = release.judge.spec.metrics[0].effect_size.allowed_increase
    print(
        f"step {release.judge.spec.step}, {samples} samples a side per check, scrape {scrape}, "
        f"p99 allowedIncrease {allowed:g}"
    )
    promoted = checks = failed = 0
    scores: list[float] = []
    started = time.monotonic()
    with TestBed(scrape_interval=scrape) as bed:
        for seed in range(first_seed, first_seed + count):
            bed.mesh.reseed(seed)
            with contextlib.redirect_stdout(io.StringIO()):  # the release's own lines
                report = rehearse(release, timing=timing, bed=bed)
            promoted += report.promoted
            checks += len(report.checks)
            failed += _judge_failures(report)
            scores += [
                check.judge.score
                for check in report.checks
                if check.judge and check.judge.score is not None
            ]
            judged = f"judge failed {_judge_failures(report)} of {len(report.checks)} checks"
            print(f"seed {seed}: {report.outcome}, {judged}", flush=True)
        with contextlib.redirect_stdout(io.StringIO()):
            slower = rehearse(release, SLOWER, timing=timing, bed=bed)
    print(
        f"healthy: {promoted}/{count} promoted; the judge failed {failed} of {checks} checks; "
        f"lowest score {min(scores, default=float('nan')):g}; {time.monotonic() - started:.0f}s"
    )
    caught = f"the judge failed {_judge_failures(slower)} of {len(slower.checks)} checks"
    print(f"40% slower: {slower.outcome}; {caught}: {slower.reason}")


if __name__ == "__main__":
    main(sys.argv[1:])
