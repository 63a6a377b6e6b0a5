"""The model base: Flagger's camelCase in YAML, snake_case in Python, and no unknown fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """Frozen so that the pure engine can share spec objects without copying them."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        arbitrary_types_allowed=True,
    )

    def to_manifest(self) -> dict[str, Any]:
        """Back to the camelCase shape that Kubernetes and Istio expect."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
