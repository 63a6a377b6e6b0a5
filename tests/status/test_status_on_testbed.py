"""`python -m components.status` against the test bed's API server, as a user runs it.

The test plays the `pulumi up` running elsewhere: it writes the release record and moves the
routes through the same adapters a release uses, and the command only reads them.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.adapters.cluster import Cluster
from components.adapters.kube import Connections, KubeAccess
from components.adapters.records import CheckValue, RecordPhase, RecordStore, ReleaseRecord
from components.rehearse import declare_at_rest
from components.rehearse.testbed import KubeEmulator, TestBed
from components.routing import TrafficState
from components.spec import ReleaseSpec
from components.status import main
from components.status.view import EXIT_FAILED, EXIT_SUCCEEDED, EXIT_UNREACHABLE
from tests.conftest import EXAMPLES, ROOT, load_yaml

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(120)]
TOKEN = "testbed-token"
SPEC = [
    "--canary",
    str(EXAMPLES / "canary.yaml"),
    "--deployment",
    str(EXAMPLES / "deployment.yaml"),
]


@pytest.fixture(scope="module")
def bed() -> Iterator[TestBed]:
    with TestBed(token=TOKEN) as running:
        yield running


@pytest.fixture
def release(bed: TestBed) -> ReleaseSpec:
    release = ReleaseSpec.parse(
        canary=load_yaml("canary.yaml"), deployment=load_yaml("deployment.yaml")
    )
    declare_at_rest(bed, release)
    return release


@pytest.fixture
def cluster(bed: TestBed, release: ReleaseSpec) -> Iterator[Cluster]:
    with Connections(KubeAccess(kubeconfig=bed.kubeconfig.read_text())) as connections:
        cluster = Cluster(connections, release)
        cluster.set_routes(TrafficState())
        yield cluster


@pytest.fixture
def records(cluster: Cluster, release: ReleaseSpec) -> RecordStore:
    """The release run's own store: the only writer of the record."""
    return RecordStore(cluster, release.name, release.namespace, time.time)


def mid_release(cluster: Cluster, records: RecordStore) -> None:
    """Step 3 of 10% -> 50%: the canary up and taking 30%."""
    cluster.scale("podinfo", 2)
    cluster.set_routes(TrafficState(canary_weight=30))
    records.save(
        ReleaseRecord(
            "3f2a9c1e5b7d0a42",
            RecordPhase.PROGRESSING,
            step=2,
            weight=30,
            failed_checks=1,
            last_check={"request-success-rate": CheckValue(99.93, ">= 99", True)},
            threshold=5,
            deadline=time.time() + 600,
            interval_seconds=60.0,
        ).with_event(time.time(), "weight 30%: request-success-rate 99.93 (>= 99) -> pass")
    )


def ended(cluster: Cluster, records: RecordStore, phase: RecordPhase, reason: str | None) -> None:
    """What the run leaves at its end: traffic on the primary, the canary at zero, settled."""
    cluster.set_routes(TrafficState())
    cluster.scale("podinfo", 0)
    record = records.load()
    assert record is not None
    records.save(
        ReleaseRecord(record.revision, phase, step=record.step, reason=reason, settled=True)
    )


def status(*args: str, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "components.status", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_the_command_shows_the_live_weight_and_the_step_of_the_plan(
    bed: TestBed, cluster: Cluster, records: RecordStore
) -> None:
    mid_release(cluster, records)
    shown = status("podinfo", "--kubeconfig", str(bed.kubeconfig), *SPEC)
    out, err = shown.communicate(timeout=60)
    assert shown.returncode == 0, err
    lines = out.splitlines()
    assert "Traffic:    primary 70%, canary 30%" in lines
    assert "Step:       3/5: 30%" in lines
    assert "Plan:       canary 10% -> 50% in 5 steps every 1m" in lines
    assert "Last check: request-success-rate 99.93 (>= 99) pass" in lines
    assert any(line.startswith("Canary:     podinfo: 2/2 available") for line in lines)
    assert "\x1b" not in out  # piped: plain lines
    assert TOKEN not in out + err


def test_in_process_without_the_spec_it_shows_what_the_cluster_and_record_hold(
    bed: TestBed, cluster: Cluster, records: RecordStore, capsys: pytest.CaptureFixture[str]
) -> None:
    mid_release(cluster, records)
    assert main(["podinfo", "--kubeconfig", str(bed.kubeconfig)]) == EXIT_SUCCEEDED
    lines = capsys.readouterr().out.splitlines()
    assert "Traffic:    primary 70%, canary 30%" in lines
    assert "Step:       3 of an unknown plan" in lines
    assert "Checks:     1 failed, rollback at 5" in lines


def test_a_watch_exits_1_when_the_record_turns_failed(
    bed: TestBed, cluster: Cluster, records: RecordStore
) -> None:
    mid_release(cluster, records)
    watching = status(
        "podinfo", "--kubeconfig", str(bed.kubeconfig), "--watch", "--interval", "0.2"
    )
    assert watching.stdout is not None
    first = read_snapshot(watching.stdout.readline)
    assert "Traffic:    primary 70%, canary 30%" in first

    reason = "failed checks threshold reached 5: request-success-rate is 51.2, outside >= 99"
    ended(cluster, records, RecordPhase.FAILED, reason)
    out, err = watching.communicate(timeout=60)
    assert watching.returncode == EXIT_FAILED, err
    assert "Phase:      Failed" in out
    assert "Traffic:    primary 100%, canary 0%" in out
    assert TOKEN not in out + err


def test_a_watch_in_process_exits_0_when_the_record_turns_succeeded(
    bed: TestBed, cluster: Cluster, records: RecordStore, capsys: pytest.CaptureFixture[str]
) -> None:
    mid_release(cluster, records)
    result: list[int] = []
    argv = ["podinfo", "--kubeconfig", str(bed.kubeconfig), "--watch", "--interval", "0.1", *SPEC]
    watcher = threading.Thread(target=lambda: result.append(main(argv)))
    watcher.start()
    shown = ""
    while "Primary:" not in shown:  # the first snapshot is out; pytest-timeout guards the wait
        time.sleep(0.05)
        shown += capsys.readouterr().out
    ended(cluster, records, RecordPhase.SUCCEEDED, None)
    watcher.join(timeout=60)
    assert result == [EXIT_SUCCEEDED]
    shown += capsys.readouterr().out
    assert "Phase:      Succeeded" in shown.split("Release:")[-1]


def test_an_unreachable_api_server_is_one_line_and_exit_4(tmp_path: Path) -> None:
    with KubeEmulator(token="s3cret-token") as gone:
        kubeconfig = gone.write_kubeconfig(tmp_path / "kubeconfig")
    shown = status("podinfo", "--kubeconfig", str(kubeconfig))
    out, err = shown.communicate(timeout=60)
    assert shown.returncode == EXIT_UNREACHABLE
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("error: cannot read podinfo in default: ")
    assert "cannot reach the API server" in line
    assert "s3cret-token" not in err


def read_snapshot(readline: Any) -> str:
    """Lines up to the first snapshot's Primary row (always there)."""
    lines = []
    while not (lines and lines[-1].startswith("Primary:")):
        line = readline()
        assert line, "the command ended before its first snapshot"
        lines.append(line)
    return "".join(lines)
