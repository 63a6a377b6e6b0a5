"""Field ownership for server-side apply, tracked at the level of leaf paths.

Lists count as single leaves (atomic), which is how most Kubernetes lists
without merge keys behave, and is enough to show apply conflicts.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str, ...]

# Server-owned or identifying fields that nobody "manages".
_UNMANAGED: set[Path] = {
    ("apiVersion",),
    ("kind",),
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("metadata", "resourceVersion"),
    ("metadata", "uid"),
    ("metadata", "creationTimestamp"),
    ("metadata", "generation"),
    ("metadata", "managedFields"),
}


def leaves(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Flatten an object into {path: value}; status is owned through its subresource."""
    out: dict[Path, Any] = {}
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            path = (*prefix, str(key))
            if path in _UNMANAGED or path == ("status",):
                continue
            out.update(leaves(value, path))
    elif prefix:
        out[prefix] = obj
    return out


def remove_path(obj: dict[str, Any], path: Path) -> None:
    """Delete a leaf and any dicts it leaves empty."""
    parents: list[dict[str, Any]] = [obj]
    for key in path[:-1]:
        child = parents[-1].get(key)
        if not isinstance(child, dict):
            return
        parents.append(child)
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 2, -1, -1):
        if not parents[depth + 1]:
            parents[depth].pop(path[depth], None)


@dataclass
class ManagedEntry:
    """One manager's set of owned paths, as recorded in metadata.managedFields."""

    operation: str
    api_version: str
    paths: set[Path] = field(default_factory=set)
    time: str = ""


@dataclass
class FieldConflict:
    """A field another manager owns with a different value than the one applied."""

    manager: str
    path: Path


@dataclass
class FieldManagers:
    """Who owns which fields of one object."""

    entries: dict[str, ManagedEntry] = field(default_factory=dict)

    def record_update(
        self, manager: str, api_version: str, old: dict[str, Any], new: dict[str, Any]
    ) -> None:
        """A non-apply write takes ownership of every field it changed."""
        before, after = leaves(old), leaves(new)
        changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        if not changed:
            return
        for entry in self.entries.values():
            entry.paths -= changed
        entry = self.entries.setdefault(manager, ManagedEntry("Update", api_version))
        entry.operation = "Update"
        entry.paths |= changed & after.keys()
        entry.time = _now()
        self._drop_empty()

    def conflicts(self, manager: str, current: dict[str, Any], applied: Any) -> list[FieldConflict]:
        """Fields in `applied` that others own with a value different from the applied one."""
        have = leaves(current)
        found = []
        for path, value in leaves(applied).items():
            for other, entry in self.entries.items():
                if other != manager and path in entry.paths and have.get(path) != value:
                    found.append(FieldConflict(other, path))
        return found

    def record_apply(
        self,
        manager: str,
        api_version: str,
        obj: dict[str, Any],
        applied: Any,
        conflicts: list[FieldConflict],
    ) -> None:
        """Give `manager` exactly the applied fields; drop fields it stopped applying."""
        for conflict in conflicts:
            self.entries[conflict.manager].paths.discard(conflict.path)
        wanted = set(leaves(applied))
        previous = self.entries.get(manager)
        if previous is not None:
            others = set().union(*(e.paths for m, e in self.entries.items() if m != manager))
            for path in previous.paths - wanted - others:
                remove_path(obj, path)
        self.entries[manager] = ManagedEntry("Apply", api_version, wanted, _now())
        self._drop_empty()

    def render(self) -> list[dict[str, Any]]:
        """The metadata.managedFields list, in the FieldsV1 shape."""
        return [
            {
                "manager": manager,
                "operation": entry.operation,
                "apiVersion": entry.api_version,
                "time": entry.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(entry.paths),
            }
            for manager, entry in self.entries.items()
        ]

    def _drop_empty(self) -> None:
        self.entries = {m: e for m, e in self.entries.items() if e.paths}


def _fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
