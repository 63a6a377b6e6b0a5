"""The gate's recovery and concurrency, through the real dynamic server, on the test bed.

What `pulumi up` can do to a release and only a real server process shows: a second Ctrl-C
kills the server mid-analysis (the engine's Cancel does nothing), a second `pulumi up` runs its
own server against a release another one is driving, and one server runs every Rollout of a
stack on four worker threads. The engine is played by gRPC calls, the cluster by the test bed
(its Prometheus is real, so these are `testbed` tests).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest

from components.rehearse.testbed import TestBed
from components.spec import ReleaseSpec
from tests.provider.dynamic_server import (
    DynamicServer,
    create_workloads,
    most_at_once,
    timeline,
    update_concurrently,
    urn,
    wait_until,
)

pytestmark = pytest.mark.testbed
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.3.1"
# The dynamic server's ThreadPoolExecutor(max_workers=4) in pulumi/dynamic/__main__.py.
SERVER_WORKERS = 4
# Every workload has its own VirtualService, so each gets the bed's full request rate: a lower
# one keeps six workloads' simulated traffic cheap and is still plenty for the metrics.
SIX_WORKLOAD_RPS = 300.0


@pytest.fixture
def bed() -> Iterator[TestBed]:
    with TestBed() as running:
        yield running


@pytest.fixture
def server() -> Iterator[DynamicServer]:
    with DynamicServer() as running:
        running.configure()
        yield running


def release_record(bed: TestBed, release: ReleaseSpec) -> dict[str, Any] | None:
    """The release record as stored, read straight from the emulator."""
    path = f"/api/v1/namespaces/{release.namespace}/configmaps/{release.name}-canary-release"
    config_map = bed.kube.get(path)
    if config_map is None:
        return None
    record: dict[str, Any] = json.loads(config_map["data"]["release.json"])
    return record


def canary_weight(bed: TestBed, release: ReleaseSpec) -> int:
    """The share of the apex's traffic the VirtualService routes to the canary Service."""
    path = (
        f"/apis/networking.istio.io/v1/namespaces/{release.namespace}"
        f"/virtualservices/{release.service}"
    )
    virtual_service = bed.kube.get(path) or {}
    return sum(
        int(destination.get("weight", 0))
        for route in (virtual_service.get("spec") or {}).get("http") or []
        for destination in route.get("route") or []
        if destination["destination"]["host"].split(".")[0] == release.canary_service
    )


def wait_mid_analysis(bed: TestBed, release: ReleaseSpec) -> None:
    """Until the release is Progressing with traffic on the canary: the state to interrupt."""

    def mid_analysis() -> bool:
        record = release_record(bed, release) or {}
        return record.get("phase") == "Progressing" and canary_weight(bed, release) > 0

    wait_until(f"{release.name} progressing with canary traffic", mid_analysis, timeout=60)


def test_an_interrupted_release_starts_over_from_the_primary_on_the_next_run(
    bed: TestBed, server: DynamicServer, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    release = ReleaseSpec.parse(canary=canary, deployment=deployment)
    (podinfo,) = create_workloads(server, bed, canary, deployment, ["podinfo"])
    name, olds, news = podinfo.update_to(NEW_IMAGE)
    with ThreadPoolExecutor(max_workers=1) as engine:
        interrupted = engine.submit(server.update, urn(name), olds, news)
        wait_mid_analysis(bed, release)
        server.kill()
        with pytest.raises(grpc.RpcError) as raised:
            interrupted.result()
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE

    # What an interruption leaves: the canary still takes traffic, the record says Progressing.
    assert canary_weight(bed, release) > 0
    left = release_record(bed, release) or {}
    assert left.get("phase") == "Progressing"
    assert (left.get("owner") or {}).get("pid") == server.pid

    # The next `pulumi up` sends the same Update: the failed one recorded no new state.
    with DynamicServer() as rerun:
        rerun.configure()
        outputs = rerun.update(urn(name), olds, news)
        assert outputs["phase"] == "Promoting"
        found = rerun.wait_for_line(r"^podinfo: an interrupted release was found")
        weighted = rerun.wait_for_line(r"^podinfo: (?:weight \d+%|Advance canary weight)")
        assert found.index < weighted.index, [line.text for line in rerun.stdout]
        record = release_record(bed, release) or {}
        assert record.get("phase") == "Promoting"
        assert (record.get("owner") or {}).get("pid") == rerun.pid


def test_a_second_run_fails_while_the_first_drives_the_release(
    bed: TestBed, server: DynamicServer, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    release = ReleaseSpec.parse(canary=canary, deployment=deployment)
    (podinfo,) = create_workloads(server, bed, canary, deployment, ["podinfo"])
    name, olds, news = podinfo.update_to(NEW_IMAGE)
    with DynamicServer() as other, ThreadPoolExecutor(max_workers=1) as engine:
        other.configure()
        running = engine.submit(server.update, urn(name), olds, news)
        wait_mid_analysis(bed, release)
        with pytest.raises(grpc.RpcError) as raised:
            other.update(urn(name), olds, news)
        outputs = running.result()
    assert raised.value.code() == grpc.StatusCode.UNKNOWN
    assert "another release of podinfo is running" in raised.value.details()
    assert outputs["phase"] == "Promoting"
    record = release_record(bed, release) or {}
    assert (record.get("owner") or {}).get("pid") == server.pid


@pytest.mark.timeout(150)  # a hang guard only: two rounds of releases take ~30 s
def test_six_releases_share_the_four_worker_threads_of_one_server(
    server: DynamicServer, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    names = [f"podinfo-{index}" for index in range(1, 7)]
    with TestBed(rps=SIX_WORKLOAD_RPS) as bed:
        workloads = create_workloads(server, bed, canary, deployment, names)
        runs = update_concurrently(
            server, [workload.update_to(NEW_IMAGE) for workload in workloads]
        )
    failed = {run.name: run.error.details() for run in runs if run.error is not None}
    assert not failed
    assert {run.name: (run.outputs or {}).get("phase") for run in runs} == dict.fromkeys(
        names, "Promoting"
    )
    # Four run at once, and no more: the other two queue for a worker, silently.
    assert most_at_once(runs) == SERVER_WORKERS, timeline(runs)


def test_a_second_ctrl_c_returns_traffic_to_the_primary_before_the_kill(
    bed: TestBed, server: DynamicServer, canary: dict[str, Any], deployment: dict[str, Any]
) -> None:
    """The engine's second Ctrl-C: SIGINT to the provider's process group, SIGKILL about 5 s
    later. The release in flight must abort in between: all traffic to the primary, the canary
    at zero, the record interrupted (so the next `up` starts over), and one line saying so."""
    release = ReleaseSpec.parse(canary=canary, deployment=deployment)
    (podinfo,) = create_workloads(server, bed, canary, deployment, ["podinfo"])
    name, olds, news = podinfo.update_to(NEW_IMAGE)
    with ThreadPoolExecutor(max_workers=1) as engine:
        interrupted = engine.submit(server.update, urn(name), olds, news)
        wait_mid_analysis(bed, release)
        ended_by_itself = server.interrupt_as_the_engine_does()
        with pytest.raises(grpc.RpcError):
            interrupted.result()
    assert ended_by_itself, "the provider did not end before the engine's SIGKILL"
    assert canary_weight(bed, release) == 0
    canary_deployment = bed.kube.get("/apis/apps/v1/namespaces/default/deployments/podinfo")
    assert canary_deployment is not None and canary_deployment["spec"]["replicas"] == 0
    record = release_record(bed, release) or {}
    assert (record.get("phase"), record.get("settled")) == ("Interrupted", True)
    said = [line.text for line in server.stdout if "interrupted (" in line.text]
    assert said == [
        "podinfo: interrupted (the process is shutting down): all traffic is on the primary; "
        "the next pulumi up starts the release over"
    ]

    with DynamicServer() as rerun:  # the next `pulumi up`: the update that never finished
        rerun.configure()
        assert rerun.update(urn(name), olds, news)["phase"] == "Promoting"
