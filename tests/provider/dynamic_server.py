"""The real dynamic-provider server in a child process, driven over gRPC as the engine drives it.

Shared by the contract test, the test-bed tests and `benchmarks/shared_threads.py`, so they all
start the server the one way the CLI's `pulumi-resource-pulumi-python` does
(`python -u -m pulumi.dynamic` from the project root) and read its output the same way.

Why the output is drained in threads: the provider prints a line per analysis tick, and a pipe
nobody reads fills up (64 KiB on Linux) and then blocks the provider's `print` mid-release. The
lines are kept with the time they arrived, in arrival order, which is the order the server
wrote them: that order is what tells a test which release ran before which.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from components.provider.rollout import RolloutProvider
from components.rehearse import declare_at_rest
from components.rehearse.testbed import TestBed
from components.spec import ReleaseSpec

ROOT = Path(__file__).resolve().parents[2]
# What `serialize_provider(RolloutProvider())` gives never changes (the provider has no fields).
PROVIDER = serialize_provider(RolloutProvider())
# A release on the test bed takes ~12 s at a 2 s interval; this only bounds a hang.
RPC_TIMEOUT = 180.0


def struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    """Properties as the engine sends them (its own serializer, so Unknowns and secrets too)."""
    # Its own loop, leaving the thread's event loop alone (the Pulumi mocks need it later).
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(dict(props), {}))
    finally:
        loop.close()


def plain(message: struct_pb2.Struct) -> dict[str, Any]:
    """A response's properties as plain Python values (numbers come back as floats)."""
    return dict(rpc.deserialize_properties(message))


def python() -> Path:
    """The project's venv interpreter, as the plugin picks it from the Pulumi.yaml toolchain."""
    venv = ROOT / "venv" / "bin" / "python"
    return venv if venv.exists() else Path(sys.executable)


@dataclass(frozen=True)
class Line:
    """One line of the server's output: its position in the stream and when it was read."""

    index: int
    at: float  # time.monotonic() in this process
    text: str


class _Drain:
    """Reads one pipe to its end in a daemon thread, keeping every line."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.lines: list[Line] = []
        self._changed = threading.Condition()
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for raw in iter(self._stream.readline, b""):
            text = raw.decode(errors="replace").rstrip("\n")
            with self._changed:
                self.lines.append(Line(len(self.lines), time.monotonic(), text))
                self._changed.notify_all()

    def snapshot(self) -> list[Line]:
        with self._changed:
            return list(self.lines)

    def wait_for(self, predicate: Callable[[Line], bool], since: int, timeout: float) -> Line:
        """The first line from index `since` on that satisfies `predicate`; waits for it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines[since:] if predicate(line)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                # A dead reader has appended its last line under this lock: none will come.
                if left <= 0 or not self._thread.is_alive():
                    seen = "\n".join(line.text for line in self.lines[since:][-20:])
                    raise TimeoutError(f"no such line within {timeout:g}s; the last ones:\n{seen}")
                self._changed.wait(left)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self._stream.close()


class DynamicServer:
    """`python -u -m pulumi.dynamic` from the project root, with its stub and its output.

    Use as a context manager; `kill()` ends it the way a second Ctrl-C does, `close()` (also
    on exit) ends it and releases the channel and the pipes.
    """

    def __init__(self, *, cwd: Path = ROOT, ready_timeout: float = 30.0) -> None:
        self.process = subprocess.Popen(
            [str(python()), "-u", "-m", "pulumi.dynamic"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, as the engine starts plugins
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self._stderr = _Drain(self.process.stderr, f"server-{self.pid}-stderr")
        try:
            # The server prints its port first, before any provider code can print.
            first = self.process.stdout.readline().decode().strip()
            if not first.isdigit():
                self._end_process()
                errors = "\n".join(line.text for line in self._stderr.lines[-20:])
                raise RuntimeError(f"the dynamic server did not start ({first!r}):\n{errors}")
            self.port = int(first)
            self._stdout = _Drain(self.process.stdout, f"server-{self.pid}-stdout")
            self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
            grpc.channel_ready_future(self.channel).result(timeout=ready_timeout)
        except BaseException:
            self._end_process()
            raise
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def _end_process(self) -> None:
        self.kill()
        self._stderr.join(timeout=5)

    @property
    def pid(self) -> int:
        """What the release record's `owner.pid` names while this server drives a release."""
        return int(self.process.pid)

    @property
    def stdout(self) -> list[Line]:
        """The lines printed so far (the port line excluded): `pulumi up` shows these."""
        return self._stdout.snapshot()

    @property
    def stderr(self) -> list[Line]:
        return self._stderr.snapshot()

    def mark(self) -> int:
        """The index the next stdout line will have, to look only at what follows."""
        return len(self._stdout.snapshot())

    def wait_for_line(self, pattern: str, *, since: int = 0, timeout: float = 10.0) -> Line:
        """The first stdout line from `since` on that `pattern` searches, once it has arrived.

        A line printed before an RPC returned can still be in the pipe when the RPC's answer
        is here: the two travel separately.
        """
        regex = re.compile(pattern)
        return self._stdout.wait_for(lambda line: bool(regex.search(line.text)), since, timeout)

    # -- the engine's calls ---------------------------------------------------------------------

    def configure(self, config: Mapping[str, Any] | None = None) -> provider_pb2.ConfigureResponse:
        """What the engine calls first; the stack config keys are namespaced (`proj:key`)."""
        response: provider_pb2.ConfigureResponse = self.stub.Configure(
            provider_pb2.ConfigureRequest(args=struct(config or {}))
        )
        return response

    def check(
        self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Check: the checked inputs and the (property, reason) failures."""
        response = self.stub.Check(
            provider_pb2.CheckRequest(urn=urn, olds=struct(olds), news=struct(news)),
            timeout=RPC_TIMEOUT,
        )
        failures = [(failure.property, failure.reason) for failure in response.failures]
        return plain(response.inputs), failures

    def diff(self, urn: str, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
        """Diff from the state `olds` (outputs) to the inputs `news`: whether anything changed."""
        state = {key: value for key, value in olds.items() if key != "id"}
        response = self.stub.Diff(
            provider_pb2.DiffRequest(id=id_, urn=urn, olds=struct(state), news=struct(news)),
            timeout=RPC_TIMEOUT,
        )
        return bool(response.changes == provider_pb2.DiffResponse.DIFF_SOME)

    def create(self, urn: str, props: Mapping[str, Any]) -> dict[str, Any]:
        """Create, returning the outputs the engine would store as state (id included)."""
        response = self.stub.Create(
            provider_pb2.CreateRequest(urn=urn, properties=struct(props)), timeout=RPC_TIMEOUT
        )
        return {**plain(response.properties), "id": response.id}

    def update(self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        """Update from the state `olds` (outputs of the last successful step) to `news`."""
        state = {key: value for key, value in olds.items() if key != "id"}
        response = self.stub.Update(
            provider_pb2.UpdateRequest(
                id=str(olds.get("id", "")), urn=urn, olds=struct(state), news=struct(news)
            ),
            timeout=RPC_TIMEOUT,
        )
        return plain(response.properties)

    # -- ending ---------------------------------------------------------------------------------

    def interrupt_as_the_engine_does(self, grace: float = 5.0) -> bool:
        """A second Ctrl-C: SIGINT to the plugin's process group, SIGKILL `grace` seconds
        later if it is still there (`plugin.go`). True when it ended before the SIGKILL."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
            return False
        return True

    def kill(self) -> None:
        """SIGKILL, as a second Ctrl-C has the engine do, and reap the process.

        Reaping matters: a killed child stays a zombie until its parent waits for it, and
        `kill(pid, 0)` succeeds on a zombie, so an unreaped server would still look alive to
        `owner_is_dead`. The engine, its parent under `pulumi up`, reaps it too.
        """
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def close(self) -> None:
        self.channel.close()
        self._end_process()
        self._stdout.join(timeout=5)

    def __enter__(self) -> DynamicServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- releases on the test bed, through the server ---------------------------------------------


def urn(name: str, kind: str = "Rollout") -> str:
    """The URN of a dynamic resource of the project's `canary` module."""
    return f"urn:pulumi:dev::canary::pulumi-python:dynamic/canary:{kind}::{name}"


def rollout_props(
    canary: Mapping[str, Any],
    deployment: Mapping[str, Any],
    kubeconfig: str,
    *,
    interval: str = "2s",
) -> dict[str, Any]:
    """The inputs a `Rollout` sends, plain (the engine strips secrets before the provider)."""
    return {
        "__provider": PROVIDER,
        "canary": copy.deepcopy(dict(canary)),
        "deployment": copy.deepcopy(dict(deployment)),
        "podTemplate": copy.deepcopy(deployment["spec"]["template"]),
        "metricTemplates": [],
        "alertProviders": [],
        "kubeconfig": kubeconfig,
        "interval": interval,
        "retryFailed": False,
    }


def with_image(props: Mapping[str, Any], image: str) -> dict[str, Any]:
    """The inputs after a user bumps the first container's image: a new release."""
    news = copy.deepcopy(dict(props))
    news["deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] = image
    news["podTemplate"] = copy.deepcopy(news["deployment"]["spec"]["template"])
    return news


def renamed(
    canary: Mapping[str, Any], deployment: Mapping[str, Any], name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tutorial's podinfo canary and Deployment as another workload (target, service, app)."""
    old = canary["spec"]["targetRef"]["name"]
    new_canary, new_deployment = copy.deepcopy(dict(canary)), copy.deepcopy(dict(deployment))
    new_canary["metadata"]["name"] = new_canary["spec"]["targetRef"]["name"] = name
    for hook in new_canary["spec"]["analysis"].get("webhooks") or []:
        cmd = (hook.get("metadata") or {}).get("cmd")
        if cmd:
            hook["metadata"]["cmd"] = cmd.replace(f"http://{old}-canary.", f"http://{name}-canary.")
    new_deployment["metadata"]["name"] = name
    new_deployment["spec"]["selector"]["matchLabels"]["app"] = name
    new_deployment["spec"]["template"]["metadata"]["labels"]["app"] = name
    return new_canary, new_deployment


@dataclass(frozen=True)
class Workload:
    """A workload at rest on the test bed whose Rollout the server created."""

    name: str
    props: dict[str, Any]  # the inputs it was created with
    state: dict[str, Any]  # Create's outputs: the olds of its next Update

    def update_to(self, image: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """`(name, olds, news)` of the Update that releases `image`."""
        return self.name, self.state, with_image(self.props, image)


def create_workloads(
    server: DynamicServer,
    bed: TestBed,
    canary: Mapping[str, Any],
    deployment: Mapping[str, Any],
    names: Iterable[str],
    *,
    interval: str = "2s",
) -> list[Workload]:
    """Each of `names` as a copy of the given workload: declared at rest on the bed (what
    `pulumi up` applies before the gate), then its Rollout created through the server."""
    workloads = []
    for name in names:
        own_canary, own_deployment = renamed(canary, deployment, name)
        declare_at_rest(bed, ReleaseSpec.parse(canary=own_canary, deployment=own_deployment))
        props = rollout_props(
            own_canary, own_deployment, bed.kubeconfig.read_text(), interval=interval
        )
        workloads.append(Workload(name, props, server.create(urn(name), props)))
    return workloads


# -- concurrent releases: who ran when --------------------------------------------------------

# Every progress line of a release starts with its name; a release's first line (the take-over
# or "New revision detected") comes once a worker runs it, its last before the RPC returns.
_TERMINAL = ("Copying the canary to the primary", "Canary failed, rolling back")


@dataclass(frozen=True)
class Mark:
    """Where a release's text is in the server's output: a line, and an offset in it.

    The offset matters when concurrent prints ran into one line: `print` writes the text and
    the newline separately, so another thread's text can land in between.
    """

    line: Line
    offset: int

    @property
    def order(self) -> tuple[int, int]:
        """The order the server wrote in: the stream's order needs no clock."""
        return self.line.index, self.offset


@dataclass(frozen=True)
class ReleaseRun:
    """One Update sent from its own client thread, timed on both sides of the wire."""

    name: str
    sent: float  # client: the RPC left (time.monotonic())
    returned: float  # client: its answer (or error) arrived
    outputs: dict[str, Any] | None
    error: grpc.RpcError | None
    started: Mark | None = None  # server: the release's first progress text
    ended: Mark | None = None  # server: its last

    @property
    def queue_wait(self) -> float:
        """How long the release waited for one of the server's four worker threads."""
        return (self.started.line.at if self.started else self.returned) - self.sent


def update_concurrently(
    server: DynamicServer, updates: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]]
) -> list[ReleaseRun]:
    """Sends every `(name, olds, news)` Update at once, one client thread each (as the engine
    does for independent resources), and finds each release's first and last text.

    Waits for each release's closing line (a rollback's or a promotion's) first: a line
    printed before an RPC returned can still be in the pipe when the answer is here.
    """
    since = server.mark()
    ready = threading.Barrier(len(updates))

    def send(name: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> ReleaseRun:
        ready.wait()
        sent = time.monotonic()
        try:
            outputs, error = server.update(urn(name), olds, news), None
        except grpc.RpcError as raised:
            outputs, error = None, raised
        return ReleaseRun(name, sent, time.monotonic(), outputs, error)

    with ThreadPoolExecutor(max_workers=len(updates), thread_name_prefix="engine") as pool:
        futures: list[Future[ReleaseRun]] = [pool.submit(send, *update) for update in updates]
        runs = [future.result() for future in futures]
    closing = "|".join(_TERMINAL)
    for run in runs:
        if run.error is None:
            server.wait_for_line(rf"{re.escape(run.name)}: (?:{closing})", since=since)
    marks = _marks(server.stdout[since:], [run.name for run in runs])
    return [
        replace(run, started=marks[run.name][0], ended=marks[run.name][-1])
        if marks.get(run.name)
        else run
        for run in runs
    ]


def run_together(lines: Iterable[Line], names: Iterable[str]) -> list[Line]:
    """Lines holding more than one release's message: concurrent prints that interleaved."""
    prefix = _prefix(names)
    return [line for line in lines if len(prefix.findall(line.text)) > 1]


def _prefix(names: Iterable[str]) -> re.Pattern[str]:
    """A release's name where it starts a message (and not, say, `podinfo-1` in `podinfo-10`).

    Known names only: messages have colons of their own (`metrics: ...`).
    """
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])({alternatives}): ")


def _marks(lines: Iterable[Line], names: Iterable[str]) -> dict[str, list[Mark]]:
    """Every place each release's name starts a message, in the order the server wrote them."""
    prefix = _prefix(names)
    marks: dict[str, list[Mark]] = {}
    for line in lines:
        for match in prefix.finditer(line.text):
            marks.setdefault(match.group(1), []).append(Mark(line, match.start()))
    return marks


def most_at_once(runs: Iterable[ReleaseRun]) -> int:
    """The most releases the server ran at the same time: each runs from its first text to its
    last, ordered as the server wrote them."""
    events: list[tuple[tuple[int, int], int]] = []
    for run in runs:
        if run.started is not None and run.ended is not None:
            events += [(run.started.order, +1), (run.ended.order, -1)]
    running = peak = 0
    for _, change in sorted(events):
        running += change
        peak = max(peak, running)
    return peak


def timeline(runs: Sequence[ReleaseRun]) -> str:
    """One line per release, seconds from the first send: when it started, ended, returned."""
    zero = min(run.sent for run in runs)

    def at(mark: Mark | None) -> str:
        return f"{mark.line.at - zero:6.2f}s" if mark else "   none"

    return "\n".join(
        f"{run.name}: sent {run.sent - zero:5.2f}s, waited {run.queue_wait:5.2f}s for a worker, "
        f"ran {at(run.started)} to {at(run.ended)}, returned {run.returned - zero:6.2f}s"
        + (f", failed: {run.error.code()}" if run.error is not None else "")
        for run in sorted(runs, key=lambda run: run.started.order if run.started else (1 << 62, 0))
    )


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Polls `condition` (e.g. the emulator's state) until it holds; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g}s")
        time.sleep(0.1)
