"""The alert rules, checked and unit-tested by the real promtool; the manifest agrees."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from observability import rules

PROMTOOL = "/usr/bin/promtool"
SERIES = {"job": "pulumi-canary", "name": "podinfo", "namespace": "test"}

pytestmark = pytest.mark.skipif(
    shutil.which(PROMTOOL) is None, reason="promtool comes with `apt-get install -y prometheus`"
)


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *arguments], capture_output=True, text=True, timeout=60, check=False
    )


def series(name: str, values: str, target: str = "podinfo") -> dict[str, str]:
    """One input series of a pushed canary, in promtool's expanding notation."""
    labels = ",".join(f'{key}="{value}"' for key, value in (SERIES | {"name": target}).items())
    return {"series": f"{name}{{{labels}}}", "values": values}


def alert(name: str, at: str, *expected: dict[str, Any]) -> dict[str, Any]:
    return {"alertname": name, "eval_time": at, "exp_alerts": list(expected)}


def run_rule_tests(tmp_path: Path, inputs: list[dict[str, str]], *cases: dict[str, Any]) -> str:
    """Writes a promtool test file for rules.yml and runs it; the output when it passes."""
    test = {
        "rule_files": [str(rules.RULES)],
        "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": inputs, "alert_rule_test": list(cases)}],
    }
    path = tmp_path / "rules_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_checks_the_rules_file() -> None:
    result = promtool("check", "rules", str(rules.RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rules found" in result.stdout


def test_a_failed_canary_fires_flaggers_rollback_alert_after_a_minute(tmp_path: Path) -> None:
    fired = {
        "exp_labels": {**SERIES, "severity": "warning"},
        "exp_annotations": {
            "summary": "Canary failed",
            "description": "Workload podinfo namespace test",
        },
    }
    run_rule_tests(
        tmp_path,
        [series("flagger_canary_status", "0x3 2x12")],  # running for 45 s, then failed
        alert("canary_rollback", "30s"),
        alert("canary_rollback", "1m30s"),  # failed, but not yet for a minute
        alert("canary_rollback", "2m30s", fired),
    )


@pytest.mark.parametrize("values", ["0x20", "1x20"], ids=["running", "succeeded"])
def test_a_running_or_succeeded_canary_fires_nothing(tmp_path: Path, values: str) -> None:
    run_rule_tests(
        tmp_path,
        [series("flagger_canary_status", values)],
        alert("canary_rollback", "5m"),
    )


def test_a_release_past_its_deadline_fires_the_stuck_alert(tmp_path: Path) -> None:
    # promtool's clock starts at 0: the release was due at 60 s and is still pushed.
    run_rule_tests(
        tmp_path,
        [series("pulumi_canary_release_deadline_timestamp_seconds", "60x20")],
        alert("canary_release_stuck", "1m30s"),  # late, but not yet for a minute
        alert(
            "canary_release_stuck",
            "3m",
            {
                "exp_labels": {**SERIES, "severity": "warning"},
                "exp_annotations": {
                    "summary": "Canary release stuck in progress",
                    "description": "The release of podinfo in namespace test is 2m 0s past "
                    "its deadline and has not ended",
                },
            },
        ),
    )


def test_a_release_within_its_deadline_or_ended_fires_nothing(tmp_path: Path) -> None:
    deadline = "pulumi_canary_release_deadline_timestamp_seconds"
    run_rule_tests(
        tmp_path,
        [
            series(deadline, "600x20"),
            # An ended release's last push drops its deadline, so the series goes stale.
            series(deadline, "30x3 stale", target="ended"),
        ],
        alert("canary_release_stuck", "4m"),
    )


def test_the_manifest_is_generated_from_the_rules_file() -> None:
    assert rules.MANIFEST.read_text() == rules.render(), "run `python -m observability.rules`"
    manifest = yaml.safe_load(rules.MANIFEST.read_text())
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["spec"]["groups"] == yaml.safe_load(rules.RULES.read_text())["groups"]
