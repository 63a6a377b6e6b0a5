"""Helpers for the migration tests: a bundle's manifests as the files the command line reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.conftest import Bundle


def write_manifests(kwargs: dict[str, Any], folder: Path) -> list[str]:
    """`from_flagger`'s keyword arguments as YAML files, and the options naming them."""
    argv: list[str] = []

    def write(option: str, name: str, manifest: Any) -> None:
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        argv.extend([option, str(path)])

    write("--canary", "canary", kwargs["canary"])
    write("--deployment", "deployment", kwargs["deployment"])
    for index, template in enumerate(kwargs["metric_templates"]):
        write("--metric-template", f"template-{index}", template)
    for index, provider in enumerate(kwargs["alert_providers"]):
        write("--alert-provider", f"provider-{index}", provider)
    if kwargs["autoscaler"] is not None:
        write("--hpa", "hpa", kwargs["autoscaler"])
    for index, config in enumerate(kwargs["configs"]):
        write("--config", f"config-{index}", config)
    return argv


def bundle_argv(bundle: Bundle, folder: Path) -> list[str]:
    return write_manifests(bundle.kwargs(), folder)
