"""Flagger's durations: `^[0-9]+(m|s)`-prefixed Go durations such as `1m`, `30s` or `1m30s`."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator

from .errors import Problem

# Flagger's `^[0-9]+(m|s)` prefix, then Go duration parts; also a JSON-schema (ECMA) pattern.
DURATION_PATTERN = r"^(?=[0-9]+(?:m|s))(?:[0-9]+(?:\.[0-9]+)?(?:ms|h|m|s))+$"
_DURATION = re.compile(DURATION_PATTERN)
_GO_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_seconds(text: str) -> float:
    """Seconds in a duration; raises ValueError naming the accepted form."""
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError("must be a duration such as 30s or 1m (Flagger's ^[0-9]+(m|s))")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _GO_PART.findall(text))


def format_seconds(seconds: float) -> str:
    """The shortest `1m30s`-style spelling (`500ms` below a second), as a PromQL range or a
    message; it parses back to the same number of milliseconds."""
    millis = round(seconds * 1000)
    minutes, rest = divmod(millis // 1000, 60)
    parts = [f"{minutes}m" if minutes else "", f"{rest}s" if rest else ""]
    if millis % 1000:
        parts.append(f"{millis % 1000}ms")
    return "".join(parts) or "0s"


def positive_seconds(text: str) -> float:
    """Seconds in a duration that must be longer than zero (an interval, a window, a timeout):
    `0s` would busy-loop a release or ask PromQL for an empty range."""
    seconds = parse_seconds(text)
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


def duration_problems(value: Any, path: str) -> list[Problem]:
    """What is wrong with an option that must be a duration longer than zero, at `path`."""
    try:
        if not isinstance(value, str):
            raise ValueError("must be a duration string such as 30s or 1m")
        positive_seconds(value)
    except ValueError as error:
        return [Problem(path, str(error), value, True)]
    return []


def _check(text: str) -> str:
    positive_seconds(text)
    return text


Duration = Annotated[str, AfterValidator(_check)]
"""A duration string longer than zero, validated and kept as the user wrote it."""
