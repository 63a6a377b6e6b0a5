"""The engine's step generator and step executor, over the real dynamic-provider server.

Where `engine.py` plays `pulumi up` of a real program on Pulumi's mocks, this plays the part
of the engine that decides when each resource's calls happen, after its source
(`deployment_executor.go`, `step_generator.go`, `step_executor.go`):

- one generator thread takes registrations as the program makes them and, for each, calls
  Check (then Diff, for a resource with state) synchronously: while a call waits, the
  generator processes no further registration, of any provider;
- the steps it decides (Create, Update, or nothing for an unchanged resource) run in parallel
  on the step executor;
- a resource registers once the steps of what it depends on finished, as the SDK awaits their
  outputs before it sends the registration.

The Python dynamic server answers every call on `ThreadPoolExecutor(max_workers=4)`, so with
four long Updates running, a Check waits for one of them to end, and so does every later
registration of the stack. `inline_checks=False` hands Check and Diff to the executor with
the step, which no engine does: it is the comparison that shows what the generator's wait
costs.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc  # type: ignore[import-untyped]
from pulumi.dynamic.dynamic import serialize_provider

from components.provider.rollout import FinaliserProvider
from tests.e2e.engine import Stored
from tests.provider.dynamic_server import DynamicServer

# Every step's outputs so far, by URN: what a registration's inputs are computed from.
Outputs = Mapping[str, Mapping[str, Any]]
T = TypeVar("T")


@dataclass(frozen=True)
class Dynamic:
    """A dynamic resource: Check, Diff, Create and Update go to the provider server."""

    urn: str
    inputs: Callable[[Outputs], dict[str, Any]]
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Other:
    """A resource of another provider (pulumi-kubernetes, in its own process): its Check and
    Diff answer at once, so only its step, `apply`, takes time; it returns the outputs."""

    urn: str
    apply: Callable[[Outputs], dict[str, Any]]
    after: tuple[str, ...] = ()


Registration = Dynamic | Other


@dataclass(frozen=True)
class Event:
    """`what` happened to `urn`: registered, check (sent), checked, step (started), done,
    failed. Events are kept in the order they happened, which needs no clock to compare."""

    urn: str
    what: str
    at: float  # time.monotonic()


@dataclass
class Trace:
    """What one `up` did, event by event; `wait_for` lets a test act in the middle of it."""

    events: list[Event] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, urn: str, what: str) -> None:
        with self._changed:
            self.events.append(Event(urn, what, time.monotonic()))
            self._changed.notify_all()

    def index(self, urn: str, what: str) -> int:
        """Where the event is in the order of events; raises KeyError when it did not happen."""
        for position, event in enumerate(self.events):
            if (event.urn, event.what) == (urn, what):
                return position
        raise KeyError(f"{urn}: no {what} event")

    def at(self, urn: str, what: str) -> float:
        return self.events[self.index(urn, what)].at

    def wait_for(self, urn: str, what: str, timeout: float = 60.0) -> None:
        """Until the event happened; the timeout only bounds a hang."""
        with self._changed:
            happened = self._changed.wait_for(
                lambda: any((e.urn, e.what) == (urn, what) for e in self.events), timeout
            )
        if not happened:
            so_far = "\n".join(f"{event.what} {event.urn}" for event in self.events)
            raise TimeoutError(f"{urn}: no {what} event within {timeout:g}s; so far:\n{so_far}")


class StepFailed(Exception):
    """A step's error, as `pulumi up` would print it for the resource."""


class StepGenerator:
    """`up(program)` runs one `pulumi up` of `program`, keeping state by URN between runs."""

    def __init__(self, server: DynamicServer, *, inline_checks: bool = True) -> None:
        self.server = server
        self.inline_checks = inline_checks
        self.state: dict[str, Stored] = {}

    def up(self, program: Sequence[Registration], trace: Trace | None = None) -> Trace:
        """Every registration whose dependencies succeed gets its step; a failed one's
        dependents never register, as their inputs never resolve. Returns when nothing is
        left to run; errors are in `Trace.errors`."""
        trace = trace if trace is not None else Trace()
        waiting = list(program)
        done: dict[str, Mapping[str, Any]] = {}
        incoming: queue.Queue[tuple[Registration, Outputs] | None] = queue.Queue()
        lock = threading.Lock()
        running = 0

        def register_ready() -> None:  # under `lock`, in program order
            nonlocal running
            for registration in [r for r in waiting if all(d in done for d in r.after)]:
                waiting.remove(registration)
                running += 1
                trace.add(registration.urn, "registered")
                incoming.put((registration, dict(done)))
            if not running:
                incoming.put(None)

        def attempt(urn: str, work: Callable[[], T]) -> T | None:
            """`work()`, or None when it failed: any error is that resource's failure."""
            try:
                return work()
            except grpc.RpcError as error:
                trace.errors[urn] = f"{error.code().name}: {error.details()}"
            except Exception as error:
                trace.errors[urn] = f"{type(error).__name__}: {error}"
            trace.add(urn, "failed")
            return None

        def run_step(registration: Registration, decided: Callable[[], Stored] | None) -> None:
            nonlocal running
            stored = attempt(registration.urn, decided) if decided is not None else None
            with lock:
                if stored is not None:
                    self.state[registration.urn] = stored
                    done[registration.urn] = stored.outputs
                running -= 1
                register_ready()

        def decide(registration: Registration, outputs: Outputs) -> Callable[[], Stored] | None:
            return attempt(registration.urn, lambda: self._decide(registration, outputs, trace))

        def decide_and_run(registration: Registration, outputs: Outputs) -> None:
            run_step(registration, decide(registration, outputs))

        with ThreadPoolExecutor(max_workers=max(len(program), 1)) as executor:
            with lock:
                register_ready()
            while (registered := incoming.get()) is not None:
                registration, outputs = registered
                if self.inline_checks or isinstance(registration, Other):
                    executor.submit(run_step, registration, decide(registration, outputs))
                else:
                    executor.submit(decide_and_run, registration, outputs)
        return trace

    def _decide(
        self, registration: Registration, outputs: Outputs, trace: Trace
    ) -> Callable[[], Stored]:
        """What the generator does for one registration (Check and Diff, for a dynamic one),
        and the step it hands the executor, which returns the state to keep."""
        urn, old = registration.urn, self.state.get(registration.urn)

        def started(run: Callable[[], Stored]) -> Callable[[], Stored]:
            def timed() -> Stored:
                trace.add(urn, "step")
                stored = run()
                trace.add(urn, "done")
                return stored

            return timed

        if isinstance(registration, Other):
            return started(lambda: Stored(urn, {}, registration.apply(outputs)))
        news = registration.inputs(outputs)
        trace.add(urn, "check")
        checked, failures = self.server.check(urn, old.inputs if old else {}, news)
        trace.add(urn, "checked")
        if failures:
            raise StepFailed("; ".join(f"{path}: {reason}" for path, reason in failures))
        if old is None:
            return started(lambda: self._created(urn, checked))
        if not self.server.diff(urn, old.id, old.outputs, checked):
            return started(lambda: Stored(old.id, checked, old.outputs))
        return started(
            lambda: Stored(old.id, checked, self.server.update(urn, _with_id(old), checked))
        )

    def _created(self, urn: str, checked: dict[str, Any]) -> Stored:
        outputs = self.server.create(urn, checked)
        return Stored(str(outputs.pop("id")), checked, outputs)


def _with_id(old: Stored) -> dict[str, Any]:
    return {**old.outputs, "id": old.id}


# -- a probe of the generator's wait ----------------------------------------------------------
# Registrations one after another, each Check inline, without a program: what a benchmark needs
# to see whether other resources of a stack keep registering while releases run.

# A resource whose Check does no work of its own: what it measures is the wait for a thread.
CHEAP = {"__provider": serialize_provider(FinaliserProvider())}
OTHER_URN = "urn:pulumi:dev::bench::pulumi-python:dynamic/canary:RolloutFinaliser::other"


@dataclass
class CheckTimes:
    """Seconds each inline Check took, in registration order."""

    seconds: list[float] = field(default_factory=list)


class InlineChecks:
    """Registers a resource every `every` seconds, its Check inline, as the generator would
    (one after another, each waiting for its answer), until the `with` block ends; while the
    server's four threads are all held, each Check waits for one to end."""

    def __init__(self, server: DynamicServer, every: float = 0.25) -> None:
        self.server = server
        self.every = every
        self.times = CheckTimes()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="step-generator", daemon=True)

    def __enter__(self) -> CheckTimes:
        self._thread.start()
        return self.times

    def __exit__(self, *exc_info: Any) -> None:
        self._stopped.set()
        self._thread.join(timeout=300)

    def _run(self) -> None:
        index = 0
        while not self._stopped.is_set():
            urn = f"{OTHER_URN}-{index}"
            sent = time.monotonic()
            self.server.check(urn, {}, CHEAP)
            self.times.seconds.append(time.monotonic() - sent)
            index += 1
            self._stopped.wait(self.every)
