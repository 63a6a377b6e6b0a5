"""An asyncio loop on a daemon thread, so synchronous tests can host async servers."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


def free_port() -> int:
    """Ask the kernel for an unused loopback port (for programs that need one up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BackgroundLoop:
    """Runs coroutines on a private loop so servers keep serving while the caller blocks."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run one coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and join its thread."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class ThreadedApp:
    """An aiohttp application served on a free loopback port from a background loop."""

    def __init__(self, app: web.Application, name: str) -> None:
        self._app = app
        self._name = name
        self._loop: BackgroundLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Bind the socket first so the port is known before serving starts."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._loop = BackgroundLoop(self._name)
        self._runner = web.AppRunner(self._app, access_log=None)
        self._loop.run(self._serve(self._runner, sock))

    @staticmethod
    async def _serve(runner: web.AppRunner, sock: socket.socket) -> None:
        await runner.setup()
        await web.SockSite(runner, sock).start()

    def stop(self) -> None:
        """Shut the server down and release the port."""
        if self._loop is None or self._runner is None:
            return
        self._loop.run(self._runner.cleanup())
        self._loop.close()
        self._loop = None
        self._runner = None
