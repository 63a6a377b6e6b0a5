"""Flagger's config tracking (pkg/canary/config_tracker.go), without the cluster: which ConfigMaps
and Secrets a pod template references, which of those given in `configs` a release tracks, and
what they hold.

A tracked config is one the pod template references, passed in `configs`, not opted out with
`flagger.app/config-tracking: disabled`, and, for a Secret, of a type Flagger tracks. Its content
is part of the release's revision; the primary runs a `<name>-primary` copy of it, written only
on promotion (routing/configs.py builds the copy and the primary's references).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import Problem
from .revision import config_checksum

CONFIG_MAP = "ConfigMap"
SECRET = "Secret"
# Flagger's opt-out, set on the ConfigMap or Secret; any value starting with "disable" counts.
TRACKING_ANNOTATION = "flagger.app/config-tracking"
# The Secret types Flagger tracks; others (registry credentials, service-account tokens) are
# used by the primary as they are.
TRACKED_SECRET_TYPES = (
    "Opaque",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
    "kubernetes.io/tls",
)
# The top-level fields of each kind; anything else is a typo the API server would drop.
_FIELDS = {
    CONFIG_MAP: {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"},
    SECRET: {"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"},
}
# How many changed keys a review line names before it counts the rest.
_SHOWN_KEYS = 5

Contents = Mapping[str, Mapping[str, Any]]
"""Tracked configs' content (`Config.content`) by Flagger's key (`configmap/<name>`)."""


@dataclass(frozen=True)
class ConfigRef:
    """A ConfigMap or Secret, by kind and name."""

    kind: str
    name: str

    @property
    def key(self) -> str:
        """Flagger's name for it in `status.trackedConfigs`: `configmap/<name>`, `secret/<name>`."""
        return f"{self.kind.lower()}/{self.name}"

    @classmethod
    def of_key(cls, key: str) -> ConfigRef:
        kind, _, name = key.partition("/")
        return cls(CONFIG_MAP if kind == CONFIG_MAP.lower() else SECRET, name)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Slot:
    """One place where a pod template names a ConfigMap or Secret: `holder[field]`, at `path`
    (from the pod template). The same walk finds references and rewrites them."""

    ref: ConfigRef
    holder: dict[str, Any]
    field: str
    path: str


def slots(pod_template: Mapping[str, Any] | None) -> Iterator[Slot]:
    """Every reference Flagger tracks, in its order: volumes (configMap, secret, and projected
    sources), then each container's and init container's env `valueFrom` and `envFrom`. Names
    that are not plain strings (Pulumi Inputs, unknown at preview) cannot be told apart and are
    skipped."""
    spec = _mapping((pod_template or {}).get("spec"))
    for index, volume in _items(spec.get("volumes")):
        at = f"spec.volumes[{index}]"
        yield from _slot(volume.get("configMap"), CONFIG_MAP, "name", f"{at}.configMap")
        yield from _slot(volume.get("secret"), SECRET, "secretName", f"{at}.secret")
        for source_index, source in _items(_mapping(volume.get("projected")).get("sources")):
            source_at = f"{at}.projected.sources[{source_index}]"
            yield from _slot(source.get("configMap"), CONFIG_MAP, "name", f"{source_at}.configMap")
            yield from _slot(source.get("secret"), SECRET, "name", f"{source_at}.secret")
    for group in ("containers", "initContainers"):
        for index, container in _items(spec.get(group)):
            at = f"spec.{group}[{index}]"
            for env_index, env in _items(container.get("env")):
                source = _mapping(env.get("valueFrom"))
                env_at = f"{at}.env[{env_index}].valueFrom"
                key_ref = source.get("configMapKeyRef")
                yield from _slot(key_ref, CONFIG_MAP, "name", f"{env_at}.configMapKeyRef")
                secret_ref = source.get("secretKeyRef")
                yield from _slot(secret_ref, SECRET, "name", f"{env_at}.secretKeyRef")
            for env_index, env_from in _items(container.get("envFrom")):
                from_at = f"{at}.envFrom[{env_index}]"
                map_ref = env_from.get("configMapRef")
                yield from _slot(map_ref, CONFIG_MAP, "name", f"{from_at}.configMapRef")
                yield from _slot(env_from.get("secretRef"), SECRET, "name", f"{from_at}.secretRef")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The mappings of a list, with their indices; anything else holds no reference."""
    for index, item in enumerate(value if isinstance(value, list) else []):
        if isinstance(item, Mapping):
            yield index, item


def _slot(holder: Any, kind: str, field: str, path: str) -> Iterator[Slot]:
    if isinstance(holder, dict) and isinstance(holder.get(field), str):
        yield Slot(ConfigRef(kind, holder[field]), holder, field, f"{path}.{field}")


@dataclass(frozen=True)
class Config:
    """One entry of `configs`: a ConfigMap or Secret manifest as given (values may be Pulumi
    Inputs until the gate reads them), at `path` (`configs[0]`)."""

    manifest: Mapping[str, Any]
    path: str

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind"))

    @property
    def metadata(self) -> Mapping[str, Any]:
        metadata = self.manifest.get("metadata")
        return metadata if isinstance(metadata, Mapping) else {}

    @property
    def ref(self) -> ConfigRef:
        return ConfigRef(self.kind, str(self.metadata.get("name")))

    @property
    def secret_type(self) -> str:
        """The Secret's type; the API server's default when unset."""
        return str(self.manifest.get("type") or "Opaque")

    @property
    def opted_out(self) -> bool:
        annotations = self.metadata.get("annotations") or {}
        return str(annotations.get(TRACKING_ANNOTATION) or "").startswith("disable")

    @property
    def trackable(self) -> bool:
        """Tracked when referenced: not opted out, and not a Secret of a type Flagger skips."""
        return not self.opted_out and (
            self.kind == CONFIG_MAP or self.secret_type in TRACKED_SECRET_TYPES
        )

    def content(self) -> dict[str, Any]:
        """What it holds, as the API server keeps it: a ConfigMap's `data` and `binaryData`, a
        Secret's `data` with `stringData` merged in (base64, `stringData` winning), so the same
        content spelt either way is the same content. Needs resolved values."""
        if self.kind == SECRET:
            data = dict(self.manifest.get("data") or {})
            for key, value in (self.manifest.get("stringData") or {}).items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            return {"data": data} if data else {}
        return {
            part: dict(self.manifest[part])
            for part in ("data", "binaryData")
            if self.manifest.get(part)
        }

    def problems(self, namespace: str) -> list[Problem]:
        """Shape problems of the manifest; a value is never shown (a Secret's is a secret)."""
        manifest, path = self.manifest, self.path
        if manifest.get("apiVersion") != "v1" or self.kind not in _FIELDS:
            found = f"{manifest.get('apiVersion')}/{manifest.get('kind')}"
            return [Problem(path, "must be a v1 ConfigMap or Secret", found, True)]
        problems = [
            Problem(f"{path}.{key}", "unknown field (check its spelling)")
            for key in manifest
            if key not in _FIELDS[self.kind]
        ]
        name = self.metadata.get("name")
        if not isinstance(name, str) or not name:
            problems.append(Problem(f"{path}.metadata.name", "must be set, as a plain string"))
        given = self.metadata.get("namespace")
        if given is not None and given != namespace:
            problems.append(
                Problem(
                    f"{path}.metadata.namespace",
                    f"must equal the Canary's namespace {namespace!r}, where its pods run",
                    given,
                    True,
                )
            )
        for part in ("data", "binaryData", "stringData"):
            for key, value in (manifest.get(part) or {}).items():
                if value is None or isinstance(value, (bool, int, float)):
                    problems.append(
                        Problem(f"{path}.{part}.{key}", "must be a string (quote it in YAML)")
                    )
        return problems


@dataclass(frozen=True)
class ConfigTracking:
    """The configs of one release against the references of its pod template."""

    configs: tuple[Config, ...]
    references: tuple[Slot, ...]

    @classmethod
    def of(
        cls, pod_template: Mapping[str, Any] | None, manifests: Sequence[Mapping[str, Any]]
    ) -> ConfigTracking:
        return cls(
            tuple(Config(manifest, f"configs[{i}]") for i, manifest in enumerate(manifests)),
            tuple(slots(pod_template)),
        )

    @property
    def referenced(self) -> set[ConfigRef]:
        return {slot.ref for slot in self.references}

    @property
    def tracked(self) -> tuple[Config, ...]:
        referenced = self.referenced
        return tuple(c for c in self.configs if c.trackable and c.ref in referenced)

    def contents(self) -> dict[str, dict[str, Any]]:
        """The tracked configs' content by Flagger's key; needs resolved values."""
        return {config.ref.key: config.content() for config in self.tracked}

    def problems(self, namespace: str) -> list[Problem]:
        """Bad manifests, and entries the pod template does not reference (a typo in a name,
        or a config meant for another workload), each naming the field and the value."""
        problems: list[Problem] = []
        seen: set[ConfigRef] = set()
        referenced = self.referenced
        for config in self.configs:
            if not isinstance(config.manifest, Mapping):
                problems.append(Problem(config.path, "must be a ConfigMap or Secret manifest"))
                continue
            shape = config.problems(namespace)
            problems += shape
            if shape:
                continue
            where = f"{config.path}.metadata.name"
            if config.ref in seen:
                duplicate = f"another entry of configs is {config.ref} too"
                problems.append(Problem(where, duplicate, config.ref.name, True))
            seen.add(config.ref)
            if config.ref not in referenced:
                same_kind = sorted({r.name for r in referenced if r.kind == config.kind})
                problems.append(
                    Problem(
                        where,
                        f"the pod template references no {config.kind} of that name "
                        f"(it references: {', '.join(same_kind) or 'none'})",
                        config.ref.name,
                        True,
                    )
                )
        return problems

    def notes(self) -> list[str]:
        """Referenced configs the release does not track, though it looks as if it would."""
        given = {config.ref for config in self.configs}
        notes = []
        noted: set[ConfigRef] = set()
        for slot in self.references:
            if slot.ref in given or slot.ref in noted:
                continue
            noted.add(slot.ref)
            notes.append(
                f"deployment.spec.template.{slot.path}: {slot.ref} is not in configs, so it is "
                "not tracked: the primary uses it as it is, and a change to it reaches the "
                "primary without analysis; pass its manifest in configs to track it"
            )
        for config in self.configs:
            if config.kind == SECRET and not config.opted_out and not config.trackable:
                notes.append(
                    f"{config.path}: {config.ref} is of type {config.secret_type}, which Flagger "
                    "does not track: the primary uses it as it is"
                )
        return notes


def checksums(contents: Contents) -> dict[str, str]:
    """Each tracked config's checksum, by Flagger's key: what identifies it in a revision."""
    return {key: config_checksum(content) for key, content in contents.items()}


def config_changes(old: Contents, new: Contents) -> list[str]:
    """`ConfigMap podinfo-config changed (keys: color, message)` for each tracked config whose
    content changed, newly tracked or no longer tracked: keys, never values."""
    changes = []
    for key in sorted({*old, *new}):
        ref = ConfigRef.of_key(key)
        if key not in new:
            changes.append(f"{ref} no longer tracked")
        elif key not in old:
            changes.append(f"{ref} tracked ({_keys(_entries(new[key]))})")
        else:
            before, after = _entries(old[key]), _entries(new[key])
            changed = {k for k in {*before, *after} if before.get(k) != after.get(k)}
            if changed:
                changes.append(f"{ref} changed ({_keys(changed)})")
    return changes


def _entries(content: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a content's parts (`data`, `binaryData`) with their values."""
    return {key: value for part in content.values() for key, value in (part or {}).items()}


def _keys(keys: Mapping[str, Any] | set[str]) -> str:
    names = sorted(keys)
    if not names:
        return "no keys"
    shown = ", ".join(names[:_SHOWN_KEYS])
    more = len(names) - _SHOWN_KEYS
    return f"keys: {shown}" + (f" and {more} more" if more > 0 else "")
