"""A Kubernetes API emulator over real HTTP, strict where clients rely on the server.

kmock's emulator stores objects loosely (no resourceVersion, no conflicts,
500 for unknown kinds, and it cannot parse ``/api/v1/namespaces``), so the
resource endpoints are served here, and kmock keeps the discovery endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime
import json
import re
import secrets
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import httpx
import kmock
import yaml
from aiohttp import web

from ._loop import BackgroundLoop
from .faults import TESTBED_AGENT, Fault, FaultKind, FaultPlan, Request
from .fields import FieldManagers
from .patches import PatchError, json_patch, merge_patch, strategic_merge_patch


@dataclasses.dataclass(frozen=True)
class Kind:
    """A resource type the emulator serves."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = True  # writes to .status go through the /status subresource

    @property
    def api_version(self) -> str:
        """The apiVersion field value for this group and version."""
        return f"{self.group}/{self.version}" if self.group else self.version


KNOWN_KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "namespaces", "Namespace", namespaced=False),
    Kind("", "v1", "services", "Service"),
    Kind("", "v1", "configmaps", "ConfigMap", status=False),
    Kind("", "v1", "secrets", "Secret", status=False),
    Kind("", "v1", "pods", "Pod"),
    Kind("", "v1", "events", "Event", status=False),
    Kind("apps", "v1", "deployments", "Deployment"),
    Kind("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    Kind("networking.istio.io", "v1", "virtualservices", "VirtualService"),
    Kind("networking.istio.io", "v1beta1", "virtualservices", "VirtualService"),
    Kind("networking.istio.io", "v1", "destinationrules", "DestinationRule"),
    Kind("networking.istio.io", "v1beta1", "destinationrules", "DestinationRule"),
    Kind("flagger.app", "v1beta1", "canaries", "Canary"),
    Kind("flagger.app", "v1beta1", "metrictemplates", "MetricTemplate"),
    Kind("flagger.app", "v1beta1", "alertproviders", "AlertProvider"),
)

# Namespaces every real cluster has.
_SEED_NAMESPACES = ("default", "kube-system", "kube-public")

_API_PATH = re.compile(
    r"^/(?:api/(?P<core>[^/]+)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/(?P<rest>.+)$"
)
_PROXY_TARGET = re.compile(r"^(?:(?P<scheme>https?):)?(?P<name>[^:]+)(?::(?P<port>[^:]+))?$")
_REASONS = {
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}
_HOP_HEADERS = {
    "host",
    "authorization",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
}


class StatusError(Exception):
    """An API failure answered as a Kubernetes `Status` object."""

    def __init__(self, code: int, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def response(self) -> web.Response:
        """Render as the apiserver does, so clients raise their usual API errors."""
        body = {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }
        return _json(body, status=self.code)


def _not_found(kind: Kind | None, plural: str, name: str) -> StatusError:
    group = kind.group if kind else ""
    resource = f"{plural}.{group}" if group else plural
    return StatusError(
        404, "NotFound", f'{resource} "{name}" not found', name=name, group=group, kind=plural
    )


@dataclasses.dataclass(frozen=True)
class _Target:
    """A parsed resource URL."""

    kind: Kind | None
    group: str
    version: str
    plural: str
    namespace: str
    name: str
    subresource: str


@dataclasses.dataclass
class _Stored:
    obj: dict[str, Any]
    managers: FieldManagers = dataclasses.field(default_factory=FieldManagers)


_StoreKey = tuple[str, str, str, str]  # group, plural, namespace ("" if cluster-wide), name


class KubeApiEmulator(kmock.KubernetesEmulator):
    """The async handler: serve it with ``kmock.Server(emulator)``."""

    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token
        self._kinds: dict[tuple[str, str, str], Kind] = {}
        self._store: dict[_StoreKey, _Stored] = {}
        self._revision = 0
        self._proxies: dict[tuple[str, str, str], str] = {}
        self.faults = FaultPlan()
        for kind in KNOWN_KINDS:
            self._declare(kind)
        for name in _SEED_NAMESPACES:
            meta = {"name": name}
            self._insert(self._kinds["", "v1", "namespaces"], {"metadata": meta}, "")

    def register_service_proxy(self, namespace: str, name: str, port: int | str, url: str) -> None:
        """Send ``services/{name}:{port}/proxy/...`` to a local server at `url`."""
        self._proxies[namespace, name, str(port)] = url.rstrip("/")

    def _declare(self, kind: Kind) -> None:
        self._kinds[kind.group, kind.version, kind.plural] = kind
        verbs = {"create", "delete", "get", "list", "patch", "update"}
        self.resources[f"{kind.group}/{kind.version}/{kind.plural}"] = kmock.ResourceInfo(
            kind=kind.kind,
            namespaced=kind.namespaced,
            verbs=verbs,
            subresources={"status"} if kind.status else set(),
        )

    async def __call__(self, raw: web.BaseRequest) -> web.StreamResponse:
        """Serve resources and proxies here; leave discovery to kmock."""
        try:
            self._authorize(raw)
            match = _API_PATH.match(raw.path)
            target = self._parse_target(match) if match else None
            if target is None:
                response: web.StreamResponse = await super().__call__(raw)
                return response
            if target.plural == "services" and target.subresource.startswith("proxy"):
                return await self._proxy(raw, target)
            body = await raw.read()
            agent = raw.headers.get("User-Agent", "")
            fault = self.faults.pick(Request(raw.method, raw.path, dict(raw.query), agent, body))
            if fault is None:
                return self._serve(raw, target, body)
            return await self._faulty(raw, target, body, fault)
        except StatusError as exc:
            return exc.response()

    async def _faulty(
        self, raw: web.BaseRequest, target: _Target, body: bytes, fault: Fault
    ) -> web.StreamResponse:
        """Serves a request the way `fault` says a bad day would."""
        if fault.kind is FaultKind.STATUS:
            error = StatusError(
                fault.status, _REASONS.get(fault.status, "InternalError"), "injected"
            )
            response = error.response()
            if fault.retry_after is not None:
                response.headers["Retry-After"] = f"{fault.retry_after:g}"
            return response
        if fault.kind is FaultKind.DROP:
            if raw.transport is not None:
                raw.transport.abort()
            return web.Response(status=500)  # never reaches the client
        if fault.kind is FaultKind.CALL and not fault.after and fault.callback is not None:
            fault.callback()
        try:
            served: web.StreamResponse = self._serve(raw, target, body)
        except StatusError as exc:
            served = exc.response()
        if fault.kind is FaultKind.CALL and fault.after and fault.callback is not None:
            fault.callback()
        if fault.kind is FaultKind.LATE:
            await asyncio.sleep(fault.delay)
        return served

    def _authorize(self, raw: web.BaseRequest) -> None:
        if self.token is None:
            return
        if raw.headers.get("Authorization", "") != f"Bearer {self.token}":
            raise StatusError(401, "Unauthorized", "Unauthorized")

    def _parse_target(self, match: re.Match[str]) -> _Target | None:
        group = match["group"] or ""
        version = match["core"] or match["version"]
        parts = match["rest"].strip("/").split("/")
        namespace = ""
        if parts[0] == "namespaces" and len(parts) >= 3 and parts[2] not in ("status", "finalize"):
            namespace, parts = parts[1], parts[2:]
        plural, name, sub = parts[0], "", ""
        if len(parts) > 1:
            name = parts[1]
        if len(parts) > 2:
            sub = "/".join(parts[2:])
        kind = self._kinds.get((group, version, plural))
        return _Target(kind, group, version, plural, namespace, name, sub)

    # -- resources -------------------------------------------------------------------------

    def _serve(self, raw: web.BaseRequest, target: _Target, body: bytes) -> web.Response:
        method = raw.method.upper()
        if target.subresource not in ("", "status"):
            raise StatusError(404, "NotFound", f"subresource {target.subresource} not served")
        if method == "GET" and raw.query.get("watch") in ("true", "1"):
            raise StatusError(405, "MethodNotAllowed", "watch is not served by the test bed")
        if method == "GET" and not target.name:
            return _json(self._list(target, raw.query))
        if method == "GET":
            return _json(self._fetch(target))
        if method == "POST" and not target.name:
            return _json(self._create(target, _decode(body), raw), status=201)
        if method == "PUT" and target.name:
            return _json(self._replace(target, _decode(body), raw))
        if method == "PATCH" and target.name:
            content_type = raw.headers.get("Content-Type", "").split(";")[0].strip()
            obj, status = self._patch(target, content_type, body, raw)
            return _json(obj, status=status)
        if method == "DELETE" and target.name:
            return _json(self._delete(target))
        raise StatusError(405, "MethodNotAllowed", f"{method} is not allowed here")

    def _require_kind(self, target: _Target) -> Kind:
        if target.kind is None:
            raise StatusError(
                404,
                "NotFound",
                f"the server could not find the requested resource ({target.plural})",
            )
        if target.kind.namespaced != bool(target.namespace) and target.name:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        return target.kind

    def _key(self, kind: Kind, namespace: str, name: str) -> _StoreKey:
        return (kind.group, kind.plural, namespace, name)

    def _existing(self, target: _Target) -> _Stored:
        kind = self._require_kind(target)
        stored = self._store.get(self._key(kind, target.namespace, target.name))
        if stored is None:
            raise _not_found(kind, target.plural, target.name)
        return stored

    def _render(self, kind: Kind, stored: _Stored) -> dict[str, Any]:
        """A copy as seen through the requested version (no schema conversion is needed)."""
        obj = copy.deepcopy(stored.obj)
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        managed = stored.managers.render()
        if managed:
            obj["metadata"]["managedFields"] = managed
        return obj

    def _fetch(self, target: _Target) -> dict[str, Any]:
        return self._render(self._require_kind(target), self._existing(target))

    def _list(self, target: _Target, query: Any) -> dict[str, Any]:
        kind = self._require_kind(target)
        selector = _parse_selector(query.get("labelSelector", ""))
        fields = _parse_selector(query.get("fieldSelector", ""))
        items = []
        for (group, plural, namespace, _), stored in sorted(self._store.items()):
            if (group, plural) != (kind.group, kind.plural):
                continue
            if target.namespace and namespace != target.namespace:
                continue
            meta = stored.obj["metadata"]
            field_values = {"metadata.name": meta["name"], "metadata.namespace": namespace}
            if _matches(selector, meta.get("labels") or {}) and _matches(fields, field_values):
                items.append(self._render(kind, stored))
        return {
            "apiVersion": kind.api_version,
            "kind": f"{kind.kind}List",
            "metadata": {"resourceVersion": str(self._revision)},
            "items": items,
        }

    def _create(self, target: _Target, obj: Any, raw: web.BaseRequest) -> dict[str, Any]:
        if target.kind is None:
            target = self._learn_kind(target, obj)
        kind = self._require_kind(dataclasses.replace(target, name=""))
        self._check_identity(kind, target, obj)
        stored = self._insert(kind, obj, target.namespace)
        stored.managers.record_update(_manager(raw), kind.api_version, {}, stored.obj)
        return self._render(kind, stored)

    def _learn_kind(self, target: _Target, obj: Any) -> _Target:
        """Accept a custom resource created for a type the emulator has not seen yet."""
        if not isinstance(obj, dict) or not obj.get("kind"):
            raise StatusError(400, "BadRequest", "object kind is missing")
        kind = Kind(
            target.group, target.version, target.plural, obj["kind"], bool(target.namespace)
        )
        self._declare(kind)
        return dataclasses.replace(target, kind=kind)

    def _check_identity(self, kind: Kind, target: _Target, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise StatusError(400, "BadRequest", "the body must be a JSON object")
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if not meta.get("name"):
            raise StatusError(422, "Invalid", "metadata.name: Required value")
        if target.name and meta["name"] != target.name:
            raise StatusError(400, "BadRequest", "the name of the object does not match the URL")
        if kind.namespaced:
            if meta.get("namespace", target.namespace) != target.namespace:
                raise StatusError(400, "BadRequest", "the namespace does not match the URL")
            ns_key = ("", "namespaces", "", target.namespace)
            if ns_key not in self._store:
                raise _not_found(None, "namespaces", target.namespace)

    def _insert(self, kind: Kind, obj: dict[str, Any], namespace: str) -> _Stored:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        key = self._key(kind, namespace, meta["name"])
        if key in self._store:
            raise StatusError(
                409,
                "AlreadyExists",
                f'{kind.plural} "{meta["name"]}" already exists',
                name=meta["name"],
                group=kind.group,
                kind=kind.plural,
            )
        if kind.status:
            obj.pop("status", None)
        meta.pop("managedFields", None)
        if namespace:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = datetime.datetime.now(datetime.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        meta["generation"] = 1
        self._bump(obj)
        stored = _Stored(obj)
        self._store[key] = stored
        return stored

    def _bump(self, obj: dict[str, Any]) -> None:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)

    def _commit(self, kind: Kind, stored: _Stored, new: dict[str, Any], subresource: str) -> None:
        """Write `new` over `stored`, keeping server-owned fields as the apiserver does."""
        old = stored.obj
        new = copy.deepcopy(new)
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif kind.status:
            new.pop("status", None)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        meta = new.setdefault("metadata", {})
        for key in ("name", "namespace", "uid", "creationTimestamp", "generation"):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
        meta.pop("managedFields", None)
        if _spec_of(new) != _spec_of(old):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new != old:  # a no-op write keeps the resourceVersion, as on a real apiserver
            self._bump(new)
        stored.obj = new

    def _check_version(self, stored: _Stored, obj: Any, kind: Kind) -> None:
        wanted = (
            (obj.get("metadata") or {}).get("resourceVersion") if isinstance(obj, dict) else None
        )
        if wanted and wanted != stored.obj["metadata"]["resourceVersion"]:
            name = stored.obj["metadata"]["name"]
            raise StatusError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind.plural} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                name=name,
                group=kind.group,
                kind=kind.plural,
            )

    def _replace(self, target: _Target, obj: Any, raw: web.BaseRequest) -> dict[str, Any]:
        kind = self._require_kind(target)
        stored = self._existing(target)
        self._check_identity(kind, target, obj)
        self._check_version(stored, obj, kind)
        return self._write(kind, stored, obj, target.subresource, raw)

    def _write(
        self,
        kind: Kind,
        stored: _Stored,
        new: dict[str, Any],
        subresource: str,
        raw: web.BaseRequest,
    ) -> dict[str, Any]:
        old = copy.deepcopy(stored.obj)
        self._commit(kind, stored, new, subresource)
        stored.managers.record_update(_manager(raw), kind.api_version, old, stored.obj)
        return self._render(kind, stored)

    def _patch(
        self, target: _Target, content_type: str, body: bytes, raw: web.BaseRequest
    ) -> tuple[dict[str, Any], int]:
        if content_type == "application/apply-patch+yaml":
            return self._apply(target, body, raw)
        kind = self._require_kind(target)
        stored = self._existing(target)
        patch = _decode(body)
        current = self._render(kind, stored)
        current["metadata"].pop("managedFields", None)
        try:
            if content_type == "application/json-patch+json":
                new = json_patch(current, patch)
            elif content_type == "application/merge-patch+json":
                self._check_version(stored, patch, kind)
                new = merge_patch(current, patch)
            elif content_type == "application/strategic-merge-patch+json":
                if kind.group not in ("", "apps", "autoscaling"):
                    raise StatusError(
                        415, "UnsupportedMediaType", "strategic merge patch is not supported here"
                    )
                self._check_version(stored, patch, kind)
                new = strategic_merge_patch(current, patch)
            else:
                raise StatusError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown "
                    f"format - accepted media types include: application/json-patch+json, "
                    f"application/merge-patch+json, application/apply-patch+yaml "
                    f"(got {content_type!r})",
                )
        except PatchError as exc:
            raise StatusError(422, "Invalid", str(exc)) from exc
        if not isinstance(new, dict):
            raise StatusError(422, "Invalid", "the patch does not produce an object")
        self._check_version(stored, new, kind)
        return self._write(kind, stored, new, target.subresource, raw), 200

    def _apply(
        self, target: _Target, body: bytes, raw: web.BaseRequest
    ) -> tuple[dict[str, Any], int]:
        manager = raw.query.get("fieldManager")
        if not manager:
            raise StatusError(
                400, "BadRequest", "PATCH, fieldManager is required for apply requests"
            )
        try:
            applied = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise StatusError(400, "BadRequest", f"cannot decode apply body: {exc}") from exc
        if target.kind is None:
            target = self._learn_kind(target, applied)
        kind = self._require_kind(target)
        self._check_identity(kind, target, applied)
        applied = _without_nulls(applied)
        key = self._key(kind, target.namespace, target.name)
        force = raw.query.get("force") in ("true", "1")
        stored = self._store.get(key)
        if stored is None:
            stored = self._insert(kind, applied, target.namespace)
            stored.managers.record_apply(manager, kind.api_version, stored.obj, applied, [])
            return self._render(kind, stored), 201
        self._check_version(stored, applied, kind)
        conflicts = stored.managers.conflicts(manager, stored.obj, applied)
        if conflicts and not force:
            fields = [f'conflict with "{c.manager}": .{".".join(c.path)}' for c in conflicts]
            raise StatusError(
                409,
                "Conflict",
                f"Apply failed with {len(conflicts)} conflict(s): {', '.join(fields)}",
                causes=[{"type": "FieldManagerConflict", "message": text} for text in fields],
            )
        new = merge_patch(copy.deepcopy(stored.obj), applied)
        if target.subresource != "status":
            stored.managers.record_apply(manager, kind.api_version, new, applied, conflicts)
        self._commit(kind, stored, new, target.subresource)
        return self._render(kind, stored), 200

    def _delete(self, target: _Target) -> dict[str, Any]:
        kind = self._require_kind(target)
        stored = self._existing(target)
        del self._store[self._key(kind, target.namespace, target.name)]
        self._revision += 1
        return self._render(kind, stored)

    # -- service proxy ---------------------------------------------------------------------

    async def _proxy(self, raw: web.BaseRequest, target: _Target) -> web.StreamResponse:
        """Forward like ``kube-apiserver``'s service proxy, to a registered local server."""
        parsed = _PROXY_TARGET.match(target.name)
        port = (parsed["port"] if parsed else None) or "80"
        name = parsed["name"] if parsed else target.name
        upstream = self._proxies.get((target.namespace, name, port))
        if upstream is None:
            raise StatusError(
                503, "ServiceUnavailable", f'no endpoints available for service "{name}"'
            )
        rest = target.subresource.removeprefix("proxy").lstrip("/")
        if raw.path.endswith("/") and rest:
            rest += "/"
        headers = {k: v for k, v in raw.headers.items() if k.lower() not in _HOP_HEADERS}
        body = await raw.read()
        timeout = aiohttp.ClientTimeout(total=60)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(
                    raw.method,
                    f"{upstream}/{rest}",
                    params=raw.query,
                    data=body or None,
                    headers=headers,
                    allow_redirects=False,
                ) as upstream_response,
            ):
                payload = await upstream_response.read()
                passed = {
                    k: v
                    for k, v in upstream_response.headers.items()
                    if k.lower() not in _HOP_HEADERS and k.lower() != "content-encoding"
                }
                return web.Response(status=upstream_response.status, body=payload, headers=passed)
        except aiohttp.ClientError as exc:
            raise StatusError(
                503, "ServiceUnavailable", f"error trying to reach service: {exc}"
            ) from exc


def _json(obj: Any, status: int = 200) -> web.Response:
    """Exactly `application/json`, as the apiserver sends; lightkube compares it verbatim."""
    headers = {"Content-Type": "application/json"}
    return web.Response(body=json.dumps(obj).encode(), status=status, headers=headers)


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise StatusError(400, "BadRequest", f"cannot decode the body: {exc}") from exc


def _manager(raw: web.BaseRequest) -> str:
    """The apiserver's default manager name is the user agent's program name."""
    return raw.query.get("fieldManager") or raw.headers.get("User-Agent", "unknown").split("/")[0]


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _without_nulls(value: Any) -> Any:
    """Apply configurations never delete by null; they simply omit the field."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


_Selector = list[tuple[str, str, str | None]]  # (key, op, value)


def _parse_selector(text: str) -> _Selector:
    """Equality and existence selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`."""
    out: _Selector = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            out.append((key.strip(), "!=", value.strip()))
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            out.append((key.strip(), "=", value.strip()))
        elif term.startswith("!"):
            out.append((term[1:], "!", None))
        else:
            out.append((term, "exists", None))
    return out


def _matches(selector: _Selector, values: dict[str, Any]) -> bool:
    for key, op, value in selector:
        have = values.get(key)
        if (
            (op == "=" and have != value)
            or (op == "!=" and have == value)
            or (op == "!" and key in values)
            or (op == "exists" and key not in values)
        ):
            return False
    return True


def api_path(obj: dict[str, Any], *, named: bool = True) -> str:
    """The URL path of an object (or of its collection) from apiVersion, kind and metadata."""
    api_version: str = obj["apiVersion"]
    meta = obj.get("metadata", {})
    plural = _plural(api_version, obj["kind"])
    base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    namespaced = plural != "namespaces"
    if namespaced:
        base += f"/namespaces/{meta.get('namespace', 'default')}"
    base += f"/{plural}"
    return f"{base}/{meta['name']}" if named else base


def _plural(api_version: str, kind: str) -> str:
    group = api_version.rpartition("/")[0]
    for known in KNOWN_KINDS:
        if known.group == group and known.kind == kind:
            return known.plural
    return kind.lower() + "s"


class KubeEmulator:
    """The emulator on a loopback port, driven from synchronous code and tests."""

    def __init__(self, token: str | None = "testbed-token") -> None:
        self.token = token
        self.api = KubeApiEmulator(token=token)
        self._loop: BackgroundLoop | None = None
        self._exit: contextlib.AsyncExitStack | None = None
        self._http: httpx.Client | None = None
        self.url = ""

    def __enter__(self) -> KubeEmulator:
        self._loop = BackgroundLoop("kube-emulator")
        self._exit = contextlib.AsyncExitStack()
        self.url = self._loop.run(self._start(self._exit))
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers["User-Agent"] = f"{TESTBED_AGENT}-kube"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=10)
        return self

    async def _start(self, stack: contextlib.AsyncExitStack) -> str:
        server = await stack.enter_async_context(kmock.Server(self.api))
        return str(server.url).rstrip("/")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            self._http.close()
        if self._loop is not None and self._exit is not None:
            self._loop.run(self._exit.aclose())
            self._loop.close()
        self._loop = self._exit = self._http = None

    def register_service_proxy(self, namespace: str, name: str, port: int | str, url: str) -> None:
        """Route the in-cluster service address `name:port` to a local server."""
        self.api.register_service_proxy(namespace, name, port, url)

    def write_kubeconfig(
        self, path: str | Path, namespace: str = "default", token: str | None = None
    ) -> Path:
        """Write a kubeconfig whose only context points at this emulator."""
        user: dict[str, Any] = {"token": token or self.token or "none"}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "testbed", "cluster": {"server": self.url}}],
            "users": [{"name": "testbed", "user": user}],
            "contexts": [
                {
                    "name": "testbed",
                    "context": {"cluster": "testbed", "user": "testbed", "namespace": namespace},
                }
            ],
            "current-context": "testbed",
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(config))
        return target

    @property
    def http(self) -> httpx.Client:
        """An authenticated client for raw requests against the emulator."""
        if self._http is None:
            raise RuntimeError("the emulator is not running")
        return self._http

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A raw request; the caller checks the status."""
        return self.http.request(method, path, **kwargs)

    def get(self, path: str) -> dict[str, Any] | None:
        """The object at an API path, or None when it does not exist."""
        response = self.http.get(path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """POST an object; raises on any API error (409 included)."""
        response = self.http.post(api_path(obj, named=False), json=obj)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def apply_object(
        self, obj: dict[str, Any], field_manager: str = "testbed", force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply (create or update) an object."""
        response = self.http.patch(
            api_path(obj),
            params={"fieldManager": field_manager, "force": str(force).lower()},
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def list(
        self, api_version: str, kind: str, namespace: str | None = "default"
    ) -> list[dict[str, Any]]:
        """Items of one kind, in a namespace or (namespace=None) across all of them."""
        meta = {"name": "-", **({"namespace": namespace} if namespace else {})}
        path = api_path({"apiVersion": api_version, "kind": kind, "metadata": meta}, named=False)
        if namespace is None:
            path = re.sub(r"/namespaces/[^/]+", "", path)
        response = self.http.get(path)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items
