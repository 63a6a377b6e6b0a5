"""A real Prometheus server on loopback, so analysis queries run real PromQL."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import yaml

from ...spec.durations import format_seconds, parse_seconds
from ._process import ServerProcess

PROMETHEUS_BINARY = "/usr/bin/prometheus"
SCRAPE_INTERVAL = "500ms"
# rate() over one judge step needs two scrapes inside it; 2.5 a step leaves room for jitter.
SCRAPES_PER_STEP = 2.5


def scrape_interval_for(judge_step: str | None) -> str:
    """The bed's scrape interval: the default, or short enough for the judge's queries, whose
    `{{ interval }}` is one step."""
    if judge_step is None:
        return SCRAPE_INTERVAL
    seconds = min(parse_seconds(SCRAPE_INTERVAL), parse_seconds(judge_step) / SCRAPES_PER_STEP)
    return format_seconds(seconds)


class PrometheusServer(ServerProcess):
    """Runs `/usr/bin/prometheus` in a temp dir; `stop()` then `start()` simulates an outage.

    The short default intervals give a 2 s `rate()` window enough samples. `pushgateways` are
    scraped with `honor_labels: true`, as a Pushgateway must be: the pushed `job`, `name` and
    `namespace` labels stay those of the pusher, not of the scrape.
    """

    def __init__(
        self,
        targets: Sequence[str],
        scrape_interval: str = SCRAPE_INTERVAL,
        evaluation_interval: str = SCRAPE_INTERVAL,
        binary: str = PROMETHEUS_BINARY,
        pushgateways: Sequence[str] = (),
    ) -> None:
        super().__init__(binary, package="prometheus")
        self.targets = list(targets)
        self.pushgateways = list(pushgateways)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval

    def arguments(self, directory: Path) -> list[str]:
        config = directory / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config()))
        return [
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

    def _config(self) -> dict[str, object]:
        jobs: list[dict[str, object]] = [
            {"job_name": "testbed", "static_configs": [{"targets": self.targets}]}
        ]
        if self.pushgateways:
            jobs.append(
                {
                    "job_name": "pushgateway",
                    "honor_labels": True,
                    "static_configs": [{"targets": self.pushgateways}],
                }
            )
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": jobs,
        }

    def ready(self) -> bool:
        response = httpx.get(f"{self.url}/-/ready", timeout=1)
        return response.status_code == 200 and self._scraped_every_target()

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
        return {*self.targets, *self.pushgateways} <= scraped

    def query(self, promql: str) -> list[dict[str, object]]:
        """An instant query's result vector, for tests."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        result: list[dict[str, object]] = response.json()["data"]["result"]
        return result

    def query_eventually(self, promql: str, timeout: float = 20.0) -> list[dict[str, object]]:
        """The query's result once it is not empty: for tests that wait for a scrape."""
        deadline = time.monotonic() + timeout
        while not (result := self.query(promql)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql} returned nothing within {timeout}s")
            time.sleep(0.1)
        return result
