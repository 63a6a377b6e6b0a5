"""`python -m observability.rules`: rewrites prometheusrule.yaml from rules.yml.

Prometheus loads rules.yml as it is; the Prometheus Operator wants the same groups wrapped in
a `PrometheusRule`. Generating the one from the other keeps a single source of truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules.yml"
MANIFEST = HERE / "prometheusrule.yaml"
HEADER = "# Generated from rules.yml by `python -m observability.rules`: edit that file instead.\n"


def manifest(rules: dict[str, Any]) -> dict[str, Any]:
    """The rules file's groups as a monitoring.coreos.com/v1 PrometheusRule."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "pulumi-canary",
            "labels": {"app.kubernetes.io/part-of": "pulumi-canary"},
        },
        "spec": {"groups": rules["groups"]},
    }


def render() -> str:
    """The manifest's text, as committed."""
    rules = yaml.safe_load(RULES.read_text())
    return HEADER + yaml.safe_dump(manifest(rules), sort_keys=False, width=4096)


if __name__ == "__main__":
    MANIFEST.write_text(render())
