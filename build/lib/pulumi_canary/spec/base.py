"""The model base: Flagger's camelCase in YAML, snake_case in Python, and no unknown fields."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, SecretStr, SerializationInfo
from pydantic.alias_generators import to_camel


def _dump_secret(value: SecretStr, info: SerializationInfo) -> str:
    """Masked, unless the dump is for an input Pulumi keeps secret (`reveal_secrets`)."""
    revealed = bool(info.context and info.context.get("reveal_secrets"))
    return value.get_secret_value() if revealed else str(value)


Secret = Annotated[SecretStr, PlainSerializer(_dump_secret, return_type=str)]
"""A credential: masked in reprs, logs and manifests; revealed only on request."""


class SpecModel(BaseModel):
    """Frozen so that the pure engine can share spec objects without copying them."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        arbitrary_types_allowed=True,
    )

    def to_manifest(self, *, reveal_secrets: bool = False) -> dict[str, Any]:
        """Back to the camelCase shape that Kubernetes and Istio expect; credentials masked
        unless `reveal_secrets` (for inputs that Pulumi stores encrypted)."""
        return self.model_dump(
            by_alias=True,
            exclude_none=True,
            mode="json",
            context={"reveal_secrets": reveal_secrets},
        )
