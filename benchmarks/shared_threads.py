"""Prints how six releases through one dynamic server compare with one release alone.

Not a test: the numbers are measurements. `pulumi up` runs every Python dynamic resource of a
stack in one `pulumi.dynamic` server process, on `ThreadPoolExecutor(max_workers=4)`, and a
Rollout's Update holds its worker for the whole analysis. Six Rollouts updated in one
`pulumi up` therefore run as four, then two:
    ratio:      wall time of six concurrent releases / wall time of one alone (expected ~2);
                also over the six's own mean release length, which one release's noise spares
    queue wait: from an Update's send to its release's first line in the server's output
Run as `PYTHONPATH=. venv/bin/python benchmarks/shared_threads.py` (about a minute).
"""

from __future__ import annotations

import math
import statistics

from components.rehearse.testbed import TestBed
from tests.conftest import load_yaml
from tests.provider.dynamic_server import (
    DynamicServer,
    create_workloads,
    most_at_once,
    run_together,
    timeline,
    update_concurrently,
)

INTERVAL = "2s"
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.3.1"
RELEASES = 6
WORKERS = 4  # pulumi/dynamic/__main__.py
# The bed's request rate is per VirtualService; seven workloads at the default would be costly.
RPS = 300.0


def main() -> None:
    # A workload of its own for the lone release: a Rollout updated twice without its
    # finaliser keeps a fresh Promoting record, which the next Update treats as a live run.
    names = [f"podinfo-{index}" for index in range(RELEASES + 1)]
    with TestBed(rps=RPS) as bed, DynamicServer() as server:
        server.configure()
        alone, *others = create_workloads(
            server,
            bed,
            load_yaml("canary.yaml"),
            load_yaml("deployment.yaml"),
            names,
            interval=INTERVAL,
        )
        (solo,) = update_concurrently(server, [alone.update_to(NEW_IMAGE)])
        since = server.mark()
        runs = update_concurrently(server, [workload.update_to(NEW_IMAGE) for workload in others])
        merged = run_together(server.stdout[since:], names)
        printed = len(server.stdout) - since

    solo_wall = solo.returned - solo.sent
    wall = max(run.returned for run in runs) - min(run.sent for run in runs)
    failed = [run.name for run in [solo, *runs] if run.error is not None]
    expected = math.ceil(RELEASES / WORKERS)
    print(f"one release alone: {solo_wall:.1f}s (interval {INTERVAL})")
    print(f"{RELEASES} concurrent releases: {wall:.1f}s, at most {most_at_once(runs)} at once")
    # Releases vary by a tick or so (a readiness hold, a first check without data), so the
    # wall time is also given in lengths of the six's own mean run, as the server timed them.
    mean_run = statistics.mean(
        run.ended.line.at - run.started.line.at for run in runs if run.started and run.ended
    )
    print(f"ratio: {wall / solo_wall:.2f} (expected ~{expected} with {WORKERS} workers)")
    print(f"in mean release lengths ({mean_run:.1f}s): {wall / mean_run:.2f}")
    print(timeline(runs))
    print(f"lines where concurrent prints ran together: {len(merged)} of {printed}")
    if failed:
        print(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
