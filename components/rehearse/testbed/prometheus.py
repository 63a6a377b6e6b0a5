"""A real Prometheus server on loopback, so analysis queries run real PromQL."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx
import yaml

from ._loop import free_port

PROMETHEUS_BINARY = "/usr/bin/prometheus"


class PrometheusServer:
    """Runs `/usr/bin/prometheus` in a temp dir; `stop()` then `start()` simulates an outage.

    The short default intervals give a 2 s `rate()` window enough samples.
    """

    def __init__(
        self,
        targets: Sequence[str],
        scrape_interval: str = "500ms",
        evaluation_interval: str = "500ms",
        binary: str = PROMETHEUS_BINARY,
    ) -> None:
        if shutil.which(binary) is None:
            raise FileNotFoundError(
                f"{binary} not found: install it with `apt-get install -y prometheus`"
            )
        self.binary = binary
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.port = free_port()
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash (stable across stop/start)."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusServer:
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
        """Start (or restart, keeping the stored samples) and wait until it is ready."""
        if self._process is not None:
            return
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="testbed-prometheus-"))
        config = self._dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config()))
        self._process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self._dir / "prometheus.log").open("ab"),
        )
        self._wait_ready(timeout)

    def _config(self) -> dict[str, object]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [
                {"job_name": "testbed", "static_configs": [{"targets": self.targets}]}
            ],
        }

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self._dir / "prometheus.log" if self._dir else None
                tail = log.read_text()[-2000:] if log and log.exists() else ""
                self._process = None
                raise RuntimeError(f"prometheus exited early:\n{tail}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200 and (
                    self._scraped_every_target()
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"prometheus not ready within {timeout}s")

    def _scraped_every_target(self) -> bool:
        """Prometheus syncs its targets ~5 s after start: until the first scrape, a new series
        would look like a canary without telemetry, so the bed is not ready before it."""
        response = httpx.get(f"{self.url}/api/v1/targets", timeout=1)
        response.raise_for_status()
        active = response.json()["data"]["activeTargets"]
        scraped = {
            target["scrapeUrl"].split("/")[2]
            for target in active
            if not target.get("lastScrape", "").startswith("0001-")
        }
        return set(self.targets) <= scraped

    def stop(self) -> None:
        """Terminate the process (queries then fail with connection errors)."""
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

    def query(self, promql: str) -> list[dict[str, object]]:
        """An instant query's result vector, for tests."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        result: list[dict[str, object]] = response.json()["data"]["result"]
        return result
