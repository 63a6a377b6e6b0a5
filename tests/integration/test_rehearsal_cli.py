"""`python -m components.rehearse` as a user runs it, in-process: what it says, what it
writes, what it never does, and its exit status.

Two whole rehearsals (about 15 s each), shared by the tests of this module: the tutorial's
release with the tutorial's Slack webhook, an acceptance test that would create a file, an
alert provider at a Slack address and every report option, expected to roll back (it promotes:
exit 1); and a canary that fails at once, expected to roll back (exit 0).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from PIL import Image

from components.rehearse import main
from tests.conftest import EXAMPLES, ROOT, load_yaml

SCHEMA = json.loads((ROOT / "docs" / "rehearsal-report.schema.json").read_text())
SLACK = "https://hooks.slack.com/services/T0/B0/S3CRET"


@dataclass
class Run:
    status: int
    out: str
    folder: Path

    def report(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.folder / "report.json").read_text())
        return document


def run(argv: list[str], folder: Path) -> Run:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    return Run(status, out.getvalue(), folder)


def write(folder: Path, name: str, document: dict[str, Any]) -> str:
    path = folder / name
    path.write_text(yaml.safe_dump(document))
    return str(path)


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("promoted")
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    analysis = canary["spec"]["analysis"]
    analysis["stepWeight"] = 25
    analysis["webhooks"] += [
        {
            "name": "acceptance",
            "type": "pre-rollout",
            "url": "http://flagger-loadtester.default/",
            "metadata": {"type": "bash", "cmd": f"touch {folder / 'witness'}"},
        },
        {  # the tutorial's Slack notification, written as a webhook
            "name": "slack",
            "url": "https://hooks.slack.com/services/YOUR/SLACK/WEBHOOK",
            "timeout": "5s",
            "metadata": {"type": "slack", "channel": "deployments", "username": "flagger"},
        },
    ]
    analysis["alerts"] = [{"name": "on-call", "severity": "info", "providerRef": {"name": "slack"}}]
    provider = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": "slack", "namespace": "default"},
        "spec": {"type": "slack", "channel": "deploys", "address": SLACK},
    }
    argv = [
        "--canary", write(folder, "canary.yaml", canary),
        "--deployment", str(EXAMPLES / "deployment.yaml"),
        "--alert-provider", write(folder, "provider.yaml", provider),
        "--interval", "2s",
        "--report", str(folder / "report.json"),
        "--report-html", str(folder / "report.html"),
        "--report-png", str(folder / "report.png"),
        "--expect", "rolled_back",
    ]  # fmt: skip
    return run(argv, folder)


@pytest.fixture(scope="module")
def rolled_back(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("rolled-back")
    canary = copy.deepcopy(load_yaml("canary.yaml"))
    canary["spec"]["analysis"].update(threshold=1, stepWeight=50)
    argv = [
        "--canary", write(folder, "canary.yaml", canary),
        "--deployment", str(EXAMPLES / "deployment.yaml"),
        "--interval", "2s",
        "--canary-error-rate", "0.5",
        "--report", str(folder / "report.json"),
        "--expect", "rolled_back",
    ]  # fmt: skip
    return run(argv, folder)


# -- what it says -----------------------------------------------------------------------------


@pytest.mark.testbed
def test_the_header_says_what_is_rehearsed_before_the_bed_starts(promoted: Run) -> None:
    lines = promoted.out.splitlines()
    assert re.fullmatch(
        r"rehearsing podinfo\.default: ghcr\.io/stefanprodan/podinfo:6\.3\.0, "
        r"revision [0-9a-f]{16}",
        lines[0],
    )
    header = "\n".join(lines[: lines.index(next(x for x in lines if x.startswith("test bed:")))])
    assert "plan:    canary 25% -> 50% in 2 steps every 2s" in header
    assert "gates:   request-success-rate >= 99, request-duration <= 500ms" in header
    assert "not run: 20 req/s to podinfo-canary.default for 1m in the simulated mesh" in header
    assert "slack (rollout) https://hooks.slack.com/... (outside the bed" in header
    assert "faults:  the canary answers 0% of requests with 5xx, p99 latency 20 ms" in header
    assert "test bed: starting" in promoted.out
    assert re.search(r"test bed: ready in [0-9.]+ s", promoted.out)


@pytest.mark.testbed
def test_progress_names_every_hook_call_and_what_was_answered_locally(promoted: Run) -> None:
    out = promoted.out
    assert re.search(r"podinfo: load-test \(rollout\) -> 202 in \d+ ms", out)
    assert re.search(r"podinfo: acceptance \(pre-rollout\) -> 200 in \d+ ms", out)
    assert re.search(r"podinfo: slack \(rollout\) -> 200 in \d+ ms", out)
    assert "podinfo: would have called https://hooks.slack.com/... — answered locally" in out
    assert "podinfo: alert (info) delivered to slack" in out
    hey = "podinfo: loadtester: hey not run; 20 req/s to podinfo-canary.default for 1m in the mesh"
    assert out.count(hey) == 1  # once: later calls of the same hey find it still sending
    assert f"podinfo: loadtester (bash): recorded, not run: touch {promoted.folder}" in out
    assert "S3CRET" not in out and "YOUR/SLACK" not in out  # a hook's path is its credential
    for line in out.splitlines():
        if re.match(r"podinfo: \S+ \(\S+\) -> ", line):
            assert len(line) <= 80


@pytest.mark.testbed
def test_the_summary_has_the_table_the_outcome_the_report_and_the_queries(promoted: Run) -> None:
    out = promoted.out
    assert re.search(
        r"^step\s+time\s+weight\s+request-success-rate \(>= 99\)\s+"
        r"request-duration \(<= 500ms\)\s+verdict$",
        out,
        re.MULTILINE,
    )
    assert re.search(r"^1\s+\+\d+\.\d s\s+25%\s+100\s+\d+(\.\d+)?\s+pass$", out, re.MULTILINE)
    assert re.search(r"^promoted after 2 checks in \d+ s$", out, re.MULTILINE)
    folder = promoted.folder
    assert (
        f"report written to {folder / 'report.json'}, {folder / 'report.png'}, "
        f"{folder / 'report.html'}"
    ) in out
    assert re.search(r'flagger_canary_status\{name="podinfo"\}\s+1 \(promoted', out)
    weights = r'flagger_canary_weight\{name="podinfo"\}\s+podinfo 0, podinfo-primary 100'
    assert re.search(weights, out)
    assert re.search(
        r'flagger_canary_duration_seconds\{name="podinfo"\}\s+a histogram: _count \d+, _sum', out
    )
    assert "expected rolled_back, the rehearsal ended promoted" in out


@pytest.mark.testbed
def test_a_rollback_is_said_with_its_reason(rolled_back: Run) -> None:
    assert rolled_back.status == 0  # as expected
    assert re.search(
        r"^rolled back: failed checks threshold reached 1: metrics failed: "
        r"request-success-rate is [0-9.]+, outside >= 99$",
        rolled_back.out,
        re.MULTILINE,
    )
    assert re.search(r'flagger_canary_status\{name="podinfo"\}\s+2 \(failed\)', rolled_back.out)


# -- offline and harmless ---------------------------------------------------------------------


@pytest.mark.testbed
def test_nothing_ran_and_nothing_left_the_machine(promoted: Run) -> None:
    assert not (promoted.folder / "witness").exists()
    bed = promoted.report()["rehearsal"]
    acceptance = next(test for test in bed["load_tests"] if test["type"] == "bash")
    assert acceptance["run"] is False and acceptance["traffic"] is None
    assert bed["answered_locally"] == [
        {"url": "https://hooks.slack.com/...", "calls": bed["answered_locally"][0]["calls"]}
    ]
    sent = [alert for alert in bed["alerts"] if alert["providers"] == ["slack"]]
    assert {alert["severity"] for alert in sent} == {"info"}
    assert all(not alert["warnings"] for alert in sent)
    # Each alert and each call of the slack webhook reached the bed's receiver instead.
    slack_hooks = sum(1 for call in promoted.report()["webhooks"] if call["name"] == "slack")
    assert bed["alerts_received"] == len(sent) + slack_hooks
    assert bed["answered_locally"][0]["calls"] == len(sent) + slack_hooks


@pytest.mark.testbed
def test_the_load_test_sent_its_traffic_to_the_canary(promoted: Run) -> None:
    document = promoted.report()
    bed = document["rehearsal"]
    hey = [test for test in bed["load_tests"] if test["traffic"]]
    assert hey[0]["traffic"] == {
        "url": "http://podinfo-canary.default:9898/",
        "host": "podinfo-canary.default",
        "rps": 20.0,
        "seconds": 60.0,
        "requests": 1200,
    }
    assert [test["traffic_started"] for test in hey] == [True] + [False] * (len(hey) - 1)
    # 20 requests a second from the first load test until the canary is scaled down.
    assert bed["load_test_requests"]["podinfo"] >= 20 * document["plan"]["interval_s"] * 0.5
    assert bed["load_test_requests"]["podinfo-primary"] == 0


# -- the report -------------------------------------------------------------------------------


@pytest.mark.testbed
def test_a_real_report_validates_against_the_documented_schema(
    promoted: Run, rolled_back: Run
) -> None:
    for document in (promoted.report(), rolled_back.report()):
        jsonschema.validate(document, SCHEMA)


@pytest.mark.testbed
def test_the_report_has_times_bounds_steps_hooks_decisions_and_options(promoted: Run) -> None:
    document = promoted.report()
    assert document["outcome"] == "promoted"
    assert [check["step"] for check in document["checks"]] == [1, 2]
    first = document["checks"][0]
    assert first["metrics"]["request-success-rate"]["min"] == 99
    assert first["metrics"]["request-duration"]["max"] == 500
    assert first["at"] == pytest.approx(document["started_at"] + first["since_start_s"], abs=0.01)
    assert document["plan"]["steps"] == [
        {"weight": 25, "mirror": False},
        {"weight": 50, "mirror": False},
    ]
    assert (document["plan"]["interval_s"], document["plan"]["threshold"]) == (2.0, 5)
    kinds = {(call["name"], call["type"], call["status"]) for call in document["webhooks"]}
    assert ("load-test", "rollout", 202) in kinds and ("acceptance", "pre-rollout", 200) in kinds
    messages = [decision["message"] for decision in document["decisions"]]
    assert messages[0].startswith("New revision detected")
    assert messages[-1] == "Copying the canary to the primary: analysis passed"
    times = [decision["at"] for decision in document["decisions"]]
    assert times == sorted(times)
    options = document["rehearsal"]["options"]
    assert (options["interval"], options["expect"]) == ("2s", "rolled_back")
    assert document["rehearsal"]["fault"] == {"error_rate": 0.0, "latency_ms": 20.0}


def broken(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Copies of a report, each wrong in one way the schema must catch."""
    for mutate in (
        lambda d: d.update(outcome="maybe"),
        lambda d: d["checks"][0].pop("step"),
        lambda d: d["checks"][0]["metrics"]["request-duration"].update(value="fast"),
        lambda d: d["webhooks"][0].update(attempts=0),
        lambda d: d["rehearsal"]["load_tests"][0].update(run=True),
        lambda d: d.update(unknown=1),
    ):
        copied = copy.deepcopy(document)
        mutate(copied)
        yield copied


@pytest.mark.testbed
def test_a_broken_report_does_not_validate(promoted: Run) -> None:
    for document in broken(promoted.report()):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(document, SCHEMA)


# -- the picture ------------------------------------------------------------------------------


@pytest.mark.testbed
def test_the_png_is_a_picture_of_plausible_size(promoted: Run) -> None:
    path = promoted.folder / "report.png"
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert 20_000 < len(data) < 2_000_000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    assert width >= 800 and height >= 400  # three panels: weight and two metrics


@pytest.mark.testbed
def test_the_html_page_stands_alone(promoted: Run) -> None:
    page = (promoted.folder / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert '<img alt="canary weight and metrics over time" src="data:image/png;base64,' in page
    assert "<th>request-success-rate (&gt;= 99)</th>" in page
    assert "promoted after 2 checks" in page
    # Nothing to fetch: no script, stylesheet or resource from any address.
    assert not re.search(r"<script|<link|@import|url\(", page, re.IGNORECASE)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.IGNORECASE)


# -- exit status ------------------------------------------------------------------------------


@pytest.mark.testbed
def test_expect_sets_the_exit_status(promoted: Run, rolled_back: Run) -> None:
    assert promoted.status == 1  # expected rolled_back, it promoted
    assert rolled_back.status == 0


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--expect", "green"], "--expect"),
        (["--pushgateway", "ftp://gateway:9091"], "--pushgateway"),
        (["--report-png", "/no/such/folder/report.png"], "--report-png"),
        (["--report-html", "/no/such/folder/report.html"], "--report-html"),
        (["--canary-error-rate", "2"], "--canary-error-rate"),
    ],
)
def test_invalid_input_exits_2_naming_the_option_before_the_bed_starts(
    extra: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--canary", str(EXAMPLES / "canary.yaml"),
        "--deployment", str(EXAMPLES / "deployment.yaml"),
        *extra,
    ]  # fmt: skip
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own refusals
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    assert status == 2
    assert named in captured.err
    assert "test bed" not in captured.out


def test_every_option_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    options = re.findall(r"^\s+(--[a-z-]+)", text, re.MULTILINE)
    assert {"--expect", "--pushgateway", "--alert-provider", "--report-html", "--report-png"} <= {
        *options
    }
    for option in options:
        block = text.split(option, 1)[1].split("\n  --", 1)[0]
        assert len(block.split()) > 2, option
