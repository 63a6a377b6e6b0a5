"""What every resource-holding class here shares: `with` closes it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Self

SecretReader = Callable[[str, str], Mapping[str, str]]
"""(namespace, name) -> the decoded data of a Kubernetes Secret."""


class Closing:
    """`with x:` calls `x.close()` on the way out, whatever happened inside."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
