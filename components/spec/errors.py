"""One error type for every bad input, so callers print a single clear message."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..errors import PermanentError


@dataclass(frozen=True)
class Problem:
    """A bad value, located by its field path in Flagger's camelCase spelling."""

    path: str
    message: str
    value: Any = None
    has_value: bool = False

    def __str__(self) -> str:
        if not self.has_value:
            shown = ""
        elif _SENSITIVE & set(re.split(r"[.\[\]]", self.path)):
            shown = " (value not shown: it may be a credential)"
        else:
            shown = f" (got {_redacted(self.value)!r})"
        return f"{self.path}: {self.message}{shown}"


# Fields that hold credentials (a hook URL embeds its own, as Slack's do): their values are
# never echoed.
_SENSITIVE = {"credentials", "token", "username", "password", "address", "kubeconfig", "url"}


def _redacted(value: Any) -> Any:
    """`value` with whatever sits under a sensitive key replaced, for error messages."""
    if isinstance(value, dict):
        return {
            key: "<hidden>" if key in _SENSITIVE else _redacted(item) for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redacted(item) for item in value]
    return value


class SpecError(PermanentError, ValueError):
    """Raised before any resource is declared; lists every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem], *, source: str = "canary spec") -> None:
        self.problems = tuple(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {source}:\n{lines}")

    @classmethod
    def single(cls, path: str, message: str, *value: Any) -> SpecError:
        return cls([Problem(path, message, value[0] if value else None, bool(value))])

    @classmethod
    def from_validation(
        cls, error: ValidationError, *, prefix: str = "", source: str = "canary spec"
    ) -> SpecError:
        """Turns pydantic's report into the paths a Flagger user knows (`analysis.stepWeight`)."""
        problems = []
        for item in error.errors():
            location = [str(part) for part in item["loc"] if not _is_union_tag(part)]
            path = _join(prefix, _dotted(location))
            message = _message(item)
            has_value = item["type"] != "missing"
            problems.append(Problem(path or "(root)", message, item.get("input"), has_value))
        return cls(problems, source=source)


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the member type name (e.g. `function-after[...]`) to union locations.
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def _dotted(parts: Iterable[str]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}" if path else prefix


def _message(item: Any) -> str:
    if item["type"] == "extra_forbidden":
        return "unknown field (check its spelling)"
    message = str(item["msg"])
    return message.removeprefix("Value error, ")
