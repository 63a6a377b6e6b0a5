"""A group of canaries released in one `pulumi up`: which wave each is in, and what a failure
stops. Validated once, before anything is declared, with the field and value in each problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import Problem, SpecError


class FailurePolicy(StrEnum):
    """What a canary that did not promote does to the rest of its group."""

    ROLLBACK = "rollback"
    """The others still analysing in its wave roll back too, and no later wave starts: a wave
    lands whole or not at all."""
    FINISH = "finish"
    """The others run to their own verdicts, and later waves start as planned."""
    STOP = "stop"
    """The others run to their own verdicts, and no later wave starts."""


@dataclass(frozen=True)
class GroupPlan:
    """The waves of a group, in order, each a tuple of canary names, and its failure policy."""

    waves: tuple[tuple[str, ...], ...]
    policy: FailurePolicy

    @property
    def stops_at_a_failure(self) -> bool:
        """Whether a failed wave keeps the later ones from starting."""
        return self.policy is not FailurePolicy.FINISH

    @classmethod
    def of(
        cls, names: Sequence[str], waves: Sequence[Sequence[str]] | None, policy: Any
    ) -> GroupPlan:
        """Raises SpecError naming every bad field: an empty wave, a name that is not a
        canary of the group, a canary in two waves or in none, an unknown policy."""
        problems: list[Problem] = []
        if not names:
            problems.append(Problem("canaries", "a group needs at least one canary"))
        try:
            chosen = FailurePolicy(policy)
        except ValueError:
            known = ", ".join(str(item) for item in FailurePolicy)
            problems.append(Problem("on_failure", f"must be one of {known}", policy, True))
            chosen = FailurePolicy.STOP
        planned = _waves(names, waves, problems)
        if problems:
            raise SpecError(problems, source="canary group")
        return cls(planned, chosen)


def _waves(
    names: Sequence[str], waves: Sequence[Sequence[str]] | None, problems: list[Problem]
) -> tuple[tuple[str, ...], ...]:
    if waves is None:
        return (tuple(names),) if names else ()
    if isinstance(waves, str) or not isinstance(waves, Sequence):
        problems.append(Problem("waves", "must be a list of lists of canary names", waves, True))
        return ()
    known = ", ".join(names)
    placed: dict[str, str] = {}
    planned = []
    for index, wave in enumerate(waves):
        path = f"waves[{index}]"
        if isinstance(wave, str) or not isinstance(wave, Sequence):
            problems.append(Problem(path, "must be a list of canary names", wave, True))
            continue
        if not wave:
            problems.append(Problem(path, "a wave needs at least one canary", list(wave), True))
        for position, name in enumerate(wave):
            where = f"{path}[{position}]"
            if name not in names:
                message = f"not a canary of the group (known: {known})"
                problems.append(Problem(where, message, name, True))
            elif name in placed:
                problems.append(Problem(where, f"already in {placed[name]}", name, True))
            else:
                placed[name] = where
        planned.append(tuple(wave))
    missing = [name for name in names if name not in placed]
    if missing:
        problems.append(
            Problem("waves", f"every canary must be in a wave; in none: {', '.join(missing)}")
        )
    return tuple(planned)
