"""Local stand-ins for the webhook targets a release talks to: the loadtester and alert sinks."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

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


@dataclass
class _Gates:
    gate_open: bool = True
    rollback_open: bool = False
    commands: list[str] = field(default_factory=list)


class LoadTester(_Receiver):
    """Speaks flagger-loadtester's protocol: hooks on `/`, manual gates, rollback gates.

    `delay` (seconds) and `forced_status` can be set at any time to exercise
    webhook timeouts and failures.
    """

    def __init__(self, delay: float = 0.0, forced_status: int | None = None) -> None:
        super().__init__("loadtester")
        self.delay = delay
        self.forced_status = forced_status
        self.command_timeout = 30.0
        self._gates = _Gates()

    def __enter__(self) -> LoadTester:
        super().__enter__()
        return self

    @property
    def commands(self) -> list[str]:
        """Commands accepted by `cmd`-type hooks (recorded, not run)."""
        with self._lock:
            return list(self._gates.commands)

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
            return await self._hook(record.body)
        return web.Response(status=404, text="not found")

    async def _hook(self, body: Any) -> web.Response:
        metadata = body.get("metadata") if isinstance(body, dict) else None
        if not isinstance(metadata, dict) or not metadata.get("cmd"):
            return web.Response(status=400, text="metadata not found in payload")
        command = str(metadata["cmd"])
        with self._lock:
            self._gates.commands.append(command)
        if metadata.get("type", "cmd") != "bash":
            return web.Response(status=202, text="")
        return await self._run(command)

    async def _run(self, command: str) -> web.Response:
        process = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), self.command_timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            return web.Response(status=500, text="command timed out")
        text = output.decode(errors="replace")
        return web.Response(status=200 if process.returncode == 0 else 500, text=text)


class AlertReceiver(_Receiver):
    """Accepts Slack, MS Teams or generic JSON webhooks and answers "ok"."""

    def __init__(self) -> None:
        super().__init__("alert-receiver")

    def __enter__(self) -> AlertReceiver:
        super().__enter__()
        return self

    async def _respond(self, record: Received) -> web.StreamResponse:
        return web.Response(status=200, text="ok")
