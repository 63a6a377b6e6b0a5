"""What identifies a release: the pod template's revision and Flagger's checksum.

Pulumi's engine hands every number back as a float, so both normalise integral floats first:
the same template must hash alike at create and at the next diff.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def template_revision(template: Any) -> str:
    """The release's identity: sha256 of the pod template's canonical JSON, 16 hex digits.

    Integral floats count as ints, because Pulumi's engine hands every number back as a float
    and the same template must hash alike at create and at the next diff.
    """
    text = json.dumps(integral(template), sort_keys=True, separators=(",", ":"))
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
