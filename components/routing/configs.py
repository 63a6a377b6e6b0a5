"""The primary's side of config tracking (pkg/canary/config_tracker.go CreatePrimaryConfigs and
ApplyPrimaryConfigs): the `<name>-primary` copy of a tracked ConfigMap or Secret, and the
primary's pod template pointed at the copies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..spec import ReleaseSpec
from ..spec.configs import SECRET, Config, slots
from ..spec.revision import configs_checksum
from .metadata import copied, object_metadata

# On the primary's pod template: the checksum of the configs it runs. Flagger rolls the primary
# at every promotion (a new `flagger-id`); here the pod template changes exactly when the
# promoted configs do, so a promotion of configs alone restarts the primary's pods, which read
# environment variables only when they start.
CONFIGS_ANNOTATION = "canary.pulumi.com/configs-checksum"


def primary_config_name(name: str) -> str:
    return f"{name}-primary"


def primary_config(
    release: ReleaseSpec, config: Config, content: Mapping[str, Any]
) -> dict[str, Any]:
    """The copy the primary runs: `<name>-primary` in the release's namespace, the original's
    labels the primary copies (`app.kubernetes.io/*`), a Secret's type, and `content` (what
    the original held when it was promoted). Annotations are not copied, as by Flagger, so the
    copy never carries the opt-out; nor is `immutable`, since a copy changes at each promotion."""
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": config.kind,
        "metadata": object_metadata(
            primary_config_name(config.ref.name),
            release.namespace,
            copied(config.metadata.get("labels")),
        ),
    }
    if config.kind == SECRET:
        manifest["type"] = config.secret_type
    manifest.update({part: dict(values) for part, values in content.items()})
    return manifest


def point_at_copies(template: dict[str, Any], checksums: Mapping[str, str]) -> None:
    """Rewrites, in place, each reference of the pod template to a config of `checksums` (the
    promoted ones, by Flagger's key) to its copy, and records their checksum on the template
    (`CONFIGS_ANNOTATION`); references to other configs stay as they are."""
    for slot in slots(template):
        if slot.ref.key in checksums:
            slot.holder[slot.field] = primary_config_name(slot.ref.name)
    if checksums:
        metadata = template.setdefault("metadata", {})
        annotations = metadata.setdefault("annotations", {})
        annotations[CONFIGS_ANNOTATION] = configs_checksum(checksums)
