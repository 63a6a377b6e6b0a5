"""The critical watch's queries: the Prometheus adapter, retried for a few seconds only."""

from __future__ import annotations

import json

from http_stub import Reply, Stub

from components.adapters.endpoints import Endpoints
from components.adapters.prometheus import WATCH_BACKOFF, PrometheusClient
from components.adapters.retry import RetryCounter
from components.spec import Metric, MetricQuery

ONE = json.dumps(
    {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "1"]}]}}
)
QUERY = MetricQuery(Metric(name="request-success-rate"), "up", None)


def test_a_briefly_busy_prometheus_is_asked_again_and_heard(
    stub: Stub, endpoints: Endpoints
) -> None:
    stub.queued = [Reply(503, "busy"), Reply(502, "restarting")]
    stub.default = Reply(body=ONE)
    retries = RetryCounter()
    watch = PrometheusClient(endpoints, stub.url, backoff=WATCH_BACKOFF, retries=retries)
    assert watch.evaluate(QUERY).value == 1.0
    assert retries.take() == 2


def test_a_prometheus_that_stays_down_is_no_answer_after_a_few_retries(
    stub: Stub, endpoints: Endpoints
) -> None:
    stub.default = Reply(503, "down")
    retries = RetryCounter()
    watch = PrometheusClient(endpoints, stub.url, backoff=WATCH_BACKOFF, retries=retries)
    result = watch.evaluate(QUERY)
    assert result.value is None
    assert (result.reason or "").startswith(f"prometheus at {stub.url}: answered 503")
    assert retries.take() == len(stub.seen) - 1 > 0
