"""Shared fixtures: the tutorial's manifests, as a Flagger user keeps them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "podinfo"
SCHEMAS = ROOT.parent / "shared" / "schemas"


def load_yaml(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return data


@pytest.fixture
def deployment() -> dict[str, Any]:
    return load_yaml("deployment.yaml")


@pytest.fixture
def canary() -> dict[str, Any]:
    return load_yaml("canary.yaml")
