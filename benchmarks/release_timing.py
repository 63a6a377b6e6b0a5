"""Prints how long releases take against their nominal schedule, on the local test bed.

Not a test: the ratios are measurements. 1.0 means no overhead beyond the analysis intervals.
    promotion: wall time of a healthy release / (checks to promote x interval)
    rollback:  time from the canary's first weighted step to rollback / (threshold x interval)
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from components.analysis import plan
from components.rehearse import rehearse
from components.rehearse.testbed import Fault
from components.spec import ReleaseSpec
from components.spec.timing import Timing

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "podinfo"
INTERVAL = "2s"


def _manifest(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLE / name).read_text())
    return loaded


def main() -> None:
    canary = _manifest("canary.yaml")
    healthy = ReleaseSpec.parse(canary=canary, deployment=_manifest("deployment.yaml"))
    timing = Timing.of(healthy.spec.analysis, interval=INTERVAL)
    interval = timing.interval_seconds
    report = rehearse(healthy, timing=timing)
    steps = plan(healthy.spec, timing).checks_to_promote
    print(
        f"promotion: {report.duration_s:.1f}s / ({steps} x {interval:g}s) = "
        f"{report.duration_s / (steps * interval):.2f}"
    )

    bad_canary = copy.deepcopy(canary)
    bad_canary["spec"]["analysis"]["threshold"] = 3
    bad = ReleaseSpec.parse(canary=bad_canary, deployment=_manifest("deployment.yaml"))
    report = rehearse(bad, Fault(error_rate=0.05), timing=timing)
    threshold = bad.spec.analysis.effective_threshold
    # Both durations include the canary's scale-up, which the nominal schedule does not count.
    print(
        f"rollback: {report.duration_s:.1f}s / ({threshold} x {interval:g}s) = "
        f"{report.duration_s / (threshold * interval):.2f} (outcome {report.outcome})"
    )


if __name__ == "__main__":
    main()
