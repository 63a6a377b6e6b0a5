"""Prints what releasing twelve canaries as one group costs, against one release alone.

Not a test: the numbers are measurements, on the test bed at a 2 s interval, through the real
`python -m pulumi.dynamic` server over gRPC:
    one release:  a Rollout's Update, wall time;
    the group:    one Wave's Update releasing twelve canaries at once; wall / one release
                  (goal <= 1.2); the server's peak threads and established TCP connections
                  while it ran (the same before, at rest, for comparison);
    inline Check: the engine's step generator (`InlineChecks` of tests/e2e/steps.py)
                  registering another resource every 0.25 s, its Check inline, while the
                  releases run: through the group (one server thread held) and through twelve
                  lone Rollouts (four held).
Run as `PYTHONPATH=. venv/bin/python benchmarks/group.py` (about two minutes). Options for
large waves: `--releases N` through the wave, `--lone N` lone Rollouts (0: none), `--rps`
requests a second each VirtualService gets (default 150), `--interval` and `--scrape-interval`
(the bed's Prometheus; default 500ms). The test bed's process (API emulator, mesh simulator and the
metrics Prometheus scrapes from it) is what saturates first: at 50 releases it runs at 92% of a
core while the provider server uses 3%, so large waves need a slower scrape, and with it a
longer interval (a `rate()` window holds a few scrapes).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pulumi.dynamic.dynamic import serialize_provider

from components.provider.group import WaveProvider
from components.rehearse import declare_at_rest
from components.rehearse.testbed import TestBed
from components.rehearse.testbed.prometheus import SCRAPE_INTERVAL
from components.spec import ReleaseSpec
from tests.conftest import load_yaml
from tests.e2e.steps import InlineChecks
from tests.provider.dynamic_server import (
    DynamicServer,
    create_workloads,
    renamed,
    rollout_props,
    update_concurrently,
    with_image,
)

INTERVAL = "2s"
OLD_IMAGE = "ghcr.io/stefanprodan/podinfo:6.3.0"
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.3.1"
RELEASES = 12
RPS = 150.0  # per VirtualService; 25 workloads at the bed's default would be costly
WAVE_URN = "urn:pulumi:dev::bench::pulumi-python:dynamic/canary:Wave::bench-wave-1"


class Peaks:
    """The most threads and established TCP connections a process had, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.threads = self.connections = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(0.05):
            self.threads = max(self.threads, threads_of(self.pid))
            self.connections = max(self.connections, connections_of(self.pid))


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def connections_of(pid: int) -> int:
    """Established TCP connections whose socket the process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    established = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            established += fields[3] == "01" and fields[9] in inodes
    return established


def member(bed: TestBed, name: str, interval: str) -> dict[str, Any]:
    """A canary at rest on the bed, and the Rollout inputs of its old image."""
    canary, deployment = renamed(load_yaml("canary.yaml"), load_yaml("deployment.yaml"), name)
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = OLD_IMAGE
    declare_at_rest(bed, ReleaseSpec.parse(canary=canary, deployment=deployment))
    return rollout_props(canary, deployment, bed.kubeconfig.read_text(), interval=interval)


def wave_props(members: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "__provider": serialize_provider(WaveProvider()),
        "group": "bench",
        "wave": 1,
        "canaries": list(members),
        "members": dict(members),
        "policy": "stop",
    }


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.monotonic()
    result = work()
    return time.monotonic() - started, result


def main(options: argparse.Namespace) -> None:
    releases, rps, interval = options.releases, options.rps, options.interval
    scrape_interval = options.scrape_interval
    group = [f"shop-{index}" for index in range(releases)]
    lone = [f"lone-{index}" for index in range(options.lone)]
    with TestBed(rps=rps, scrape_interval=scrape_interval) as bed, DynamicServer() as server:
        server.configure()
        load = (load_yaml("canary.yaml"), load_yaml("deployment.yaml"))
        (solo,) = create_workloads(server, bed, *load, ["solo"], interval=interval)
        (run,) = update_concurrently(server, [solo.update_to(NEW_IMAGE)])
        one = run.returned - run.sent

        members = {name: member(bed, name, interval) for name in group}
        state = server.create(WAVE_URN, wave_props(members))
        at_rest = (threads_of(server.pid), connections_of(server.pid))
        news = wave_props({name: with_image(props, NEW_IMAGE) for name, props in members.items()})
        with Peaks(server.pid) as peaks, InlineChecks(server) as grouped_checks:
            wall, outputs = timed(lambda: server.update(WAVE_URN, state, news))
        failed = [name for name, outcome in outputs["outcomes"].items() if outcome.get("failure")]

        lone_wall, lone_checks = 0.0, None
        if lone:
            workloads = create_workloads(server, bed, *load, lone, interval=interval)
            with InlineChecks(server) as lone_checks:
                lone_wall, _ = timed(
                    lambda: update_concurrently(server, [w.update_to(NEW_IMAGE) for w in workloads])
                )

    print(
        f"one release alone: {one:.1f}s (interval {interval}, scrape {scrape_interval}, "
        f"{rps:g} requests/s a service)"
    )
    print(
        f"{releases} releases through one Wave: {wall:.1f}s, ratio {wall / one:.2f} (goal <= 1.2)"
    )
    print(f"  failed: {', '.join(failed) or 'none'}")
    print(f"  server threads: {at_rest[0]} at rest, at most {peaks.threads} while releasing")
    print(
        f"  server TCP connections: {at_rest[1]} at rest, at most {peaks.connections} "
        "while releasing"
    )
    if lone:
        print(f"{len(lone)} lone Rollouts at once: {lone_wall:.1f}s, ratio {lone_wall / one:.2f}")
    for label, times in (("group", grouped_checks), ("lone Rollouts", lone_checks)):
        if times is None:
            continue
        seconds = times.seconds
        print(
            f"inline Checks of other resources during the {label}: {len(seconds)} registered, "
            f"slowest {max(seconds):.2f}s, "
            f"median {sorted(seconds)[len(seconds) // 2]:.3f}s"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--releases", type=int, default=RELEASES)
    parser.add_argument("--rps", type=float, default=RPS)
    parser.add_argument("--interval", default=INTERVAL)
    parser.add_argument("--scrape-interval", default=SCRAPE_INTERVAL)
    parser.add_argument("--lone", type=int, default=RELEASES, help="lone Rollouts (0: none)")
    main(parser.parse_args())
