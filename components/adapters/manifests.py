"""A release's manifests read from YAML files, as the command lines take them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ..spec import ReleaseSpec


def read_release(
    *,
    canary: str,
    deployment: str,
    metric_templates: Sequence[str] = (),
    alert_providers: Sequence[str] = (),
    judge: str | None = None,
) -> ReleaseSpec:
    """The release spec of one file per manifest; OSError, yaml.YAMLError, ValueError or
    SpecError, each naming the file or the field."""
    return ReleaseSpec.parse(
        canary=read_manifest(canary),
        deployment=read_manifest(deployment),
        metric_templates=[read_manifest(path) for path in metric_templates],
        alert_providers=[read_manifest(path) for path in alert_providers],
        judge=None if judge is None else read_manifest(judge),
    )


def read_manifest(path: str) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected one YAML mapping")
    return data
