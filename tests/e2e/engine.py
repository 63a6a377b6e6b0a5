"""A stand-in for the Pulumi engine and pulumi-kubernetes, for `pulumi up` of a real program.

There is no Pulumi CLI here, so a run goes through the SDK's mock monitor, and this module plays
the parts the mocks leave out, after the real engine's rules:

- state is kept between runs by URN; a step that fails keeps the resource's previous state,
  resources after it are not registered at all (their inputs never resolve), and no other step
  starts after it (steps in flight finish), as without `--continue-on-error`; an unchanged
  resource keeps its outputs and takes the new inputs (the engine's same step);
- `preview()` calls Check and Diff but never Create or Update, and hands back a changed
  dynamic resource's new inputs as its outputs, so outputs that are not inputs are unknown
  (the Python dynamic server cannot preview); Kubernetes objects are planned, not applied;
- dynamic resources get `check`, then `create` or `diff` and `update`, on the provider unpickled
  from `__provider`, with secrets stripped (the Python provider does not accept secrets) and
  numbers as floats, as the gRPC boundary leaves them;
- Kubernetes objects are server-side applied, not forced, under one field manager per resource,
  and Deployments are awaited until they are available; for an `ignore_changes` path,
  pulumi-kubernetes (#2566, #2828: `handleSSAIgnoreFields`) leaves the field out when only
  other managers own it live, sends the live value when Pulumi's manager owns it too (or
  nobody does), and the value from state when the field is not live at all.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import runpy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dill  # type: ignore[import-untyped]
import grpc  # type: ignore[import-untyped]
import httpx
import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from components.provider.rollout import has_unknown
from components.rehearse.testbed import KubeEmulator
from components.rehearse.testbed.kube import api_path
from components.spec import integral
from tests.provider.dynamic_server import DynamicServer

AWAIT_SECONDS = 60.0


class EngineError(Exception):
    """A step failed; `pulumi up` would print this and exit non-zero."""

    def __init__(self, message: str, run: Run | None = None) -> None:
        super().__init__(message)
        self.run = run


@dataclass
class Stored:
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class Run:
    """What one `pulumi up` printed and did."""

    preview: bool = False
    output: str = ""
    errors: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    canceled: bool = False
    planned: dict[str, str] = field(default_factory=dict)
    """By URN: `create`, `update` or `same`, as the preview (or the update) decided."""
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)


class Engine:
    """`up()` runs a program against the emulator the way `pulumi up` would, run after run."""

    def __init__(self, kube: KubeEmulator, project: str, stack: str = "dev") -> None:
        self.kube = kube
        self.project = project
        self.stack = stack
        self.state: dict[str, Stored] = {}
        self.server: DynamicServer | None = None
        """When set, dynamic resources run in this server process over gRPC, as the engine
        runs them (so a test can kill it); otherwise in-process."""
        self.cancel_after: str | None = None
        """A first Ctrl-C once the step of the resource whose URN ends with this is done:
        the engine lets steps in flight finish and starts no new one."""

    def up(self, program: Path, config: dict[str, str], secrets: tuple[str, ...] = ()) -> Run:
        """One `pulumi up`; raises EngineError with every step error when the update fails."""
        return self._run(program, config, secrets, preview=False)

    def preview(self, program: Path, config: dict[str, str], secrets: tuple[str, ...] = ()) -> Run:
        """One `pulumi preview`: `Run.planned` says what each resource would do, and
        `Run.inputs` holds the inputs as the preview shows them (Unknown where not known)."""
        return self._run(program, config, secrets, preview=True)

    def _run(
        self, program: Path, config: dict[str, str], secrets: tuple[str, ...], *, preview: bool
    ) -> Run:
        run = Run(preview=preview)
        monitor = _Monitor(_Mocks(self, run))
        pulumi.runtime.set_mocks(
            monitor.mocks, project=self.project, stack=self.stack, preview=preview, monitor=monitor
        )
        pulumi.runtime.set_all_config(
            {f"{self.project}:{key}": value for key, value in config.items()},
            [f"{self.project}:{key}" for key in secrets],
        )

        @pulumi.runtime.test  # type: ignore[untyped-decorator]
        def program_run() -> None:
            runpy.run_path(str(program), run_name="__main__")

        buffer = io.StringIO()
        with contextlib.redirect_stdout(_Tee(buffer, sys.stdout)):
            try:
                program_run()
            except Exception as error:
                if not run.errors:
                    run.errors.append(str(error))
        run.output = buffer.getvalue()
        if run.errors:
            raise EngineError("\n".join(run.errors), run)
        return run

    # -- steps -----------------------------------------------------------------------------------

    def step(
        self, urn: str, args: pulumi.runtime.MockResourceArgs, ignored: list[str], run: Run
    ) -> tuple[str, dict[str, Any]]:
        if run.canceled:
            raise EngineError(f"{urn}: not started: the update was canceled")
        run.registered.append(urn)
        run.inputs[urn] = dict(args.inputs)
        if self.cancel_after is not None and urn.endswith(self.cancel_after):
            run.canceled = True
            run.errors.append("update canceled")
        try:
            if args.typ.startswith("pulumi-python:dynamic"):
                if run.preview:
                    return self._dynamic_preview(urn, args, run)
                return self._dynamic(urn, args, run)
            if args.typ.startswith("kubernetes:") and "kind" in args.inputs:
                if run.preview:
                    return self._kubernetes_preview(urn, args, ignored, run)
                return self._kubernetes(urn, args, ignored, run)
            return f"{args.name}-id", dict(args.inputs)
        except Exception as error:
            # The engine starts no step after one failed (`cancelDueToError`); those in
            # flight finish.
            run.errors.append(f"{urn}: {error}")
            run.canceled = True
            raise

    def _dynamic(
        self, urn: str, args: pulumi.runtime.MockResourceArgs, run: Run
    ) -> tuple[str, dict[str, Any]]:
        if self.server is not None:
            return self._dynamic_over_grpc(self.server, urn, unwrap_secrets(args.inputs), run)
        old = self.state.get(urn)
        provider, news = _checked(args, old)
        if old is None:
            created = provider.create(news)
            stored = Stored(created.id, news, dict(created.outs or {}))
            run.updated.append(urn)
        elif provider.diff(old.id, old.outputs, news).changes:
            updated = provider.update(old.id, old.outputs, news)
            stored = Stored(old.id, news, dict(updated.outs or {}))
            run.updated.append(urn)
        else:
            stored = Stored(old.id, news, old.outputs)
        self.state[urn] = stored
        return stored.id, stored.outputs

    def _dynamic_preview(
        self, urn: str, args: pulumi.runtime.MockResourceArgs, run: Run
    ) -> tuple[str, dict[str, Any]]:
        """Check and Diff only; a create or update hands back its checked inputs."""
        old = self.state.get(urn)
        provider, news = _checked(args, old)
        if old is None:
            run.planned[urn] = "create"
        elif provider.diff(old.id, old.outputs, news).changes:
            run.planned[urn] = "update"
        else:
            run.planned[urn] = "same"
            return old.id, old.outputs
        return (old.id if old else ""), news

    def _dynamic_over_grpc(
        self, server: DynamicServer, urn: str, news: dict[str, Any], run: Run
    ) -> tuple[str, dict[str, Any]]:
        """The same steps through the provider server: Check, then Create or Diff and Update.
        A failed call (a killed server answers UNAVAILABLE) keeps the previous state."""
        old = self.state.get(urn)
        try:
            checked, failures = server.check(urn, old.inputs if old else {}, news)
            if failures:
                problems = "; ".join(f"{path}: {reason}" for path, reason in failures)
                raise EngineError(f"check failed: {problems}")
            if old is None:
                outputs = server.create(urn, checked)
                stored = Stored(str(outputs.pop("id")), checked, outputs)
                run.updated.append(urn)
            elif server.diff(urn, old.id, old.outputs, checked):
                outputs = server.update(urn, {**old.outputs, "id": old.id}, checked)
                stored = Stored(old.id, checked, outputs)
                run.updated.append(urn)
            else:
                stored = Stored(old.id, checked, old.outputs)
        except grpc.RpcError as error:
            raise EngineError(f"{error.code().name}: {error.details()}") from None
        self.state[urn] = stored
        return stored.id, stored.outputs

    def _kubernetes(
        self, urn: str, args: pulumi.runtime.MockResourceArgs, ignored: list[str], run: Run
    ) -> tuple[str, dict[str, Any]]:
        manifest, _ = self._goal(urn, args, ignored)
        old = self.state.get(urn)
        manager = _manager(urn)
        if old is None or old.inputs != manifest:
            run.updated.append(urn)
        try:
            applied = self.kube.apply_object(manifest, field_manager=manager, force=False)
        except httpx.HTTPStatusError as error:
            raise EngineError(
                f"server-side apply of {api_path(manifest)} failed: "
                f"{error.response.status_code} {error.response.text}"
            ) from error
        if manifest["kind"] == "Deployment":
            applied = await_deployment(self.kube, manifest)
        name = applied["metadata"]["name"]
        namespace = applied["metadata"].get("namespace", "default")
        stored = Stored(f"{namespace}/{name}", manifest, applied)
        self.state[urn] = stored
        return stored.id, {**manifest, **applied}

    def _goal(
        self, urn: str, args: pulumi.runtime.MockResourceArgs, ignored: list[str]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The object pulumi-kubernetes would apply, `ignore_changes` resolved against the
        live object, and that live object (None when absent)."""
        # Numbers cross the mock boundary as floats; pulumi-kubernetes sends the schema's ints.
        manifest: dict[str, Any] = integral(unwrap_secrets(args.inputs))
        old = self.state.get(urn)
        manager = _manager(urn)
        live = self.kube.get(api_path(manifest))
        if live is not None:
            for path in ignored:
                keys = path.split(".")
                managers = owners(live, keys)
                if managers and manager not in managers:  # another's only: left out
                    drop(manifest, keys)
                elif (current := lookup(live, keys)) is not None:  # ours too: the live value
                    put(manifest, keys, current)
                elif old is not None and (previous := lookup(old.inputs, keys)) is not None:
                    put(manifest, keys, previous)
        return manifest, live

    def _kubernetes_preview(
        self, urn: str, args: pulumi.runtime.MockResourceArgs, ignored: list[str], run: Run
    ) -> tuple[str, dict[str, Any]]:
        """What pulumi-kubernetes previews, applying nothing: a create shows its inputs
        (the uid unknown), an update with unknown inputs shows them, a known update shows the
        object as the server would have it (its dry run), and an unchanged object stays."""
        manifest, live = self._goal(urn, args, ignored)
        old = self.state.get(urn)
        name, namespace = manifest["metadata"]["name"], manifest["metadata"].get("namespace")
        identity = f"{namespace or 'default'}/{name}"
        if live is None:
            run.planned[urn] = "create"
            return identity, manifest
        if old is not None and not has_unknown(manifest) and old.inputs == manifest:
            run.planned[urn] = "same"
            return old.id, old.outputs
        run.planned[urn] = "update"
        if has_unknown(manifest):
            return identity, manifest
        metadata = {**live["metadata"], **manifest["metadata"]}
        return identity, {**live, **manifest, "metadata": metadata}


def await_deployment(kube: KubeEmulator, manifest: dict[str, Any]) -> dict[str, Any]:
    """pulumi-kubernetes' await: the new generation observed, Available and all replicas up."""
    deadline = time.monotonic() + AWAIT_SECONDS
    while True:
        live = kube.get(api_path(manifest))
        assert live is not None
        status = live.get("status") or {}
        wanted = live["spec"].get("replicas", 1)
        available = any(
            c.get("type") == "Available" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if status.get("observedGeneration", 0) >= live["metadata"].get("generation", 1) and (
            wanted == 0 or (available and status.get("readyReplicas", 0) >= wanted)
        ):
            return live
        if time.monotonic() > deadline:
            raise EngineError(f"{api_path(manifest)} was not available in {AWAIT_SECONDS}s")
        time.sleep(0.1)


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, engine: Engine, run: Run) -> None:
        self.engine = engine
        self.run = run
        self.monitor: _Monitor | None = None

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        assert self.monitor is not None
        urn, ignored = self.monitor.pending.pop((args.typ, args.name))
        return self.engine.step(urn, args, ignored, self.run)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


class _Monitor(MockMonitor):
    """The stock mock monitor, handing each step its URN and `ignore_changes` paths."""

    def __init__(self, mocks: _Mocks) -> None:
        super().__init__(mocks)
        mocks.monitor = self
        self.pending: dict[tuple[str, str], tuple[str, list[str]]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the gRPC method name)
        urn = self.make_urn(request.parent, request.type, request.name)
        self.pending[(request.type, request.name)] = (urn, list(request.ignoreChanges))
        return super().RegisterResource(request)


class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


# -- plain-data helpers ---------------------------------------------------------------------------


def _checked(
    args: pulumi.runtime.MockResourceArgs, old: Stored | None
) -> tuple[Any, dict[str, Any]]:
    """The provider unpickled from `__provider`, and the inputs its Check returned."""
    news = unwrap_secrets(args.inputs)
    provider = dill.loads(base64.b64decode(news["__provider"]))
    checked = provider.check(old.inputs if old else {}, news)
    if checked.failures:
        problems = "; ".join(f"{f.property}: {f.reason}" for f in checked.failures)
        raise EngineError(f"check failed: {problems}")
    return provider, dict(checked.inputs)


def _manager(urn: str) -> str:
    """pulumi-kubernetes' field manager for one resource."""
    return "pulumi-kubernetes-" + hashlib.sha256(urn.encode()).hexdigest()[:8]


def unwrap_secrets(value: Any) -> Any:
    """The engine strips secret wrappers before calling a provider that does not accept them."""
    if rpc.is_rpc_secret(value):
        return unwrap_secrets(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


def owners(live: dict[str, Any], keys: list[str]) -> set[str]:
    """The field managers of the field at `keys`, read from the live object's managedFields."""
    found = set()
    for entry in live["metadata"].get("managedFields") or []:
        node = entry.get("fieldsV1") or {}
        for key in keys:
            node = node.get(f"f:{key}")
            if node is None:
                break
        else:
            found.add(entry["manager"])
    return found


def lookup(obj: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def put(obj: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        obj = obj.setdefault(key, {})
    obj[keys[-1]] = value


def drop(obj: dict[str, Any], keys: list[str]) -> None:
    parent = lookup(obj, keys[:-1]) if len(keys) > 1 else obj
    if isinstance(parent, dict):
        parent.pop(keys[-1], None)
