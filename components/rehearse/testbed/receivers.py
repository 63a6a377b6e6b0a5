"""Local stand-ins for the webhook targets a release talks to: the loadtester and alert sinks.

Harmless by construction: the loadtester records the commands it is asked to run and runs
none; the alert receiver answers every address the rehearsal would have called outside.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
from aiohttp import web

from ...spec.durations import parse_seconds
from ._loop import ThreadedApp


@dataclass(frozen=True)
class Received:
    """One recorded request."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # decoded JSON, or the raw text when it is not JSON


class _Receiver:
    """An aiohttp server on a free port that records every request it answers."""

    def __init__(self, name: str) -> None:
        self._lock = threading.Lock()
        self._requests: list[Received] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._server = ThreadedApp(app, name)

    @property
    def url(self) -> str:
        """Base URL without a trailing slash."""
        return self._server.url

    @property
    def requests(self) -> list[Received]:
        """A snapshot of what was received so far."""
        with self._lock:
            return list(self._requests)

    def __enter__(self) -> _Receiver:
        self._server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.stop()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        text = await request.text()
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = text
        record = Received(request.method, request.path, dict(request.headers), body)
        with self._lock:
            self._requests.append(record)
        return await self._respond(record)

    async def _respond(self, record: Received) -> web.StreamResponse:
        raise NotImplementedError


# flagger-loadtester's blocking types answer 200 once the command ran; the others queue it
# and answer 202 at once.
BLOCKING_TYPES = frozenset({"bash", "helm", "helmv3", "kubectl", "concord"})
# hey without -q sends as fast as it can; the stand-in takes this many requests a second per
# worker (hey's default is 50 workers), so an unbounded load test stays a load, not a flood.
HEY_UNBOUNDED_QPS = 20.0
HEY_DEFAULT_WORKERS = 50
HEY_DEFAULT_REQUESTS = 200
# hey's flags that take a value (Go's flag package: `-z 1m`, `-z=1m` or `--z 1m`).
_HEY_VALUE_FLAGS = frozenset(
    {"n", "c", "q", "z", "o", "m", "H", "t", "A", "d", "D", "T", "a", "x", "host", "cpus"}
)


@dataclass(frozen=True)
class HeyRun:
    """What a `hey` command asks for: `rps` requests a second to `url` for `seconds`."""

    url: str
    host: str
    rps: float
    seconds: float

    @property
    def requests(self) -> int:
        return round(self.rps * self.seconds)


def parse_hey(command: str) -> HeyRun | None:
    """The load of `hey -z 1m -q 10 -c 2 http://podinfo-canary.default:9898/`: q x c requests
    a second for z seconds (without -z, -n requests, 200 by default); None for any command
    that is not one hey call, or whose flags do not parse."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words or words[0].rsplit("/", 1)[-1] != "hey":
        return None
    flags: dict[str, str] = {}
    urls = []
    index = 1
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("-"):
            urls.append(word)
            continue
        name, equals, value = word.lstrip("-").partition("=")
        if name in _HEY_VALUE_FLAGS and not equals:
            if index >= len(words):
                return None
            value = words[index]
            index += 1
        flags[f"-{name}"] = value
    if len(urls) != 1:
        return None
    try:
        workers = int(flags.get("-c", HEY_DEFAULT_WORKERS))
        qps = float(flags.get("-q", 0)) or HEY_UNBOUNDED_QPS
        rps = qps * workers
        if "-z" in flags:
            seconds = parse_seconds(flags["-z"])
        else:
            seconds = int(flags.get("-n", HEY_DEFAULT_REQUESTS)) / rps
        host = httpx.URL(urls[0]).host
    except (ValueError, httpx.InvalidURL):
        return None
    if rps <= 0 or seconds <= 0 or not host:
        return None
    return HeyRun(urls[0], host, rps, seconds)


@dataclass(frozen=True)
class LoadTest:
    """A command a hook asked the loadtester to run: recorded, never run. `hey` commands
    become traffic in the simulated mesh (`run`), as they would be in a cluster."""

    canary: str
    type: str
    command: str
    run: HeyRun | None
    started: float
    """Monotonic seconds."""
    at: float
    """Unix time."""
    sent: bool
    """Whether its traffic started: not when the same canary's same hey still runs."""

    def running(self, now: float) -> bool:
        return self.run is not None and now < self.started + self.run.seconds


TrafficSink = Callable[[str, float, float], object]
"""(host, requests a second, seconds): where `hey` traffic goes (the mesh's `add_source`)."""


@dataclass
class _Gates:
    gate_open: bool = True
    rollback_open: bool = False
    load_tests: list[LoadTest] = field(default_factory=list)


class LoadTester(_Receiver):
    """Speaks flagger-loadtester's protocol: hooks on `/`, manual gates, rollback gates.

    It never runs a command. Every command is recorded; `cmd` hooks (and the other queued
    types) are answered 202 as flagger-loadtester answers them, `bash` and the other blocking
    types 200 with a note that the command was not run. A `hey` command is turned into the
    traffic it would send (`traffic`, set by the test bed to the mesh), once per canary and
    command while it lasts, as flagger-loadtester runs a queued command once.

    `delay` (seconds) and `forced_status` can be set at any time to exercise
    webhook timeouts and failures; `on_command` is told of each command as it is recorded.
    """

    def __init__(
        self,
        delay: float = 0.0,
        forced_status: int | None = None,
        traffic: TrafficSink | None = None,
    ) -> None:
        super().__init__("loadtester")
        self.delay = delay
        self.forced_status = forced_status
        self.traffic = traffic
        self.on_command: Callable[[LoadTest], None] | None = None
        self._gates = _Gates()

    def __enter__(self) -> LoadTester:
        super().__enter__()
        return self

    @property
    def commands(self) -> list[str]:
        """Commands hooks asked for, in order (recorded, never run)."""
        return [test.command for test in self.load_tests]

    @property
    def load_tests(self) -> list[LoadTest]:
        with self._lock:
            return list(self._gates.load_tests)

    def set_gate(self, open_: bool) -> None:
        """Open or close the confirm gate (`/gate/check`)."""
        self._gates.gate_open = open_

    def set_rollback(self, open_: bool) -> None:
        """Request (open) or withdraw a manual rollback (`/rollback/check`)."""
        self._gates.rollback_open = open_

    async def _respond(self, record: Received) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.forced_status is not None:
            return web.Response(status=self.forced_status, text="forced")
        gates = {
            "/gate/approve": True,
            "/gate/halt": False,
            "/gate/check": self._gates.gate_open,
            "/rollback/check": self._gates.rollback_open,
        }
        if record.path in gates:
            return web.Response(status=200 if gates[record.path] else 403, text="")
        switches = {
            "/gate/open": ("gate_open", True),
            "/gate/close": ("gate_open", False),
            "/rollback/open": ("rollback_open", True),
            "/rollback/close": ("rollback_open", False),
        }
        if record.path in switches:
            attribute, value = switches[record.path]
            setattr(self._gates, attribute, value)
            return web.Response(status=202, text="")
        if record.path == "/" and record.method == "POST":
            return self._hook(record.body)
        return web.Response(status=404, text="not found")

    def _hook(self, body: Any) -> web.Response:
        metadata = body.get("metadata") if isinstance(body, dict) else None
        if not isinstance(metadata, dict) or not metadata.get("cmd"):
            return web.Response(status=400, text="metadata not found in payload")
        command = str(metadata["cmd"])
        kind = str(metadata.get("type") or "cmd")
        canary = f"{body.get('name')}.{body.get('namespace')}"
        now = time.monotonic()
        run = parse_hey(command)
        with self._lock:
            duplicate = any(
                test.canary == canary and test.command == command and test.running(now)
                for test in self._gates.load_tests
            )
            sent = run is not None and not duplicate and self.traffic is not None
            test = LoadTest(canary, kind, command, run, now, time.time(), sent)
            self._gates.load_tests.append(test)
        if sent and run is not None and self.traffic is not None:
            self.traffic(run.host, run.rps, run.seconds)
        if self.on_command is not None:
            self.on_command(test)
        if kind in BLOCKING_TYPES:
            return web.Response(status=200, text=f"rehearsal: command not run: {command}")
        return web.Response(status=202, text="")


class AlertReceiver(_Receiver):
    """Accepts Slack, MS Teams or generic JSON webhooks and answers "ok"."""

    def __init__(self) -> None:
        super().__init__("alert-receiver")

    def __enter__(self) -> AlertReceiver:
        super().__enter__()
        return self

    async def _respond(self, record: Received) -> web.StreamResponse:
        return web.Response(status=200, text="ok")
