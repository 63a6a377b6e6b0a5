"""Migrating from Flagger: `python -m components.migrate` writes the `pulumi import` file that
adopts a Flagger canary's existing objects into a stack declaring them with `CanaryDeployment`,
and prints the steps around it. See docs/migrating-from-flagger.md.
"""

from ._objects import Adoption, DeclaredObject, declared_objects, exists_under_flagger, import_file
from ._run import main

__all__ = [
    "Adoption",
    "DeclaredObject",
    "declared_objects",
    "exists_under_flagger",
    "import_file",
    "main",
]
