"""Flagger's durations: `^[0-9]+(m|s)`-prefixed Go durations such as `1m`, `30s` or `1m30s`."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_FLAGGER_PREFIX = re.compile(r"^[0-9]+(m|s)")
_GO_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_seconds(text: str) -> float:
    """Seconds in a Go duration; raises ValueError naming the accepted form."""
    if not _FLAGGER_PREFIX.match(text):
        raise ValueError("must be a duration such as 30s or 1m (Flagger's ^[0-9]+(m|s))")
    position, total = 0, 0.0
    for part in _GO_PART.finditer(text):
        if part.start() != position:
            break
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        position = part.end()
    if position != len(text):
        raise ValueError("must be a duration such as 30s or 1m (Flagger's ^[0-9]+(m|s))")
    return total


def format_seconds(seconds: float) -> str:
    """The shortest `1m30s`-style spelling, as a PromQL range or a message."""
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    if minutes and rest:
        return f"{minutes}m{rest}s"
    return f"{minutes}m" if minutes else f"{rest}s"


def _check(text: str) -> str:
    parse_seconds(text)
    return text


Duration = Annotated[str, AfterValidator(_check)]
"""A duration string, validated and kept as the user wrote it."""
