"""A real Prometheus Pushgateway on loopback, so releases push to what a cluster runs."""

from __future__ import annotations

from pathlib import Path

import httpx

from ._process import ServerProcess

PUSHGATEWAY_BINARY = "/usr/bin/prometheus-pushgateway"


class PushgatewayServer(ServerProcess):
    """Runs Debian's `prometheus-pushgateway`, keeping pushes in memory only.

    Without `--persistence.file=` the binary would write `/var/lib/prometheus/pushgateway.data`
    on exit, shared by every run on the machine.
    """

    def __init__(self, binary: str = PUSHGATEWAY_BINARY) -> None:
        super().__init__(binary, package="prometheus-pushgateway")

    @property
    def target(self) -> str:
        """The `host:port` Prometheus scrapes."""
        return f"127.0.0.1:{self.port}"

    def arguments(self, directory: Path) -> list[str]:
        return [f"--web.listen-address={self.target}", "--persistence.file="]

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200

    def metrics(self) -> str:
        """What Prometheus scrapes: every pushed group, in the text format, for tests."""
        response = httpx.get(f"{self.url}/metrics", timeout=5)
        response.raise_for_status()
        return response.text
