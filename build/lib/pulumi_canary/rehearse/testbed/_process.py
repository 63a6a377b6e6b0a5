"""A real server binary (Prometheus, Pushgateway) run as a child process on a loopback port.

The test bed runs Debian's binaries rather than fakes, so queries, pushes and rule files meet
the real parsers. Each server gets a free port and its own temp dir, which holds its log, and
start-up waits until the server says it is ready.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from ._loop import free_port


class ServerProcess(ABC):
    """One server binary; `stop()` then `start()` simulates an outage, keeping its temp dir."""

    def __init__(self, binary: str, package: str) -> None:
        if shutil.which(binary) is None:
            raise FileNotFoundError(
                f"{binary} not found: install it with `apt-get install -y {package}`"
            )
        self.binary = binary
        self.port = free_port()
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash (stable across stop/start)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        """The binary's file name, for the temp dir, the log and error messages."""
        return Path(self.binary).name

    @abstractmethod
    def arguments(self, directory: Path) -> list[str]:
        """The command line after the binary; may write config files into `directory`."""

    @abstractmethod
    def ready(self) -> bool:
        """Whether the server serves what its users need; HTTP errors count as not yet."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def start(self, timeout: float = 20.0) -> None:
        """Start (or restart, keeping the temp dir's data) and wait until it is ready."""
        if self._process is not None:
            return
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix=f"testbed-{self.name}-"))
        self._process = subprocess.Popen(
            [self.binary, *self.arguments(self._dir)],
            stdout=subprocess.DEVNULL,
            stderr=self._log().open("ab"),
        )
        self._wait_ready(timeout)

    def stop(self) -> None:
        """Terminate the process (requests then fail with connection errors)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def _log(self) -> Path:
        assert self._dir is not None
        return self._dir / f"{self.name}.log"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self._log()
                tail = log.read_text()[-2000:] if log.exists() else ""
                self._process = None
                raise RuntimeError(f"{self.name} exited early:\n{tail}")
            try:
                if self.ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{self.name} not ready within {timeout}s")
