"""What identifies a release: the pod template's revision, the tracked configs' checksums, and
Flagger's checksum.

Pulumi's engine hands every number back as a float, so each normalises integral floats first:
the same template must hash alike at create and at the next diff.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def template_revision(template: Any) -> str:
    """The pod template's identity: sha256 of its canonical JSON, 16 hex digits.

    Integral floats count as ints, because Pulumi's engine hands every number back as a float
    and the same template must hash alike at create and at the next diff.
    """
    return _digest(template)


def config_checksum(content: Mapping[str, Any]) -> str:
    """A tracked ConfigMap's or Secret's checksum: of its content only, as Flagger's is of its
    data, so that a change of labels or annotations is no new revision."""
    return _digest(content)


def configs_checksum(checksums: Mapping[str, str]) -> str:
    """One checksum of every tracked config's (`config_checksum` by Flagger's key)."""
    return _digest(checksums)


def release_revision(template: Any, checksums: Mapping[str, str]) -> str:
    """The release's identity: the pod template's revision, or, with tracked configs, a digest
    of it and of their checksums (Flagger's checksum of spec and tracked configs), so a change
    to a tracked config alone is a new release. Without tracked configs it is exactly
    `template_revision`, so stacks that track none keep their revision."""
    if not checksums:
        return template_revision(template)
    configs = configs_checksum(checksums)
    return _digest({"template": template_revision(template), "configs": configs})


def _digest(value: Any) -> str:
    """sha256 of the canonical JSON of `value`, 16 hex digits."""
    text = json.dumps(integral(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def integral(value: Any) -> Any:
    """Integral floats back to ints, recursively (replicas 2.0 from the engine becomes 2)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(key): integral(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [integral(item) for item in value]
    return value


def checksum(pod_template_hash: str, tracked: str = "") -> str:
    """Identifies the revision under test, as Flagger's checksum of tracked configs + spec.

    Receivers such as the loadtester deduplicate work per checksum, so it must be stable
    across runs and processes (hence SHA-256, not Python's salted `hash`).
    """
    digest = hashlib.sha256(f"{tracked}|{pod_template_hash}".encode()).hexdigest()
    return digest[:16]
